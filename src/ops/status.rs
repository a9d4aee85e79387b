//! `invsync status`: what the database says, for people (`text`) and scripts (`--json`).
//! It reads only the database, so it works while the daemon runs and when the remotes are down.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use crate::ops::stale;
use crate::plan::ledger::SkuId;
use crate::store::{self, Side, StoreError, now_ms};

/// The whole status.
#[derive(Debug, Serialize)]
pub struct Status {
    /// `daemon.stale_after` in ms: a source without a complete fetch for longer is stale.
    pub stale_after_ms: u64,
    /// Per target.
    pub targets: Vec<TargetStatus>,
    /// Per source.
    pub sources: Vec<SourceStatus>,
    /// The most recent cycles, newest first.
    pub cycles: Vec<CycleStatus>,
}

/// One target.
#[derive(Debug, Serialize)]
pub struct TargetStatus {
    /// `[targets.NAME]`.
    pub name: String,
    /// SKUs with an acknowledged quantity.
    pub tracked: i64,
    /// Changes planned but not acknowledged at the end of the last cycle.
    pub pending: i64,
    /// Why the mass-zero guard holds it, if it does.
    pub held: Option<String>,
    /// Last acknowledged push (ms since the epoch).
    pub last_success_at: Option<i64>,
    /// The last cycle's error, if it failed.
    pub failing: Option<String>,
    /// SKUs the target refused and has not taken since.
    pub failed_skus: i64,
    /// A few of them, with the target's message.
    pub failed_examples: Vec<FailedSku>,
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
    /// When it was first refused (ms since the epoch).
    pub since: i64,
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
    /// Last complete fetch (ms since the epoch).
    pub last_fetch_at: Option<i64>,
    /// The error of its last fetch, if that failed.
    pub failing: Option<String>,
    /// No complete fetch for longer than `daemon.stale_after` (see [`stale::overdue`]).
    pub stale: bool,
}

/// One cycle.
#[derive(Debug, Serialize)]
pub struct CycleStatus {
    /// Cycle id.
    pub id: i64,
    /// Start (ms since the epoch).
    pub started_at: i64,
    /// Wall time, if finished.
    pub duration_ms: Option<i64>,
    /// `ok`, `partial`, `failed`, or none if it never finished (crash or kill).
    pub outcome: Option<String>,
    /// Whether it pushed every SKU.
    pub full: bool,
    /// Per-target summary.
    pub summary: Option<String>,
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
            since: f.first_failed_at,
        })
        .collect();
    Ok((count, examples))
}

/// Reads the status from the database. Of the sources named in `configured`, those without a
/// complete fetch for longer than `stale_after` are stale.
pub fn read(
    conn: &Connection,
    last_cycles: usize,
    stale_after: Duration,
    configured: &[String],
) -> Result<Status, StoreError> {
    let mut targets = Vec::new();
    for row in store::reads::targets(conn)? {
        let (failed_skus, failed_examples) = refused(conn, row.id)?;
        targets.push(TargetStatus {
            name: row.name,
            tracked: store::load_column(conn, Side::Target, row.id)?.count() as i64,
            pending: row.pending,
            held: row.held,
            last_success_at: row.last_success_at,
            failing: row.last_error,
            failed_skus,
            failed_examples,
        });
    }
    let (first_cycle_at, now) = (store::first_cycle_at(conn)?, now_ms());
    let sources = store::reads::sources(conn)?
        .into_iter()
        .map(|row| {
            let stale = configured.contains(&row.name)
                && stale::overdue(row.last_fetch_at, first_cycle_at, now, stale_after).is_some();
            SourceStatus {
                name: row.name,
                skus: row.skus,
                last_fetch_at: row.last_fetch_at,
                failing: row.last_error,
                stale,
            }
        })
        .collect();
    let cycles = store::reads::last_cycles(conn, last_cycles)?
        .into_iter()
        .map(|row| CycleStatus {
            id: row.id,
            started_at: row.started_at,
            duration_ms: row.duration_ms,
            outcome: row.outcome,
            full: row.full,
            summary: row.summary,
        })
        .collect();
    Ok(Status {
        stale_after_ms: u64::try_from(stale_after.as_millis()).unwrap_or(u64::MAX),
        targets,
        sources,
        cycles,
    })
}

