//! One target's part of a cycle: plan, guard, push in batches, acknowledge.
//!
//! A batch the target refuses with a 4xx (not auth, not rate) is halved and each half pushed
//! again, until the refused SKUs are alone: one bad SKU never sinks its neighbours. Refused SKUs
//! are recorded with the target's message and pushed again every cycle, last, until the target
//! takes them. A target that is unreachable, or refuses everything, is left for this cycle
//! after its first failed batch, so it never holds up the others for long.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::http::{HttpError, Meter};
use crate::ops::report::{PlanLine, TargetReport, TargetState};
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::plan::{self, Change, Rules};
use crate::services::{ConnectorError, PushItem, Target};
use crate::store::{self, Refusal, Store, StoreError, TargetOutcome};

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

/// A push that lasts longer than this says how far it got, this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Refusals in one cycle, with nothing accepted, after which a target is taken to refuse
/// everything (a changed API, a suspended account) rather than a few bad SKUs: splitting further
/// would cost a request per SKU for nothing.
const REFUSES_EVERYTHING: usize = 10;

/// What a target is and has, as the cycle sees it.
pub struct TargetSlot {
    /// `[targets.NAME]`.
    pub name: String,
    /// Its row in the database.
    pub id: i64,
    /// Its connector.
    pub client: Target,
    /// What it acknowledged.
    pub acked: Column,
    /// SKUs it refused and has not taken since.
    pub failed: HashSet<SkuId>,
    /// Indices of its input sources.
    pub inputs: Vec<usize>,
    /// Safety stock and cap.
    pub rules: Rules,
    /// Entities per request.
    pub batch_size: usize,
}

/// What the cycle hands a target.
pub struct Inputs {
    /// The inputs' snapshots, in the target's order: each the newest recorded, and told when a
    /// newer one is recorded (the push re-plans between batches).
    pub columns: Vec<watch::Receiver<Arc<Column>>>,
    /// The inputs' names, in the same order, for a dry run's explanations.
    pub names: Vec<String>,
    /// Inputs whose fetch failed this cycle.
    pub failed_sources: Vec<String>,
    /// Every SKU name.
    pub skus: Arc<RwLock<SkuTable>>,
    /// The database.
    pub store: Store,
    /// `daemon.max_zeroed_fraction`.
    pub max_zeroed_fraction: f64,
}

impl Inputs {
    /// The newest snapshots, marked as seen.
    fn newest(&mut self) -> Vec<Arc<Column>> {
        self.columns
            .iter_mut()
            .map(|rx| rx.borrow_and_update().clone())
            .collect()
    }

