//! One sync cycle, end to end: fetch every source, record the snapshots, plan each target,
//! push the differences, acknowledge what the targets accepted.
//!
//! The [`Engine`] keeps the database's picture in memory between cycles (loaded once at start),
//! so a cycle reads nothing from SQLite and writes only rows that changed. The database is
//! always written *before* memory is updated, and an acknowledgement only after a 2xx: a crash
//! at any point leaves a state from which the next cycle pushes again whatever was not
//! acknowledged.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::{Config, Identity};
use crate::http::Meter;
use crate::ops::report::{CycleReport, SourceCounts, SourceReport};
use crate::ops::stale::Watch;
use crate::plan::Rules;
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::services::{self, Source, Stock};
use crate::store::{self, Reconciled, Side, Store, StoreError};
use crate::target::{self, TargetSlot};

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

/// What [`Engine::new`] reads from the database.
struct Loaded {
    skus: SkuTable,
    sources: Vec<(Option<i64>, Column)>,
    targets: Vec<(Option<i64>, Column, HashSet<SkuId>)>,
    last_fetch_at: Vec<Option<i64>>,
    first_cycle_at: Option<i64>,
    reconciled: Vec<(Side, Reconciled)>,
    had_history: bool,
}

fn load_state(
    c: &mut rusqlite::Connection,
    sources: &[(String, Identity)],
    targets: &[(String, Identity)],
    read_only: bool,
) -> Result<Loaded, StoreError> {
    let key = if read_only {
        store::existing_fingerprint_key(c)?.unwrap_or_default()
    } else {
        store::fingerprint_key(c)?
    };
    let stored = |list: &[(String, Identity)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(name, identity)| (name.clone(), identity.stored(&key)))
            .collect()
    };
    let (sources, targets) = (stored(sources), stored(targets));
    let had_history = store::has_history(c)?;
    let mut reconciled = Vec::new();
    let (source_ids, target_ids) = if read_only {
        (
            store::inspect(c, Side::Source, &sources)?,
            store::inspect(c, Side::Target, &targets)?,
        )
    } else {
        let mut ids = Vec::new();
        for (side, list) in [(Side::Source, &sources), (Side::Target, &targets)] {
            let (side_ids, changes) = store::reconcile(c, side, list)?;
            reconciled.extend(changes.into_iter().map(|change| (side, change)));
            ids.push(side_ids.into_iter().map(Some).collect::<Vec<_>>());
        }
        let targets = ids.pop().unwrap_or_default();
        (ids.pop().unwrap_or_default(), targets)
    };
    let column = |side: Side, id: Option<i64>| match id {
        Some(id) => store::load_column(c, side, id),
        None => Ok(Column::default()),
    };
    let mut loaded_sources = Vec::new();
    for &id in &source_ids {
        loaded_sources.push((id, column(Side::Source, id)?));
    }
    let mut loaded_targets = Vec::new();
    for &id in &target_ids {
        let failed = match id {
            Some(id) => store::load_failed(c, id)?,
            None => HashSet::new(),
        };
        loaded_targets.push((id, column(Side::Target, id)?, failed));
    }
    Ok(Loaded {
        skus: store::load_skus(c)?,
        last_fetch_at: store::last_fetch_times(c, &source_ids)?,
        first_cycle_at: store::first_cycle_at(c)?,
        sources: loaded_sources,
        targets: loaded_targets,
        reconciled,
        had_history,
    })
}

/// Says what reconciling the database with the configuration did: a target that must be pushed
/// every SKU is a WARN that says why.
fn log_reconciled(config: &Config, reconciled: &[(Side, Reconciled)], had_history: bool) {
    for (side, change) in reconciled {
        let kind = match side {
            Side::Source => "source",
            Side::Target => "target",
        };
        match change {
            Reconciled::Removed { name } => {
                info!(endpoint = %name, kind, "no longer configured: its state is deleted from the database");
            }
            Reconciled::Changed { name } => {
                let place = describe(config, *side, name);
                warn!(endpoint = %name, kind, now = %place, "its identity changed (base_url, account or warehouse): none of its old state is trusted, so every SKU is read or pushed afresh");
            }
            Reconciled::New { name } if had_history && matches!(side, Side::Target) => {
                let place = describe(config, *side, name);
                warn!(endpoint = %name, kind, now = %place, "target new to this database (or removed and added again): nothing it acknowledged before is trusted, so every SKU is pushed to it");
            }
            Reconciled::New { .. } => {}
        }
    }
}

fn describe(config: &Config, side: Side, name: &str) -> String {
    let identity = match side {
        Side::Source => config
            .sources
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.identity()),
        Side::Target => config
            .targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.identity()),
    };
    identity.map(|i| i.describe()).unwrap_or_default()
}

