//! One sync cycle, end to end: fetch every source, record the snapshots, plan each target,
//! push the differences, acknowledge what the targets accepted.
//!
//! The [`Engine`] keeps the database's picture in memory between cycles (loaded once at start),
//! so a cycle reads nothing from SQLite and writes only rows that changed. The database is
//! always written *before* memory is updated, and an acknowledgement only after a 2xx: a crash
//! at any point leaves a state from which the next cycle pushes again whatever was not
//! acknowledged.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::Config;
use crate::connectors::{self, ConnectorError, PushItem, Source, StockRecord, Target};
use crate::http::{HttpError, Meter};
use crate::ledger::{Column, SkuId, SkuTable};
use crate::plan::{self, Rules};
use crate::report::{CycleReport, PlanLine, SourceCounts, SourceReport, TargetReport, TargetState};
use crate::store::{self, Side, Store, StoreError, TargetOutcome};

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

struct SourceSlot {
    name: String,
    id: i64,
    client: Source,
    snapshot: Column,
}

struct TargetSlot {
    name: String,
    id: i64,
    client: Target,
    acked: Column,
    inputs: Vec<usize>,
    rules: Rules,
    batch_size: usize,
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
}

impl Engine {
    /// Builds the connectors and loads the state from the database. `cancel` stops new requests.
    pub async fn new(
        config: Arc<Config>,
        store: Store,
        cancel: &CancellationToken,
    ) -> Result<Engine, EngineError> {
        let (sources, targets) = connectors::build(&config, cancel)?;
        let source_names: Vec<String> = config.sources.iter().map(|s| s.name.clone()).collect();
        let target_names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
        let (skus, source_state, target_state) = store
            .call(move |c| {
                let skus = store::load_skus(c)?;
                let load = |side, names: &[String]| -> Result<Vec<(i64, Column)>, StoreError> {
                    names
                        .iter()
                        .map(|n| {
                            let id = store::endpoint_id(c, side, n)?;
                            Ok((id, store::load_column(c, side, id)?))
                        })
                        .collect()
                };
                let sources = load(Side::Source, &source_names)?;
                let targets = load(Side::Target, &target_names)?;
                Ok((skus, sources, targets))
            })
            .await?;
        let sources = config
            .sources
            .iter()
            .zip(sources)
            .zip(source_state)
            .map(|((spec, client), (id, snapshot))| SourceSlot {
                name: spec.name.clone(),
                id,
                client,
                snapshot,
            })
            .collect();
        let targets = config
            .targets
            .iter()
            .zip(targets)
            .zip(target_state)
            .map(|((spec, client), (id, acked))| TargetSlot {
                name: spec.name.clone(),
                id,
                client,
                acked,
                inputs: spec.inputs.clone(),
                rules: Rules {
                    safety_stock: spec.safety_stock,
                    max_quantity: spec.max_quantity,
                },
                batch_size: spec.batch_size,
            })
            .collect();
        let persisted_skus = skus.len();
        Ok(Engine {
            config,
            store,
            skus,
            persisted_skus,
            sources,
            targets,
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
        let (snapshots, sources) = self.fetch_and_record(options.dry_run).await?;
        let failed: Vec<bool> = sources.iter().map(|s| s.outcome.is_err()).collect();
        let (skus, store, config) = (&self.skus, &self.store, &self.config);
        let pushes = self.targets.iter().map(|target| {
            let inputs: Vec<&Column> = target.inputs.iter().map(|&i| &snapshots[i]).collect();
            let failed_inputs: Vec<String> = target
                .inputs
                .iter()
                .filter(|&&i| failed[i])
                .map(|&i| sources[i].name.clone())
                .collect();
            sync_target(
                target,
                inputs,
                failed_inputs,
                skus,
                store,
                config.daemon.max_zeroed_fraction,
                options,
            )
        });
        let results = join_all(pushes).await;
        let mut targets = Vec::new();
        let mut plan = Vec::new();
        for (slot, result) in self.targets.iter_mut().zip(results) {
            let result = result?;
            for &(sku, quantity) in &result.acked {
                slot.acked.set(sku, quantity);
            }
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

    /// Fetches every source at once, then writes every changed snapshot row in one transaction.
    /// Returns the snapshot each target plans from (the old one where a fetch failed).
    async fn fetch_and_record(
        &mut self,
        dry_run: bool,
    ) -> Result<(Vec<Column>, Vec<SourceReport>), StoreError> {
        let fetches = join_all(self.sources.iter().map(|s| async move {
            let meter = Meter::default();
            let result = s.client.fetch(&meter).await;
            (result, meter)
        }))
        .await;
        let mut reports = Vec::new();
        let mut writes = Vec::new();
        let mut failures = Vec::new();
        let mut snapshots = Vec::new();
        for (slot, (result, meter)) in self.sources.iter().zip(fetches) {
            let outcome = match result {
                Ok(records) => {
                    let (fresh, changed) = snapshot_of(&mut self.skus, &slot.snapshot, records);
                    let counts = SourceCounts {
                        skus: fresh.count_reported,
                        changed: changed.len(),
                    };
                    writes.push((slot.id, changed, fresh.count_reported));
                    snapshots.push(fresh.column);
                    Ok(counts)
                }
                Err(e) => {
                    error!(source = %slot.name, error = %e, "source fetch failed; the targets that read it skip this cycle and retry at the next");
                    failures.push((slot.id, e.to_string()));
                    snapshots.push(slot.snapshot.clone());
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
        if dry_run {
            return Ok((snapshots, reports));
        }
        let new_skus: Vec<(SkuId, String)> = (self.persisted_skus..self.skus.len())
            .map(|i| (i as SkuId, self.skus.name(i as SkuId).to_owned()))
            .collect();
        let at = store::now_ms();
        self.store
            .call(move |c| {
                let tx = c.transaction()?;
                store::insert_skus(&tx, &new_skus)?;
                for (source, changed, reported) in &writes {
                    store::write_quantities(&tx, Side::Source, *source, changed)?;
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
        for (slot, snapshot) in self.sources.iter_mut().zip(&snapshots) {
            slot.snapshot.clone_from(snapshot);
        }
        Ok((snapshots, reports))
    }
}

struct Fresh {
    column: Column,
    count_reported: usize,
}

/// The new snapshot from a complete fetch (several records of one SKU are summed; a SKU reported
/// before but absent now is 0), and the rows that differ from the old one.
fn snapshot_of(
    skus: &mut SkuTable,
    old: &Column,
    records: Vec<StockRecord>,
) -> (Fresh, Vec<(SkuId, i64)>) {
    let mut column = Column::default();
    for (sku, quantity) in &records {
        column.add(skus.intern(sku), *quantity);
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

/// What one target's cycle produced.
struct TargetResult {
    report: TargetReport,
    /// Rows acknowledged (already in the database), to apply to memory.
    acked: Vec<(SkuId, i64)>,
    plan: Vec<PlanLine>,
}

async fn sync_target(
    target: &TargetSlot,
    inputs: Vec<&Column>,
    failed_inputs: Vec<String>,
    skus: &SkuTable,
    store: &Store,
    max_zeroed_fraction: f64,
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
        acked: Vec::new(),
        plan: Vec::new(),
    };
    let mut outcome = TargetOutcome::default();
    if !failed_inputs.is_empty() {
        let names = failed_inputs.join(",");
        error!(target = %target.name, sources = %names, "target skipped: an input could not be fetched; it is retried at the next cycle");
        outcome.error = Some(format!("skipped: input {names} could not be fetched"));
        result.report.state = TargetState::Skipped {
            sources: failed_inputs,
        };
        return finish(target, store, result, outcome, &meter, options).await;
    }
    let changes = plan::plan(&inputs, &target.acked, target.rules, options.full);
    result.report.planned = changes.len();
    outcome.pending = changes.len();
    if let Some(trip) =
        plan::mass_zero(&changes, &target.acked, max_zeroed_fraction).filter(|_| !options.force)
    {
        error!(
            target = %target.name, zeroed = trip.zeroed, positive = trip.positive, max_zeroed_fraction,
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
        return finish(target, store, result, outcome, &meter, options).await;
    }
    if options.dry_run {
        result.plan = changes
            .iter()
            .map(|c| PlanLine {
                target: target.name.clone(),
                sku: skus.name(c.sku).to_owned(),
                old: c.old,
                new: c.new,
            })
            .collect();
        return finish(target, store, result, outcome, &meter, options).await;
    }
    for batch in changes.chunks(target.batch_size) {
        let items: Vec<PushItem> = batch
            .iter()
            .map(|c| PushItem {
                sku: skus.name(c.sku),
                quantity: c.new,
                known: c.old.is_some(),
            })
            .collect();
        match target.client.push(&meter, &items).await {
            Ok(()) => {
                let rows: Vec<(SkuId, i64)> = batch.iter().map(|c| (c.sku, c.new)).collect();
                let (id, rows_for_db, at) = (target.id, rows.clone(), store::now_ms());
                store
                    .call(move |c| store::acknowledge(c, id, &rows_for_db, at))
                    .await?;
                result.report.pushed += rows.len();
                result.acked.extend(rows);
            }
            Err(ConnectorError::Http(HttpError::Cancelled)) => {
                warn!(target = %target.name, "shutting down; the remaining changes are pushed at the next start");
                result.report.state = TargetState::Interrupted;
                break;
            }
            Err(e) => {
                result.report.failures += batch.len();
                let gives_up = gives_up_on_target(&e);
                error!(
                    target = %target.name, skus = batch.len(), error = %e,
                    "batch failed; {}",
                    if gives_up { "the target is left for this cycle and retried at the next" } else { "its SKUs are retried at the next cycle" }
                );
                outcome.error = Some(e.to_string());
                result.report.state = TargetState::Failed {
                    error: e.to_string(),
                };
                if gives_up {
                    break;
                }
            }
        }
    }
    outcome.pending = changes.len() - result.report.pushed;
    finish(target, store, result, outcome, &meter, options).await
}

/// Whether an error means the target is unreachable or refuses us altogether, so that further
/// batches this cycle would only fail the same way (and make a down target hold up the cycle).
fn gives_up_on_target(error: &ConnectorError) -> bool {
    match error {
        ConnectorError::Http(e) => {
            e.is_retryable() || matches!(e.status().map(|s| s.as_u16()), Some(401 | 403))
        }
        ConnectorError::Auth(_) => true,
        ConnectorError::Malformed(_) | ConnectorError::NotFound(_) => false,
    }
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