/// A timestamp and its age: `2026-11-23T10:00:00Z (3m ago)`.
fn when(at: Option<i64>) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let Ok(ms) = u64::try_from(at) else {
        return "?".to_owned();
    };
    let time = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    let age = Duration::from_secs(u64::try_from((now_ms() - at) / 1000).unwrap_or(0));
    format!(
        "{} ({} ago)",
        humantime::format_rfc3339_seconds(time),
        humantime::format_duration(age)
    )
}

/// The status for people.
pub fn render_text(status: &Status) -> String {
    let mut out = String::from("targets:\n");
    if status.targets.is_empty() {
        out.push_str("  (none yet: no cycle has run)\n");
    }
    for t in &status.targets {
        let state = match (&t.held, &t.failing) {
            (Some(reason), _) => format!(
                "HELD by the mass-zero guard ({reason}); run `invsync once --force` to push"
            ),
            (None, Some(error)) => format!("FAILING: {error}"),
            (None, None) => "ok".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}: {state}\n    tracked {}, pending {}, failed {}, last successful push {}",
            t.name,
            t.tracked,
            t.pending,
            t.failed_skus,
            when(t.last_success_at)
        );
        for f in &t.failed_examples {
            let _ = writeln!(
                out,
                "    refused {} = {} since {}: {}",
                f.sku,
                f.quantity,
                when(Some(f.since)),
                f.message
            );
        }
    }
    out.push_str("sources:\n");
    let stale_after = humantime::format_duration(Duration::from_millis(status.stale_after_ms));
    for s in &status.sources {
        let failing = s.failing.as_deref().map(|e| format!("FAILING: {e}"));
        let state = match (s.stale, failing) {
            // Stale without failing: the daemon has not run for that long.
            (true, failing) => format!(
                "STALE: no complete fetch for longer than stale_after ({stale_after}){}",
                failing.map_or_else(String::new, |f| format!("; {f}"))
            ),
            (false, Some(failing)) => failing,
            (false, None) => "ok".to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}: {state}\n    {} SKUs, last complete fetch {}",
            s.name,
            s.skus,
            when(s.last_fetch_at)
        );
    }
    out.push_str("last cycles:\n");
    for c in &status.cycles {
        let _ = writeln!(
            out,
            "  #{} {} {}{} {}",
            c.id,
            when(Some(c.started_at)),
            c.duration_ms
                .map_or_else(|| "unfinished".to_owned(), |ms| format!("{ms}ms ")),
            c.outcome.as_deref().unwrap_or(""),
            c.summary.as_deref().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, Side, Store};

    #[tokio::test]
    async fn only_a_configured_source_can_be_stale_and_the_text_says_stale() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("invsync.db"))
            .await
            .expect("opens");
        let long_ago = now_ms() - 2 * 3_600_000;
        let configured = vec!["dropship".to_owned(), "warehouse".to_owned()];

        let status = store
            .call(move |c| {
                store::begin_cycle(c, long_ago, false)?;
                for (name, fetched_at) in [
                    ("dropship", long_ago),
                    ("removed", long_ago),
                    ("warehouse", now_ms()),
                ] {
                    let id = store::endpoint_id(c, Side::Source, name)?;
                    store::source_fetched(c, id, 3, fetched_at)?;
                }
                read(c, 10, Duration::from_secs(3600), &configured)
            })
            .await
            .expect("reads");
        let text = render_text(&status);

        let stale: Vec<(&str, bool)> = status
            .sources
            .iter()
            .map(|s| (s.name.as_str(), s.stale))
            .collect();
        assert_eq!(
            stale,
            vec![("dropship", true), ("removed", false), ("warehouse", false)],
            "a source no longer configured is not fetched, so its age means nothing"
        );
        assert!(
            text.contains("dropship: STALE: no complete fetch for longer than stale_after (1h)"),
            "{text}"
        );
        assert!(text.contains("warehouse: ok"), "{text}");
    }
}