    /// Whether a newer snapshot was recorded since [`Inputs::newest`].
    fn changed(&self) -> bool {
        self.columns
            .iter()
            .any(|rx| rx.has_changed().unwrap_or(false))
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

/// Runs one target's part of a cycle.
pub async fn sync_target(
    target: &mut TargetSlot,
    mut inputs: Inputs,
    options: CycleOptions,
) -> Result<TargetResult, StoreError> {
    let meter = Meter::default();
    let mut result = TargetResult {
        report: TargetReport {
            name: target.name.clone(),
            state: TargetState::InSync,
            planned: 0,
            pushed: 0,
            failures: 0,
            requests: 0,
            retries: 0,
        },
        plan: Vec::new(),
    };
    let mut outcome = TargetOutcome::default();
    if !inputs.failed_sources.is_empty() {
        let names = inputs.failed_sources.join(",");
        error!(target = %target.name, sources = %names, "target skipped: an input could not be fetched; it is retried at the next cycle");
        outcome.error = Some(format!("skipped: input {names} could not be fetched"));
        result.report.state = TargetState::Skipped {
            sources: std::mem::take(&mut inputs.failed_sources),
        };
        return finish(target, &inputs.store, result, outcome, &meter, options).await;
    }
    let columns = inputs.newest();
    let changes = plan_for(target, &columns, options.full, &HashSet::new());
    result.report.planned = changes.len();
    outcome.pending = changes.len();
    if let Some(held) = guard(target, &changes, &inputs, options) {
        result.report.state = held.0;
        outcome.held = Some(held.1);
        return finish(target, &inputs.store, result, outcome, &meter, options).await;
    }
    if options.dry_run {
        result.plan = dry_plan(target, &inputs, &columns, &changes);
        return finish(target, &inputs.store, result, outcome, &meter, options).await;
    }
    let store = inputs.store.clone();
    let skus = inputs.skus.clone();
    let mut pusher = Pusher {
        target: &mut *target,
        inputs: &mut inputs,
        meter: &meter,
        result: &mut result,
        refusals: Vec::new(),
        options,
        held: None,
    };
    let (stop, left) = pusher.push_all(changes).await?;
    let refusals = std::mem::take(&mut pusher.refusals);
    let held = pusher.held.take();
    if !refusals.is_empty() {
        report_refusals(target, &names(&skus), &refusals);
        let (id, at, rows) = (target.id, store::now_ms(), refusals.clone());
        store
            .call(move |c| store::record_refusals(c, id, &rows, at))
            .await?;
        target.failed.extend(refusals.iter().map(|r| r.sku));
        result.report.failures += refusals.len();
        let example = names(&skus).name(refusals[0].sku).to_owned();
        let error = format!(
            "{} SKUs refused, e.g. {example}: {}",
            refusals.len(),
            refusals[0].message
        );
        outcome.error = Some(error.clone());
        result.report.state = TargetState::Failed { error };
    }
    match stop {
        None => {}
        Some(Stop::Cancelled) => {
            warn!(target = %target.name, "shutting down; the remaining changes are pushed at the next start");
            result.report.state = TargetState::Interrupted;
        }
        Some(Stop::Unreachable(e)) => {
            error!(target = %target.name, error = %e, "target could not be brought in sync; it is left for this cycle and retried at the next");
            outcome.error = Some(e.clone());
            result.report.state = TargetState::Failed { error: e };
        }
    }
    if let Some((state, reason)) = held {
        result.report.state = state;
        outcome.held = Some(reason);
    }
    result.report.failures += left.saturating_sub(refusals.len());
    outcome.pending = left;
    finish(target, &store, result, outcome, &meter, options).await
}

/// A dry run's plan, each line with its workings.
fn dry_plan(
    target: &TargetSlot,
    inputs: &Inputs,
    columns: &[Arc<Column>],
    changes: &[Change],
) -> Vec<PlanLine> {
    let named: Vec<(&str, &Column)> = inputs
        .names
        .iter()
        .map(String::as_str)
        .zip(columns.iter().map(|c| &**c))
        .collect();
    let skus = names(&inputs.skus);
    changes
        .iter()
        .map(|c| PlanLine {
            target: target.name.clone(),
            sku: skus.name(c.sku).to_owned(),
            old: c.old,
            new: c.new,
            why: plan::explain(&named, c.sku, target.rules),
        })
        .collect()
}

/// What to push: every SKU whose desired quantity differs from the acknowledged one (every SKU,
/// in a full sync), except those refused already in this cycle. SKUs refused before go last,
/// together, so they cannot make healthy batches fail and split.
fn plan_for(
    target: &TargetSlot,
    columns: &[Arc<Column>],
    full: bool,
    refused_now: &HashSet<SkuId>,
) -> Vec<Change> {
    let columns: Vec<&Column> = columns.iter().map(|c| &**c).collect();
    let mut changes = plan::plan(&columns, &target.acked, target.rules, full);
    if !refused_now.is_empty() {
        changes.retain(|c| !refused_now.contains(&c.sku));
    }
    if !target.failed.is_empty() {
        changes.sort_by_key(|c| target.failed.contains(&c.sku));
    }
    changes
}

/// The mass-zero guard over a plan: `Some` (the state and the reason) when the target must be
/// held, after saying so in an ERROR.
fn guard(
    target: &TargetSlot,
    changes: &[Change],
    inputs: &Inputs,
    options: CycleOptions,
) -> Option<(TargetState, String)> {
    let trip = plan::mass_zero(changes, &target.acked, inputs.max_zeroed_fraction)
        .filter(|_| !options.force)?;
    error!(
        target = %target.name, zeroed = trip.zeroed, positive = trip.positive, max_zeroed_fraction = inputs.max_zeroed_fraction,
        "mass-zero guard: this cycle would set too many SKUs to 0, so nothing is pushed; the target is held until the sources recover or `invsync once --force`"
    );
    Some((
        TargetState::Held {
            zeroed: trip.zeroed,
            positive: trip.positive,
        },
        format!(
            "would zero {} of {} positive SKUs",
            trip.zeroed, trip.positive
        ),
    ))
}

/// Why a target's pushing stopped before its plan was done.
enum Stop {
    /// Shutdown.
    Cancelled,
    /// Unreachable, refusing the credentials, or refusing everything.
    Unreachable(String),
}

struct Pusher<'a> {
    target: &'a mut TargetSlot,
    inputs: &'a mut Inputs,
    meter: &'a Meter,
    result: &'a mut TargetResult,
    refusals: Vec<Refusal>,
    options: CycleOptions,
    /// Set when a re-plan tripped the mass-zero guard.
    held: Option<(TargetState, String)>,
}

impl Pusher<'_> {
    /// Pushes `changes` batch by batch. Between batches, when a newer snapshot of an input was
    /// recorded, the rest is planned again from it: a long push never sends a quantity older
    /// than the newest snapshot. Returns why it stopped early, if it did, and how many planned
    /// changes were left unacknowledged.
    async fn push_all(
        &mut self,
        mut changes: Vec<Change>,
    ) -> Result<(Option<Stop>, usize), StoreError> {
        // In a full sync, the SKUs not yet pushed: a re-plan keeps them in the plan.
        let mut unpushed: Option<HashSet<SkuId>> = self
            .options
            .full
            .then(|| changes.iter().map(|c| c.sku).collect());
        let mut refused_now: HashSet<SkuId> = HashSet::new();
        let mut next = 0;
        let mut progress = Progress::new(changes.len());
        while next < changes.len() {
            let end = (next + self.target.batch_size).min(changes.len());
            let batch = changes[next..end].to_vec();
            next = end;
            let stop = self
                .push_batch(&batch, &mut refused_now, &mut unpushed)
                .await?;
            if let Some(stop) = stop {
                let left = changes.len() - next + batch_left(&batch, self.target);
                return Ok((Some(stop), left));
            }
            progress.tick(
                &self.target.name,
                self.result.report.pushed,
                changes.len() - next,
            );
            if next < changes.len() && self.inputs.changed() {
                let columns = self.inputs.newest();
                changes = plan_for(self.target, &columns, self.options.full, &refused_now);
                if let Some(unpushed) = &unpushed {
                    changes.retain(|c| c.old != Some(c.new) || unpushed.contains(&c.sku));
                }
                next = 0;
                tracing::debug!(target = %self.target.name, left = changes.len(), "a newer snapshot was recorded; the rest is planned again from it");
                if let Some(held) = guard(self.target, &changes, self.inputs, self.options) {
                    self.held = Some(held);
                    return Ok((None, changes.len()));
                }
            }
        }
        Ok((None, 0))
    }

