//! The owner of a flag target (the catalogue, `type = "shopsys"`): it shows availability through
//! a flag, one `PATCH` per product, instead of quantities in batches.
//!
//! Each cycle it makes sure it has a product list ([`read`]: at start and every
//! `catalogue_refresh`; a failed read keeps the last good one; an empty or much shrunk list after
//! a good one is not believed, like an empty source), plans every SKU's quantity as any target
//! does ([`plan::plan`]), and for each product of each SKU (usually one; a SKU two products match
//! is flagged on both) runs the pure rule ([`decide`]) over the product's [`FlagState`]. The
//! states are invsync's own record of what it wrote: the diff is never against what `GET` shows
//! (a *calculated* flag there), which only says whose a flag is ([`FlagState::seen`]).
//!
//! What is kept where, and why:
//! - the flag states live in their own table, per product uuid (`store::write_flags`): they
//!   are more than a value (whose flag it is, the clearing streak), and belong to the product,
//!   not to the SKU that maps to it today;
//! - the target's acknowledged quantities (the `acked` column every target has) hold the
//!   quantity each SKU's flags were last brought in line with (every product of it). So
//!   `status` counts and explains a catalogue SKU like any other, and the mass-zero guard (run
//!   before this owner is called) holds a cycle that would flag too much of the shop at once;
//! - the products the API cannot change (a variant or main variant) in theirs
//!   (`store::write_unchangeable`), tried again when they change or a week later.
//!
//! A state is written before the `PATCH` it asks for (a write whose outcome is unknown is still
//! invsync's, and is cleared when stock returns), and with its acknowledgement only after the
//! shop answered. What a refusal means is decided in [`patch`].

mod decide;
mod patch;
mod read;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::report::TargetState;
use super::settle::Stop;
use super::{Core, Cycle, CycleOptions, Inputs, TargetResult, dry_plan, finish, settle};
use crate::plan::Change;
use crate::services::shopsys::catalogue::Catalogue;
use crate::services::shopsys::flag::{FlagState, Unchangeable, decide};
use crate::services::{ConnectorError, FlagTarget};
use crate::store::{self, Store, StoreError, TargetOutcome};
use read::{Read, read_catalogue};

/// What a flag target has besides what every target has.
pub(super) struct Flags {
    /// Its catalogue's connector.
    client: FlagTarget,
    /// What it keeps between cycles.
    memory: FlagMemory,
}

/// What a flag target keeps between cycles.
#[derive(Debug, Default)]
pub struct FlagMemory {
    /// The last product list believed, and when it was read (on the monotonic clock: a wrong
    /// wall clock never makes it stale or fresh).
    catalogue: Option<(Arc<Catalogue>, Instant)>,
    /// A product of that list turned out to be gone: read it again at the next cycle.
    reread: bool,
    /// Each product's flag state by uuid, as stored; read from the database at the first cycle.
    states: Option<HashMap<String, FlagState>>,
    /// The products the API cannot change, by uuid, as stored (read with `states`).
    unchangeable: HashMap<String, Unchangeable>,
    /// The SKUs without a product, or with two, last written for `status`.
    notes: Option<Vec<store::mapping::Note>>,
}

/// One product of one SKU, decided.
struct Step {
    change: Change,
    /// The SKU's name, for what is recorded of the product.
    sku: String,
    uuid: String,
    /// The product's digest in the list (see `CatalogueProduct::digest`).
    digest: String,
    /// The state before this cycle: kept when the API cannot change the product.
    before: FlagState,
    /// The state to keep from now on.
    state: FlagState,
    /// The flag value to write, if any.
    patch: Option<bool>,
    /// Whether `state` differs from the stored one (or there is none yet).
    dirty: bool,
}

impl Flags {
    /// A catalogue target of `client`, nothing read yet.
    pub(super) fn new(client: FlagTarget) -> Flags {
        Flags {
            client,
            memory: FlagMemory::default(),
        }
    }

    /// Its catalogue's connector.
    pub(super) fn client(&self) -> &FlagTarget {
        &self.client
    }

    /// Whether the product list is in memory and not due to be read again: with the flags at
    /// rest (see [`sync`]), a cycle would then change nothing.
    pub(super) fn catalogue_is_fresh(&self) -> bool {
        self.memory
            .catalogue_is_fresh(self.client.rules().catalogue_refresh)
    }
}

