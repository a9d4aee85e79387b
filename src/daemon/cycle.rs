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

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared, join_all};
use tokio::sync::{OwnedMutexGuard, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span};

use super::catalogues::Catalogues;
use super::feeds::FeedSlot;
use super::generation::Generation;
use super::mapping::notes::{self, WrittenNotes};
use super::orders;
use super::per_sku::PerSku;
use super::slots::{Book, Names, Recorder, SourceMemory, SourceSlot};
use super::sources::{self, SourceDone, SourceWork};
use super::state::{Configured, Endpoint, load_state, log_reconciled};
use crate::config::{Config, FeedKind, SourceKind};
use crate::mapper::Mapper;
use crate::mapper::file::Prepared;
use crate::ops::metrics;
use crate::ops::report::{CycleReport, OrdersDone, TargetReport, TargetState};
use crate::ops::stale::Watch;
use crate::plan::Rules;
use crate::plan::reservations::{FeedRules, Reservations};
use crate::relay::{self, RelayDone};
use crate::services::{self, AnswerDigest};
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
    /// The mapping file has mistakes (see `mapper::file`).
    #[error(transparent)]
    Mapping(#[from] crate::config::ConfigErrors),
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
    /// Held by the cycle whose relay step runs: cycles overlap once their sources are in, and
    /// two relay steps over the same records would move (or place) one order twice. It holds
    /// what the relay's read of `READY` goes on from: the engine's own, so a start or a reload
    /// reads the list in full (see [`relay::ready`]).
    relaying: Arc<tokio::sync::Mutex<relay::ready::Memory>>,
    /// The order feeds.
    feeds: Arc<Vec<FeedSlot>>,
    /// What open orders reserve.
    book: Arc<Book>,
    /// When each source last fetched completely, for the staleness alarm.
    watch: Arc<Mutex<Watch>>,
    /// The world's generation (see [`Generation`]).
    generation: Generation,
    /// Loads the per-SKU state when a cycle first needs it.
    per_sku: Arc<PerSku>,
    /// The SKU mapping in force, and what Endless Aisles products say.
    mapper: Arc<Mapper>,
    /// What `status` was last given of the mapping (see [`Engine::write_mapping_notes`]).
    notes: Arc<tokio::sync::Mutex<WrittenNotes>>,
    /// The catalogue targets' product lists, read first when `by_barcode` needs them.
    catalogues: Arc<Catalogues>,
}

