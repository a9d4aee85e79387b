//! One target's part of a cycle, as a task of its own: its own inputs awaited (and the
//! reservations, when there are order feeds), whether it plans decided once, and the target
//! synced ([`targets::sync_target`]).

use std::sync::Arc;

use futures_util::future::{BoxFuture, Shared};
use tokio::sync::{OwnedMutexGuard, watch};

use super::engine::Engine;
use super::per_sku::PerSku;
use super::slots::{NewAnswers, SourceSlot};
use super::sources::SourceDone;
use crate::ops::report::OrdersDone;
use crate::plan::ledger::Column;
use crate::store::{self, StoreError};
use crate::targets::{self, CycleOptions, TargetResult, TargetSlot};

/// A source's fetch in this cycle, awaited by every target that reads it.
pub(super) type Fetch = Shared<BoxFuture<'static, Arc<SourceDone>>>;

/// The order feeds' step in this cycle, awaited by every target.
pub(super) type OrdersStep = Shared<BoxFuture<'static, Arc<Result<OrdersDone, String>>>>;

/// What a target's inputs came to this cycle.
struct InputsIn {
    /// Each input's snapshot to plan from.
    columns: Vec<watch::Receiver<Arc<Column>>>,
    /// The inputs' names.
    names: Vec<String>,
    /// The inputs (and the reservations) that failed.
    failed: Vec<String>,
    /// The inputs the mass-zero guard holds.
    held: Vec<String>,
    /// Shutdown came before the inputs were in.
    interrupted: bool,
}

impl Engine {
    /// One target's part of the cycle, as a task: wait for its own inputs only, then sync.
    pub(super) fn target_task(
        &self,
        mut slot: OwnedMutexGuard<TargetSlot>,
        fetches: &[Fetch],
        orders: Option<OrdersStep>,
        news: NewAnswers,
        options: CycleOptions,
    ) -> impl std::future::Future<Output = Result<TargetResult, StoreError>> + Send + 'static {
        let inputs: Vec<(Arc<SourceSlot>, Fetch)> = slot
            .inputs()
            .iter()
            .map(|&i| (self.sources[i].clone(), fetches[i].clone()))
            .collect();
        let (names, store) = (self.names.clone(), self.store.clone());
        let generation = self.generation.clone();
        let per_sku = self.per_sku.clone();
        let mapper = self.mapper.clone();
        let catalogues = self.catalogues.clone();
        let reserved = self.book.reserved.subscribe();
        let (guard_window, period) = (
            self.config.daemon.guard_window,
            self.config.daemon.trigger.period(),
        );
        async move {
            let came = {
                let inputs = inputs_in(inputs, orders);
                tokio::pin!(inputs);
                let reads = slot.inputs().to_vec();
                tokio::select! {
                    biased;
                    came = &mut inputs => came,
                    () = acknowledged_early(&mut slot, &reads, &news, &per_sku, &store) => inputs.await,
                }
            };
            if came.interrupted {
                // Shutdown came before the inputs were in: nothing to plan, nothing to record.
                return Ok(targets::interrupted(&slot));
            }
            // Decided once, here: a target that plans needs the per-SKU state and the mapping
            // (a quiet one needs neither). Its mark names the mapping too: a new key at the
            // target is a new plan.
            let rules = format!("{} mapping={}", slot.settles_as(), mapper.fingerprint());
            let mark = targets::settled::mark(generation.now(), &rules);
            let quiet = targets::settled::is_quiet(&slot, &mark, options, store::now_ms());
            let plans = !quiet && came.failed.is_empty() && came.held.is_empty();
            if plans {
                per_sku.ensure().await?;
            }
            let (mapping, held) = if plans && mapper.maps_anything() {
                (mapper.mapping().await?, mapper.held(&names).await?)
            } else {
                Default::default()
            };
            let inputs = targets::Inputs {
                early_catalogue: catalogues.take(slot.name()),
                mapper,
                mapping,
                held,
                columns: came.columns,
                reserved,
                names: came.names,
                failed_sources: came.failed,
                held_sources: came.held,
                skus: names,
                store,
                guard_window,
                period,
                settle_mark: mark,
                quiet,
            };
            targets::sync_target(&mut slot, inputs, options).await
        }
    }
}

/// Once an answer it reads is known new, the target will plan: it reads what it acknowledged
/// now, on the database's connection while the answer is parsed and compared, rather than after
/// it is recorded. After the per-SKU state, whose load that answer started first, since both take
/// the one connection (and the answer's recording waits for that state, not for this).
async fn acknowledged_early(
    slot: &mut TargetSlot,
    reads: &[usize],
    news: &NewAnswers,
    per_sku: &PerSku,
    store: &store::Store,
) {
    news.any_of(reads).await;
    if per_sku.ensure().await.is_ok() {
        // A failure is met again, and reported, when the target plans.
        let _ = slot.load_acknowledged(store).await;
    }
}

/// A target's inputs as they come in (and the reservations, when there are order feeds): what
/// it plans from, and which failed or are held.
async fn inputs_in(inputs: Vec<(Arc<SourceSlot>, Fetch)>, orders: Option<OrdersStep>) -> InputsIn {
    let mut came = InputsIn {
        columns: Vec::new(),
        names: Vec::new(),
        failed: Vec::new(),
        held: Vec::new(),
        interrupted: false,
    };
    for (source, fetch) in inputs {
        let done = fetch.await;
        came.interrupted |= done.interrupted;
        if done.held {
            came.held.push(source.name.clone());
        } else if !done.ok() && !done.interrupted {
            came.failed.push(source.name.clone());
        }
        // A dry run plans from its fresh, unrecorded snapshot; a real cycle follows the
        // recorded one, and so sees every newer one while it pushes.
        came.columns.push(match &done.unrecorded {
            Some(fresh) => watch::channel(fresh.clone()).1,
            None => source.snapshot.subscribe(),
        });
        came.names.push(source.name.clone());
    }
    if let Some(step) = orders
        && let Err(e) = &*step.await
    {
        came.failed.push(format!("the reservations ({e})"));
    }
    came
}