impl FlagMemory {
    /// Whether the product list is in memory and not read for `refresh`.
    fn catalogue_is_fresh(&self, refresh: std::time::Duration) -> bool {
        !self.reread
            && self
                .catalogue
                .as_ref()
                .is_some_and(|(_, at)| at.elapsed() < refresh)
    }
}

/// Runs a flag target's part of a cycle, after the mass-zero guard passed its plan. Its mark
/// (`cycle.mark`) is what the target is settled as if the flags come to rest (see
/// `targets::settled`).
pub(super) async fn sync(
    target: &mut Core,
    flags: &mut Flags,
    cycle: Cycle,
) -> Result<TargetResult, StoreError> {
    let Cycle {
        inputs,
        planned,
        mut result,
        meter,
        options,
        now,
        mark,
        ..
    } = cycle;
    let planned = &planned;
    // What is pending here is the SKUs whose products are left to write, not the plan's.
    let mut outcome = TargetOutcome::default();
    let store = inputs.store.clone();
    load(target, flags, &store).await?;
    let fraction = target.guard.max_fraction;
    let read = match inputs.early_catalogue.clone() {
        // Read this cycle already, before the sources' answers were mapped: not again.
        Some(early) if flags.memory.catalogue.is_none() => {
            flags.memory.catalogue = Some((early.clone(), Instant::now()));
            flags.memory.reread = false;
            Read::Ready {
                catalogue: early,
                fresh: true,
            }
        }
        _ => {
            let (memory, shop) = (&mut flags.memory, &flags.client);
            read_catalogue(memory, shop, &target.name, fraction, &meter, options).await
        }
    };
    let (catalogue, fresh) = match read {
        Read::Ready { catalogue, fresh } => (catalogue, fresh),
        Read::Held { lost, before } => {
            result.report.state = TargetState::Held {
                zeroed: lost,
                positive: before,
            };
            outcome.held = Some(format!(
                "the product list lost {lost} of its {before} products; it is read again at the next cycle"
            ));
            return finish(target, &store, result, outcome, &meter, options).await;
        }
        Read::Stopped(stop) => {
            settle::stopped(target, &inputs, Some(stop), &mut result, &mut outcome).await?;
            return finish(target, &store, result, outcome, &meter, options).await;
        }
    };
    if fresh && !options.dry_run {
        remember_barcodes(target, &inputs, &catalogue).await?;
        patch::forget_departed(target, &mut flags.memory, &store, &catalogue).await?;
    }
    let (mut steps, notes) = decide::decide_all(
        target, flags, &inputs, planned, &catalogue, options, now, fresh,
    );
    if !options.dry_run {
        write_notes(target, &mut flags.memory, &store, notes).await?;
    }
    steps.sort_by_key(|s| target.failed.contains_key(&s.change.sku));
    let mut patches: Vec<Change> = Vec::new();
    for step in steps.iter().filter(|s| s.patch.is_some()) {
        if !patches.iter().any(|c| c.sku == step.change.sku) {
            patches.push(step.change);
        }
    }
    result.report.planned = patches.len();
    if options.dry_run {
        result.plan = dry_plan(target, &inputs, planned, &patches);
        return finish(target, &store, result, outcome, &meter, options).await;
    }
    // At rest: nothing to write and no state moved on (a clearing streak is a state moving on).
    // The rule is a function of the state and the quantity, so while the quantities stay what
    // they are, the next cycle would decide the same.
    let at_rest = steps.iter().all(|s| !s.dirty && s.patch.is_none());
    // Intent first: a product invsync is about to flag is invsync's from now on.
    let intents: Vec<(String, FlagState)> = steps
        .iter()
        .filter(|s| s.dirty)
        .map(|s| (s.uuid.clone(), s.state))
        .collect();
    write_states(target, &mut flags.memory, &store, intents).await?;
    // A SKU none of whose products needs a PATCH is in line with its quantity now.
    let quiet: Vec<Change> = steps
        .iter()
        .filter(|s| !patches.iter().any(|c| c.sku == s.change.sku))
        .filter(|s| target.acked.get(s.change.sku) != Some(s.change.new))
        .fold(Vec::new(), |mut quiet, s| {
            if !quiet.iter().any(|c: &Change| c.sku == s.change.sku) {
                quiet.push(s.change);
            }
            quiet
        });
    if !quiet.is_empty() {
        settle::acknowledge(target, &store, &quiet, options.force).await?;
    }
    let done = patch::patch_all(target, flags, &store, &meter, steps, &mut result, now).await?;
    if fresh || result.report.pushed > 0 {
        settle::auth_accepted(target, &store).await?;
    }
    let (refused, refusing) = (done.refusals.len(), !done.refusals.is_empty());
    let stopped_early = done.stop.is_some();
    settle::refusals(
        target,
        &inputs,
        done.refusals,
        now,
        &mut result,
        &mut outcome,
    )
    .await?;
    settle::stopped(target, &inputs, done.stop, &mut result, &mut outcome).await?;
    let left = patches.len().saturating_sub(done.in_line + done.set_aside);
    result.report.failures += left.saturating_sub(refused);
    outcome.pending = left;
    if at_rest
        && quiet.is_empty()
        && !refusing
        && !stopped_early
        && result.report.state == TargetState::InSync
    {
        outcome.settled = Some(mark);
    }
    finish(target, &store, result, outcome, &meter, options).await
}

