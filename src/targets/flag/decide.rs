//! Runs the flag rule for every product of every SKU of the plan, and notes for `status` the
//! SKUs this catalogue cannot map to one product.

use tracing::debug;

use super::super::{Core, Inputs, Planned, names};
use super::{Flags, Step, decide};
use crate::plan;
use crate::services::shopsys::catalogue::Catalogue;
use crate::services::shopsys::flag::FlagState;
use crate::store::mapping::Note;

/// The note kind of a SKU no product of the catalogue has.
pub(super) const UNMAPPED: &str = "unmapped";
/// The note kind of a SKU two or more products have.
pub(super) const MATCHED_TWICE: &str = "matched_twice";

/// How many SKUs without a product `status` lists by name, per catalogue.
const UNMAPPED_LISTED: usize = 1000;

/// One [`Step`] per product of each planned SKU, but for the SKUs held by a mapping conflict,
/// refused SKUs still waiting for their next attempt, and products the API cannot change that
/// are not due to be tried again. `fresh`: the list was read this cycle, so what it shows of
/// each product's flag is news ([`FlagState::seen`]). Also answers the notes for `status`: the
/// SKUs with no product (the first [`UNMAPPED_LISTED`]) and those with two.
#[allow(clippy::too_many_arguments)]
pub(super) fn decide_all(
    target: &Core,
    flags: &mut Flags,
    inputs: &Inputs,
    planned: &Planned,
    catalogue: &Catalogue,
    options: super::CycleOptions,
    now: i64,
    fresh: bool,
) -> (Vec<Step>, Vec<Note>) {
    let rules = flags.client.rules();
    let field = rules.match_field.name();
    let mut notes = Vec::new();
    let mut unmapped = 0usize;
    let wanted = plan::plan(
        &planned.columns(),
        &planned.reserved,
        &target.acked,
        target.rules,
        true,
    );
    let skus = names(&inputs.skus);
    let states = flags.memory.states.get_or_insert_default();
    let unchangeable = &flags.memory.unchangeable;
    let mut steps = Vec::new();
    for change in wanted {
        // A SKU in a mapping conflict is held: its products are not touched.
        if inputs.held.contains(&change.sku) {
            continue;
        }
        // A refused SKU waits for its next attempt (1, 2, 4, … cycles apart).
        let waiting = target
            .failed
            .get(&change.sku)
            .and_then(|r| r.next_attempt_at);
        if waiting.is_some_and(|at| now < at) {
            continue;
        }
        let name = skus.name(change.sku);
        let Some((sku, _)) = inputs.mapping.key_at(&target.name, name) else {
            continue;
        };
        let sku = sku.as_ref();
        let products = catalogue.products_of(sku);
        let note = |kind: &str, detail: String| Note {
            kind: kind.to_owned(),
            sku: name.to_owned(),
            endpoint: target.name.clone(),
            detail,
        };
        match products.len() {
            0 => {
                unmapped += 1;
                if unmapped <= UNMAPPED_LISTED {
                    notes.push(note(UNMAPPED, format!("no product has {field} {sku:?}")));
                }
                continue;
            }
            1 => {}
            n => {
                let uuids: Vec<&str> = products.iter().map(|p| p.uuid.as_str()).collect();
                notes.push(note(MATCHED_TWICE, format!(
                    "{n} products have {field} {sku:?} ({}); each is flagged when it runs out and cleared when it is back",
                    uuids.join(", ")
                )));
            }
        }
        for product in products {
            let waits = unchangeable
                .get(&product.uuid)
                .is_some_and(|u| !u.is_due(&product.digest, now));
            if waits {
                continue;
            }
            let stored = states.get(&product.uuid).copied();
            let mut before = stored.unwrap_or_else(|| FlagState::first_seen(product.flagged));
            if fresh {
                before = before.seen(product.flagged);
            }
            let decision = decide(before, change.new, rules.thresholds);
            // A full cycle repairs drift: a flag invsync holds is written again, in case
            // someone cleared it by hand. It never sets one invsync does not hold.
            let repair = options.full && decision.state.ours;
            steps.push(Step {
                change,
                sku: name.to_owned(),
                uuid: product.uuid.clone(),
                digest: product.digest.clone(),
                before,
                state: decision.state,
                patch: decision.patch.or(repair.then_some(true)),
                dirty: stored != Some(decision.state),
            });
        }
    }
    if unmapped > 0 {
        debug!(target = %target.name, skus = unmapped, "SKUs with no product in the catalogue are left out");
    }
    (steps, notes)
}
