//! The owner of a flag target (the catalogue, `type = "shopsys"`): it shows availability through
//! a flag, one `PATCH` per product, instead of quantities in batches.
//!
//! Each cycle it makes sure it has a product list (read at start and every `catalogue_refresh`;
//! a failed read keeps the last good one; an empty or much shrunk list after a good one is not
//! believed, like an empty source), plans every SKU's quantity as any target does
//! ([`plan::plan`]), and for each SKU whose one product it knows runs the pure rule
//! ([`decide`]) over the product's [`FlagState`]. The states are invsync's own record of what it
//! wrote: the diff is never against what `GET` shows (a *calculated* flag there).
//!
//! What is kept where, and why:
//! - the flag states live in their own table, per product uuid (`store::write_flags`): they
//!   are more than a value (whose flag it is, the clearing streak), and belong to the product,
//!   not to the SKU that maps to it today;
//! - the target's acknowledged quantities (the `acked` column every target has) hold the
//!   quantity each SKU's flag was last brought in line with. So `status` counts and explains a
//!   catalogue SKU like any other, and the mass-zero guard (run before this owner is called)
//!   holds a cycle that would flag too much of the shop at once.
//!
//! A state is written before the `PATCH` it asks for (a write whose outcome is unknown is still
//! invsync's, and is cleared when stock returns), and with its acknowledgement only after the
//! shop answered. A refused product (a variant answers 400) and a SKU that two products claim
//! are refusals, on the schedule every target's refusals follow.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::push::Stop;
use super::{
    CycleOptions, Inputs, Planned, REFUSES_EVERYTHING, TargetResult, TargetSlot, dry_plan, finish,
    names, settle,
};
use crate::http::Meter;
use crate::ops::report::TargetState;
use crate::plan::{self, Change, MASS_ZERO_MIN_SKUS};
use crate::services::shopsys::catalogue::Catalogue;
use crate::services::shopsys::flag::{FlagState, decide};
use crate::services::shopsys::target::ShopsysTarget;
use crate::services::{ConnectorError, Target};
use crate::store::{self, Refusal, Store, StoreError, TargetOutcome};

/// What a flag target keeps between cycles.
#[derive(Debug, Default)]
pub struct FlagMemory {
    /// The last product list believed, and when it was read (on the monotonic clock: a wrong
    /// wall clock never makes it stale or fresh).
    catalogue: Option<(Arc<Catalogue>, Instant)>,
    /// Each product's flag state by uuid, as stored; read from the database at the first cycle.
    states: Option<HashMap<String, FlagState>>,
    /// The SKUs without a product last written for `status`.
    unmapped: Option<Vec<store::mapping::Note>>,
}

/// One SKU whose product is known, decided.
struct Step {
    change: Change,
    uuid: String,
    /// The state to keep from now on.
    state: FlagState,
    /// The flag value to write, if any.
    patch: Option<bool>,
    /// Whether `state` differs from the stored one (or there is none yet).
    dirty: bool,
}

impl FlagMemory {
    /// Whether the product list is in memory and not due to be read again: with the flags at
    /// rest (see [`sync`]), a cycle would then change nothing.
    pub(super) fn catalogue_is_fresh(&self, refresh: std::time::Duration) -> bool {
        self.catalogue
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < refresh)
    }
}

