//! One sync cycle, end to end: fetch every source, record the snapshots, plan each target,
//! push the differences, acknowledge what the targets accepted.
//!
//! Nothing in a cycle waits for what it does not need. Every source is fetched at once
//! ([`sources`]) and recorded as soon as it is in; every target starts as soon as its own inputs
//! are in, in a task of its own. A target still pushing an earlier cycle's plan (a first sync of
//! a large catalogue) is left to it: it re-plans between batches from the newest snapshots, and
//! the other targets go on with their cycles. Cycles of one target never overlap (each target is
//! owned by one cycle at a time), and a cycle's fetches never overlap the next's.
//!
//! The [`Engine`] keeps the database's picture in memory between cycles (loaded once at start,
//! see `engine`), so a cycle reads nothing from SQLite and writes only rows that changed. The
//! database is always written *before* memory is updated, and an acknowledgement only after the
//! target answered: a crash at any point leaves a state from which the next cycle pushes again
//! whatever was not acknowledged.
//!
//! [`Engine::run_cycle`] reads as the cycle's steps: fetch (`fetch`), orders (`orders`),
//! targets (`start_targets`, each a task of its own: `target_task`), relay (`relay_step`),
//! summary (`targets_done`, then the summary line).

use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::join_all;
use tokio::sync::OwnedMutexGuard;
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span};

use super::orders;
use super::slots::NewAnswers;
use super::sources::{self, SourceDone, SourceWork};
use super::target_task::{Fetch, OrdersStep};
use crate::ops::report::{CycleReport, OrdersDone, SourceReport, TargetReport, TargetState};
use crate::relay::{self, RelayDone};
use crate::store::{self, StoreError};
use crate::targets::TargetResult;
use crate::targets::report::PlanLine;

pub use super::engine::{Engine, EngineError};
pub use crate::targets::CycleOptions;

/// The right to fetch the sources: one cycle's fetches at a time. A tick that comes while the
/// sources are still being fetched is dropped, as ticks always were while a cycle ran.
pub struct FetchTurn {
    _held: OwnedMutexGuard<()>,
}

/// A target's task, started this cycle.
type Push = JoinHandle<Result<TargetResult, StoreError>>;

/// The targets this cycle claimed, each with its task, and (by index) those an earlier cycle
/// is still syncing.
struct Started {
    pushes: Vec<(usize, Push)>,
    busy: Vec<usize>,
}

impl Engine {
    /// The turn to fetch, when no cycle is fetching now.
    pub fn try_turn(&self) -> Option<FetchTurn> {
        self.fetching
            .clone()
            .try_lock_owned()
            .ok()
            .map(|held| FetchTurn { _held: held })
    }

    /// The turn to fetch, once the cycle fetching now (if any) has its sources in.
    pub async fn turn(&self) -> FetchTurn {
        FetchTurn {
            _held: self.fetching.clone().lock_owned().await,
        }
    }

