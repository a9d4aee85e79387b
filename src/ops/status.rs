//! `invsync status`: what the database says, for people (`text`), scripts (`--json`) and
//! monitoring (`--check`). It reads only the database, so it works while the daemon runs and
//! when the remotes are down, and it lists only the sources and targets the file configures
//! (a removed one's rows stay until the daemon's next start, and mean nothing now).

use std::collections::HashMap;
use std::time::Duration;

use crate::store::db::Connection;
use serde::Serialize;

use crate::config::StatusSettings;
use crate::ops::stale;
use crate::plan::ledger::SkuId;
use crate::services::shopsys::flag::Unchangeable;
use crate::store::reads::TargetRow;
use crate::store::{self, Side, StoreError, now_ms};
use crate::targets::SKIPPED_HELD;

pub use reservations::{ReservationsStatus, StuckOrder};
pub use text::{check_line, render_text};

pub mod held;
pub mod mapping;
pub mod relay;
mod reservations;
mod text;

/// The whole status.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The database it was read from.
    pub database: String,
    /// Whether it exists: without it, every target is `never synced`.
    pub database_exists: bool,
    /// `daemon.stale_after`: a source without a complete fetch for longer is stale.
    pub stale_after_ms: u64,
    /// Per configured target.
    pub targets: Vec<TargetStatus>,
    /// Per configured source.
    pub sources: Vec<SourceStatus>,
    /// Per configured order feed.
    pub feeds: Vec<FeedStatus>,
    /// What open orders hold.
    pub reservations: ReservationsStatus,
    /// The dropship relay's orders, when it has any.
    pub relay: relay::RelayStatus,
    /// The most recent cycles, newest first.
    pub cycles: Vec<CycleStatus>,
    /// SKU mapping: conflicts, and SKUs a target cannot map.
    pub mapping: mapping::MappingStatus,
    /// Everything held, and why (see [`held`]): never "in sync" while this is
    /// not empty.
    pub held: Vec<held::Held>,
}

/// A target's state, as the contract names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// No cycle has ended for it yet.
    NeverSynced,
    /// A push is in flight: `pushed` of `total` acknowledged so far.
    Syncing {
        /// Acknowledged so far.
        pushed: i64,
        /// Planned.
        total: i64,
    },
    /// Its last cycle acknowledged every change.
    InSync,
    /// Its last cycle left changes unacknowledged (interrupted, or a push cut short).
    Pending(i64),
    /// The mass-zero guard holds it.
    Held,
    /// In sync but for this many SKUs that are held (a mapping conflict, sizes waiting for a
    /// catalogue): they are not what they should be, and nothing is pushed for them.
    HeldSkus(usize),
    /// Its last cycle failed (or skipped it: an input could not be fetched).
    Failing,
}

impl TargetState {
    /// `never synced`, `syncing n/m`, `in sync`, `PENDING n`, `HELD`, `HELD n SKUs`,
    /// `FAILING`.
    pub fn label(&self) -> String {
        match self {
            TargetState::NeverSynced => "never synced".to_owned(),
            TargetState::Syncing { pushed, total } => format!("syncing {pushed}/{total}"),
            TargetState::InSync => "in sync".to_owned(),
            TargetState::Pending(n) => format!("PENDING {n}"),
            TargetState::Held => "HELD".to_owned(),
            TargetState::HeldSkus(1) => "HELD 1 SKU".to_owned(),
            TargetState::HeldSkus(n) => format!("HELD {n} SKUs"),
            TargetState::Failing => "FAILING".to_owned(),
        }
    }
}

/// One target.
#[derive(Debug, Serialize)]
pub struct TargetStatus {
    /// `[targets.NAME]`.
    pub name: String,
    /// Its state; `label` is the same in words.
    pub state: TargetState,
    /// [`TargetState::label`].
    pub label: String,
    /// SKUs with an acknowledged quantity.
    pub tracked: i64,
    /// Changes planned but not acknowledged at the end of the last cycle.
    pub pending: i64,
    /// Why the mass-zero guard holds it, if it does.
    pub held: Option<String>,
    /// Last acknowledged push.
    pub last_success_at: Option<String>,
    /// The last cycle's error, if it failed.
    pub failing: Option<String>,
    /// SKUs the target refused and has not taken since.
    pub failed_skus: i64,
    /// A few of them, with the target's message.
    pub failed_examples: Vec<FailedSku>,
    /// SKUs sent to it without their acknowledgement coming back (a lost answer, a crash): it
    /// may show what was sent, so they are pushed again at the next cycle whatever the plan.
    pub in_doubt: i64,
    /// Catalogue products the API cannot change (a variant or main variant): not refusals of
    /// the target, and tried again only when they change or a week later.
    pub unchangeable_total: i64,
    /// The first few of them, by SKU.
    pub unchangeable: Vec<UnchangeableProduct>,
}