    /// One batch, halved around refusals until the refused SKUs are alone.
    async fn push_batch(
        &mut self,
        batch: &[Change],
        refused_now: &mut HashSet<SkuId>,
        unpushed: &mut Option<HashSet<SkuId>>,
    ) -> Result<Option<Stop>, StoreError> {
        // Depth-first over halves, left before right, so acknowledgements keep plan order.
        let mut parts = vec![batch];
        while let Some(part) = parts.pop() {
            let names: Vec<String> = {
                let skus = names(&self.inputs.skus);
                part.iter().map(|c| skus.name(c.sku).to_owned()).collect()
            };
            let items: Vec<PushItem> = part
                .iter()
                .zip(&names)
                .map(|(c, name)| PushItem {
                    sku: name,
                    quantity: c.new,
                    known: c.old.is_some(),
                })
                .collect();
            match self.target.client.push(self.meter, &items).await {
                Ok(()) => {
                    self.acknowledge(part).await?;
                    if let Some(unpushed) = unpushed {
                        for c in part {
                            unpushed.remove(&c.sku);
                        }
                    }
                }
                Err(e) if e.is_refusal() => {
                    if let [change] = part {
                        refused_now.insert(change.sku);
                        self.refusals.push(Refusal {
                            sku: change.sku,
                            quantity: change.new,
                            message: e.to_string(),
                        });
                        if self.refusals.len() >= REFUSES_EVERYTHING
                            && self.result.report.pushed == 0
                        {
                            return Ok(Some(Stop::Unreachable(format!(
                                "the target refuses every SKU: {e}"
                            ))));
                        }
                    } else {
                        let (left, right) = part.split_at(part.len() / 2);
                        parts.push(right);
                        parts.push(left);
                    }
                }
                Err(ConnectorError::Http(HttpError::Cancelled)) => {
                    return Ok(Some(Stop::Cancelled));
                }
                Err(e) => return Ok(Some(Stop::Unreachable(e.to_string()))),
            }
        }
        Ok(None)
    }

