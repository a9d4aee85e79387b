//! One target's part of a cycle: plan, guard, push, acknowledge.
//!
//! Every target has one owner, here: its slot ([`TargetSlot`], see `slot`) holds what every
//! target has (what it acknowledged, holds in doubt, refused, its guard's and logins' memory,
//! its settled mark) and its kind's own part, and nothing outside `target` changes either. A
//! cycle runs the part every target shares (skip, login wait, quiet, plan, mass-zero guard),
//! then its kind's: quantities pushed in batches (`quantities`, `push`) or a catalogue's flags,
//! one `PATCH` per product (`flag`). Both settle the same way (`settle`).
//!
//! A batch the target refuses with a 4xx (not auth, not rate) is halved and each half pushed
//! again, until the refused SKUs are alone: one bad SKU never sinks its neighbours. Refused SKUs
//! are recorded with the target's message and pushed again every cycle, last, until the target
//! takes them. A target that is unreachable, or refuses everything, is left for this cycle
//! after its first failed batch, so it never holds up the others for long.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::watch;
use tracing::error;

use crate::http::Meter;
use crate::mapper::Mapper;
use crate::mapping::Mapping;
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::plan::{self, Change};
use crate::store::{self, Side, Store, StoreError, TargetOutcome, rfc3339};

/// How to run one cycle.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycleOptions {
    /// Fetch and plan, push nothing, write nothing.
    pub dry_run: bool,
    /// Push every SKU, not only those that differ.
    pub full: bool,
    /// Push even when the mass-zero guard would hold a target.
    pub force: bool,
}

/// A refused SKU is tried again at most this far apart.
const REFUSAL_BACKOFF_CAP: Duration = Duration::from_secs(24 * 60 * 60);

/// A push that lasts longer than this says how far it got, this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

mod flag;
mod push;
mod quantities;
pub mod report;
mod settle;
pub mod settled;
mod slot;

use slot::{Core, Kind};
pub use slot::{Setup, Stored, TargetSlot};

use report::{PlanLine, TargetReport, TargetState};

/// Refusals in one cycle, with nothing accepted, after which a target is taken to refuse
/// everything (a changed API, a suspended account) rather than a few bad SKUs: splitting further
/// would cost a request per SKU for nothing.
const REFUSES_EVERYTHING: usize = 10;

/// What the cycle hands a target.
pub struct Inputs {
    /// The inputs' snapshots, in the target's order: each the newest recorded, and told when a
    /// newer one is recorded (the push re-plans between batches).
    pub columns: Vec<watch::Receiver<Arc<Column>>>,
    /// What open orders reserve per SKU, the newest, told when it changes.
    pub reserved: watch::Receiver<Arc<Column>>,
    /// The inputs' names, in the same order, for a dry run's explanations.
    pub names: Vec<String>,
    /// Inputs whose fetch failed this cycle.
    pub failed_sources: Vec<String>,
    /// Inputs the mass-zero guard holds this cycle: fetched, not believed.
    pub held_sources: Vec<String>,
    /// Every SKU name.
    pub skus: Arc<RwLock<SkuTable>>,
    /// The database.
    pub store: Store,
    /// `daemon.guard_window`.
    pub guard_window: Duration,
    /// About how long one cycle is from the next, for backoffs counted in cycles.
    pub period: Duration,
    /// The mark the target gets if this cycle leaves it wholly in sync (see [`settled`]).
    pub settle_mark: String,
    /// Whether it is settled already: its plan is known to be empty, and nothing per SKU is
    /// loaded for it (see [`settled`]).
    pub quiet: bool,
    /// The SKU mapping: what the target calls each SKU, and the catalogues' barcodes.
    pub mapper: Arc<Mapper>,
    /// The mapping in force this cycle.
    pub mapping: Arc<Mapping>,
    /// SKUs in a mapping conflict: never planned, so held at what the target acknowledged.
    pub held: Arc<HashSet<SkuId>>,
    /// A catalogue target's product list read earlier this cycle, for `mapping.by_barcode`
    /// (see `daemon::catalogues`): used rather than read again.
    pub early_catalogue: Option<Arc<crate::services::shopsys::catalogue::Catalogue>>,
}

