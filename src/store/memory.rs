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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ledger::SkuTable;
    use crate::store::chunks::{name_chunks_from, write_name_chunks};
    use crate::store::db::testing::on_both_engines;

    /// Source 1, target 1, and ten named SKUs.
    fn endpoints(conn: &Connection) {
        conn.execute("INSERT INTO sources (id, name) VALUES (1, 'stock')", [])
            .expect("source");
        conn.execute(
            "INSERT INTO targets (id, name) VALUES (1, 'hardtofind')",
            [],
        )
        .expect("target");
        let mut table = SkuTable::default();
        for i in 0..10 {
            table.push(&format!("SKU-{i}"));
        }
        write_name_chunks(conn, &name_chunks_from(&table, 0)).expect("names");
    }

    fn login(memory: &Memory) -> (i64, Option<i64>) {
        (memory.auth_failures, memory.auth_retry_at)
    }

    on_both_engines! {
        fn an_endpoints_guard_memory_and_login_backoff_read_back_each_on_its_own_side(conn) {
            endpoints(&conn);
            let fresh = load_memory(&conn, Side::Target, 1).expect("loads");
            assert_eq!(
                (fresh.zeroed_at.count(), fresh.guard_since, login(&fresh)),
                (0, None, (0, None))
            );

            write_zeroings(&conn, Side::Target, 1, &[(2, 1_000), (5, 2_000)]).expect("zeroings");
            write_zeroings(&conn, Side::Source, 1, &[(3, 3_000)]).expect("zeroings");
            restart_guard(&conn, Side::Target, 1, 1_500).expect("--force");
            auth_refused(&conn, Side::Source, 1, 3, 9_000).expect("refused");

            let target = load_memory(&conn, Side::Target, 1).expect("loads");
            let source = load_memory(&conn, Side::Source, 1).expect("loads");
            assert_eq!(target.zeroed_at.iter().collect::<Vec<_>>(), [(2, 1_000), (5, 2_000)]);
            assert_eq!((target.guard_since, login(&target)), (Some(1_500), (0, None)));
            assert_eq!(source.zeroed_at.iter().collect::<Vec<_>>(), [(3, 3_000)]);
            assert_eq!((source.guard_since, login(&source)), (None, (3, Some(9_000))));
        }

        fn a_login_backoff_ends_when_a_login_works_or_the_credentials_change(conn) {
            endpoints(&conn);
            let backoff =
                |conn: &Connection| login(&load_memory(conn, Side::Target, 1).expect("loads"));
            credentials_now(&conn, Side::Target, 1, "fingerprint-1").expect("first");
            auth_refused(&conn, Side::Target, 1, 2, 5_000).expect("refused");

            credentials_now(&conn, Side::Target, 1, "fingerprint-1").expect("the same");
            assert_eq!(backoff(&conn), (2, Some(5_000)), "the same credentials: still waiting");
            credentials_now(&conn, Side::Target, 1, "fingerprint-2").expect("changed");
            assert_eq!(backoff(&conn), (0, None), "new credentials: tried at once");

            auth_refused(&conn, Side::Target, 1, 1, 6_000).expect("refused again");
            auth_accepted(&conn, Side::Target, 1).expect("accepted");
            assert_eq!(backoff(&conn), (0, None), "a login that works ends it");
        }
    }
}
