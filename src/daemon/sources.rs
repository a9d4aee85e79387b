//! One source's part of a cycle: fetch it completely (within `fetch_timeout`), record its
//! snapshot, and publish it to the targets that read it.
//!
//! Each source records on its own as soon as its fetch is in, so a target never waits for a
//! source it does not read. Recording is serialised by [`Recorder`]: it adds SKU names, and
//! name chunks must be written in the order the names were added.
//!
//! The database is always written *before* the snapshot is published: a target never plans from
//! a snapshot a crash could lose.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::error;

use crate::http::HttpError;
use crate::http::Meter;
use crate::ops::report::{SourceCounts, SourceReport};
use crate::ops::rfc3339;
use crate::plan::backoff::AuthBackoff;
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::plan::{Change, Guard};
use crate::services::{ConnectorError, Source, Stock};
use crate::store::{self, Side, Store, StoreError};
use crate::target::CycleOptions;

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
    /// What it must not believe at once: its guard, refused logins.
    pub memory: Mutex<SourceMemory>,
}

/// A source's guard and login backoff (only its own cycle's fetch touches them).
#[derive(Debug)]
pub struct SourceMemory {
    /// The mass-zero guard over its snapshot.
    pub guard: Guard,
    /// When `--force` last restarted the guard's window.
    pub guard_since: Option<i64>,
    /// Refused logins.
    pub auth: AuthBackoff,
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
    /// What changed in its snapshot (for the reservations' drops).
    pub changed: Vec<Change>,
    /// Shutdown cut the fetch short: not a failure of the source.
    pub interrupted: bool,
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
    pub guard_window: Duration,
    pub period: Duration,
    pub options: CycleOptions,
    /// Whether the order feeds need this cycle's changes (for the reservations' drops).
    pub keep_changes: bool,
    /// The SKU mapping, and what Endless Aisles products say.
    pub mapper: Arc<super::mapping::Mapper>,
}

/// Why a source's fetch is not used this cycle.
#[derive(Debug, thiserror::Error)]
enum NotUsed {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The mass-zero guard holds it.
    #[error(
        "held by the mass-zero guard: this answer would take {zeroed} of the {positive} SKUs it reported positive within the guard window to 0 or absent; it is not recorded, and the targets that read it skip, until it recovers or `invsync once --force`"
    )]
    Held { zeroed: usize, positive: usize },
}