impl Inputs {
    /// The newest snapshots and reservations, marked as seen.
    fn newest(&mut self) -> Planned {
        Planned {
            columns: self
                .columns
                .iter_mut()
                .map(|rx| rx.borrow_and_update().clone())
                .collect(),
            reserved: self.reserved.borrow_and_update().clone(),
        }
    }

    /// Whether a newer snapshot or reservation was recorded since [`Inputs::newest`].
    fn changed(&self) -> bool {
        self.reserved.has_changed().unwrap_or(false)
            || self
                .columns
                .iter()
                .any(|rx| rx.has_changed().unwrap_or(false))
    }
}

/// What a plan is made from: the inputs' snapshots and what open orders reserve.
pub struct Planned {
    columns: Vec<Arc<Column>>,
    reserved: Arc<Column>,
}

impl Planned {
    fn columns(&self) -> Vec<&Column> {
        self.columns.iter().map(|c| &**c).collect()
    }

    /// The changes of `skus` (a plan [`plan_for`] made from these snapshots), made again one by
    /// one: the same as when they were planned, as long as the target has acknowledged none
    /// of them since.
    fn changes<'a>(
        &'a self,
        target: &'a Core,
        skus: &'a [SkuId],
    ) -> impl Iterator<Item = Change> + 'a {
        let columns = self.columns();
        skus.iter().filter_map(move |&sku| {
            plan::change_of(&columns, &self.reserved, &target.acked, target.rules, sku)
        })
    }
}

fn names(skus: &RwLock<SkuTable>) -> std::sync::RwLockReadGuard<'_, SkuTable> {
    skus.read().unwrap_or_else(|p| p.into_inner())
}

/// What one target's cycle produced (its acknowledgements and refusals are already applied to
/// the target's slot, after the database).
pub struct TargetResult {
    /// For the summary line.
    pub report: TargetReport,
    /// A dry run's plan.
    pub plan: Vec<PlanLine>,
}

/// A target whose inputs shutdown cut short: not synced, and nothing recorded (its last error
/// stays what it was).
pub fn interrupted(target: &TargetSlot) -> TargetResult {
    TargetResult {
        report: TargetReport::idle(target.name(), TargetState::Interrupted),
        plan: Vec::new(),
    }
}

/// How a target's skip because of a held input begins, for `status` to call the target held.
pub const SKIPPED_HELD: &str = "skipped: held by the mass-zero guard at input ";

/// Logs why a target skips this cycle and says it for `status`: an input that could not be
/// fetched, or one the mass-zero guard holds (the target then keeps what it showed).
fn skipped(target: &str, inputs: &Inputs) -> String {
    let failed = inputs.failed_sources.join(",");
    let held = inputs.held_sources.join(",");
    if !failed.is_empty() {
        error!(target = %target, sources = %failed, "target skipped: an input could not be fetched; it is retried at the next cycle");
    }
    if !held.is_empty() {
        error!(target = %target, sources = %held, "target skipped: an input is held by the mass-zero guard; the target keeps what it shows until the source recovers or `invsync once --force`");
    }
    match (failed.is_empty(), held.is_empty()) {
        (true, _) => format!("{SKIPPED_HELD}{held}; it keeps what it shows"),
        (false, true) => format!("skipped: input {failed} could not be fetched"),
        (false, false) => format!(
            "skipped: input {failed} could not be fetched, and {held} is held by the mass-zero guard"
        ),
    }
}

/// Runs one target's part of a cycle: the part every target shares (`begin`), then its
/// kind's.
pub async fn sync_target(
    target: &mut TargetSlot,
    inputs: Inputs,
    options: CycleOptions,
) -> Result<TargetResult, StoreError> {
    let TargetSlot { core, kind } = target;
    let cycle = match begin(core, inputs, options).await? {
        ControlFlow::Continue(cycle) => cycle,
        ControlFlow::Break(done) => return Ok(done),
    };
    match kind {
        Kind::Quantities(quantities) => quantities::sync(core, quantities, cycle).await,
        Kind::Flags(flags) => flag::sync(core, flags, cycle).await,
    }
}

