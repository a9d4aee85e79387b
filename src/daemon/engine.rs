//! The engine, built once per configuration (at start, and again at each reload): the clients,
//! the database's picture loaded into memory, and the mapping file settled against it.
//!
//! [`Engine::with_mapping`] reads as its steps: the clients and the mapping in force; the order
//! feeds and the reservations' book they keep; the endpoints reconciled and their state loaded;
//! the sources' and targets' slots; the catalogue targets; what `status` was last given of the
//! mapping, restored, and the mapping file settled; the engine put together.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::catalogues::Catalogues;
use super::feeds::FeedSlot;
use super::generation::Generation;
use super::mapping::notes::{self, WrittenNotes};
use super::per_sku::PerSku;
use super::slots::{Book, Names, Recorder, SourceMemory, SourceSlot};
use super::state::{Configured, Endpoint, Loaded, LoadedTarget, load_state, log_reconciled};
use crate::config::{Config, FeedKind};
use crate::http::metrics::Tally;
use crate::mapper::Mapper;
use crate::mapper::file::Prepared;
use crate::ops::metrics::ShopMetrics;
use crate::ops::stale::Watch;
use crate::plan::Rules;
use crate::plan::ledger::SkuId;
use crate::plan::reservations::{FeedRules, Reservations};
use crate::relay;
use crate::services::{self, AnswerDigest};
use crate::store::{self, Store, StoreError};
use crate::targets::{self, TargetSlot};

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

/// A target's owner, locked by the cycle that syncs it.
type OwnedTarget = Arc<tokio::sync::Mutex<TargetSlot>>;

/// The sync engine: clients, the in-memory state, and the database behind it. Cheap to clone:
/// every part is shared, so cycles can run as tasks.
#[derive(Clone)]
pub struct Engine {
    pub(super) config: Arc<Config>,
    pub(super) store: Store,
    pub(super) names: Names,
    pub(super) recorder: Recorder,
    pub(super) sources: Arc<Vec<Arc<SourceSlot>>>,
    /// Each target's owner; locked by the cycle that syncs it.
    pub(super) targets: Arc<Vec<OwnedTarget>>,
    pub(super) fetching: Arc<tokio::sync::Mutex<()>>,
    /// Held by the cycle whose relay step runs: cycles overlap once their sources are in, and
    /// two relay steps over the same records would move (or place) one order twice. It holds
    /// what the relay's read of `READY` goes on from: the engine's own, so a start or a reload
    /// reads the list in full (see [`relay::ready`]).
    pub(super) relaying: Arc<tokio::sync::Mutex<relay::ready::Memory>>,
    /// The order feeds.
    pub(super) feeds: Arc<Vec<FeedSlot>>,
    /// What open orders reserve.
    pub(super) book: Arc<Book>,
    /// When each source last fetched completely, for the staleness alarm.
    pub(super) watch: Arc<Mutex<Watch>>,
    /// The world's generation (see [`Generation`]).
    pub(super) generation: Generation,
    /// Loads the per-SKU state when a cycle first needs it.
    pub(super) per_sku: Arc<PerSku>,
    /// The SKU mapping in force, and what Endless Aisles products say.
    pub(super) mapper: Arc<Mapper>,
    /// What `status` was last given of the mapping (see [`Engine::write_mapping_notes`]).
    pub(super) notes: Arc<tokio::sync::Mutex<WrittenNotes>>,
    /// The catalogue targets' product lists, read first when `by_barcode` needs them.
    pub(super) catalogues: Arc<Catalogues>,
    /// The shop's metrics, which its endpoints count in too.
    pub(super) metrics: Arc<ShopMetrics>,
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
        let metrics = ShopMetrics::of(config.shop.as_deref());
        let tally: Arc<dyn Tally> = metrics.clone();
        let clients = crate::config::build_all(&config, cancel, &tally)?;
        let mapper = Arc::new(Mapper::new(&config, prepared.file.clone(), store.clone()));
        let feeds = feed_slots(&config, clients.feeds, &mapper);
        let (book, unabsorbed) = restore_book(&config, &store, read_only).await?;
        let loaded = load_endpoints(&config, &store, read_only).await?;
        let sources = source_slots(&config, clients.sources, loaded.sources, loaded.answers);
        let parts = (loaded.targets, loaded.settled, loaded.in_doubt);
        let targets = target_slots(&config, clients.targets, parts);
        let generation = Generation::starting_at(loaded.generation);
        let (catalogue_ids, catalogues) = catalogue_targets(&targets).await;
        let notes = restore_notes(&store, &mapper, &sources, catalogue_ids).await?;
        settle_mapping_file(&store, &mapper, &prepared, &targets, read_only).await?;
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
        let (names, recorder): (Names, Recorder) = Default::default();
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
            notes: Arc::new(tokio::sync::Mutex::new(notes)),
            catalogues: Arc::new(catalogues),
            metrics,
        })
    }

    /// Brings what `status` shows of the mapping up to date (see [`notes::write`]).
    pub(super) async fn write_mapping_notes(&self) -> Result<(), StoreError> {
        notes::write(&self.store, &self.mapper, &self.names, &self.notes).await
    }

    /// The SKU mapping in force (the dropship relay maps its lines through it too).
    pub fn mapper(&self) -> Arc<Mapper> {
        self.mapper.clone()
    }

    /// The shop's metrics.
    pub fn metrics(&self) -> &Arc<ShopMetrics> {
        &self.metrics
    }
}

