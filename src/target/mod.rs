//! One target's part of a cycle: plan, guard, push in batches, acknowledge.
//!
//! A batch the target refuses with a 4xx (not auth, not rate) is halved and each half pushed
//! again, until the refused SKUs are alone: one bad SKU never sinks its neighbours. Refused SKUs
//! are recorded with the target's message and pushed again every cycle, last, until the target
//! takes them. A target that is unreachable, or refuses everything, is left for this cycle
//! after its first failed batch, so it never holds up the others for long.

use std::collections::HashSet;

use tracing::{error, warn};

use crate::http::{HttpError, Meter};
use crate::ops::report::{PlanLine, TargetReport, TargetState};
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::plan::{self, Change, Rules};
use crate::services::{ConnectorError, PushItem, Target};
use crate::store::{self, Refusal, Store, StoreError, TargetOutcome};

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
pub struct Inputs<'a> {
    /// The inputs' snapshots, in the target's order.
    pub columns: Vec<&'a Column>,
    /// The inputs' names, in the same order, for a dry run's explanations.
    pub names: Vec<&'a str>,
    /// Inputs whose fetch failed this cycle.
    pub failed_sources: Vec<String>,
    /// Every SKU name.
    pub skus: &'a SkuTable,
    /// The database.
    pub store: &'a Store,
    /// `daemon.max_zeroed_fraction`.
    pub max_zeroed_fraction: f64,
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
    inputs: Inputs<'_>,
    options: crate::daemon::cycle::CycleOptions,
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
            sources: inputs.failed_sources,
        };
        return finish(target, inputs.store, result, outcome, &meter, options).await;
    }
    let mut changes = plan::plan(&inputs.columns, &target.acked, target.rules, options.full);
    // SKUs refused before go last, together, so they cannot make healthy batches fail and split.
    if !target.failed.is_empty() {
        changes.sort_by_key(|c| target.failed.contains(&c.sku));
    }
    result.report.planned = changes.len();
    outcome.pending = changes.len();
    let guard = plan::mass_zero(&changes, &target.acked, inputs.max_zeroed_fraction);
    if let Some(trip) = guard.filter(|_| !options.force) {
        error!(
            target = %target.name, zeroed = trip.zeroed, positive = trip.positive, max_zeroed_fraction = inputs.max_zeroed_fraction,
            "mass-zero guard: this cycle would set too many SKUs to 0, so nothing is pushed; the target is held until the sources recover or `invsync once --force`"
        );
        result.report.state = TargetState::Held {
            zeroed: trip.zeroed,
            positive: trip.positive,
        };
        outcome.held = Some(format!(
            "would zero {} of {} positive SKUs",
            trip.zeroed, trip.positive
        ));
        return finish(target, inputs.store, result, outcome, &meter, options).await;
    }
    if options.dry_run {
        let named: Vec<(&str, &Column)> = inputs
            .names
            .iter()
            .copied()
            .zip(inputs.columns.iter().copied())
            .collect();
        result.plan = changes
            .iter()
            .map(|c| PlanLine {
                target: target.name.clone(),
                sku: inputs.skus.name(c.sku).to_owned(),
                old: c.old,
                new: c.new,
                why: plan::explain(&named, c.sku, target.rules),
            })
            .collect();
        return finish(target, inputs.store, result, outcome, &meter, options).await;
    }
    let mut pusher = Pusher {
        target: &mut *target,
        skus: inputs.skus,
        store: inputs.store,
        meter: &meter,
        result: &mut result,
        refusals: Vec::new(),
    };
    let stop = pusher.push_all(&changes).await?;
    let refusals = std::mem::take(&mut pusher.refusals);
    if !refusals.is_empty() {
        report_refusals(target, inputs.skus, &refusals);
        let (id, at, rows) = (target.id, store::now_ms(), refusals.clone());
        inputs
            .store
            .call(move |c| store::record_refusals(c, id, &rows, at))
            .await?;
        target.failed.extend(refusals.iter().map(|r| r.sku));
        result.report.failures += refusals.len();
        let error = format!(
            "{} SKUs refused, e.g. {}: {}",
            refusals.len(),
            inputs.skus.name(refusals[0].sku),
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
    result.report.failures += changes.len() - result.report.pushed - refusals.len();
    outcome.pending = changes.len() - result.report.pushed;
    finish(target, inputs.store, result, outcome, &meter, options).await
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
    skus: &'a SkuTable,
    store: &'a Store,
    meter: &'a Meter,
    result: &'a mut TargetResult,
    refusals: Vec<Refusal>,
}

impl Pusher<'_> {
    async fn push_all(&mut self, changes: &[Change]) -> Result<Option<Stop>, StoreError> {
        for batch in changes.chunks(self.target.batch_size) {
            // Depth-first over halves, left before right, so acknowledgements keep plan order.
            let mut parts = vec![batch];
            while let Some(part) = parts.pop() {
                let items: Vec<PushItem> = part
                    .iter()
                    .map(|c| PushItem {
                        sku: self.skus.name(c.sku),
                        quantity: c.new,
                        known: c.old.is_some(),
                    })
                    .collect();
                match self.target.client.push(self.meter, &items).await {
                    Ok(confirmed) => {
                        // Only what the answer confirms is acknowledged; the rest stays
                        // pending and is pushed again next cycle.
                        let part: Vec<Change> = part
                            .iter()
                            .filter(|c| confirmed.covers(self.skus.name(c.sku)))
                            .copied()
                            .collect();
                        if !part.is_empty() {
                            self.acknowledge(&part).await?;
                        }
                    }
                    Err(e) if is_refusal(&e) => {
                        if let [change] = part {
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
        self.store
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

/// A 4xx about the request itself: not auth (401/403), not rate (429), not a timeout (408).
fn is_refusal(error: &ConnectorError) -> bool {
    matches!(error.status(), Some(s) if (400..500).contains(&s) && ![401, 403, 408, 429].contains(&s))
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
    options: crate::daemon::cycle::CycleOptions,
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