/// One target's cycle once the part every target shares let it go on.
struct Cycle {
    inputs: Inputs,
    /// The snapshots and reservations the plan was made from.
    planned: Planned,
    /// The plan, which the mass-zero guard passed: its SKUs, in the order to push them (each
    /// batch's changes are made from `planned` as it is pushed).
    changes: Vec<SkuId>,
    result: TargetResult,
    outcome: TargetOutcome,
    /// What its requests count.
    meter: Meter,
    options: CycleOptions,
    /// When the cycle began, in ms.
    now: i64,
    /// The mark the target gets if this cycle leaves it wholly in sync (see [`settled`]).
    mark: String,
}

/// The part of a cycle every target shares: skipped for an input that failed or is held, or
/// while a refused login waits; done when it is quiet (see [`settled`]); else planned, and
/// held when the mass-zero guard trips. `Continue` with the plan when its kind is to go on.
async fn begin(
    target: &mut Core,
    mut inputs: Inputs,
    options: CycleOptions,
) -> Result<ControlFlow<TargetResult, Cycle>, StoreError> {
    let meter = Meter::default();
    let mut result = TargetResult {
        report: TargetReport::idle(&target.name, TargetState::InSync),
        plan: Vec::new(),
    };
    let mut outcome = TargetOutcome::default();
    if !inputs.failed_sources.is_empty() || !inputs.held_sources.is_empty() {
        outcome.error = Some(skipped(&target.name, &inputs));
        let mut sources = std::mem::take(&mut inputs.failed_sources);
        sources.append(&mut inputs.held_sources);
        result.report.state = TargetState::Skipped { sources };
        return finish(target, &inputs.store, result, outcome, &meter, options)
            .await
            .map(ControlFlow::Break);
    }
    let now = store::now_ms();
    if let Some(at) = target.auth.waiting(now).filter(|_| !options.dry_run) {
        let error = format!(
            "the target refused the credentials {} times in a row; the next login is at {}",
            target.auth.failures,
            rfc3339(at)
        );
        error!(target = %target.name, next_attempt_at = %rfc3339(at), "target skipped: {error}");
        outcome.error = Some(error.clone());
        result.report.state = TargetState::Failed { error };
        return finish(target, &inputs.store, result, outcome, &meter, options)
            .await
            .map(ControlFlow::Break);
    }
    let mark = std::mem::take(&mut inputs.settle_mark);
    if inputs.quiet {
        // Nothing it was synced from changed since: its plan is empty without being made.
        outcome.settled = Some(mark);
        return finish(target, &inputs.store, result, outcome, &meter, options)
            .await
            .map(ControlFlow::Break);
    }
    target.load_acknowledged(&inputs.store).await?;
    let window = i64::try_from(inputs.guard_window.as_millis()).unwrap_or(i64::MAX);
    target.guard.since = now
        .saturating_sub(window)
        .max(target.guard_since.unwrap_or(i64::MIN));
    let planned = inputs.newest();
    let planning = std::time::Instant::now();
    // The plan is its SKUs alone; each batch's changes are made from them as it is pushed.
    let changes = plan_for(
        target,
        &planned,
        options.full,
        &HashSet::new(),
        &inputs.held,
        now,
    );
    tracing::debug!(target = %target.name, planned = changes.len(), ms = planning.elapsed().as_millis() as u64, "planned");
    result.report.planned = changes.len();
    outcome.pending = changes.len();
    if options.force && !options.dry_run {
        // The operator accepts this cycle as it is: the window starts again after it.
        let (id, side) = (target.id, Side::Target);
        inputs
            .store
            .call(move |c| store::restart_guard(c, side, id, now))
            .await?;
        target.guard_since = Some(now);
        target.guard.since = now;
    }
    if let Some(held) = guard(target, &planned, &changes, options) {
        result.report.state = held.0;
        outcome.held = Some(held.1);
        return finish(target, &inputs.store, result, outcome, &meter, options)
            .await
            .map(ControlFlow::Break);
    }
    Ok(ControlFlow::Continue(Cycle {
        inputs,
        planned,
        changes,
        result,
        outcome,
        meter,
        options,
        now,
        mark,
    }))
}