    /// Writes the batch's acknowledgement, then applies it to memory; only then is it counted
    /// as pushed.
    async fn acknowledge(&mut self, part: &[Change]) -> Result<(), StoreError> {
        let rows: Vec<(SkuId, i64)> = part.iter().map(|c| (c.sku, c.new)).collect();
        let healed: Vec<SkuId> = part
            .iter()
            .map(|c| c.sku)
            .filter(|s| self.target.failed.contains(s))
            .collect();
        let chunks = store::quantity_chunks_after(&self.target.acked, &rows);
        let (id, at, db_healed) = (self.target.id, store::now_ms(), healed.clone());
        self.inputs
            .store
            .call(move |c| store::acknowledge(c, id, &chunks, &db_healed, at))
            .await?;
        for &(sku, quantity) in &rows {
            self.target.acked.set(sku, quantity);
        }
        for sku in healed {
            self.target.failed.remove(&sku);
        }
        self.result.report.pushed += rows.len();
        Ok(())
    }
}

/// Changes of a batch that stopped early and were not acknowledged.
fn batch_left(batch: &[Change], target: &TargetSlot) -> usize {
    batch
        .iter()
        .filter(|c| target.acked.get(c.sku) != Some(c.new))
        .count()
}

/// INFO lines on a long push: how far, how fast, how long still.
struct Progress {
    started: Instant,
    last: Instant,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let now = Instant::now();
        Progress {
            started: now,
            last: now,
            total,
        }
    }

    fn tick(&mut self, target: &str, pushed: usize, left: usize) {
        if self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = pushed as f64 / seconds;
        let eta = if rate > 0.0 {
            let left_s = (left as f64 / rate).round() as u64;
            humantime::format_duration(Duration::from_secs(left_s)).to_string()
        } else {
            "unknown".to_owned()
        };
        info!(
            target,
            pushed,
            total = self.total.max(pushed + left),
            per_second = format!("{rate:.1}"),
            time_left = %eta,
            "pushing"
        );
    }
}

/// One ERROR per cycle per target, with a few examples: enough to act on, never a flood.
fn report_refusals(target: &TargetSlot, skus: &SkuTable, refusals: &[Refusal]) {
    let examples: Vec<String> = refusals
        .iter()
        .take(5)
        .map(|r| format!("{} ({})", skus.name(r.sku), r.message))
        .collect();
    error!(
        target = %target.name, skus = refusals.len(), examples = %examples.join("; "),
        "the target refused some SKUs; the rest were pushed, and these are tried again every cycle until it takes them"
    );
}

async fn finish(
    target: &TargetSlot,
    store: &Store,
    mut result: TargetResult,
    outcome: TargetOutcome,
    meter: &Meter,
    options: CycleOptions,
) -> Result<TargetResult, StoreError> {
    result.report.requests = meter.requests();
    result.report.retries = meter.retries();
    if !options.dry_run {
        let (id, at) = (target.id, store::now_ms());
        store
            .call(move |c| store::target_outcome(c, id, &outcome, at))
            .await?;
    }
    Ok(result)
}