struct SourceSlot {
    name: String,
    id: i64,
    client: Source,
    snapshot: Column,
}

/// The sync engine: connectors, the in-memory state, and the database behind it.
pub struct Engine {
    config: Arc<Config>,
    store: Store,
    skus: SkuTable,
    /// How many of `skus` the database has; the rest are inserted with the next snapshot.
    persisted_skus: usize,
    sources: Vec<SourceSlot>,
    targets: Vec<TargetSlot>,
    /// When each source last fetched completely, for the staleness alarm.
    watch: Watch,
}

impl Engine {
    /// Builds the connectors and loads the state from the database. `cancel` stops new requests.
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
        let (sources, targets) = services::build(&config, cancel)?;
        let source_ids: Vec<(String, Identity)> = config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.identity()))
            .collect();
        let target_ids: Vec<(String, Identity)> = config
            .targets
            .iter()
            .map(|t| (t.name.clone(), t.identity()))
            .collect();
        let loaded = store
            .call(move |c| load_state(c, &source_ids, &target_ids, read_only))
            .await?;
        log_reconciled(&config, &loaded.reconciled, loaded.had_history);
        let sources: Vec<SourceSlot> = config
            .sources
            .iter()
            .zip(sources)
            .zip(loaded.sources)
            .map(|((spec, client), (id, snapshot))| SourceSlot {
                name: spec.name.clone(),
                id: id.unwrap_or(UNRECORDED),
                client,
                snapshot,
            })
            .collect();
        let targets = config
            .targets
            .iter()
            .zip(targets)
            .zip(loaded.targets)
            .map(|((spec, client), (id, acked, failed))| TargetSlot {
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
            })
            .collect();
        let skus = loaded.skus;
        let persisted_skus = skus.len();
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
            skus,
            persisted_skus,
            sources,
            targets,
            watch,
        })
    }

    /// Runs one cycle. Only a database failure is an `Err`; remote failures are in the report.
    pub async fn run_cycle(&mut self, options: CycleOptions) -> Result<CycleReport, StoreError> {
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
        let mut report = self.cycle(id, options).instrument(span.clone()).await?;
        report.duration = started.elapsed();
        span.in_scope(|| log_summary(&report, options));
        if !options.dry_run {
            let (outcome, summary) = (report.outcome(), report.targets_field());
            let ms = i64::try_from(report.duration.as_millis()).unwrap_or(i64::MAX);
            self.store
                .call(move |c| store::finish_cycle(c, id, ms, outcome, &summary))
                .await?;
        }
        Ok(report)
    }

    async fn cycle(&mut self, id: i64, options: CycleOptions) -> Result<CycleReport, StoreError> {
        let (unrecorded, sources) = self.fetch_and_record(options.dry_run).await?;
        self.watch.after_fetch(&sources, store::now_ms());
        let failed: Vec<bool> = sources.iter().map(|s| s.outcome.is_err()).collect();
        let Engine {
            skus,
            store,
            config,
            targets,
            sources: slots,
            ..
        } = self;
        let (skus, store, config) = (&*skus, &*store, &*config);
        // What each target plans from: the recorded snapshot, or a dry run's fresh one.
        let snapshots: Vec<&Column> = slots
            .iter()
            .zip(&unrecorded)
            .map(|(slot, fresh)| fresh.as_ref().unwrap_or(&slot.snapshot))
            .collect();
        let pushes = targets.iter_mut().map(|target| {
            let inputs = target::Inputs {
                columns: target.inputs.iter().map(|&i| snapshots[i]).collect(),
                names: target
                    .inputs
                    .iter()
                    .map(|&i| sources[i].name.as_str())
                    .collect(),
                failed_sources: target
                    .inputs
                    .iter()
                    .filter(|&&i| failed[i])
                    .map(|&i| sources[i].name.clone())
                    .collect(),
                skus,
                store,
                max_zeroed_fraction: config.daemon.max_zeroed_fraction,
            };
            target::sync_target(target, inputs, options)
        });
        let results = join_all(pushes).await;
        let mut targets = Vec::new();
        let mut plan = Vec::new();
        for result in results {
            let result = result?;
            plan.extend(result.plan);
            targets.push(result.report);
        }
        Ok(CycleReport {
            id,
            duration: Default::default(),
            sources,
            targets,
            plan,
        })
    }

    /// Fetches every source at once, then writes every changed snapshot chunk in one transaction.
    /// Records the fresh snapshots and moves them into the source slots; a dry run records
    /// nothing and returns them instead (`None` where a fetch failed: the old one stands).
    async fn fetch_and_record(
        &mut self,
        dry_run: bool,
    ) -> Result<(Vec<Option<Column>>, Vec<SourceReport>), StoreError> {
        let phase = Instant::now();
        let fetches = join_all(self.sources.iter().map(|s| async move {
            let meter = Meter::default();
            let result = s.client.fetch(&meter).await;
            (result, meter)
        }))
        .await;
        tracing::debug!(
            ms = phase.elapsed().as_millis() as u64,
            "sources fetched and parsed"
        );
        let phase = Instant::now();
        let mut reports = Vec::new();
        let mut writes = Vec::new();
        let mut failures = Vec::new();
        let mut fresh_columns: Vec<Option<Column>> = Vec::new();
        for (slot, (result, meter)) in self.sources.iter().zip(fetches) {
            let outcome = match result {
                Ok(records) => {
                    let (fresh, changed) =
                        snapshot_of(&mut self.skus, &slot.snapshot, &records, &slot.name);
                    let counts = SourceCounts {
                        skus: fresh.count_reported,
                        changed: changed.len(),
                    };
                    let chunks = store::quantity_chunks_after(&fresh.column, &changed);
                    writes.push((slot.id, chunks, fresh.count_reported));
                    fresh_columns.push(Some(fresh.column));
                    Ok(counts)
                }
                Err(e) => {
                    error!(source = %slot.name, error = %e, "source fetch failed; the targets that read it skip this cycle and retry at the next");
                    failures.push((slot.id, e.to_string()));
                    fresh_columns.push(None);
                    Err(e.to_string())
                }
            };
            reports.push(SourceReport {
                name: slot.name.clone(),
                outcome,
                requests: meter.requests(),
                retries: meter.retries(),
            });
        }
        tracing::debug!(
            ms = phase.elapsed().as_millis() as u64,
            "snapshots compared"
        );
        if dry_run {
            return Ok((fresh_columns, reports));
        }
        let phase = Instant::now();
        let new_names = store::name_chunks_from(&self.skus, self.persisted_skus);
        let at = store::now_ms();
        self.store
            .call(move |c| {
                let tx = c.transaction()?;
                store::write_name_chunks(&tx, &new_names)?;
                for (source, chunks, reported) in &writes {
                    store::write_quantity_chunks(&tx, Side::Source, *source, chunks)?;
                    store::source_fetched(&tx, *source, *reported, at)?;
                }
                for (source, error) in &failures {
                    store::source_failed(&tx, *source, error, at)?;
                }
                tx.commit()?;
                Ok(())
            })
            .await?;
        self.persisted_skus = self.skus.len();
        tracing::debug!(
            ms = phase.elapsed().as_millis() as u64,
            "snapshots recorded"
        );
        // Recorded: memory follows the database.
        let mut unrecorded = Vec::with_capacity(fresh_columns.len());
        for (slot, fresh) in self.sources.iter_mut().zip(fresh_columns) {
            if let Some(column) = fresh {
                slot.snapshot = column;
            }
            unrecorded.push(None);
        }
        Ok((unrecorded, reports))
    }
}