/// A dry run's plan, each line with its workings.
fn dry_plan(
    target: &Core,
    inputs: &Inputs,
    planned: &Planned,
    changes: &[Change],
) -> Vec<PlanLine> {
    let named: Vec<(&str, &Column)> = inputs
        .names
        .iter()
        .map(String::as_str)
        .zip(planned.columns())
        .collect();
    let skus = names(&inputs.skus);
    changes
        .iter()
        .map(|c| PlanLine {
            target: target.name.clone(),
            sku: skus.name(c.sku).to_owned(),
            old: c.old,
            new: c.new,
            why: plan::explain(&named, &planned.reserved, c.sku, target.rules),
        })
        .collect()
}

/// What to push: every SKU whose desired quantity differs from the acknowledged one (every SKU,
/// in a full sync), except those refused already in this cycle. SKUs refused before go last,
/// together, so they cannot make healthy batches fail and split. The SKUs alone, in the order
/// to push them ([`Planned::changes`] makes their changes).
fn plan_for(
    target: &Core,
    planned: &Planned,
    full: bool,
    refused_now: &HashSet<SkuId>,
    held: &HashSet<SkuId>,
    now: i64,
) -> Vec<SkuId> {
    let columns = planned.columns();
    let mut changes = plan::plan_skus(
        &columns,
        &planned.reserved,
        &target.acked,
        target.rules,
        full,
    );
    plan::push_in_doubt_skus(
        &columns,
        &planned.reserved,
        &target.acked,
        target.rules,
        &target.in_doubt,
        &mut changes,
    );
    // A SKU in a mapping conflict is held where it is: neither pushed nor zeroed.
    if !held.is_empty() {
        changes.retain(|sku| !held.contains(sku));
    }
    // A refused SKU waits for its next attempt (1, 2, 4, … cycles apart).
    let waiting = |sku: &SkuId| {
        target
            .failed
            .get(sku)
            .and_then(|r| r.next_attempt_at)
            .is_some_and(|at| now < at)
    };
    if !refused_now.is_empty() || !target.failed.is_empty() {
        changes.retain(|sku| !refused_now.contains(sku) && !waiting(sku));
    }
    if !target.failed.is_empty() {
        changes.sort_by_key(|sku| target.failed.contains_key(sku));
    }
    changes
}

/// The mass-zero guard over a plan: `Some` (the state and the reason) when the target must be
/// held, after saying so in an ERROR.
fn guard(
    target: &Core,
    planned: &Planned,
    changes: &[SkuId],
    options: CycleOptions,
) -> Option<(TargetState, String)> {
    let trip = target
        .guard
        .check_each(planned.changes(target, changes), &target.acked)
        .filter(|_| !options.force)?;
    error!(
        target = %target.name, zeroed = trip.zeroed, positive = trip.positive, max_zeroed_fraction = target.guard.max_fraction,
        "mass-zero guard: this cycle would set too many SKUs to 0, so nothing is pushed; the target is held until the sources recover or `invsync once --force`"
    );
    Some((
        TargetState::Held {
            zeroed: trip.zeroed,
            positive: trip.positive,
        },
        format!(
            "would zero {} of {} SKUs positive within the guard window",
            trip.zeroed, trip.positive
        ),
    ))
}

async fn finish(
    target: &mut Core,
    store: &Store,
    mut result: TargetResult,
    mut outcome: TargetOutcome,
    meter: &Meter,
    options: CycleOptions,
) -> Result<TargetResult, StoreError> {
    result.report.requests = meter.requests();
    result.report.retries = meter.retries();
    // A stop is not an outcome: the last error stays what it was, and the next cycle says how
    // much is pending.
    let stopped = result.report.state == TargetState::Interrupted;
    if !options.dry_run && !stopped {
        let (id, at) = (target.id, store::now_ms());
        let settled = outcome.settled.clone();
        outcome.in_doubt = store::in_doubt_blob(&target.in_doubt);
        store
            .call(move |c| store::target_outcome(c, id, &outcome, at))
            .await?;
        // Memory follows the database.
        target.settled = settled;
    }
    Ok(result)
}
