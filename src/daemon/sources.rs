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
use super::slots::{Names, NewAnswers, Recorder, SourceMemory, SourceSlot};
use crate::http::HttpError;
use crate::http::Meter;
use crate::ops::report::{SourceCounts, SourceReport};
use crate::ops::rfc3339;
use crate::plan::Change;
use crate::plan::ledger::{Column, SkuId};
use crate::services::{ConnectorError, Fetched, Known, Source};
use crate::store::{self, Side, Store, StoreError};
use crate::targets::CycleOptions;

mod products;
mod record;

use record::record;

/// What changed in a source's snapshot, for the reservations' drops: each change, or for a
/// first snapshot (every SKU new: none fell) the snapshot itself, so that a first answer of
/// millions of SKUs is not listed again change by change.
#[derive(Debug)]
pub enum SourceChanges {
    /// Each change.
    Listed(Vec<Change>),
    /// A first snapshot: every SKU in it rose from nothing to its quantity.
    First(Arc<Column>),
}

impl Default for SourceChanges {
    fn default() -> SourceChanges {
        SourceChanges::Listed(Vec::new())
    }
}

impl SourceChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        match self {
            SourceChanges::Listed(changes) => changes.is_empty(),
            SourceChanges::First(column) => column.iter().next().is_none(),
        }
    }

    /// Each SKU's change in quantity (negative: a fall).
    pub fn deltas(&self) -> Box<dyn Iterator<Item = (SkuId, i64)> + '_> {
        match self {
            SourceChanges::Listed(changes) => {
                Box::new(changes.iter().map(|c| (c.sku, c.new - c.old.unwrap_or(0))))
            }
            SourceChanges::First(column) => Box::new(column.iter()),
        }
    }
}

/// How one source's part of a cycle ended.
#[derive(Debug)]
pub struct SourceDone {
    /// For the summary line.
    pub report: SourceReport,
    /// A dry run's fresh snapshot, which is not recorded or published (`None` otherwise).
    pub unrecorded: Option<Arc<Column>>,
    /// What changed in its snapshot (for the reservations' drops).
    pub changed: SourceChanges,
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
    /// The world's generation, moved on by every recorded change (see `targets::settled`).
    pub generation: Generation,
    /// Loads every SKU's name and the snapshots, which a new answer is recorded against.
    pub per_sku: Arc<PerSku>,
    /// Its index among the sources, and whom to tell once its answer is known new.
    pub index: usize,
    pub news: NewAnswers,
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
    let fetched = fetch(&work, &meter).await;
    let Some(fetched) = logged_in(&work, fetched).await else {
        // A stop is not an error: nothing is logged at ERROR and nothing recorded.
        return SourceDone {
            report: report(slot, Err("interrupted by shutdown".to_owned()), &meter),
            unrecorded: None,
            changed: SourceChanges::default(),
            unabsorbed: None,
            interrupted: true,
            held: false,
        };
    };
    tracing::debug!(source = %slot.name, ms = started.elapsed().as_millis() as u64, "source fetched and parsed");
    let used = use_fetched(&work, fetched).await;
    SourceDone {
        report: report(slot, used.outcome, &meter),
        unrecorded: used.unrecorded,
        changed: used.changed,
        unabsorbed: used.unabsorbed,
        interrupted: false,
        held: used.held,
    }
}

/// The source's line in the cycle report.
fn report(slot: &SourceSlot, outcome: Result<SourceCounts, String>, meter: &Meter) -> SourceReport {
    SourceReport {
        name: slot.name.clone(),
        outcome,
        requests: meter.requests(),
        retries: meter.retries(),
    }
}

