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
//! The [`Engine`] keeps the database's picture in memory between cycles (loaded once at start),
//! so a cycle reads nothing from SQLite and writes only rows that changed. The database is
//! always written *before* memory is updated, and an acknowledgement only after the target
//! answered: a crash at any point leaves a state from which the next cycle pushes again whatever
//! was not acknowledged.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use tokio::sync::{OwnedMutexGuard, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use super::mapping::Mapper;
use super::mapping::notes::{self, WrittenNotes};
use super::orders::{self, Book, FeedSlot};
use super::sources::{self, Names, Recorder, SourceDone, SourceMemory, SourceSlot, SourceWork};
use super::state::{Configured, load_state, log_reconciled};
use crate::config::{Config, FeedKind};
use crate::ops::metrics;
use crate::ops::report::{CycleReport, OrdersDone, TargetReport, TargetState};
use crate::ops::stale::Watch;
use crate::plan::Rules;
use crate::plan::ledger::Column;
use crate::plan::reservations::{FeedRules, Reservations};
use crate::services;
use crate::store::{self, Store, StoreError};
use crate::target::{self, TargetSlot};

pub use crate::target::CycleOptions;

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built (TLS set-up).
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The row id of an endpoint the database has no row for: only a dry run has such endpoints,
/// and it writes nothing (SQLite row ids start at 1).
const UNRECORDED: i64 = 0;

/// The right to fetch the sources: one cycle's fetches at a time. A tick that comes while the
/// sources are still being fetched is dropped, as ticks always were while a cycle ran.
pub struct FetchTurn {
    _held: OwnedMutexGuard<()>,
}

/// A source's fetch in this cycle, awaited by every target that reads it.
type Fetch = Shared<BoxFuture<'static, Arc<SourceDone>>>;

/// The order feeds' step in this cycle, awaited by every target.
type OrdersStep = Shared<BoxFuture<'static, Arc<Result<OrdersDone, String>>>>;

/// The sync engine: clients, the in-memory state, and the database behind it. Cheap to clone:
/// every part is shared, so cycles can run as tasks.
#[derive(Clone)]
pub struct Engine {
    config: Arc<Config>,
    store: Store,
    names: Names,
    recorder: Recorder,
    sources: Arc<Vec<Arc<SourceSlot>>>,
    /// Each target's owner; locked by the cycle that syncs it.
    targets: Arc<Vec<Arc<tokio::sync::Mutex<TargetSlot>>>>,
    fetching: Arc<tokio::sync::Mutex<()>>,
    /// The order feeds.
    feeds: Arc<Vec<FeedSlot>>,
    /// What open orders reserve.
    book: Arc<Book>,
    /// When each source last fetched completely, for the staleness alarm.
    watch: Arc<Mutex<Watch>>,
    /// The SKU mapping in force, and what Endless Aisles products say.
    mapper: Arc<Mapper>,
    /// What `status` was last given of the mapping (see [`Engine::write_mapping_notes`]).
    notes: Arc<tokio::sync::Mutex<WrittenNotes>>,
}