/// The order feeds' slots: each feed's client, the states whose orders hold stock, and the
/// mapping its order lines are read through.
fn feed_slots(
    config: &Config,
    clients: Vec<services::Feed>,
    mapper: &Arc<Mapper>,
) -> Vec<FeedSlot> {
    (config.feeds.iter().zip(clients))
        .map(|(spec, client)| {
            let FeedKind::Hardtofind(settings) = &spec.kind;
            FeedSlot {
                name: spec.name.clone(),
                client,
                reserve: settings.reserve.clone(),
                mapper: mapper.clone(),
                walks: Default::default(),
            }
        })
        .collect()
}

/// The reservations' book as the database kept it, under each feed's rules, and the sources'
/// changes a crash kept from it. With no order feed any more, those changes are forgotten (no
/// book will ever take them in); a dry run reads none and changes nothing.
async fn restore_book(
    config: &Config,
    store: &Store,
    read_only: bool,
) -> Result<(Reservations, Vec<store::Unabsorbed>), StoreError> {
    let rules: Vec<(String, FeedRules)> = (config.feeds.iter())
        .map(|spec| {
            let FeedKind::Hardtofind(settings) = &spec.kind;
            (spec.name.clone(), settings.rules.clone())
        })
        .collect();
    let feed_names: Vec<String> = rules.iter().map(|(n, _)| n.clone()).collect();
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
    Ok((book, unabsorbed))
}

/// The database's endpoints reconciled with the configured ones (see [`load_state`]), their
/// state loaded, and what the reconciliation did logged.
async fn load_endpoints(
    config: &Config,
    store: &Store,
    read_only: bool,
) -> Result<Loaded, StoreError> {
    let source_ids: Vec<Endpoint> = (config.sources.iter())
        .map(|s| (s.name.clone(), s.identity(), s.kind.credential()))
        .collect();
    let target_ids: Vec<Endpoint> = (config.targets.iter())
        .map(|t| (t.name.clone(), t.identity(), t.kind.credential()))
        .collect();
    let feeds: Vec<String> = config.feeds.iter().map(|f| f.name.clone()).collect();
    let window = i64::try_from(config.daemon.guard_window.as_millis()).unwrap_or(i64::MAX);
    let loaded = store
        .call(move |c| {
            let configured = Configured {
                sources: &source_ids,
                targets: &target_ids,
                feeds: &feeds,
            };
            load_state(c, configured, read_only, window)
        })
        .await?;
    log_reconciled(
        config,
        &loaded.reconciled,
        &loaded.removed_feeds,
        loaded.had_history,
    );
    Ok(loaded)
}