impl Engine {
    /// Builds the clients and loads the state from the database. `cancel` stops new requests.
    /// The mapping file is checked first, unless the database vouches for it (see
    /// `mapper::file`).
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
        let prepared = crate::mapper::file::prepare_with(config.clone(), Some(&store)).await??;
        Engine::with_mapping(config, prepared, store, cancel, read_only).await
    }

    /// [`Engine::new`] with the mapping file prepared already (a reload checks it before it
    /// says the configuration is reloaded).
    pub async fn with_mapping(
        config: Arc<Config>,
        prepared: Prepared,
        store: Store,
        cancel: &CancellationToken,
        read_only: bool,
    ) -> Result<Engine, EngineError> {
        let loading = Instant::now();
        // A reload builds an engine on the database the daemon opened: only if it is still there.
        store.check_files().await?;
        let clients = crate::config::build_all(&config, cancel)?;
        let (sources, targets) = (clients.sources, clients.targets);
        let mapper = Arc::new(Mapper::new(&config, prepared.file.clone(), store.clone()));
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
                    walks: Default::default(),
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
        let configured_feeds = feed_names.clone();
        let ((reservations, unallotted), unabsorbed) = store
            .call(move |c| {
                let unabsorbed = match (read_only, feed_names.is_empty()) {
                    (true, _) => Vec::new(),
                    // No order feed any more: no book will ever take them in.
                    (false, true) => {
                        store::forget_unabsorbed(c)?;
                        Vec::new()
                    }
                    (false, false) => store::load_unabsorbed(c)?,
                };
                Ok((store::load_reservations(c, &feed_names)?, unabsorbed))
            })
            .await?;
        let book = Reservations::restore(rules, reservations, unallotted);
        let source_ids: Vec<Endpoint> = config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.identity(), s.kind.credential()))
            .collect();
        let target_ids: Vec<Endpoint> = config
            .targets
            .iter()
            .map(|t| (t.name.clone(), t.identity(), t.kind.credential()))
            .collect();
        let window = i64::try_from(config.daemon.guard_window.as_millis()).unwrap_or(i64::MAX);
        let loaded = store
            .call(move |c| {
                let configured = Configured {
                    sources: &source_ids,
                    targets: &target_ids,
                    feeds: &configured_feeds,
                };
                load_state(c, configured, read_only, window)
            })
            .await?;
        log_reconciled(
            &config,
            &loaded.reconciled,
            &loaded.removed_feeds,
            loaded.had_history,
        );
        let sources: Vec<Arc<SourceSlot>> = config
            .sources
            .iter()
            .zip(sources)
            .zip(loaded.sources)
            .zip(loaded.answers)
            .map(|(((spec, client), (id, memory)), (answer, reported))| {
                let (guard, guard_since, auth) =
                    memory.into_parts(config.daemon.max_zeroed_fraction);
                Arc::new(SourceSlot {
                    name: spec.name.clone(),
                    id: id.unwrap_or(UNRECORDED),
                    client,
                    snapshot: watch::Sender::new(Default::default()),
                    memory: Mutex::new(SourceMemory {
                        guard,
                        guard_since,
                        auth,
                        answer: AnswerDigest::from_stored(answer),
                        reported,
                    }),
                })
            })
            .collect();
        let targets: Vec<Arc<tokio::sync::Mutex<TargetSlot>>> = config
            .targets
            .iter()
            .zip(targets)
            .zip(loaded.targets)
            .zip(loaded.settled)
            .zip(loaded.in_doubt)
            .map(
                |((((spec, client), (id, failed, memory)), settled), in_doubt)| {
                    let setup = target::Setup {
                        name: spec.name.clone(),
                        id: id.unwrap_or(UNRECORDED),
                        client,
                        inputs: spec.inputs.clone(),
                        rules: Rules {
                            safety_stock: spec.safety_stock,
                            max_quantity: spec.max_quantity,
                        },
                        batch_size: spec.batch_size,
                        settles_as: target::settled::rules(
                            &spec
                                .inputs
                                .iter()
                                .map(|&i| config.sources[i].name.clone())
                                .collect::<Vec<_>>(),
                            spec.safety_stock,
                            spec.max_quantity,
                        ),
                    };
                    let stored = target::Stored {
                        failed,
                        in_doubt,
                        settled,
                        memory,
                    };
                    Arc::new(tokio::sync::Mutex::new(TargetSlot::load(
                        setup,
                        stored,
                        config.daemon.max_zeroed_fraction,
                    )))
                },
            )
            .collect();
        let generation = Generation::starting_at(loaded.generation);
        let source_ids: Vec<(String, i64)> =
            sources.iter().map(|s| (s.name.clone(), s.id)).collect();
        // The catalogue targets: their barcodes restored, their product lists read early when
        // the mapping needs them (see `catalogues`).
        let (mut target_ids, mut shops) = (Vec::new(), Vec::new());
        for target in &targets {
            let slot = target.lock().await;
            if let Some(catalogue) = slot.catalogue() {
                target_ids.push((slot.name().to_owned(), slot.id()));
                shops.push((slot.name().to_owned(), catalogue.clone()));
            }
        }
        let catalogues = Arc::new(Catalogues::new(shops));
        notes::restore_parts(&store, &mapper, source_ids, target_ids).await?;
        let keys_version = mapper.version();
        let keys_recorded = notes::keys_recorded(&store, &mapper).await?;
        // A mapping file that is not the one recorded voids what a rekeyed SKU acknowledged:
        // that needs every name and what each target acknowledged, now. The same file costs a
        // look at its record, not a million lines read.
        if notes::file_changed(&prepared) {
            let skus = store.call(|c| store::load_skus(c)).await?;
            for target in &targets {
                target.lock().await.load_acknowledged(&store).await?;
            }
            notes::settle_file(&store, &mapper, &prepared, &targets, &skus, read_only).await?;
            store::names_once(&skus)?;
            drop(skus);
            // Reading the file, the lines before and the names left much free for the cycle's
            // threads to reuse or not: back to the system before the cycle starts.
            super::memory::give_back();
        } else if !read_only {
            notes::restamp(&store, &prepared).await?;
        }
        let watch = Watch::new(
            loaded.last_fetch_at,
            loaded.first_cycle_at,
            config.daemon.stale_after,
            store::now_ms(),
        );
        tracing::debug!(
            ms = loading.elapsed().as_millis() as u64,
            "state loaded from the database"
        );
        let names: Names = Default::default();
        let recorder: Recorder = Default::default();
        let sources = Arc::new(sources);
        let book = Arc::new(Book {
            book: tokio::sync::Mutex::new(book),
            reserved: watch::Sender::new(Default::default()),
            generation: generation.clone(),
            unabsorbed: Mutex::new(unabsorbed),
        });
        let per_sku = Arc::new(PerSku::new(
            store.clone(),
            names.clone(),
            recorder.clone(),
            sources.clone(),
            book.clone(),
        ));
        Ok(Engine {
            config,
            store,
            names,
            recorder,
            sources,
            targets: Arc::new(targets),
            fetching: Default::default(),
            relaying: Default::default(),
            feeds: Arc::new(feeds),
            book,
            watch: Arc::new(Mutex::new(watch)),
            generation,
            per_sku,
            mapper,
            notes: Arc::new(tokio::sync::Mutex::new(WrittenNotes::with_keys(
                keys_recorded.then_some(keys_version),
            ))),
            catalogues,
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
                    generation: self.generation.clone(),
                    per_sku: self.per_sku.clone(),
                    keep_changes: !self.feeds.is_empty(),
                    mapper: self.mapper.clone(),
                    catalogues: self.catalogues.clone(),
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
                self.per_sku.clone(),
                self.store.clone(),
                options,
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
        let relay = self.relay_step(options).await?;
        // What `status` shows of the mapping is computed against every SKU's name: only once
        // they are loaded (an unchanged world leaves the notes as they were).
        if !options.dry_run && self.per_sku.is_loaded() {
            self.write_mapping_notes().await?;
        }
        let reports: Vec<_> = done.iter().map(|d| d.report.clone()).collect();
        self.watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .after_fetch(&reports, store::now_ms());
        let mut targets = Vec::new();
        let mut plan = Vec::new();
        let claimed = (0..self.targets.len()).filter(|i| !busy.contains(i));
        for (index, push) in claimed.zip(join_all(pushes).await) {
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
                    targets.push(idle_report(name, TargetState::Failed { error }));
                }
            }
        }
        for index in busy {
            targets.push(idle_report(
                &self.config.targets[index].name,
                TargetState::Busy,
            ));
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(CycleReport {
            id,
            duration: Default::default(),
            sources: reports,
            targets,
            plan,
            relay,
            orders: match orders_done {
                Some(Ok(done)) => Some(Ok(done)),
                Some(Err(e)) => Some(Err(e)),
                None => None,
            },
        })
    }

    /// The dropship relay's step, once the order feeds' is done: only when `[relay] mode` is
    /// not `off` and the cycle is not a dry run (which writes nothing).
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
        let services::Feed::Hardtofind(client) = &feed.client;
        let (services::Source::EndlessAisles(ea), SourceKind::EndlessAisles(settings)) =
            (&source.client, &self.config.sources[spec.to].kind)
        else {
            return Ok(None);
        };
        // A line's SKU is the feed's name for it: canonical through the mapping, then the
        // `to` source's key (its option id).
        let has_mapping = self.config.mapping.is_some();
        // The version first: a mapping rebuilt in between is then read again at the next cycle.
        let ask = relay::ready::ReadAs {
            full_sync: options.full,
            mapping: self.mapper.version(),
        };
        let mapping = if has_mapping {
            self.mapper.mapping().await?
        } else {
            Arc::default()
        };
        let (feed_name, source_name) = (feed.name.clone(), source.name.clone());
        let prefix = settings.sku_prefix.clone();
        let supplier_key = move |line: &str| -> Option<u64> {
            if !has_mapping {
                return relay::decide::supplier_key(line, &prefix);
            }
            let canonical = mapping.canonical(&feed_name, line).unwrap_or(line);
            mapping.key_at(&source_name, canonical)?.0.parse().ok()
        };
        let clients = relay::Clients {
            feed_name: &feed.name,
            feed: client,
            orders: ea.orders(),
            products: ea.products(),
            supplier_key: &supplier_key,
        };
        let done = relay::step::step(spec, clients, &self.store, &mut memory, ask).await?;
        let counts: Vec<(&str, i64)> = relay::State::ALL
            .iter()
            .map(|s| {
                let n = done
                    .counts
                    .iter()
                    .find(|(c, _)| c == s)
                    .map_or(0, |(_, n)| *n);
                (s.word(), n)
            })
            .collect();
        metrics::relay_orders(&counts);
        Ok(Some(done))
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
            let mut columns = Vec::new();
            let mut input_names = Vec::new();
            let mut failed_sources = Vec::new();
            let mut held_sources = Vec::new();
            let mut interrupted = false;
            for (source, fetch) in inputs {
                let done = fetch.await;
                interrupted |= done.interrupted;
                if done.held {
                    held_sources.push(source.name.clone());
                } else if !done.ok() && !done.interrupted {
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
            // Decided once, here: a target that plans needs the per-SKU state and the mapping
            // (a quiet one needs neither). Its mark names the mapping too: a new key at the
            // target is a new plan.
            let rules = format!("{} mapping={}", slot.settles_as(), mapper.fingerprint());
            let mark = target::settled::mark(generation.now(), &rules);
            let quiet = target::settled::is_quiet(&slot, &mark, options, store::now_ms());
            let plans = !quiet && failed_sources.is_empty() && held_sources.is_empty();
            if plans {
                per_sku.ensure().await?;
            }
            let (mapping, held) = if plans && mapper.maps_anything() {
                (mapper.mapping().await?, mapper.held(&names).await?)
            } else {
                Default::default()
            };
            let inputs = target::Inputs {
                early_catalogue: catalogues.take(slot.name()),
                mapper,
                mapping,
                held,
                columns,
                reserved,
                names: input_names,
                failed_sources,
                held_sources,
                skus: names,
                store,
                guard_window,
                period,
                settle_mark: mark,
                quiet,
            };
            target::sync_target(&mut slot, inputs, options).await
        }
    }
}

/// A target that did nothing this cycle: an earlier cycle is still syncing it, or its database
/// failed it.
fn idle_report(name: &str, state: TargetState) -> TargetReport {
    TargetReport {
        name: name.to_owned(),
        state,
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
        relay = report.relay_field().as_deref().unwrap_or("-"),
        relay_read = report.relay_read_field().as_deref(),
        "cycle finished"
    );
}