    /// Runs one cycle. Only a database failure is an `Err`; remote failures are in the report.
    /// It returns when every target it started is done; `turn` is given back as soon as every
    /// source is in, so the next cycle may start while a long push goes on.
    pub async fn run_cycle(
        &self,
        options: CycleOptions,
        turn: FetchTurn,
    ) -> Result<CycleReport, StoreError> {
        let started = Instant::now();
        let started_ms = store::now_ms();
        // Only on the file the daemon opened (see `store::file`): before anything is written.
        let id = self
            .store
            .call_checked(move |c| {
                if options.dry_run {
                    store::next_cycle_id(c)
                } else {
                    store::begin_cycle(c, started_ms, options.full)
                }
            })
            .await?;
        let span = info_span!("cycle", cycle_id = id);
        let mut report = self
            .cycle(id, options, turn)
            .instrument(span.clone())
            .await?;
        report.duration = started.elapsed();
        span.in_scope(|| log_summary(&report, options));
        if !options.dry_run {
            let (outcome, summary) = (report.outcome(), report.targets_field());
            let ms = i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX);
            self.store
                .call_checked(move |c| {
                    store::finish_cycle(c, id, ms, outcome, &summary)?;
                    // History is kept for status, not for ever: at one cycle a second the table
                    // would grow by 86,400 rows a day.
                    store::prune_cycles(c, store::now_ms(), &store::CYCLE_RETENTION)?;
                    Ok(())
                })
                .await?;
        }
        // The database could not give the per-SKU state: the cycle is summed up, and then ends
        // as a failure to start would (an inconsistent file says how to rebuild it).
        if let Some(e) = self.per_sku.failure() {
            return Err(e);
        }
        Ok(report)
    }

    /// The cycle's steps, in order: fetch, orders, targets, relay, summary.
    async fn cycle(
        &self,
        id: i64,
        options: CycleOptions,
        turn: FetchTurn,
    ) -> Result<CycleReport, StoreError> {
        let news = NewAnswers::new(self.sources.len());
        let fetches = self.fetch(options, &news);
        let orders = self.orders(&fetches, options);
        let started = self.start_targets(&fetches, &orders, &news, options);
        let orders = self.orders_done(orders, options).await;
        // Every source in: the next cycle may fetch; the alarm hears about this cycle's fetches.
        let done: Vec<Arc<SourceDone>> = join_all(fetches).await;
        drop(turn);
        let relay = self.relay_step(options).await?;
        // What `status` shows of the mapping is computed against every SKU's name: only once
        // they are loaded (an unchanged world leaves the notes as they were).
        if !options.dry_run && self.per_sku.is_loaded() {
            self.write_mapping_notes().await?;
        }
        let sources = self.after_fetch(&done);
        let (targets, plan) = self.targets_done(started).await?;
        Ok(CycleReport {
            id,
            duration: Default::default(),
            sources,
            targets,
            plan,
            relay,
            orders,
        })
    }

    /// Fetch: every source at once, each fetch shared by the targets that read it (and started
    /// by the first of them to wait for it).
    fn fetch(&self, options: CycleOptions, news: &NewAnswers) -> Vec<Fetch> {
        self.sources
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let work = SourceWork {
                    slot: slot.clone(),
                    names: self.names.clone(),
                    recorder: self.recorder.clone(),
                    store: self.store.clone(),
                    fetch_timeout: self.config.daemon.fetch_timeout,
                    guard_window: self.config.daemon.guard_window,
                    period: self.config.daemon.trigger.period(),
                    options,
                    generation: self.generation.clone(),
                    per_sku: self.per_sku.clone(),
                    index,
                    news: news.clone(),
                    keep_changes: !self.feeds.is_empty(),
                    mapper: self.mapper.clone(),
                    catalogues: self.catalogues.clone(),
                };
                let span = tracing::Span::current();
                async move { Arc::new(sources::fetch_source(work).instrument(span).await) }
                    .boxed()
                    .shared()
            })
            .collect()
    }

    /// Orders: with order feeds, the reservations are brought up to date once every source is
    /// in, and every target waits for that before it plans.
    fn orders(&self, fetches: &[Fetch], options: CycleOptions) -> Option<OrdersStep> {
        (!self.feeds.is_empty()).then(|| {
            let step = orders::orders_step(
                self.feeds.clone(),
                self.book.clone(),
                self.sources.clone(),
                fetches.to_vec(),
                self.per_sku.clone(),
                self.store.clone(),
                options,
            );
            let span = tracing::Span::current();
            async move { Arc::new(step.instrument(span).await.map_err(|e| e.to_string())) }
                .boxed()
                .shared()
        })
    }

    /// Targets: every target that is free now is claimed and synced in a task of its own; one
    /// still busy with an earlier cycle keeps its push going and is reported as such.
    fn start_targets(
        &self,
        fetches: &[Fetch],
        orders: &Option<OrdersStep>,
        news: &NewAnswers,
        options: CycleOptions,
    ) -> Started {
        let mut started = Started {
            pushes: Vec::new(),
            busy: Vec::new(),
        };
        for (index, target) in self.targets.iter().enumerate() {
            match target.clone().try_lock_owned() {
                Ok(slot) => started.pushes.push((
                    index,
                    tokio::spawn(
                        self.target_task(slot, fetches, orders.clone(), news.clone(), options)
                            .instrument(tracing::Span::current()),
                    ),
                )),
                Err(_) => started.busy.push(index),
            }
        }
        started
    }

    /// The order feeds' step, once done; what it reserves is a metric (not for a dry run).
    async fn orders_done(
        &self,
        orders: Option<OrdersStep>,
        options: CycleOptions,
    ) -> Option<Result<OrdersDone, String>> {
        let done = (*orders?.await).clone();
        if let Ok(done) = &done
            && !options.dry_run
        {
            self.metrics.reservations(
                i64::try_from(done.open).unwrap_or(i64::MAX),
                i64::try_from(done.stuck).unwrap_or(i64::MAX),
            );
        }
        Some(done)
    }

    /// The sources' reports, which the staleness alarm hears about.
    fn after_fetch(&self, done: &[Arc<SourceDone>]) -> Vec<SourceReport> {
        let reports: Vec<_> = done.iter().map(|d| d.report.clone()).collect();
        self.watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .after_fetch(&reports, store::now_ms());
        reports
    }

    /// Summary: every target's report, by name (a busy one's and a failed one's too), and a
    /// dry run's plan.
    async fn targets_done(
        &self,
        started: Started,
    ) -> Result<(Vec<TargetReport>, Vec<PlanLine>), StoreError> {
        let mut targets = Vec::new();
        let mut plan = Vec::new();
        let (claimed, pushes): (Vec<usize>, Vec<Push>) = started.pushes.into_iter().unzip();
        for (index, push) in claimed.into_iter().zip(join_all(pushes).await) {
            match push.map_err(|_| StoreError::Join).and_then(|r| r) {
                Ok(result) => {
                    plan.extend(result.plan);
                    targets.push(result.report);
                }
                // One target's database trouble is that target's failure: the others' parts
                // and the cycle's summary line stand.
                // The database moved: the cycle's error says so once, and the daemon stops.
                Err(e @ StoreError::Moved(_)) => return Err(e),
                Err(e) => {
                    let name = &self.config.targets[index].name;
                    error!(target = %name, error = %e, "the target's state could not be recorded; what it did not record is pushed again at the next cycle");
                    let error = format!("database: {e}");
                    targets.push(TargetReport::idle(name, TargetState::Failed { error }));
                }
            }
        }
        for index in started.busy {
            targets.push(TargetReport::idle(
                &self.config.targets[index].name,
                TargetState::Busy,
            ));
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok((targets, plan))
    }

    /// Relay: the dropship relay's step, once the order feeds' is done: only when `[relay]
    /// mode` is not `off` and the cycle is not a dry run (which writes nothing). Which services
    /// its ends are is the relay's business ([`relay::ends`]).
    async fn relay_step(&self, options: CycleOptions) -> Result<Option<RelayDone>, StoreError> {
        let Some(spec) = (self.config.relay.as_ref())
            .filter(|spec| spec.mode != relay::config::Mode::Off && !options.dry_run)
        else {
            return Ok(None);
        };
        let Ok(mut memory) = self.relaying.clone().try_lock_owned() else {
            info!(
                "the relay's step of an earlier cycle is still under way; this cycle leaves the relay to it"
            );
            return Ok(None);
        };
        // An order's intent must be committed where the next start will find it: never in a
        // database file replaced since (the restarted daemon would not know the order placed).
        self.store.check_files().await?;
        let (Some(feed), Some(source)) = (self.feeds.get(spec.from), self.sources.get(spec.to))
        else {
            return Ok(None);
        };
        let ends = relay::ends::Ends {
            feed_name: &feed.name,
            feed: &feed.client,
            source_name: &source.name,
            source: &source.client,
            source_kind: &self.config.sources[spec.to].kind,
        };
        let mapped = self.config.mapping.is_some();
        let done = relay::ends::step_between(
            spec,
            ends,
            &self.mapper,
            mapped,
            &self.store,
            &mut memory,
            options.full,
        )
        .await?;
        if let Some(done) = &done {
            self.metrics.relay_orders(&done.every_state());
        }
        Ok(done)
    }
}

/// A target that did nothing this cycle: an earlier cycle is still syncing it, or its database
/// failed it.
fn log_summary(report: &CycleReport, options: CycleOptions) {
    info!(
        duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        outcome = report.outcome(),
        pushed = report.pushed(),
        full = options.full,
        dry_run = options.dry_run,
        sources = %report.sources_field(),
        targets = %report.targets_field(),
        reservations = report.orders_field().as_deref().unwrap_or("-"),
        relay = report.relay_field().as_deref().unwrap_or("-"),
        relay_read = report.relay_read_field().as_deref(),
        "cycle finished"
    );
}