/// A catalogue product the API cannot change.
#[derive(Debug, Clone, Serialize)]
pub struct UnchangeableProduct {
    /// The SKU it was matched to.
    pub sku: String,
    /// Its uuid.
    pub product: String,
    /// What the shop said (a production install says only `Bad Request`).
    pub message: String,
    /// When it was refused.
    pub refused_at: Option<String>,
    /// When it is tried again at the latest (sooner if the product changes).
    pub retry_at: Option<String>,
}

/// The status of one recorded unchangeable product.
pub fn unchangeable_product((product, u): (String, Unchangeable)) -> UnchangeableProduct {
    UnchangeableProduct {
        sku: u.sku.clone(),
        product,
        retry_at: rfc3339(u.retry_at()),
        refused_at: rfc3339(u.refused_at),
        message: u.message,
    }
}

/// A SKU a target refused.
#[derive(Debug, Serialize)]
pub struct FailedSku {
    /// The SKU.
    pub sku: String,
    /// The quantity refused.
    pub quantity: i64,
    /// The target's message.
    pub message: String,
    /// When it was first refused.
    pub first_refused_at: Option<String>,
    /// When it is tried again (1, 2, 4, … cycles after each refusal, at most a day apart).
    pub next_attempt_at: Option<String>,
}

/// How many refused SKUs `status` lists per target.
const FAILED_EXAMPLES: usize = 5;

/// One source.
#[derive(Debug, Serialize)]
pub struct SourceStatus {
    /// `[sources.NAME]`.
    pub name: String,
    /// SKUs in its last complete fetch.
    pub skus: i64,
    /// Last complete fetch.
    pub last_fetch_at: Option<String>,
    /// The error of its last fetch, if that failed.
    pub failing: Option<String>,
    /// No complete fetch for longer than `daemon.stale_after` (see [`stale::overdue`]).
    pub stale: bool,
}

/// One order feed: as much a part of the sync as a source (its orders are subtracted), so
/// failing and stale the same way.
#[derive(Debug, Serialize)]
pub struct FeedStatus {
    /// `[orders.NAME]`.
    pub name: String,
    /// Last complete read of its open lists.
    pub last_read_at: Option<String>,
    /// The error of its last read, if that failed: its reservations stand as they were.
    pub failing: Option<String>,
    /// No complete read for longer than `daemon.stale_after`.
    pub stale: bool,
    /// Orders of its last complete read that could not be read whole: each holds what it held
    /// before (a new one, the lines that could be read).
    pub unreadable: Vec<store::UnreadableOrder>,
}

/// One cycle.
#[derive(Debug, Serialize)]
pub struct CycleStatus {
    /// Cycle id.
    pub id: i64,
    /// Start.
    pub started_at: Option<String>,
    /// Wall time, if finished.
    pub duration_ms: Option<i64>,
    /// `ok`, `partial`, `failed`, or none if it never finished (crash or kill).
    pub outcome: Option<String>,
    /// Whether it pushed every SKU.
    pub full: bool,
    /// Per-target summary.
    pub summary: Option<String>,
}

/// A database time (ms since the epoch) in RFC 3339, UTC, to the millisecond.
pub fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn stale_after_ms(stale_after: Duration) -> u64 {
    u64::try_from(stale_after.as_millis()).unwrap_or(u64::MAX)
}

