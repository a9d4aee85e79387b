//! What `invsync status` reads: the rows of endpoints, refusals and cycles, as plain values.

use super::db::{Connection, OptionalExtension, params};

use super::StoreError;
use crate::plan::ledger::SkuId;

/// A target's row.
#[derive(Debug, Clone)]
pub struct TargetRow {
    pub id: i64,
    pub name: String,
    pub pending: i64,
    /// Why the mass-zero guard holds it, when it does.
    pub held: Option<String>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    /// `(pushed, total)` of the push in flight, if one is (see [`super::target_progress`]).
    pub progress: Option<(i64, i64)>,
    /// When its last cycle ended, whatever the outcome; `None`: never.
    pub synced_at: Option<i64>,
    /// SKUs sent to it without their acknowledgement coming back (see [`super::doubt`]).
    pub in_doubt: i64,
}

/// A source's row.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub name: String,
    pub skus: i64,
    pub last_fetch_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A cycle's row.
#[derive(Debug, Clone)]
pub struct CycleRow {
    pub id: i64,
    pub started_at: i64,
    pub duration_ms: Option<i64>,
    pub outcome: Option<String>,
    pub full: bool,
    pub summary: Option<String>,
}

/// A refused SKU's row.
#[derive(Debug, Clone)]
pub struct RefusalRow {
    pub sku: SkuId,
    pub quantity: i64,
    pub message: String,
    pub first_failed_at: i64,
    /// When it is tried again (`None`: at the next cycle).
    pub next_attempt_at: Option<i64>,
}

/// Every target's row, by name.
pub fn targets(conn: &Connection) -> Result<Vec<TargetRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, pending, CASE WHEN held <> 0 THEN held_reason END, last_success_at, last_error,
                progress_pushed, progress_total, synced_at, coalesce(length(in_doubt), 0) / 4
         FROM targets ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        let progress = match (r.get::<_, Option<i64>>(6)?, r.get::<_, Option<i64>>(7)?) {
            (Some(pushed), Some(total)) => Some((pushed, total)),
            _ => None,
        };
        Ok(TargetRow {
            id: r.get(0)?,
            name: r.get(1)?,
            pending: r.get(2)?,
            held: r.get(3)?,
            last_success_at: r.get(4)?,
            last_error: r.get(5)?,
            progress,
            synced_at: r.get(8)?,
            in_doubt: r.get(9)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
}

/// Every source's row, by name.
pub fn sources(conn: &Connection) -> Result<Vec<SourceRow>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT name, skus, last_fetch_at, last_error FROM sources ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(SourceRow {
            name: r.get(0)?,
            skus: r.get(1)?,
            last_fetch_at: r.get(2)?,
            last_error: r.get(3)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
}

/// Whether the newest cycle has not finished: one is running now (or the process running it
/// died, until the next start).
pub fn cycle_in_flight(conn: &Connection) -> Result<bool, StoreError> {
    let unfinished: Option<bool> = conn
        .query_row(
            "SELECT finished_at IS NULL FROM cycles ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(unfinished.unwrap_or(false))
}

/// The newest `limit` cycles, newest first.
pub fn last_cycles(conn: &Connection, limit: usize) -> Result<Vec<CycleRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, started_at, duration_ms, outcome, \"full\", summary FROM cycles ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(CycleRow {
            id: r.get(0)?,
            started_at: r.get(1)?,
            duration_ms: r.get(2)?,
            outcome: r.get(3)?,
            full: r.get(4)?,
            summary: r.get(5)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
}

/// How many SKUs a target refused, and the first `limit` of them (oldest refusal first).
pub fn refusals(
    conn: &Connection,
    target: i64,
    limit: usize,
) -> Result<(i64, Vec<RefusalRow>), StoreError> {
    let count = conn.query_row(
        "SELECT count(*) FROM failed_skus WHERE target_id = ?1",
        [target],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(
        "SELECT sku_id, quantity, message, first_failed_at, next_attempt_at FROM failed_skus
         WHERE target_id = ?1 ORDER BY first_failed_at, sku_id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![target, limit as i64], |r| {
        Ok(RefusalRow {
            sku: r.get(0)?,
            quantity: r.get(1)?,
            message: r.get(2)?,
            first_failed_at: r.get(3)?,
            next_attempt_at: r.get(4)?,
        })
    })?;
    Ok((count, rows.collect::<Result<_, _>>()?))
}

/// The target's message if it refused `sku` and has not taken it since.
pub fn refusal_message(
    conn: &Connection,
    target: i64,
    sku: SkuId,
) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT message FROM failed_skus WHERE target_id = ?1 AND sku_id = ?2",
        params![target, sku],
        |r| r.get(0),
    )
    .optional()
}