impl Engine {
    /// Builds the clients and loads the state from the database. `cancel` stops new requests.
    ///
    /// First the database's endpoints are reconciled with the configured ones (see
    /// [`store::reconcile`]): state of endpoints no longer configured is deleted, and a target
    /// whose identity changed trusts none of its old acknowledgements. A dry run (`read_only`)
    /// changes nothing and plans as the real cycle would after that reconciliation.
    pub async fn new(
        config: Arc<Config>,
        store: Store,
        cancel: &CancellationToken,
        read_only: bool,
    ) -> Result<Engine, EngineError> {
        let loading = Instant::now();
        let clients = services::build_all(&config, cancel)?;
        let (sources, targets) = (clients.sources, clients.targets);
        let mapper = Arc::new(Mapper::new(&config));
        let feeds: Vec<FeedSlot> = config
            .feeds
            .iter()
            .zip(clients.feeds)
            .map(|(spec, client)| {
                let FeedKind::Hardtofind(settings) = &spec.kind;
                FeedSlot {
                    name: spec.name.clone(),
                    client,
                    reserve: settings.rules.reserve.clone(),
                    mapper: mapper.clone(),
                }
            })
            .collect();
        let rules: Vec<(String, FeedRules)> = config
            .feeds
            .iter()
            .map(|spec| {
                let FeedKind::Hardtofind(settings) = &spec.kind;
                (spec.name.clone(), settings.rules.clone())
            })
            .collect();
        let feed_names: Vec<String> = rules.iter().map(|(n, _)| n.clone()).collect();
        let (reservations, unallotted) = store
            .call(move |c| store::load_reservations(c, &feed_names, read_only))
            .await?;
        let book = Reservations::restore(rules, reservations, unallotted);
        let source_ids: Vec<Configured> = config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.identity(), s.kind.credential()))
            .collect();
        let target_ids: Vec<Configured> = config
            .targets
            .iter()
            .map(|t| (t.name.clone(), t.identity(), t.kind.credential()))
            .collect();
        let loaded = store
            .call(move |c| load_state(c, &source_ids, &target_ids, read_only))
            .await?;
        log_reconciled(&config, &loaded.reconciled, loaded.had_history);
        let sources: Vec<Arc<SourceSlot>> = config
            .sources
            .iter()
            .zip(sources)
            .zip(loaded.sources)
            .map(|((spec, client), (id, snapshot, memory))| {
                let (guard, guard_since, auth) =
                    memory.into_parts(config.daemon.max_zeroed_fraction);
                Arc::new(SourceSlot {
                    name: spec.name.clone(),
                    id: id.unwrap_or(UNRECORDED),
                    client,
                    snapshot: watch::Sender::new(Arc::new(snapshot)),
                    memory: Mutex::new(SourceMemory {
                        guard,
                        guard_since,
                        auth,
                    }),
                })
            })
            .collect();
        let targets: Vec<Arc<tokio::sync::Mutex<TargetSlot>>> = config
            .targets
            .iter()
            .zip(targets)
            .zip(loaded.targets)
            .map(|((spec, client), (id, acked, failed, memory))| {
                let (guard, guard_since, auth) =
                    memory.into_parts(config.daemon.max_zeroed_fraction);
                Arc::new(tokio::sync::Mutex::new(TargetSlot {
                    name: spec.name.clone(),
                    id: id.unwrap_or(UNRECORDED),
                    client,
                    acked,
                    failed,
                    inputs: spec.inputs.clone(),
                    rules: Rules {
                        safety_stock: spec.safety_stock,
                        max_quantity: spec.max_quantity,
                    },
                    batch_size: spec.batch_size,
                    guard,
                    guard_since,
                    auth,
                    flags: Default::default(),
                }))
            })
            .collect();
        let source_ids: Vec<(String, i64)> =
            sources.iter().map(|s| (s.name.clone(), s.id)).collect();
        let mut target_ids = Vec::new();
        for target in &targets {
            let slot = target.lock().await;
            if slot.client.is_flag_target() {
                target_ids.push((slot.name.clone(), slot.id));
            }
        }
        notes::restore_parts(&store, &mapper, source_ids, target_ids).await?;
        let keys_version = mapper.version();
        let keys_recorded =
            notes::forget_rekeyed(&store, &mapper, &targets, &loaded.skus, read_only).await?;
        let persisted_skus = loaded.skus.len();
        let mut reserved = Column::default();
        for (sku, quantity) in book.reserved_by_sku() {
            if let Some(id) = loaded.skus.get(sku) {
                reserved.set(id, quantity);
            }
        }
        let watch = Watch::new(
            loaded.last_fetch_at,
            loaded.first_cycle_at,
            config.daemon.stale_after,
            store::now_ms(),
        );
        tracing::debug!(
            ms = loading.elapsed().as_millis() as u64,
            skus = persisted_skus,
            "state loaded from the database"
        );
        Ok(Engine {
            config,
            store,
            names: Arc::new(RwLock::new(loaded.skus)),
            recorder: Arc::new(tokio::sync::Mutex::new(persisted_skus)),
            sources: Arc::new(sources),
            targets: Arc::new(targets),
            fetching: Default::default(),
            feeds: Arc::new(feeds),
            book: Arc::new(Book {
                book: tokio::sync::Mutex::new(book),
                reserved: watch::Sender::new(Arc::new(reserved)),
            }),
            watch: Arc::new(Mutex::new(watch)),
            mapper,
            notes: Arc::new(tokio::sync::Mutex::new(WrittenNotes::with_keys(
                keys_recorded.then_some(keys_version),
            ))),
        })
    }

    /// Brings what `status` shows of the mapping up to date (see [`notes::write`]).
    async fn write_mapping_notes(&self) -> Result<(), StoreError> {
        notes::write(&self.store, &self.mapper, &self.names, &self.notes).await
    }

    /// The SKU mapping in force (what the dropship relay asks [`Mapper::supplier_key`]).
    pub fn mapper(&self) -> Arc<Mapper> {
        self.mapper.clone()
    }

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
        let id = self
            .store
            .call(move |c| {
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
                .call(move |c| {
                    store::finish_cycle(c, id, ms, outcome, &summary)?;
                    // History is kept for status, not for ever: at one cycle a second the table
                    // would grow by 86,400 rows a day.
                    store::prune_cycles(c, store::now_ms(), &store::CYCLE_RETENTION)?;
                    Ok(())
                })
                .await?;
        }
        Ok(report)
    }

    async fn cycle(
        &self,
        id: i64,
        options: CycleOptions,
        turn: FetchTurn,
    ) -> Result<CycleReport, StoreError> {
        let fetches: Vec<Fetch> = self
            .sources
            .iter()
            .map(|slot| {
                let work = SourceWork {
                    slot: slot.clone(),
                    names: self.names.clone(),
                    recorder: self.recorder.clone(),
                    store: self.store.clone(),
                    fetch_timeout: self.config.daemon.fetch_timeout,
                    guard_window: self.config.daemon.guard_window,
                    period: self.config.daemon.trigger.period(),
                    options,
                    keep_changes: !self.feeds.is_empty(),
                    mapper: self.mapper.clone(),
                };
                let span = tracing::Span::current();
                async move { Arc::new(sources::fetch_source(work).instrument(span).await) }
                    .boxed()
                    .shared()
            })
            .collect();
        // With order feeds, the reservations are brought up to date once every source is in,
        // and every target waits for that before it plans.
        let orders: Option<OrdersStep> = (!self.feeds.is_empty()).then(|| {
            let step = orders::orders_step(
                self.feeds.clone(),
                self.book.clone(),
                self.sources.clone(),
                fetches.clone(),
                self.names.clone(),
                self.store.clone(),
                options.dry_run,
            );
            let span = tracing::Span::current();
            async move { Arc::new(step.instrument(span).await.map_err(|e| e.to_string())) }
                .boxed()
                .shared()
        });
        // Claim every target that is free now; one still busy with an earlier cycle keeps its
        // push going and is reported as such.
        let mut pushes = Vec::new();
        let mut busy = Vec::new();
        for (index, target) in self.targets.iter().enumerate() {
            match target.clone().try_lock_owned() {
                Ok(slot) => pushes.push(tokio::spawn(
                    self.target_task(slot, &fetches, orders.clone(), options)
                        .instrument(tracing::Span::current()),
                )),
                Err(_) => busy.push(index),
            }
        }
        let orders_done = match orders {
            Some(step) => Some((*step.await).clone()),
            None => None,
        };
        if let Some(Ok(done)) = &orders_done
            && !options.dry_run
        {
            metrics::reservations(
                i64::try_from(done.open).unwrap_or(i64::MAX),
                i64::try_from(done.stuck).unwrap_or(i64::MAX),
            );
        }
        // Every source in: the next cycle may fetch; the alarm hears about this cycle's fetches.
        let done: Vec<Arc<SourceDone>> = join_all(fetches).await;
        drop(turn);
        if !options.dry_run {
            self.write_mapping_notes().await?;
        }
        let reports: Vec<_> = done.iter().map(|d| d.report.clone()).collect();
        self.watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .after_fetch(&reports, store::now_ms());
        let mut targets = Vec::new();
        let mut plan = Vec::new();
        for push in join_all(pushes).await {
            let result = push.map_err(|_| StoreError::Join)??;
            plan.extend(result.plan);
            targets.push(result.report);
        }
        for index in busy {
            targets.push(busy_report(&self.config.targets[index].name));
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(CycleReport {
            id,
            duration: Default::default(),
            sources: reports,
            targets,
            plan,
            orders: match orders_done {
                Some(Ok(done)) => Some(Ok(done)),
                Some(Err(e)) => Some(Err(e)),
                None => None,
            },
        })
    }

    /// One target's part of the cycle, as a task: wait for its own inputs only, then sync.
    fn target_task(
        &self,
        mut slot: OwnedMutexGuard<TargetSlot>,
        fetches: &[Fetch],
        orders: Option<OrdersStep>,
        options: CycleOptions,
    ) -> impl std::future::Future<Output = Result<target::TargetResult, StoreError>> + Send + 'static
    {
        let inputs: Vec<(Arc<SourceSlot>, Fetch)> = slot
            .inputs
            .iter()
            .map(|&i| (self.sources[i].clone(), fetches[i].clone()))
            .collect();
        let (names, store) = (self.names.clone(), self.store.clone());
        let mapper = self.mapper.clone();
        let reserved = self.book.reserved.subscribe();
        let (guard_window, period) = (
            self.config.daemon.guard_window,
            self.config.daemon.trigger.period(),
        );
        async move {
            let mut columns = Vec::new();
            let mut input_names = Vec::new();
            let mut failed_sources = Vec::new();
            let mut interrupted = false;
            for (source, fetch) in inputs {
                let done = fetch.await;
                interrupted |= done.interrupted;
                if !done.ok() && !done.interrupted {
                    failed_sources.push(source.name.clone());
                }
                // A dry run plans from its fresh, unrecorded snapshot; a real cycle follows the
                // recorded one, and so sees every newer one while it pushes.
                columns.push(match &done.unrecorded {
                    Some(fresh) => watch::channel(fresh.clone()).1,
                    None => source.snapshot.subscribe(),
                });
                input_names.push(source.name.clone());
            }
            if let Some(step) = orders
                && let Err(e) = &*step.await
            {
                failed_sources.push(format!("the reservations ({e})"));
            }
            if interrupted {
                // Shutdown came before the inputs were in: nothing to plan, nothing to record.
                return Ok(target::interrupted(&slot));
            }
            let mapping = mapper.current();
            let held = {
                let names = names.read().unwrap_or_else(|p| p.into_inner());
                mapping.held(&names)
            };
            let inputs = target::Inputs {
                mapper,
                mapping,
                held,
                columns,
                reserved,
                names: input_names,
                failed_sources,
                skus: names,
                store,
                guard_window,
                period,
            };
            target::sync_target(&mut slot, inputs, options).await
        }
    }
}

/// A target that an earlier cycle is still syncing.
fn busy_report(name: &str) -> TargetReport {
    TargetReport {
        name: name.to_owned(),
        state: TargetState::Busy,
        planned: 0,
        pushed: 0,
        failures: 0,
        requests: 0,
        retries: 0,
    }
}

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
        "cycle finished"
    );
}
