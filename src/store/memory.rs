//! What an endpoint remembers so as not to believe too quickly, across cycles and restarts: the
//! mass-zero guard's memory and window, and the backoff after a refused login.

use super::db::{Connection, params};

use super::deltas::load_column;
use super::deltas::write_changes;
use super::{Side, StoreError};
use crate::plan::Guard;
use crate::plan::backoff::AuthBackoff;
use crate::plan::ledger::{Column, SkuId};

/// One endpoint's memory.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// When each SKU went from positive to 0 (the guard's memory).
    pub zeroed_at: Column,
    /// When `--force` last restarted the guard's window.
    pub guard_since: Option<i64>,
    /// Logins refused in a row.
    pub auth_failures: i64,
    /// No login before this (ms since the epoch).
    pub auth_retry_at: Option<i64>,
}

impl Memory {
    /// The memory as the owner of an endpoint keeps it: its guard (with `max_fraction`), when
    /// `--force` last restarted the guard's window, and its login backoff.
    pub fn into_parts(self, max_fraction: f64) -> (Guard, Option<i64>, AuthBackoff) {
        let guard = Guard {
            zeroed_at: self.zeroed_at,
            since: 0,
            max_fraction,
        };
        let auth = AuthBackoff {
            failures: self.auth_failures,
            retry_at: self.auth_retry_at,
        };
        (guard, self.guard_since, auth)
    }
}

fn memory_side(side: Side) -> Side {
    match side {
        Side::Source | Side::SourceZeroedAt => Side::SourceZeroedAt,
        Side::Target | Side::TargetZeroedAt => Side::TargetZeroedAt,
    }
}

/// Reads an endpoint's memory.
pub fn load_memory(conn: &Connection, side: Side, id: i64) -> Result<Memory, StoreError> {
    let (guard_since, auth_failures, auth_retry_at) = conn.query_row(
        &format!(
            "SELECT guard_since, auth_failures, auth_retry_at FROM {} WHERE id = ?1",
            side.table()
        ),
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(Memory {
        zeroed_at: load_column(conn, memory_side(side), id)?,
        guard_since,
        auth_failures,
        auth_retry_at,
    })
}

/// Writes the guard's memory of zeroings (`(SKU, when)`), as a delta of it.
pub fn write_zeroings(
    conn: &Connection,
    side: Side,
    id: i64,
    zeroings: &[(SkuId, i64)],
) -> Result<(), StoreError> {
    write_changes(conn, memory_side(side), id, zeroings).map(|_| ())
}

/// `--force`: zeroings before `since` no longer count.
pub fn restart_guard(conn: &Connection, side: Side, id: i64, since: i64) -> Result<(), StoreError> {
    conn.execute(
        &format!("UPDATE {} SET guard_since = ?2 WHERE id = ?1", side.table()),
        params![id, since],
    )?;
    Ok(())
}

/// A login was refused: the `failures`-th in a row; the next is not before `retry_at`.
pub fn auth_refused(
    conn: &Connection,
    side: Side,
    id: i64,
    failures: i64,
    retry_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "UPDATE {} SET auth_failures = ?2, auth_retry_at = ?3 WHERE id = ?1",
            side.table()
        ),
        params![id, failures, retry_at],
    )?;
    Ok(())
}

/// The credentials an endpoint is configured with now (a keyed fingerprint): when they differ
/// from those a refused login was made with, the operator changed them, and the backoff is over.
pub fn credentials_now(
    conn: &Connection,
    side: Side,
    id: i64,
    fingerprint: &str,
) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "UPDATE {} SET auth_failures = 0, auth_retry_at = NULL, auth_credential = ?2
             WHERE id = ?1 AND auth_credential IS DISTINCT FROM ?2",
            side.table()
        ),
        params![id, fingerprint],
    )?;
    Ok(())
}

/// A login worked (or the credentials changed): the backoff is over.
pub fn auth_accepted(conn: &Connection, side: Side, id: i64) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "UPDATE {} SET auth_failures = 0, auth_retry_at = NULL WHERE id = ?1 AND auth_failures > 0",
            side.table()
        ),
        [id],
    )?;
    Ok(())
}