struct Fresh {
    column: Column,
    count_reported: usize,
}

/// The new snapshot from a complete fetch (a SKU reported before but absent now is 0), and the
/// rows that differ from the old one. Connectors report each SKU once; one reported twice counts
/// once, at the smaller quantity, with a WARN: doubt must never oversell.
fn snapshot_of(
    skus: &mut SkuTable,
    old: &Column,
    records: &Stock,
    source: &str,
) -> (Fresh, Vec<(SkuId, i64)>) {
    let mut column = Column::with_width(skus.len().max(old.width()));
    for (sku, quantity) in records.iter() {
        let id = skus.intern(sku);
        match column.get(id) {
            None => column.set(id, quantity),
            Some(first) => {
                let kept = first.min(quantity);
                tracing::warn!(source, sku = %sku, kept, "the source reported this SKU twice; the smaller quantity counts");
                column.set(id, kept);
            }
        }
    }
    let count_reported = column.count();
    for (sku, _) in old.iter() {
        if column.get(sku).is_none() {
            column.set(sku, 0);
        }
    }
    let changed = column
        .iter()
        .filter(|&(sku, q)| old.get(sku) != Some(q))
        .collect();
    (
        Fresh {
            column,
            count_reported,
        },
        changed,
    )
}

fn log_summary(report: &CycleReport, options: CycleOptions) {
    info!(
        cycle_id = report.id,
        duration_ms = u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        outcome = report.outcome(),
        pushed = report.pushed(),
        full = options.full,
        dry_run = options.dry_run,
        sources = %report.sources_field(),
        targets = %report.targets_field(),
        "cycle finished"
    );
}
