//! One source's part of a cycle: fetch it completely (within `fetch_timeout`), record its
//! snapshot, and publish it to the targets that read it.
//!
//! Each source records on its own as soon as its fetch is in, so a target never waits for a
//! source it does not read. Recording is serialised by [`Recorder`]: it adds SKU names, and
//! name chunks must be written in the order the names were added.
//!
//! The database is always written *before* the snapshot is published: a target never plans from
//! a snapshot a crash could lose.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::error;

use crate::http::Meter;
use crate::ops::report::{SourceCounts, SourceReport};
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::services::{Source, Stock};
use crate::store::{self, Side, Store, StoreError};

/// A source as the engine keeps it.
pub struct SourceSlot {
    /// `[sources.NAME]`.
    pub name: String,
    /// Its row in the database.
    pub id: i64,
    /// Its client.
    pub client: Source,
    /// Its newest recorded snapshot; targets hold receivers and re-plan when it changes.
    pub snapshot: watch::Sender<Arc<Column>>,
}

/// Every SKU name, shared: sources add names as they record, targets read them to push.
pub type Names = Arc<RwLock<SkuTable>>;

/// The right to record snapshots, with how many names the database has.
pub type Recorder = Arc<tokio::sync::Mutex<usize>>;

/// How one source's part of a cycle ended.
#[derive(Debug)]
pub struct SourceDone {
    /// For the summary line.
    pub report: SourceReport,
    /// A dry run's fresh snapshot, which is not recorded or published (`None` otherwise).
    pub unrecorded: Option<Arc<Column>>,
}

impl SourceDone {
    /// Whether the targets that read this source may plan from it this cycle.
    pub fn ok(&self) -> bool {
        self.report.outcome.is_ok()
    }
}

/// Everything [`fetch_source`] needs, cheap to clone into a task.
#[derive(Clone)]
pub struct SourceWork {
    pub slot: Arc<SourceSlot>,
    pub names: Names,
    pub recorder: Recorder,
    pub store: Store,
    pub fetch_timeout: Duration,
    pub dry_run: bool,
}

/// Fetches, records and publishes one source. A failed fetch is recorded as such; a database
/// failure fails the source too (its targets skip), with the error in the report.
pub async fn fetch_source(work: SourceWork) -> SourceDone {
    let slot = &work.slot;
    let meter = Meter::default();
    let started = Instant::now();
    let fetched = match tokio::time::timeout(work.fetch_timeout, slot.client.fetch(&meter)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "the fetch took longer than daemon.fetch_timeout ({})",
            humantime::format_duration(work.fetch_timeout)
        )),
    };
    tracing::debug!(source = %slot.name, ms = started.elapsed().as_millis() as u64, "source fetched and parsed");
    let mut unrecorded = None;
    let outcome = match fetched {
        Ok(records) => match record(&work, &records).await {
            Ok((counts, fresh)) => {
                unrecorded = fresh;
                Ok(counts)
            }
            Err(e) => {
                error!(source = %slot.name, error = %e, "the source's snapshot could not be recorded; the targets that read it skip this cycle");
                Err(e.to_string())
            }
        },
        Err(e) => {
            error!(source = %slot.name, error = %e, "source fetch failed; the targets that read it skip this cycle and retry at the next");
            if !work.dry_run {
                let (id, at, message) = (slot.id, store::now_ms(), e.clone());
                let recorded = work
                    .store
                    .call(move |c| store::source_failed(c, id, &message, at))
                    .await;
                if let Err(db) = recorded {
                    error!(source = %slot.name, error = %db, "the failure could not be recorded");
                }
            }
            Err(e)
        }
    };
    SourceDone {
        report: SourceReport {
            name: slot.name.clone(),
            outcome,
            requests: meter.requests(),
            retries: meter.retries(),
        },
        unrecorded,
    }
}

/// Makes the fresh snapshot, writes what changed in one transaction, then publishes it (a dry
/// run writes and publishes nothing and returns it instead).
async fn record(
    work: &SourceWork,
    records: &Stock,
) -> Result<(SourceCounts, Option<Arc<Column>>), StoreError> {
    let slot = &work.slot;
    let mut persisted = work.recorder.lock().await;
    let old = slot.snapshot.borrow().clone();
    let (fresh, changed, new_names) = {
        let mut names = work.names.write().unwrap_or_else(|p| p.into_inner());
        let (fresh, changed) = snapshot_of(&mut names, &old, records, &slot.name);
        // A dry run never writes names; the recorder's count stays with what the file has.
        let new_names = store::name_chunks_from(&names, *persisted);
        (fresh, changed, (new_names, names.len()))
    };
    let counts = SourceCounts {
        skus: fresh.count_reported,
        changed: changed.len(),
    };
    if work.dry_run {
        return Ok((counts, Some(Arc::new(fresh.column))));
    }
    let chunks = store::quantity_chunks_after(&fresh.column, &changed);
    let (id, at, reported, (name_chunks, named)) =
        (slot.id, store::now_ms(), fresh.count_reported, new_names);
    work.store
        .call(move |c| {
            let tx = c.transaction()?;
            store::write_name_chunks(&tx, &name_chunks)?;
            store::write_quantity_chunks(&tx, Side::Source, id, &chunks)?;
            store::source_fetched(&tx, id, reported, at)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    *persisted = named;
    // Recorded: memory follows the database.
    slot.snapshot.send_replace(Arc::new(fresh.column));
    Ok((counts, None))
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
