//! One source's part of a cycle: fetch it completely (within `fetch_timeout`), record its
//! snapshot, and publish it to the targets that read it.
//!
//! Each source records on its own as soon as its fetch is in, so a target never waits for a
//! source it does not read. Recording is serialised by [`Recorder`]: it adds SKU names, and
//! name chunks must be written in the order the names were added.
//!
//! The database is always written *before* the snapshot is published: a target never plans from
//! a snapshot a crash could lose.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::error;

use super::generation::Generation;
use super::per_sku::PerSku;
use super::slots::{Names, Recorder, SourceMemory, SourceSlot};
use crate::http::HttpError;
use crate::http::Meter;
use crate::ops::report::{SourceCounts, SourceReport};
use crate::ops::rfc3339;
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::plan::{Change, Guard};
use crate::services::{AnswerDigest, ConnectorError, Fetched, Known, Source, Stock};
use crate::store::{self, Side, Store, StoreError};
use crate::target::CycleOptions;

mod products;

/// How one source's part of a cycle ended.
#[derive(Debug)]
pub struct SourceDone {
    /// For the summary line.
    pub report: SourceReport,
    /// A dry run's fresh snapshot, which is not recorded or published (`None` otherwise).
    pub unrecorded: Option<Arc<Column>>,
    /// What changed in its snapshot (for the reservations' drops).
    pub changed: Vec<Change>,
    /// The key of those changes in the database until the reservations take them in.
    pub unabsorbed: Option<(i64, i64)>,
    /// Shutdown cut the fetch short: not a failure of the source.
    pub interrupted: bool,
    /// The mass-zero guard holds it: not fetched badly, but not believed.
    pub held: bool,
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
    /// The world's generation, moved on by every recorded change (see `target::settled`).
    pub generation: Generation,
    /// Loads every SKU's name and the snapshots, which a new answer is recorded against.
    pub per_sku: Arc<PerSku>,
    /// Whether the order feeds need this cycle's changes (for the reservations' drops).
    pub keep_changes: bool,
    /// The SKU mapping, and what Endless Aisles products say.
    pub mapper: Arc<crate::mapper::Mapper>,
    /// The catalogues, read before an Endless Aisles answer is mapped when `by_barcode` has
    /// never had their barcodes.
    pub catalogues: Arc<super::catalogues::Catalogues>,
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
        products::refresh(&work).await;
        if matches!(slot.client, Source::EndlessAisles(_)) {
            work.catalogues
                .read_missing(&work.mapper, work.fetch_timeout)
                .await;
        }
        // How the records are read includes the mapping and which sizes can be sold: a change
        // there makes the same bytes a new answer.
        let known = lock(&slot.memory).answer.clone();
        let context = work.mapper.context(&slot.name);
        // A new answer needs the per-SKU state to be recorded: it is loaded while the answer
        // is parsed (on the other core), not after.
        let per_sku = work.per_sku.clone();
        let on_new = move || {
            let per_sku = per_sku.clone();
            let load = async move {
                // A failure is kept for the cycle, and recording asks again.
                let _ = per_sku.ensure().await;
            };
            tokio::spawn(tracing::Instrument::in_current_span(load));
        };
        let known = Known {
            digest: &known,
            on_new: &on_new,
        };
        let fetch = slot.client.fetch(&meter, context.as_bytes(), known);
        match tokio::time::timeout(work.fetch_timeout, fetch).await {
            Ok(Ok(Fetched::New(stock, digest))) => {
                match work.mapper.prepare(&slot.name, stock).await {
                    Ok(stock) => Ok(Fetched::New(stock, digest)),
                    Err(e) => Err(Failure::Other(format!(
                        "the SKU mapping could not be read from the database: {e}"
                    ))),
                }
            }
            Ok(Ok(Fetched::Same)) => Ok(Fetched::Same),
            Ok(Err(ConnectorError::Http(HttpError::Cancelled))) => Err(Failure::Cancelled),
            Ok(Err(ConnectorError::Auth(message))) => Err(Failure::AuthRefused(message)),
            Ok(Err(e)) => Err(Failure::Other(e.to_string())),
            Err(_) => Err(Failure::Other(format!(
                "the fetch took longer than daemon.fetch_timeout ({})",
                humantime::format_duration(work.fetch_timeout)
            ))),
        }
    };
    let mut held = false;
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
                unabsorbed: None,
                interrupted: true,
                held: false,
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
    let (mut unrecorded, mut changed, mut unabsorbed) = (None, Vec::new(), None);
    let outcome = match fetched {
        Ok(Fetched::Same) => match same(&work).await {
            Ok(counts) => Ok(counts),
            Err(e) => {
                error!(source = %slot.name, error = %e, "the source's fetch could not be recorded; the targets that read it skip this cycle");
                Err(e.to_string())
            }
        },
        Ok(Fetched::New(records, digest)) => match record(&work, records, digest).await {
            Ok(recorded) => {
                (unrecorded, changed, unabsorbed) =
                    (recorded.fresh, recorded.changes, recorded.unabsorbed);
                Ok(recorded.counts)
            }
            Err(e @ NotUsed::Held { .. }) => {
                held = true;
                error!(source = %slot.name, error = %e, "source held");
                // `status` says what is held: the source's last error names the guard.
                if !work.options.dry_run {
                    let (id, at, message) = (slot.id, store::now_ms(), e.to_string());
                    let recorded = work
                        .store
                        .call(move |c| store::source_failed(c, id, &message, at))
                        .await;
                    if let Err(db) = recorded {
                        error!(source = %slot.name, error = %db, "the hold could not be recorded");
                    }
                }
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
        unabsorbed,
        interrupted: false,
        held,
    }
}

/// The source answered what it answered when its snapshot was recorded: the fetch is complete
/// (for staleness), and nothing else is written or published.
async fn same(work: &SourceWork) -> Result<SourceCounts, StoreError> {
    let slot = &work.slot;
    tracing::debug!(source = %slot.name, "the answer is the one recorded last: not parsed again");
    if !work.options.dry_run {
        let (id, at) = (slot.id, store::now_ms());
        work.store
            .call(move |c| store::source_answered_same(c, id, at))
            .await?;
    }
    Ok(SourceCounts {
        skus: lock(&slot.memory).reported,
        changed: 0,
        same: true,
    })
}

/// What [`record`] did.
struct Recorded {
    counts: SourceCounts,
    /// A dry run's snapshot.
    fresh: Option<Arc<Column>>,
    /// Every change, where order feeds need them.
    changes: Vec<Change>,
    /// Their key in `unabsorbed_changes`, when they were written there.
    unabsorbed: Option<(i64, i64)>,
}

/// Makes the fresh snapshot, writes what changed in one transaction (with, where order feeds
/// need them, the changes for the reservations: a crash before those are taken in loses no
/// sale), then publishes it (a dry run writes and publishes nothing and returns it instead).
async fn record(
    work: &SourceWork,
    records: Stock,
    digest: AnswerDigest,
) -> Result<Recorded, NotUsed> {
    let slot = &work.slot;
    work.per_sku.ensure().await?;
    let recording = Instant::now();
    let mut persisted = work.recorder.lock().await;
    let old = slot.snapshot.borrow().clone();
    let now = store::now_ms();
    let (fresh, new_names) = {
        let mut names = work.names.write().unwrap_or_else(|p| p.into_inner());
        let fresh = snapshot_of(&mut names, &old, records, &slot.name);
        // Looking names up may have found one twice: nothing is recorded from a damaged file.
        store::names_once(&names).map_err(|e| work.per_sku.inconsistent(e))?;
        // A dry run never writes names; the recorder's count stays with what the file has. The
        // new names are encoded as they are written (the recorder is held till then, so no
        // other source adds names meanwhile).
        (fresh, (*persisted, names.len()))
    };
    // The answer is in the snapshot and the names: a first answer of a million SKUs (32 MB)
    // is not held while they are written, nor while its changes are listed.
    let changed = changed_since(&fresh.column, &old);
    let counts = SourceCounts {
        skus: fresh.count_reported,
        changed: changed.len(),
        same: false,
    };
    // The source-level guard: an empty answer from a minor input must not wipe its SKUs on a
    // target that sums it with a larger one.
    // Only changes to 0 matter to the guard: a first fetch of a million SKUs must not hold a
    // second copy of every change.
    let to_zero: Vec<Change> = changed
        .iter()
        .filter(|&&sku| fresh.column.get(sku) == Some(0))
        .map(|&sku| Change {
            sku,
            old: old.get(sku),
            new: 0,
        })
        .collect();
    // Every change, for the reservations' drops, only where order feeds need them.
    let all_changes: Vec<Change> = if work.keep_changes {
        changed
            .iter()
            .map(|&sku| Change {
                sku,
                old: old.get(sku),
                new: fresh.column.get(sku).unwrap_or(0),
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
        return Ok(Recorded {
            counts,
            fresh: Some(Arc::new(fresh.column)),
            changes: all_changes,
            unabsorbed: None,
        });
    }
    // A first snapshot drops nothing: every change comes from nothing.
    let unabsorbed =
        (old.iter().next().is_some() && !all_changes.is_empty()).then(|| store::Unabsorbed {
            source: slot.id,
            at: now,
            changes: all_changes
                .iter()
                .map(|c| (c.sku, c.new - c.old.unwrap_or(0)))
                .filter(|&(_, change)| change != 0)
                .collect(),
        });
    let key = unabsorbed.as_ref().map(|u| (u.source, u.at));
    let (id, at, reported, (names_from, named)) = (slot.id, now, fresh.count_reported, new_names);
    let names = work.names.clone();
    let column = Arc::new(fresh.column);
    let written = column.clone();
    // A change moves the world on; an answer that changed nothing (its records reordered)
    // leaves every target as settled as it was.
    let turn = if changed.is_empty() {
        None
    } else {
        Some(work.generation.next().await)
    };
    let generation = turn.as_ref().map(|t| t.number);
    let stored = digest.clone();
    let (count, zeroed) = (changed.len(), zeroings.clone());
    let writing = Instant::now();
    work.store
        .call(move |c| {
            let tx = c.transaction()?;
            store::write_answer(&tx, id, stored.as_bytes())?;
            if let Some(generation) = generation {
                store::write_generation(&tx, generation)?;
            }
            {
                let names = names.read().unwrap_or_else(|p| p.into_inner());
                store::write_names_from(&tx, &names, names_from)?;
            }
            store::write_changed(&tx, Side::Source, id, &changed, &written)?;
            store::write_zeroings(&tx, Side::Source, id, &zeroed)?;
            if forced {
                store::restart_guard(&tx, Side::Source, id, at)?;
            }
            store::source_fetched(&tx, id, reported, at)?;
            if let Some(changes) = &unabsorbed {
                store::write_unabsorbed(&tx, changes)?;
            }
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
        memory.answer = digest;
        memory.reported = reported;
    }
    // Recorded: memory follows the database; the generation moves on only once the snapshot is
    // published, so a target that saw it has planned from the snapshot too.
    slot.snapshot.send_replace(column);
    if let Some(turn) = turn {
        turn.published();
    }
    tracing::debug!(source = %slot.name, changed = count, ms = recording.elapsed().as_millis() as u64, write_ms = writing.elapsed().as_millis() as u64, "snapshot recorded");
    Ok(Recorded {
        counts,
        fresh: None,
        changes: all_changes,
        unabsorbed: key,
    })
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

/// The new snapshot from a complete fetch (a SKU reported before but absent now is 0).
/// Connectors report each SKU once; one reported twice counts once, at the smaller quantity,
/// with a WARN: doubt must never oversell.
/// The answer is used up: a first one becomes the SKU table and the column where it lies.
fn snapshot_of(skus: &mut SkuTable, old: &Column, records: Stock, source: &str) -> Fresh {
    let (mut column, held_skus) = if skus.is_empty() {
        match records.into_first() {
            Ok((table, column, held)) => {
                *skus = table;
                (column, held)
            }
            Err(records) => interned(skus, old, records, source),
        }
    } else {
        interned(skus, old, records, source)
    };
    // A record whose quantity could not be read holds its SKU at the last snapshot quantity
    // (absent if it has none): the rest of the answer is used, and doubt changes nothing.
    let mut held = std::collections::HashSet::new();
    for sku in &held_skus {
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
    Fresh {
        column,
        count_reported,
    }
}

/// The column of `records`, each name interned one by one, and the SKUs to hold.
fn interned(
    skus: &mut SkuTable,
    old: &Column,
    records: Stock,
    source: &str,
) -> (Column, Vec<String>) {
    let mut column = Column::with_width(skus.len().max(old.width()));
    skus.expect_new(records.len().saturating_sub(skus.len()));
    let mut near = 0;
    for (sku, quantity) in records.iter() {
        let id = skus.intern_near(sku, &mut near);
        match column.get(id) {
            None => column.set(id, quantity),
            Some(first) => {
                let kept = first.min(quantity);
                tracing::warn!(source, sku = %sku, kept, "the source reported this SKU twice; the smaller quantity counts");
                column.set(id, kept);
            }
        }
    }
    (column, records.into_held())
}

/// The SKUs whose quantity in `column` is not the one in `old`.
fn changed_since(column: &Column, old: &Column) -> Vec<SkuId> {
    column
        .iter()
        .filter(|&(sku, q)| old.get(sku) != Some(q))
        .map(|(sku, _)| sku)
        .collect()
}