/// Each source's slot: its client, its row, and the memory the database kept of it (its guard,
/// refused logins, its last answer).
fn source_slots(
    config: &Config,
    clients: Vec<services::Source>,
    loaded: Vec<(Option<i64>, store::Memory)>,
    answers: Vec<(Vec<u8>, usize)>,
) -> Vec<Arc<SourceSlot>> {
    (config.sources.iter().zip(clients).zip(loaded).zip(answers))
        .map(|(((spec, client), (id, memory)), (answer, reported))| {
            let (guard, guard_since, auth) = memory.into_parts(config.daemon.max_zeroed_fraction);
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
        .collect()
}

/// What the database kept of each target: its row, refusals and memory; its settled mark; its
/// SKUs in doubt.
type TargetParts = (Vec<LoadedTarget>, Vec<Option<String>>, Vec<BTreeSet<SkuId>>);

/// Each target's owner, loaded from its configuration and what the database kept of it.
fn target_slots(
    config: &Config,
    clients: Vec<services::Target>,
    (loaded, settled, in_doubt): TargetParts,
) -> Vec<OwnedTarget> {
    (config
        .targets
        .iter()
        .zip(clients)
        .zip(loaded)
        .zip(settled)
        .zip(in_doubt))
    .map(
        |((((spec, client), (id, failed, memory)), settled), in_doubt)| {
            let setup = targets::Setup {
                name: spec.name.clone(),
                id: id.unwrap_or(UNRECORDED),
                client,
                inputs: spec.inputs.clone(),
                rules: Rules {
                    safety_stock: spec.safety_stock,
                    max_quantity: spec.max_quantity,
                },
                batch_size: spec.batch_size,
                settles_as: targets::settled::rules(
                    &(spec.inputs.iter())
                        .map(|&i| config.sources[i].name.clone())
                        .collect::<Vec<_>>(),
                    spec.safety_stock,
                    spec.max_quantity,
                ),
            };
            let stored = targets::Stored {
                failed,
                in_doubt,
                settled,
                memory,
            };
            let slot = TargetSlot::load(setup, stored, config.daemon.max_zeroed_fraction);
            Arc::new(tokio::sync::Mutex::new(slot))
        },
    )
    .collect()
}

/// The catalogue targets: their names and rows (whose barcodes the mapping's notes restore),
/// and their product lists, read early when the mapping needs them (see `catalogues`).
async fn catalogue_targets(targets: &[OwnedTarget]) -> (Vec<(String, i64)>, Catalogues) {
    let (mut ids, mut shops) = (Vec::new(), Vec::new());
    for target in targets {
        let slot = target.lock().await;
        if let Some(catalogue) = slot.catalogue() {
            ids.push((slot.name().to_owned(), slot.id()));
            shops.push((slot.name().to_owned(), catalogue.clone()));
        }
    }
    (ids, Catalogues::new(shops))
}

/// What the mapping knew of the sources' sizes and the catalogues' barcodes, restored, and
/// what `status` was last given of it: its keys, if the recorded ones are the mapping's.
async fn restore_notes(
    store: &Store,
    mapper: &Arc<Mapper>,
    sources: &[Arc<SourceSlot>],
    catalogue_ids: Vec<(String, i64)>,
) -> Result<WrittenNotes, StoreError> {
    let source_ids: Vec<(String, i64)> = sources.iter().map(|s| (s.name.clone(), s.id)).collect();
    notes::restore_parts(store, mapper, source_ids, catalogue_ids).await?;
    let keys_version = mapper.version();
    let keys_recorded = notes::keys_recorded(store, mapper).await?;
    Ok(WrittenNotes::with_keys(
        keys_recorded.then_some(keys_version),
    ))
}

/// A mapping file that is not the one recorded voids what a rekeyed SKU acknowledged: that
/// needs every name and what each target acknowledged, now. The same file costs a look at its
/// record (restamped unless `read_only`), not a million lines read.
async fn settle_mapping_file(
    store: &Store,
    mapper: &Mapper,
    prepared: &Prepared,
    targets: &[OwnedTarget],
    read_only: bool,
) -> Result<(), StoreError> {
    if notes::file_changed(prepared) {
        let skus = store.call(|c| store::load_skus(c)).await?;
        for target in targets {
            target.lock().await.load_acknowledged(store).await?;
        }
        notes::settle_file(store, mapper, prepared, targets, &skus, read_only).await?;
        store::names_once(&skus)?;
        drop(skus);
        // Reading the file, the lines before and the names left much free for the cycle's
        // threads to reuse or not: back to the system before the cycle starts.
        super::memory::give_back();
    } else if !read_only {
        notes::restamp(store, prepared).await?;
    }
    Ok(())
}