/// The status when there is no database yet: every configured target never synced, every
/// source never fetched.
pub fn without_database(settings: &StatusSettings) -> Status {
    Status {
        database: settings.database.to_string(),
        database_exists: false,
        stale_after_ms: stale_after_ms(settings.stale_after),
        targets: settings
            .targets
            .iter()
            .map(|t| never_synced(&t.name))
            .collect(),
        sources: settings
            .sources
            .iter()
            .map(|name| SourceStatus {
                name: name.clone(),
                skus: 0,
                last_fetch_at: None,
                failing: None,
                stale: false,
            })
            .collect(),
        feeds: (settings.feeds.iter())
            .map(|name| FeedStatus {
                name: name.clone(),
                last_read_at: None,
                failing: None,
                stale: false,
                unreadable: Vec::new(),
            })
            .collect(),
        reservations: ReservationsStatus::default(),
        relay: Default::default(),
        cycles: Vec::new(),
        mapping: Default::default(),
        held: Vec::new(),
    }
}

fn never_synced(name: &str) -> TargetStatus {
    TargetStatus {
        name: name.to_owned(),
        label: TargetState::NeverSynced.label(),
        state: TargetState::NeverSynced,
        tracked: 0,
        pending: 0,
        held: None,
        last_success_at: None,
        failing: None,
        failed_skus: 0,
        failed_examples: Vec::new(),
        in_doubt: 0,
        unchangeable_total: 0,
        unchangeable: Vec::new(),
    }
}

/// The state of a target's row; `in_flight`: the newest cycle has not finished.
fn state_of(row: &TargetRow, in_flight: bool) -> TargetState {
    match row {
        TargetRow {
            progress: Some((pushed, total)),
            ..
        } if in_flight => TargetState::Syncing {
            pushed: *pushed,
            total: *total,
        },
        TargetRow {
            synced_at: None,
            last_success_at: None,
            ..
        } => TargetState::NeverSynced,
        TargetRow { held: Some(_), .. } => TargetState::Held,
        TargetRow {
            last_error: Some(_),
            ..
        } => TargetState::Failing,
        TargetRow { pending, .. } if *pending > 0 => TargetState::Pending(*pending),
        _ => TargetState::InSync,
    }
}

/// How many SKUs a target refused, and the first few with their names.
fn refused(conn: &Connection, target: i64) -> Result<(i64, Vec<FailedSku>), StoreError> {
    let (count, failed) = store::reads::refusals(conn, target, FAILED_EXAMPLES)?;
    let ids: Vec<SkuId> = failed.iter().map(|f| f.sku).collect();
    let names: HashMap<SkuId, String> = store::sku_names(conn, &ids)?.into_iter().collect();
    let examples = failed
        .into_iter()
        .map(|f| FailedSku {
            sku: names
                .get(&f.sku)
                .cloned()
                .unwrap_or_else(|| format!("#{}", f.sku)),
            quantity: f.quantity,
            message: f.message,
            first_refused_at: rfc3339(f.first_failed_at),
            next_attempt_at: f.next_attempt_at.and_then(rfc3339),
        })
        .collect();
    Ok((count, examples))
}