/// The source's answer, within `fetch_timeout`, its records under their canonical SKUs; no
/// request while a refused login is waited out. The Endless Aisles products and the
/// catalogues' barcodes the mapping needs are read first.
async fn fetch(work: &SourceWork, meter: &Meter) -> Result<Fetched, Failure> {
    let slot = &work.slot;
    let waiting = lock(&slot.memory)
        .auth
        .waiting(store::now_ms())
        .filter(|_| !work.options.dry_run);
    if let Some(at) = waiting {
        return Err(Failure::Waiting(at));
    }
    products::refresh(work).await;
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
    let (news, index) = (work.news.clone(), work.index);
    let on_new = move || {
        news.tell(index);
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
    let fetch = slot.client.fetch(meter, context.as_bytes(), known);
    match tokio::time::timeout(work.fetch_timeout, fetch).await {
        Ok(Ok(Fetched::New(stock, digest))) => match work.mapper.prepare(&slot.name, stock).await {
            Ok(stock) => Ok(Fetched::New(stock, digest)),
            Err(e) => Err(Failure::Other(format!(
                "the SKU mapping could not be read from the database: {e}"
            ))),
        },
        Ok(Ok(Fetched::Same)) => Ok(Fetched::Same),
        Ok(Err(ConnectorError::Http(HttpError::Cancelled))) => Err(Failure::Cancelled),
        Ok(Err(ConnectorError::Auth(message))) => Err(Failure::AuthRefused(message)),
        Ok(Err(e)) => Err(Failure::Other(e.to_string())),
        Err(_) => Err(Failure::Other(format!(
            "the fetch took longer than daemon.fetch_timeout ({})",
            humantime::format_duration(work.fetch_timeout)
        ))),
    }
}

/// What the fetch says of the login: an answer ends a login backoff, a refusal starts or
/// lengthens one; a failure becomes its error. `None`: shutdown cut the fetch short.
async fn logged_in(
    work: &SourceWork,
    fetched: Result<Fetched, Failure>,
) -> Option<Result<Fetched, String>> {
    Some(match fetched {
        Ok(stock) => {
            clear_auth_backoff(work).await;
            Ok(stock)
        }
        Err(Failure::Cancelled) => return None,
        Err(Failure::Waiting(at)) => {
            let failures = lock(&work.slot.memory).auth.failures;
            Err(format!(
                "the source refused the credentials {failures} times in a row; the next login is at {}",
                rfc3339(at)
            ))
        }
        Err(Failure::AuthRefused(message)) => Err(auth_refused(work, &message).await),
        Err(Failure::Other(e)) => Err(e),
    })
}

/// What became of a fetch.
struct Used {
    outcome: Result<SourceCounts, String>,
    unrecorded: Option<Arc<Column>>,
    changed: SourceChanges,
    unabsorbed: Option<(i64, i64)>,
    held: bool,
}

impl Used {
    /// An outcome and nothing else.
    fn only(outcome: Result<SourceCounts, String>) -> Used {
        Used {
            outcome,
            unrecorded: None,
            changed: SourceChanges::default(),
            unabsorbed: None,
            held: false,
        }
    }
}

/// Records what the source answered (or that it answered as before), or that it failed or is
/// held, in which case its targets skip this cycle.
async fn use_fetched(work: &SourceWork, fetched: Result<Fetched, String>) -> Used {
    let slot = &work.slot;
    match fetched {
        Ok(Fetched::Same) => match same(work).await {
            Ok(counts) => Used::only(Ok(counts)),
            Err(e) => {
                error!(source = %slot.name, error = %e, "the source's fetch could not be recorded; the targets that read it skip this cycle");
                Used::only(Err(e.to_string()))
            }
        },
        Ok(Fetched::New(records, digest)) => match record(work, records, digest).await {
            Ok(recorded) => Used {
                outcome: Ok(recorded.counts),
                unrecorded: recorded.fresh,
                changed: recorded.changes,
                unabsorbed: recorded.unabsorbed,
                held: false,
            },
            Err(e @ NotUsed::Held { .. }) => {
                error!(source = %slot.name, error = %e, "source held");
                // `status` says what is held: the source's last error names the guard.
                if let Err(db) = record_failure(work, e.to_string()).await {
                    error!(source = %slot.name, error = %db, "the hold could not be recorded");
                }
                Used {
                    held: true,
                    ..Used::only(Err(e.to_string()))
                }
            }
            Err(e) => {
                error!(source = %slot.name, error = %e, "the source's snapshot could not be recorded; the targets that read it skip this cycle");
                Used::only(Err(e.to_string()))
            }
        },
        Err(e) => {
            error!(source = %slot.name, error = %e, "source fetch failed; the targets that read it skip this cycle and retry at the next");
            if let Err(db) = record_failure(work, e.clone()).await {
                error!(source = %slot.name, error = %db, "the failure could not be recorded");
            }
            Used::only(Err(e))
        }
    }
}

/// Records the source's error, which `status` shows (not in a dry run).
async fn record_failure(work: &SourceWork, message: String) -> Result<(), StoreError> {
    if work.options.dry_run {
        return Ok(());
    }
    let (id, at) = (work.slot.id, store::now_ms());
    work.store
        .call(move |c| store::source_failed(c, id, &message, at))
        .await
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