/// Runs a flag target's part of a cycle, after the mass-zero guard passed it. `mark`: what the
/// target is settled as if the flags come to rest (see `target::settled`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn sync(
    target: &mut TargetSlot,
    inputs: Inputs,
    planned: &Planned,
    mut result: TargetResult,
    options: CycleOptions,
    now: i64,
    mark: String,
) -> Result<TargetResult, StoreError> {
    let meter = Meter::default();
    let mut outcome = TargetOutcome::default();
    let store = inputs.store.clone();
    if target.flags.states.is_none() {
        let id = target.id;
        let loaded = store.call(move |c| store::load_flags(c, id)).await?;
        target.flags.states = Some(loaded);
    }
    let Target::Shopsys(shop) = &target.client else {
        // The dispatch sends only flag targets here.
        return finish(target, &store, result, outcome, &meter, options).await;
    };
    let fraction = target.guard.max_fraction;
    let read = match inputs.early_catalogue.clone() {
        // Read this cycle already, before the sources' answers were mapped: not again.
        Some(early) if target.flags.catalogue.is_none() => {
            target.flags.catalogue = Some((early.clone(), Instant::now()));
            Read::Ready {
                catalogue: early,
                fresh: true,
            }
        }
        _ => {
            let flags = &mut target.flags;
            read_catalogue(flags, shop, &target.name, fraction, &meter, options).await
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
    }
    let (mut steps, duplicates, unmapped) =
        decide_all(target, &inputs, planned, &catalogue, options, now);
    if !options.dry_run {
        write_unmapped(target, &store, unmapped).await?;
    }
    steps.sort_by_key(|s| target.failed.contains_key(&s.change.sku));
    let patches: Vec<Change> = steps
        .iter()
        .filter(|s| s.patch.is_some())
        .map(|s| s.change)
        .collect();
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
    write_states(target, &store, intents).await?;
    let quiet: Vec<Change> = steps
        .iter()
        .filter(|s| s.patch.is_none() && target.acked.get(s.change.sku) != Some(s.change.new))
        .map(|s| s.change)
        .collect();
    if !quiet.is_empty() {
        settle::acknowledge(target, &store, &quiet, options.force).await?;
    }
    let (stop, mut refusals) = patch_all(target, &store, &meter, steps, &mut result).await?;
    if fresh || result.report.pushed > 0 {
        settle::auth_accepted(target, &store).await?;
    }
    let refused = refusals.len();
    refusals.extend(duplicates);
    let (refusing, stopped_early) = (!refusals.is_empty(), stop.is_some());
    settle::refusals(target, &inputs, refusals, now, &mut result, &mut outcome).await?;
    settle::stopped(target, &inputs, stop, &mut result, &mut outcome).await?;
    let left = patches.len().saturating_sub(result.report.pushed);
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

/// How many SKUs without a product `status` lists by name, per catalogue.
const UNMAPPED_LISTED: usize = 1000;

/// With `by_barcode`, a freshly read catalogue's barcodes: recorded (a restart links at once)
/// and handed to the mapping.
async fn remember_barcodes(
    target: &TargetSlot,
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

/// Records the SKUs this catalogue cannot map (no product, or two) for `status`, when they
/// changed.
async fn write_unmapped(
    target: &mut TargetSlot,
    store: &Store,
    unmapped: Vec<store::mapping::Note>,
) -> Result<(), StoreError> {
    if target.flags.unmapped.as_ref() == Some(&unmapped) {
        return Ok(());
    }
    let (name, rows) = (target.name.clone(), unmapped.clone());
    store
        .call(move |c| store::mapping::replace_notes(c, "unmapped", Some(&name), &rows))
        .await?;
    target.flags.unmapped = Some(unmapped);
    Ok(())
}

/// Runs the flag rule for every SKU of the plan whose one product is known, and sets apart the
/// SKUs that two products claim (refused, so `status` lists them; neither product is touched).
/// Also answers the SKUs it could not map (the first [`UNMAPPED_LISTED`]), for `status`.
fn decide_all(
    target: &mut TargetSlot,
    inputs: &Inputs,
    planned: &Planned,
    catalogue: &Catalogue,
    options: CycleOptions,
    now: i64,
) -> (Vec<Step>, Vec<Refusal>, Vec<store::mapping::Note>) {
    let Target::Shopsys(shop) = &target.client else {
        return (Vec::new(), Vec::new(), Vec::new());
    };
    let mut listed = Vec::new();
    let mut unmapped_note = |sku: &str, detail: String| {
        if listed.len() < UNMAPPED_LISTED {
            listed.push(store::mapping::Note {
                kind: "unmapped".into(),
                sku: sku.to_owned(),
                endpoint: target.name.clone(),
                detail,
            });
        }
    };
    let rules = shop.rules();
    let wanted = plan::plan(
        &planned.columns(),
        &planned.reserved,
        &target.acked,
        target.rules,
        true,
    );
    let skus = names(&inputs.skus);
    let states = target.flags.states.get_or_insert_default();
    let (mut steps, mut duplicates, mut unmapped) = (Vec::new(), Vec::new(), 0usize);
    for change in wanted {
        // A SKU in a mapping conflict is held: its product is not touched.
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
        if let Some(uuids) = catalogue.duplicates.get(sku) {
            unmapped_note(
                name,
                format!(
                    "{} products have {} {sku:?}",
                    uuids.len(),
                    rules.match_field.name()
                ),
            );
            duplicates.push(Refusal {
                sku: change.sku,
                quantity: change.new,
                message: format!(
                    "{} products have {} {sku:?} ({}); neither is flagged until only one has",
                    uuids.len(),
                    rules.match_field.name(),
                    uuids.join(", ")
                ),
                attempts: 0,
                next_attempt_at: 0,
            });
            continue;
        }
        let Some(product) = catalogue.by_sku.get(sku) else {
            unmapped += 1;
            unmapped_note(
                name,
                format!("no product has {} {sku:?}", rules.match_field.name()),
            );
            continue;
        };
        let stored = states.get(&product.uuid).copied();
        let before = stored.unwrap_or_else(|| FlagState::first_seen(product.flagged));
        let decision = decide(before, change.new, rules.thresholds);
        // A full cycle repairs drift: a flag invsync holds is written again, in case someone
        // cleared it by hand. It never sets one invsync does not hold.
        let repair = options.full && decision.state.ours;
        steps.push(Step {
            change,
            uuid: product.uuid.clone(),
            state: decision.state,
            patch: decision.patch.or(repair.then_some(true)),
            dirty: stored != Some(decision.state),
        });
    }
    if unmapped > 0 {
        debug!(target = %target.name, skus = unmapped, "SKUs with no product in the catalogue are left out");
    }
    (steps, duplicates, listed)
}

/// Sends each decided `PATCH`, in order, recording each acknowledged state and quantity as the
/// shop answers it. Stops at the first failure that is not about the product alone.
async fn patch_all(
    target: &mut TargetSlot,
    store: &Store,
    meter: &Meter,
    steps: Vec<Step>,
    result: &mut TargetResult,
) -> Result<(Option<Stop>, Vec<Refusal>), StoreError> {
    let Target::Shopsys(shop) = &target.client else {
        return Ok((None, Vec::new()));
    };
    let mut refusals = Vec::new();
    let mut fresh_refusals = 0;
    let mut done = Vec::new();
    let mut stop = None;
    for step in steps {
        let Some(value) = step.patch else { continue };
        match shop.set_flag(meter, &step.uuid, value).await {
            Ok(()) => {
                let state = step.state.acknowledged(value);
                let (id, uuid) = (target.id, step.uuid.clone());
                store
                    .call(move |c| store::write_flags(c, id, &[(uuid, state)]))
                    .await?;
                if let Some(states) = target.flags.states.as_mut() {
                    states.insert(step.uuid, state);
                }
                done.push(step.change);
                result.report.pushed += 1;
            }
            Err(e) if e.is_refusal() => {
                // Only products never refused before say anything about the shop as a whole.
                if !target.failed.contains_key(&step.change.sku) {
                    fresh_refusals += 1;
                }
                refusals.push(Refusal {
                    sku: step.change.sku,
                    quantity: step.change.new,
                    message: e.to_string(),
                    attempts: 0,
                    next_attempt_at: 0,
                });
                if fresh_refusals >= REFUSES_EVERYTHING && result.report.pushed == 0 {
                    let why = format!("the target refuses every product: {e}");
                    stop = Some(Stop::Unreachable(why));
                    break;
                }
            }
            Err(e) => {
                stop = Some(stopped_by(e));
                break;
            }
        }
    }
    if !done.is_empty() {
        settle::acknowledge(target, store, &done, false).await?;
    }
    Ok((stop, refusals))
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
    target: &mut TargetSlot,
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
    let memory = target.flags.states.get_or_insert_default();
    memory.extend(states);
    Ok(())
}

/// The product list this cycle works from.
enum Read {
    /// Believed; `fresh` when read now rather than kept.
    Ready {
        catalogue: Arc<Catalogue>,
        fresh: bool,
    },
    /// Read now, and lost too many of the products the last good read had.
    Held { lost: usize, before: usize },
    /// No list to work from.
    Stopped(Stop),
}

/// Reads the product list when it is due (never read, `catalogue_refresh` passed, a full
/// cycle, or the last read failed), else keeps the last.
async fn read_catalogue(
    memory: &mut FlagMemory,
    shop: &ShopsysTarget,
    name: &str,
    max_fraction: f64,
    meter: &Meter,
    options: CycleOptions,
) -> Read {
    let refresh = shop.rules().catalogue_refresh;
    let last = memory.catalogue.as_ref().map(|(c, _)| c.clone());
    let due = memory
        .catalogue
        .as_ref()
        .is_none_or(|(_, at)| at.elapsed() >= refresh);
    if let Some(catalogue) = last.clone().filter(|_| !due && !options.full) {
        return Read::Ready {
            catalogue,
            fresh: false,
        };
    }
    match shop.read_catalogue(meter).await {
        Ok(read) => {
            let before = last.as_ref().map_or(0, |c| c.products);
            let lost = before.saturating_sub(read.products);
            let shrunk = (read.products == 0 && before > 0)
                || (before >= MASS_ZERO_MIN_SKUS && lost as f64 > max_fraction * before as f64);
            if shrunk && !options.force {
                error!(
                    target = name,
                    products = read.products,
                    before,
                    "the product list came back empty or much smaller than the last one read, so it is not believed and nothing is changed; it is read again at the next cycle, and `invsync once --force` accepts it"
                );
                return Read::Held { lost, before };
            }
            info!(
                target = name,
                products = read.products,
                skus = read.by_sku.len(),
                unmatched = read.unmatched,
                duplicates = read.duplicates.len(),
                bad_uuids = read.bad_uuids,
                "product list read"
            );
            let catalogue = Arc::new(read);
            memory.catalogue = Some((catalogue.clone(), Instant::now()));
            Read::Ready {
                catalogue,
                fresh: true,
            }
        }
        // Without the credentials, or shutting down, the last list would not help.
        Err(e) if e.is_cancelled() || matches!(e, ConnectorError::Auth(_)) => {
            Read::Stopped(stopped_by(e))
        }
        Err(e) => match last {
            Some(catalogue) => {
                warn!(target = name, error = %e, "the product list could not be read again; the last one read is used, and it is read again at the next cycle");
                Read::Ready {
                    catalogue,
                    fresh: false,
                }
            }
            None => Read::Stopped(Stop::Unreachable(format!(
                "the product list could not be read: {e}"
            ))),
        },
    }
}
