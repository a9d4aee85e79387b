//! The push loop: batches, halved around refusals, acknowledged one by one, re-planned from the
//! newest snapshot between batches.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tracing::info;

use super::report::TargetState;
use super::settle::Stop;
use super::{
    Core, CycleOptions, Inputs, PROGRESS_EVERY, Planned, REFUSES_EVERYTHING, TargetResult, guard,
    names, plan_for, settle,
};
use crate::http::{HttpError, Meter};
use crate::plan::ledger::SkuId;
use crate::plan::{self, Change};
use crate::services::{ConnectorError, PushItem, QuantityTarget};
use crate::store::{self, Refusal, StoreError};

pub(super) struct Pusher<'a> {
    pub target: &'a mut Core,
    /// The target's connector.
    pub client: &'a QuantityTarget,
    /// Entities per request.
    pub batch_size: usize,
    pub inputs: &'a mut Inputs,
    pub meter: &'a Meter,
    pub result: &'a mut TargetResult,
    pub refusals: Vec<Refusal>,
    pub options: CycleOptions,
    /// SKUs a 2xx answer left out (not acknowledged).
    pub unconfirmed: usize,
    /// Set when a re-plan tripped the mass-zero guard.
    pub held: Option<(TargetState, String)>,
}

impl Pusher<'_> {
    /// Pushes `changes` (the SKUs [`plan_for`] planned from `planned`) batch by batch, each
    /// batch's changes made from `planned` as it goes. Between batches, when a newer snapshot of
    /// an input was recorded, the rest is planned again from it: a long push never sends a
    /// quantity older than the newest snapshot. Returns why it stopped early, if it did, and how
    /// many planned changes were left unacknowledged.
    pub async fn push_all(
        &mut self,
        mut planned: Planned,
        mut changes: Vec<SkuId>,
    ) -> Result<(Option<Stop>, usize), StoreError> {
        // In a full sync, the SKUs not yet pushed: a re-plan keeps them in the plan.
        let mut unpushed: Option<HashSet<SkuId>> =
            self.options.full.then(|| changes.iter().copied().collect());
        let mut refused_now: HashSet<SkuId> = HashSet::new();
        let mut fresh_refusals = 0;
        let mut next = 0;
        let mut progress = Progress::new(changes.len());
        while next < changes.len() {
            let end = (next + self.batch_size).min(changes.len());
            // Made now, from the snapshots planned: none of these SKUs was acknowledged since.
            let batch: Vec<Change> = planned.changes(self.target, &changes[next..end]).collect();
            next = end;
            let after = changes.len() - next;
            let stop = self
                .push_batch(
                    &batch,
                    after,
                    &mut refused_now,
                    &mut unpushed,
                    &mut fresh_refusals,
                )
                .await?;
            if let Some(stop) = stop {
                let left = changes.len() - next + batch_left(&batch, self.target);
                return Ok((Some(stop), left));
            }
            let pushed = self.result.report.pushed;
            progress.tick(&self.target.name, pushed, changes.len() - next);
            if next < changes.len() && self.inputs.changed() {
                planned = self.inputs.newest();
                changes = plan_for(
                    self.target,
                    &planned,
                    self.options.full,
                    &refused_now,
                    &self.inputs.held,
                    store::now_ms(),
                );
                if let Some(unpushed) = &unpushed {
                    let (target, columns) = (&*self.target, planned.columns());
                    changes.retain(|&sku| {
                        unpushed.contains(&sku)
                            || plan::change_of(
                                &columns,
                                &planned.reserved,
                                &target.acked,
                                target.rules,
                                sku,
                            )
                            .is_some_and(|c| c.old != Some(c.new))
                    });
                }
                next = 0;
                tracing::debug!(target = %self.target.name, left = changes.len(), "a newer snapshot was recorded; the rest is planned again from it");
                if let Some(held) = guard(self.target, &planned, &changes, self.options) {
                    self.held = Some(held);
                    return Ok((None, changes.len()));
                }
            }
        }
        Ok((None, 0))
    }

    /// One batch, halved around refusals until the refused SKUs are alone; `after`: how many
    /// planned changes follow it (for the progress `status` shows).
    async fn push_batch(
        &mut self,
        batch: &[Change],
        after: usize,
        refused_now: &mut HashSet<SkuId>,
        unpushed: &mut Option<HashSet<SkuId>>,
        fresh_refusals: &mut usize,
    ) -> Result<Option<Stop>, StoreError> {
        // Depth-first over halves, left before right, so acknowledgements keep plan order.
        let mut parts = vec![batch];
        while let Some(part) = parts.pop() {
            // What the target calls each SKU: its own name, unless the mapping says otherwise.
            let names: Vec<String> = {
                let skus = names(&self.inputs.skus);
                let mapping = &self.inputs.mapping;
                let target = self.target.name.as_str();
                // By id: what voiding the SKUs a new key gave looked up is read in one step
                // (a first cycle under a new file pushes them all); other SKUs by name.
                let mut by_id = mapping.maps(target).then(|| mapping.by_id_kept(target));
                part.iter()
                    .map(|c| {
                        let sku = skus.name(c.sku);
                        let Some(by_id) = &mut by_id else {
                            return sku.to_owned();
                        };
                        // A SKU without a key is in conflict and was planned out already.
                        by_id.key_at(c.sku, sku).unwrap_or(sku).to_owned()
                    })
                    .collect()
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
            let waiting = parts.iter().map(|p| p.len()).sum::<usize>() + part.len();
            let doubted_now = self.before_request(part, waiting + after).await?;
            match self.client.push(self.meter, &items).await {
                Ok(confirmed) => {
                    // Only what the answer confirms is acknowledged; the rest stays pending
                    // and is pushed again.
                    let done: Vec<Change> = part
                        .iter()
                        .zip(&names)
                        .filter(|(_, name)| confirmed.covers(name))
                        .map(|(c, _)| *c)
                        .collect();
                    self.unconfirmed += part.len() - done.len();
                    if !done.is_empty() {
                        self.acknowledge(&done).await?;
                    }
                    if let Some(unpushed) = unpushed {
                        for c in &done {
                            unpushed.remove(&c.sku);
                        }
                    }
                }
                Err(e) if e.is_refusal() => {
                    // Refused: the target did not take this request, so what it put in doubt
                    // is in doubt no more (the next request, acknowledgement or the target's
                    // outcome writes that down). A SKU in doubt before it stays: an earlier
                    // request may still have been taken.
                    for sku in &doubted_now {
                        self.target.in_doubt.remove(sku);
                    }
                    if let [change] = part {
                        refused_now.insert(change.sku);
                        // Only SKUs never refused before say anything about the target as a
                        // whole: twelve old refusals tried again are not "every SKU".
                        if !self.target.failed.contains_key(&change.sku) {
                            *fresh_refusals += 1;
                        }
                        self.refusals.push(Refusal {
                            sku: change.sku,
                            quantity: change.new,
                            message: e.to_string(),
                            attempts: 0,
                            next_attempt_at: 0,
                        });
                        if *fresh_refusals >= REFUSES_EVERYTHING && self.result.report.pushed == 0 {
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
                Err(ConnectorError::Auth(message)) => {
                    // A refused login (or a token refused again after renewing) sent nothing
                    // the target could take: what this request put in doubt is not.
                    for sku in &doubted_now {
                        self.target.in_doubt.remove(sku);
                    }
                    return Ok(Some(Stop::AuthRefused(format!(
                        "authentication refused: {message}"
                    ))));
                }
                Err(e) => return Ok(Some(Stop::Unreachable(e.to_string()))),
            }
        }
        Ok(None)
    }

    /// Before a request is sent: its SKUs are in doubt until the target answers for them, and
    /// `status` is told how far the push got (`syncing pushed/total`), in one write.
    /// Returns the SKUs it put in doubt (those that were not already).
    async fn before_request(
        &mut self,
        part: &[Change],
        left: usize,
    ) -> Result<Vec<SkuId>, StoreError> {
        let doubted_now: Vec<SkuId> = part
            .iter()
            .map(|c| c.sku)
            .filter(|&sku| self.target.in_doubt.insert(sku))
            .collect();
        let blob = store::in_doubt_blob(&self.target.in_doubt);
        let (id, at) = (self.target.id, store::now_ms());
        let pushed = self.result.report.pushed;
        self.inputs
            .store
            .call(move |c| store::before_request(c, id, blob, pushed, pushed + left, at))
            .await?;
        self.inputs.store.may_act()?;
        Ok(doubted_now)
    }

    /// Acknowledges the batch; only then is it counted as pushed.
    async fn acknowledge(&mut self, part: &[Change]) -> Result<(), StoreError> {
        let store = self.inputs.store.clone();
        settle::acknowledge(self.target, &store, part, self.options.force).await?;
        self.result.report.pushed += part.len();
        Ok(())
    }
}

/// Changes of a batch that stopped early and were not acknowledged.
fn batch_left(batch: &[Change], target: &Core) -> usize {
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
