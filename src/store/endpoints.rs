//! Which endpoints the database holds state for, and whose that state is.
//!
//! At start the configured sources and targets are reconciled with the rows: a row whose name is
//! no longer configured is deleted with all its state; a row whose stored identity differs from
//! the configured one loses its snapshot or acknowledgements (they were about another place);
//! a row with no identity yet (a database from before identities) adopts the configured one.

use super::db::{Connection, OptionalExtension, params};

use super::{Side, StoreError};

/// What reconciling did to one endpoint, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// A configured endpoint the database did not know.
    New { name: String },
    /// Its identity changed: its state was dropped.
    Changed { name: String },
    /// No longer configured: deleted with its state.
    Removed { name: String },
}

/// The key of the identities' fingerprints, made once per database.
pub fn fingerprint_key(conn: &Connection) -> Result<Vec<u8>, StoreError> {
    let key: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'fingerprint_key'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(key) = key {
        return Ok(key);
    }
    let key: [u8; 32] = rand::random();
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('fingerprint_key', ?1)",
        [&key[..]],
    )?;
    Ok(key.to_vec())
}

/// The key of the fingerprints if the database has one yet, without making it (for read-only
/// use).
pub fn existing_fingerprint_key(conn: &Connection) -> Result<Option<Vec<u8>>, StoreError> {
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'fingerprint_key'",
        [],
        |r| r.get(0),
    )
    .optional()
}

/// What [`reconcile`] would find, without changing anything: each configured endpoint's row id
/// where the row exists and its state is about the configured place (`None`: a dry run plans it
/// from nothing, as the real cycle would).
pub fn inspect(
    conn: &Connection,
    side: Side,
    configured: &[(String, String)],
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT id, identity FROM {} WHERE name = ?1",
        side.table()
    ))?;
    configured
        .iter()
        .map(|(name, identity)| {
            let row: Option<(i64, Option<String>)> = stmt
                .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(match row {
                Some((id, None)) => Some(id),
                Some((id, Some(stored))) if stored == *identity => Some(id),
                _ => None,
            })
        })
        .collect()
}

/// Whether any cycle has run on this database (a target new to a database that has history
/// was, or may have been, removed and added again).
pub fn has_history(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .query_row("SELECT 1 FROM cycles LIMIT 1", [], |_| Ok(()))
        .optional()?
        .is_some())
}

/// When each source (by row id; `None` for one without a row) last fetched completely.
pub fn last_fetch_times(
    conn: &Connection,
    sources: &[Option<i64>],
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut stmt = conn.prepare("SELECT last_fetch_at FROM sources WHERE id = ?1")?;
    sources
        .iter()
        .map(|id| match id {
            Some(id) => Ok(stmt
                .query_row([id], |r| r.get::<_, Option<i64>>(0))
                .optional()?
                .flatten()),
            None => Ok(None),
        })
        .collect()
}

/// Brings `side`'s rows in line with the configured `(name, stored identity)` pairs, in one
/// transaction; returns each row's id in the order given, and what changed.
pub fn reconcile(
    conn: &mut Connection,
    side: Side,
    configured: &[(String, String)],
) -> Result<(Vec<i64>, Vec<Reconciled>), StoreError> {
    let table = side.table();
    let tx = conn.transaction()?;
    let mut changes = Vec::new();
    let existing: Vec<(i64, String)> = {
        let mut stmt = tx.prepare(&format!("SELECT id, name FROM {table}"))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    for (id, name) in existing {
        if !configured.iter().any(|(n, _)| *n == name) {
            drop_state(&tx, side, id)?;
            tx.execute(&format!("DELETE FROM {table} WHERE id = ?1"), [id])?;
            changes.push(Reconciled::Removed { name });
        }
    }
    let mut ids = Vec::with_capacity(configured.len());
    for (name, identity) in configured {
        let row: Option<(i64, Option<String>)> = tx
            .query_row(
                &format!("SELECT id, identity FROM {table} WHERE name = ?1"),
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let id = match row {
            None => {
                let id = tx.query_row(
                    &format!("INSERT INTO {table} (name, identity) VALUES (?1, ?2) RETURNING id"),
                    params![name, identity],
                    |r| r.get(0),
                )?;
                changes.push(Reconciled::New { name: name.clone() });
                id
            }
            Some((id, Some(stored))) if stored != *identity => {
                drop_state(&tx, side, id)?;
                tx.execute(
                    &format!("UPDATE {table} SET identity = ?2 WHERE id = ?1"),
                    params![id, identity],
                )?;
                changes.push(Reconciled::Changed { name: name.clone() });
                id
            }
            Some((id, None)) => {
                tx.execute(
                    &format!("UPDATE {table} SET identity = ?2 WHERE id = ?1"),
                    params![id, identity],
                )?;
                id
            }
            Some((id, Some(_))) => id,
        };
        ids.push(id);
    }
    tx.commit()?;
    Ok((ids, changes))
}

/// Forgets what an endpoint's row says about a place: its quantities, refusals and health.
fn drop_state(conn: &Connection, side: Side, id: i64) -> Result<(), StoreError> {
    let memory = match side {
        Side::Source | Side::SourceZeroedAt => Side::SourceZeroedAt,
        Side::Target | Side::TargetZeroedAt => Side::TargetZeroedAt,
    };
    for series in [side, memory] {
        conn.execute(
            "DELETE FROM quantity_chunks WHERE side = ?1 AND endpoint = ?2",
            params![super::chunks::side_code(series), id],
        )?;
        super::deltas::drop_deltas(conn, series, id)?;
    }
    match side {
        Side::Target | Side::TargetZeroedAt => {
            conn.execute("DELETE FROM failed_skus WHERE target_id = ?1", [id])?;
            conn.execute("DELETE FROM flags WHERE target_id = ?1", [id])?;
            conn.execute(
                "DELETE FROM unchangeable_products WHERE target_id = ?1",
                [id],
            )?;
            conn.execute("DELETE FROM barcodes WHERE target_id = ?1", [id])?;
            conn.execute(
                "UPDATE targets SET last_success_at = NULL, pending = 0, held = 0, held_reason = NULL,
                        last_error = NULL, last_error_at = NULL, guard_since = NULL,
                        auth_failures = 0, auth_retry_at = NULL, settled = NULL, in_doubt = NULL
                 WHERE id = ?1",
                [id],
            )?;
        }
        Side::Source | Side::SourceZeroedAt => {
            conn.execute("DELETE FROM ea_sizes WHERE source_id = ?1", [id])?;
            conn.execute("DELETE FROM ea_products_read WHERE source_id = ?1", [id])?;
            conn.execute(
                "UPDATE sources SET last_fetch_at = NULL, skus = 0, last_error = NULL,
                        last_error_at = NULL, guard_since = NULL, auth_failures = 0,
                        auth_retry_at = NULL, answer_digest = NULL WHERE id = ?1",
                [id],
            )?;
        }
    }
    Ok(())
}