/// Fetches, records and publishes one source. A failed fetch is recorded as such; a database
/// failure fails the source too (its targets skip), with the error in the report.
pub async fn fetch_source(work: SourceWork) -> SourceDone {
    let slot = &work.slot;
    let meter = Meter::default();
    let started = Instant::now();
    let now = store::now_ms();
    let waiting = lock(&slot.memory)
        .auth
        .waiting(now)
        .filter(|_| !work.options.dry_run);
    let fetched = if let Some(at) = waiting {
        Err(Failure::Waiting(at))
    } else {
        super::products::refresh(&work).await;
        match tokio::time::timeout(work.fetch_timeout, slot.client.fetch(&meter)).await {
            Ok(Ok(stock)) => Ok(work.mapper.prepare(&slot.name, stock)),
            Ok(Err(ConnectorError::Http(HttpError::Cancelled))) => Err(Failure::Cancelled),
            Ok(Err(ConnectorError::Auth(message))) => Err(Failure::AuthRefused(message)),
            Ok(Err(e)) => Err(Failure::Other(e.to_string())),
            Err(_) => Err(Failure::Other(format!(
                "the fetch took longer than daemon.fetch_timeout ({})",
                humantime::format_duration(work.fetch_timeout)
            ))),
        }
    };
    let fetched = match fetched {
        Ok(stock) => {
            clear_auth_backoff(&work).await;
            Ok(stock)
        }
        Err(Failure::Cancelled) => {
            // A stop is not an error: nothing is logged at ERROR and nothing recorded.
            return SourceDone {
                report: SourceReport {
                    name: slot.name.clone(),
                    outcome: Err("interrupted by shutdown".to_owned()),
                    requests: meter.requests(),
                    retries: meter.retries(),
                },
                unrecorded: None,
                changed: Vec::new(),
                interrupted: true,
            };
        }
        Err(Failure::Waiting(at)) => {
            let failures = lock(&slot.memory).auth.failures;
            Err(format!(
                "the source refused the credentials {failures} times in a row; the next login is at {}",
                rfc3339(at)
            ))
        }
        Err(Failure::AuthRefused(message)) => Err(auth_refused(&work, &message).await),
        Err(Failure::Other(e)) => Err(e),
    };
    tracing::debug!(source = %slot.name, ms = started.elapsed().as_millis() as u64, "source fetched and parsed");
    let mut unrecorded = None;
    let mut changed = Vec::new();
    let outcome = match fetched {
        Ok(records) => match record(&work, &records).await {
            Ok((counts, fresh, changes)) => {
                unrecorded = fresh;
                changed = changes;
                Ok(counts)
            }
            Err(e @ NotUsed::Held { .. }) => {
                error!(source = %slot.name, error = %e, "source held");
                Err(e.to_string())
            }
            Err(e) => {
                error!(source = %slot.name, error = %e, "the source's snapshot could not be recorded; the targets that read it skip this cycle");
                Err(e.to_string())
            }
        },
        Err(e) => {
            error!(source = %slot.name, error = %e, "source fetch failed; the targets that read it skip this cycle and retry at the next");
            if !work.options.dry_run {
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
        changed,
        interrupted: false,
    }
}

/// Makes the fresh snapshot, writes what changed in one transaction, then publishes it (a dry
/// run writes and publishes nothing and returns it instead).
async fn record(
    work: &SourceWork,
    records: &Stock,
) -> Result<(SourceCounts, Option<Arc<Column>>, Vec<Change>), NotUsed> {
    let slot = &work.slot;
    let mut persisted = work.recorder.lock().await;
    let old = slot.snapshot.borrow().clone();
    let now = store::now_ms();
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
    // The source-level guard: an empty answer from a minor input must not wipe its SKUs on a
    // target that sums it with a larger one.
    // Only changes to 0 matter to the guard: a first fetch of a million SKUs must not hold a
    // second copy of every change.
    let to_zero: Vec<Change> = changed
        .iter()
        .filter(|&&(_, new)| new == 0)
        .map(|&(sku, new)| Change {
            sku,
            old: old.get(sku),
            new,
        })
        .collect();
    // Every change, for the reservations' drops, only where order feeds need them.
    let all_changes: Vec<Change> = if work.keep_changes {
        changed
            .iter()
            .map(|&(sku, new)| Change {
                sku,
                old: old.get(sku),
                new,
            })
            .collect()
    } else {
        Vec::new()
    };
    let forced = work.options.force;
    let zeroings = {
        let mut memory = lock(&slot.memory);
        let window = i64::try_from(work.guard_window.as_millis()).unwrap_or(i64::MAX);
        let since = if forced && !work.options.dry_run {
            now
        } else {
            memory.guard_since.unwrap_or(i64::MIN)
        };
        memory.guard.since = now.saturating_sub(window).max(since);
        if let Some(trip) = memory.guard.check(&to_zero, &old).filter(|_| !forced) {
            return Err(NotUsed::Held {
                zeroed: trip.zeroed,
                positive: trip.positive,
            });
        }
        if forced {
            Vec::new()
        } else {
            Guard::zeroings(&to_zero, now)
        }
    };
    if work.options.dry_run {
        return Ok((counts, Some(Arc::new(fresh.column)), all_changes));
    }
    let chunks = store::quantity_chunks_after(&fresh.column, &changed);
    let zeroed_chunks = {
        let memory = lock(&slot.memory);
        store::quantity_chunks_after(&memory.guard.zeroed_at, &zeroings)
    };
    let (id, at, reported, (name_chunks, named)) = (slot.id, now, fresh.count_reported, new_names);
    work.store
        .call(move |c| {
            let tx = c.transaction()?;
            store::write_name_chunks(&tx, &name_chunks)?;
            store::write_quantity_chunks(&tx, Side::Source, id, &chunks)?;
            store::write_zeroings(&tx, Side::Source, id, &zeroed_chunks)?;
            if forced {
                store::restart_guard(&tx, Side::Source, id, at)?;
            }
            store::source_fetched(&tx, id, reported, at)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    *persisted = named;
    {
        let mut memory = lock(&slot.memory);
        memory.guard.remember(&zeroings);
        if forced {
            memory.guard_since = Some(at);
        }
    }
    // Recorded: memory follows the database.
    slot.snapshot.send_replace(Arc::new(fresh.column));
    Ok((counts, None, all_changes))
}

/// How a fetch failed.
enum Failure {
    /// Shutdown: not an error.
    Cancelled,
    /// A refused login is still being waited out.
    Waiting(i64),
    /// The service refused the credentials just now.
    AuthRefused(String),
    Other(String),
}

fn lock(memory: &Mutex<SourceMemory>) -> std::sync::MutexGuard<'_, SourceMemory> {
    memory.lock().unwrap_or_else(|p| p.into_inner())
}

/// A refused login: the next one waits 1, 2, 4, … cycles (at most an hour); returns the error.
async fn auth_refused(work: &SourceWork, message: &str) -> String {
    let slot = &work.slot;
    let backoff = {
        let mut memory = lock(&slot.memory);
        memory.auth = memory.auth.refused(store::now_ms(), work.period);
        memory.auth
    };
    let at = backoff.retry_at.unwrap_or_default();
    if !work.options.dry_run {
        let id = slot.id;
        let recorded = work
            .store
            .call(move |c| store::auth_refused(c, Side::Source, id, backoff.failures, at))
            .await;
        if let Err(e) = recorded {
            error!(source = %slot.name, error = %e, "the refused login could not be recorded");
        }
    }
    format!(
        "authentication refused: {message}; no login is tried before {} ({} refused in a row)",
        rfc3339(at),
        backoff.failures
    )
}

/// A login worked: the backoff is over.
async fn clear_auth_backoff(work: &SourceWork) {
    let slot = &work.slot;
    let had = std::mem::take(&mut lock(&slot.memory).auth);
    if had.failures > 0 && !work.options.dry_run {
        let id = slot.id;
        let _ = work
            .store
            .call(move |c| store::auth_accepted(c, Side::Source, id))
            .await;
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
    // A record whose quantity could not be read holds its SKU at the last snapshot quantity
    // (absent if it has none): the rest of the answer is used, and doubt changes nothing.
    let mut held = std::collections::HashSet::new();
    for sku in records.held() {
        let id = skus.intern(sku);
        held.insert(id);
        match old.get(id) {
            Some(quantity) => column.set(id, quantity),
            None => column.clear(id),
        }
    }
    let count_reported = column.count();
    for (sku, _) in old.iter() {
        if column.get(sku).is_none() && !held.contains(&sku) {
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