/// Reads the status of the configured targets and sources from the database.
pub fn read(
    conn: &Connection,
    last_cycles: usize,
    settings: &StatusSettings,
) -> Result<Status, StoreError> {
    let mut rows: HashMap<String, TargetRow> = store::reads::targets(conn)?
        .into_iter()
        .map(|row| (row.name.clone(), row))
        .collect();
    let in_flight = store::reads::cycle_in_flight(conn)?;
    let mut targets = Vec::new();
    for rules in &settings.targets {
        let Some(mut row) = rows.remove(&rules.name) else {
            targets.push(never_synced(&rules.name));
            continue;
        };
        // A target that skipped because the guard holds an input is held, not failing: it
        // keeps what it shows until the source recovers or `once --force`.
        if row.held.is_none()
            && let Some(inputs) = row
                .last_error
                .as_deref()
                .and_then(|e| e.strip_prefix(SKIPPED_HELD))
        {
            row.held = Some(format!("input {inputs}"));
        }
        let (failed_skus, failed_examples) = refused(conn, row.id)?;
        let (unchangeable_total, unchangeable) =
            store::unchangeable_of_target(conn, row.id, FAILED_EXAMPLES)?;
        let state = state_of(&row, in_flight);
        // During a push, what is planned and not acknowledged yet; else what the last cycle
        // left.
        let pending = match state {
            TargetState::Syncing { pushed, total } => (total - pushed).max(0),
            _ => row.pending,
        };
        targets.push(TargetStatus {
            name: row.name,
            label: state.label(),
            state,
            tracked: store::load_column(conn, Side::Target, row.id)?.count() as i64,
            pending,
            held: row.held,
            last_success_at: row.last_success_at.and_then(rfc3339),
            failing: row.last_error,
            failed_skus,
            failed_examples,
            in_doubt: row.in_doubt,
            unchangeable_total,
            unchangeable: unchangeable.into_iter().map(unchangeable_product).collect(),
        });
    }
    let (first_cycle_at, now) = (store::first_cycle_at(conn)?, now_ms());
    let mut source_rows: HashMap<String, store::reads::SourceRow> = store::reads::sources(conn)?
        .into_iter()
        .map(|row| (row.name.clone(), row))
        .collect();
    let sources: Vec<SourceStatus> = settings
        .sources
        .iter()
        .map(|name| {
            let row = source_rows.remove(name);
            let last_fetch_at = row.as_ref().and_then(|r| r.last_fetch_at);
            SourceStatus {
                name: name.clone(),
                skus: row.as_ref().map_or(0, |r| r.skus),
                last_fetch_at: last_fetch_at.and_then(rfc3339),
                failing: row.and_then(|r| r.last_error),
                stale: stale::overdue(last_fetch_at, first_cycle_at, now, settings.stale_after)
                    .is_some(),
            }
        })
        .collect();
    let feeds = feeds(conn, settings, first_cycle_at, now)?;
    let cycles = store::reads::last_cycles(conn, last_cycles)?
        .into_iter()
        .map(|row| CycleStatus {
            id: row.id,
            started_at: rfc3339(row.started_at),
            duration_ms: row.duration_ms,
            outcome: row.outcome,
            full: row.full,
            summary: row.summary,
        })
        .collect();
    let names: Vec<String> = settings.targets.iter().map(|t| t.name.clone()).collect();
    let mapping = mapping::read(conn, &names)?;
    let waiting = held::waiting(conn)?;
    let held = held::held(
        &mut targets,
        &settings.targets,
        &sources,
        &mapping,
        &waiting,
    );
    Ok(Status {
        database: settings.database.to_string(),
        database_exists: true,
        stale_after_ms: stale_after_ms(settings.stale_after),
        targets,
        sources,
        feeds,
        reservations: reservations::read(conn, now)?,
        relay: relay::read(
            conn,
            now,
            settings.relay_alert_after.unwrap_or(Duration::MAX),
        )?,
        cycles,
        mapping,
        held,
    })
}

/// The configured order feeds, as last read.
fn feeds(
    conn: &Connection,
    settings: &StatusSettings,
    first_cycle_at: Option<i64>,
    now: i64,
) -> Result<Vec<FeedStatus>, StoreError> {
    let mut rows: HashMap<String, store::FeedRow> = store::feeds(conn)?
        .into_iter()
        .map(|row| (row.name.clone(), row))
        .collect();
    Ok((settings.feeds.iter())
        .map(|name| {
            let row = rows.remove(name).unwrap_or_default();
            FeedStatus {
                name: name.clone(),
                last_read_at: row.last_read_at.and_then(rfc3339),
                failing: row.last_error,
                stale: stale::overdue(row.last_read_at, first_cycle_at, now, settings.stale_after)
                    .is_some(),
                unreadable: row.unreadable,
            }
        })
        .collect())
}

/// An age in milliseconds, to the minute (enough to act on): `2h 5m`; `under a minute` below
/// one (a bare `0s` read as "just now" where `relay list` said `37s`).
pub(super) fn to_the_minute(ms: i64) -> String {
    if ms < 60_000 {
        return "under a minute".to_owned();
    }
    humantime::format_duration(Duration::from_secs(
        u64::try_from(ms / 60_000 * 60).unwrap_or(0),
    ))
    .to_string()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod minute_tests {
    use super::to_the_minute;

    #[test]
    fn an_age_under_a_minute_says_so_rather_than_nought() {
        assert_eq!(to_the_minute(37_000), "under a minute");
        assert_eq!(to_the_minute(0), "under a minute");
        assert_eq!(to_the_minute(60_000), "1m");
        assert_eq!(to_the_minute(2 * 3_600_000 + 5 * 60_000 + 59_000), "2h 5m");
    }
}