/// Reads the flag states and the unchangeable products from the database, the first time.
async fn load(target: &Core, flags: &mut Flags, store: &Store) -> Result<(), StoreError> {
    if flags.memory.states.is_some() {
        return Ok(());
    }
    let id = target.id;
    let (states, unchangeable) = store
        .call(move |c| Ok((store::load_flags(c, id)?, store::load_unchangeable(c, id)?)))
        .await?;
    flags.memory.states = Some(states);
    flags.memory.unchangeable = unchangeable;
    Ok(())
}

/// With `by_barcode`, a freshly read catalogue's barcodes: recorded (a restart links at once)
/// and handed to the mapping.
async fn remember_barcodes(
    target: &Core,
    inputs: &Inputs,
    catalogue: &Catalogue,
) -> Result<(), StoreError> {
    if !inputs.mapper.by_barcode() {
        return Ok(());
    }
    let (id, pairs) = (target.id, catalogue.barcodes.clone());
    inputs
        .store
        .call(move |c| store::mapping::write_barcodes(c, id, &pairs))
        .await?;
    inputs
        .mapper
        .set_catalogue(&target.name, catalogue.barcodes.clone());
    Ok(())
}

/// The kinds of note this owner writes for `status`: a SKU with no product, and one with two.
const NOTE_KINDS: [&str; 2] = [decide::UNMAPPED, decide::MATCHED_TWICE];

/// Records the SKUs this catalogue cannot map to one product (none, or two) for `status`, when
/// they changed.
async fn write_notes(
    target: &Core,
    memory: &mut FlagMemory,
    store: &Store,
    notes: Vec<store::mapping::Note>,
) -> Result<(), StoreError> {
    if memory.notes.as_ref() == Some(&notes) {
        return Ok(());
    }
    let (name, rows) = (target.name.clone(), notes.clone());
    store
        .call(move |c| {
            for kind in NOTE_KINDS {
                let of_kind: Vec<_> = rows.iter().filter(|n| n.kind == kind).cloned().collect();
                store::mapping::replace_notes(c, kind, Some(&name), &of_kind)?;
            }
            Ok(())
        })
        .await?;
    memory.notes = Some(notes);
    Ok(())
}

/// Why a failed request stops the target for this cycle.
fn stopped_by(e: ConnectorError) -> Stop {
    match e {
        e if e.is_cancelled() => Stop::Cancelled,
        ConnectorError::Auth(message) => {
            Stop::AuthRefused(format!("authentication refused: {message}"))
        }
        e => Stop::Unreachable(e.to_string()),
    }
}

/// Stores changed states, then keeps them in memory.
async fn write_states(
    target: &Core,
    memory: &mut FlagMemory,
    store: &Store,
    states: Vec<(String, FlagState)>,
) -> Result<(), StoreError> {
    if states.is_empty() {
        return Ok(());
    }
    let id = target.id;
    let rows = states.clone();
    store
        .call(move |c| store::write_flags(c, id, &rows))
        .await?;
    memory.states.get_or_insert_default().extend(states);
    Ok(())
}
