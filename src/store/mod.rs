//! SQLite: the state that survives a restart or a crash.
//!
//! What is on disk: every SKU name once (`skus`), each source's latest complete snapshot
//! (`source_stock`), each target's acknowledged quantities (`acknowledged`: written only after
//! the target answered 2xx), per-endpoint health (`sources`, `targets`) and the cycle history
//! (`cycles`). Writes are only ever of rows that changed, one transaction per step.
//!
//! The schema is versioned with `PRAGMA user_version` and upgraded by [`MIGRATIONS`] at open.
//! All calls run on the blocking pool ([`Store::call`]), never on the async runtime.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::plan::ledger::SkuId;

pub mod access;
mod chunks;
mod endpoints;
pub mod lock;
mod migrations;
pub mod reads;

pub use chunks::{
    CHUNK, Chunk, load_column, load_skus, name_chunks_from, quantity_chunks_after, quantity_of,
    sku_names, write_name_chunks, write_quantity_chunks,
};
pub use endpoints::{
    Reconciled, existing_fingerprint_key, fingerprint_key, has_history, inspect, last_fetch_times,
    reconcile,
};

/// A database problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database folder could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file was written by a newer invsync.
    #[error(
        "database schema version {found} is newer than this invsync knows ({known}); upgrade invsync"
    )]
    TooNew {
        /// On disk.
        found: i64,
        /// Known here.
        known: i64,
    },
    /// The file was written by an older invsync and is read without being upgraded.
    #[error(
        "database schema version {found} is older than this invsync's ({known}); start `invsync run` or `invsync once` once to upgrade it"
    )]
    Outdated {
        /// On disk.
        found: i64,
        /// Known here.
        known: i64,
    },
    /// Something the database holds contradicts itself.
    #[error("database is inconsistent: {0}")]
    Corrupt(String),
    /// The blocking task did not finish (the runtime is shutting down).
    #[error("database task did not finish")]
    Join,
}

/// Milliseconds since the Unix epoch, the unit of every timestamp in the database.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The database, shared by the cycle's tasks.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating file and folder if missing) and migrates the database.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || open_blocking(&path))
            .await
            .map_err(|_| StoreError::Join)??;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Opens an existing database read-only, never creating, migrating or writing it: for
    /// `status`, `check` and dry runs, which must work beside a running daemon and on a read-only
    /// file system. `None` when there is no database file yet.
    pub async fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        let path = path.to_path_buf();
        let conn = tokio::task::spawn_blocking(move || open_read_only_blocking(&path))
            .await
            .map_err(|_| StoreError::Join)??;
        Ok(conn.map(|conn| Store {
            conn: Arc::new(Mutex::new(conn)),
        }))
    }

    /// A fresh, empty database in memory: what a dry run plans against when there is no
    /// database yet.
    pub async fn in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (transactions roll
            // back), so a poisoned lock is still a usable connection.
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| StoreError::Join)?
    }
}

fn open_blocking(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.display().to_string(),
            source,
        })?;
    }
    create_private(path).map_err(|source| StoreError::CreateDir {
        path: path.display().to_string(),
        source,
    })?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL with NORMAL is durable against a process crash (what invsync must survive); only an
    // OS crash may lose the last transactions, which the next cycle simply pushes again.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrations::migrate(&mut conn)?;
    Ok(conn)
}

/// Creates the database file, if missing, readable by its owner alone (0600): it names every SKU
/// and quantity of the shop. SQLite gives its `-wal` and `-shm` files the same mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn open_read_only_blocking(path: &Path) -> Result<Option<Connection>, StoreError> {
    use rusqlite::OpenFlags;
    if !path.exists() {
        return Ok(None);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
    let version = |conn: &Connection| -> Result<i64, rusqlite::Error> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
    };
    let conn = Connection::open_with_flags(path, flags)?;
    let (conn, found) = match version(&conn) {
        Ok(found) => (conn, found),
        // A WAL database on a read-only file system cannot make its shared-memory file: read it
        // as immutable instead (nothing can be writing it there).
        Err(_) => {
            let uri = format!("file:{}?immutable=1", path.display());
            let conn = Connection::open_with_flags(uri, flags)?;
            let found = version(&conn)?;
            (conn, found)
        }
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let known = migrations::VERSION;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    if found < known {
        return Err(StoreError::Outdated { found, known });
    }
    Ok(Some(conn))
}

/// Which kind of endpoint a row is about.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    /// `sources`, and source snapshots.
    Source,
    /// `targets`, and acknowledged quantities.
    Target,
}

impl Side {
    fn table(self) -> &'static str {
        match self {
            Side::Source => "sources",
            Side::Target => "targets",
        }
    }
}

/// The id of the named source or target, creating its row the first time.
pub fn endpoint_id(conn: &Connection, side: Side, name: &str) -> Result<i64, StoreError> {
    let table = side.table();
    conn.execute(
        &format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)"),
        [name],
    )?;
    Ok(conn.query_row(
        &format!("SELECT id FROM {table} WHERE name = ?1"),
        [name],
        |r| r.get(0),
    )?)
}

/// The id of the named source or target, if the database has it (without creating it).
pub fn find_endpoint(conn: &Connection, side: Side, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT id FROM {} WHERE name = ?1", side.table()),
            [name],
            |r| r.get(0),
        )
        .optional()?)
}

/// Every `(sku, quantity)` of the named source's snapshot or target's acknowledgements; empty
/// when the database does not know that name.
pub fn quantities_by_name(
    conn: &Connection,
    side: Side,
    name: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let id: Option<i64> = conn
        .query_row(
            &format!("SELECT id FROM {} WHERE name = ?1", side.table()),
            [name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else { return Ok(Vec::new()) };
    let skus = load_skus(conn)?;
    let column = load_column(conn, side, id)?;
    Ok(column
        .iter()
        .filter(|&(sku, _)| (sku as usize) < skus.len())
        .map(|(sku, q)| (skus.name(sku).to_owned(), q))
        .collect())
}

/// A source's fetch succeeded: when, and how many SKUs it reported.
pub fn source_fetched(
    conn: &Connection,
    source: i64,
    skus: usize,
    at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sources SET last_fetch_at = ?2, skus = ?3, last_error = NULL, last_error_at = NULL WHERE id = ?1",
        params![source, at, skus as i64],
    )?;
    Ok(())
}

/// A source's fetch failed.
pub fn source_failed(
    conn: &Connection,
    source: i64,
    error: &str,
    at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sources SET last_error = ?2, last_error_at = ?3 WHERE id = ?1",
        params![source, error, at],
    )?;
    Ok(())
}

/// Records a target's acknowledged batch (its quantity chunks as they are with the batch) and
/// marks the push successful, in one transaction; `healed` are SKUs of the batch that had
/// failed before, whose failure is now over.
pub fn acknowledge(
    conn: &mut Connection,
    target: i64,
    chunks: &[Chunk],
    healed: &[SkuId],
    at: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    write_quantity_chunks(&tx, Side::Target, target, chunks)?;
    tx.execute(
        "UPDATE targets SET last_success_at = ?2 WHERE id = ?1",
        params![target, at],
    )?;
    {
        let mut delete =
            tx.prepare_cached("DELETE FROM failed_skus WHERE target_id = ?1 AND sku_id = ?2")?;
        for sku in healed {
            delete.execute(params![target, sku])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// One SKU a target refused, with its own words.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The SKU.
    pub sku: SkuId,
    /// The quantity that was refused.
    pub quantity: i64,
    /// The target's message.
    pub message: String,
}

/// Records SKUs a target refused (keeping when each first failed).
pub fn record_refusals(
    conn: &mut Connection,
    target: i64,
    refusals: &[Refusal],
    at: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO failed_skus (target_id, sku_id, quantity, message, first_failed_at, last_failed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (target_id, sku_id) DO UPDATE SET
                 quantity = excluded.quantity, message = excluded.message, last_failed_at = excluded.last_failed_at",
        )?;
        for r in refusals {
            upsert.execute(params![target, r.sku, r.quantity, r.message, at])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The SKUs a target has refused and not accepted since.
pub fn load_failed(
    conn: &Connection,
    target: i64,
) -> Result<std::collections::HashSet<SkuId>, StoreError> {
    let mut stmt = conn.prepare("SELECT sku_id FROM failed_skus WHERE target_id = ?1")?;
    let rows = stmt.query_map([target], |r| r.get::<_, SkuId>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How a target's cycle ended, for `status`.
#[derive(Debug, Clone, Default)]
pub struct TargetOutcome {
    /// Changes still not acknowledged.
    pub pending: usize,
    /// Why the mass-zero guard holds it, if it does.
    pub held: Option<String>,
    /// Why it could not be brought in sync, if it could not.
    pub error: Option<String>,
}

/// Stores how a target's cycle ended (its push, if any, is over: the progress is cleared).
pub fn target_outcome(
    conn: &Connection,
    target: i64,
    outcome: &TargetOutcome,
    at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE targets SET pending = ?2, held = ?3, held_reason = ?4,
                last_error = ?5, last_error_at = CASE WHEN ?5 IS NULL THEN last_error_at ELSE ?6 END,
                synced_at = ?6, progress_pushed = NULL, progress_total = NULL, progress_at = NULL
         WHERE id = ?1",
        params![
            target,
            outcome.pending as i64,
            outcome.held.is_some(),
            outcome.held,
            outcome.error,
            at
        ],
    )?;
    Ok(())
}

/// How far a target's push has got: `pushed` of `total` planned changes acknowledged, so
/// `status` shows `syncing pushed/total` while it lasts. The push loop calls it after each
/// acknowledged batch (and with `pushed = 0` as it starts); [`target_outcome`] clears it.
pub fn target_progress(
    conn: &Connection,
    target: i64,
    pushed: usize,
    total: usize,
    at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE targets SET progress_pushed = ?2, progress_total = ?3, progress_at = ?4 WHERE id = ?1",
        params![target, pushed as i64, total as i64, at],
    )?;
    Ok(())
}

/// Opens a cycle row; its id is the cycle id in the logs.
pub fn begin_cycle(conn: &Connection, started_at: i64, full: bool) -> Result<i64, StoreError> {
    conn.execute(
        "INSERT INTO cycles (started_at, full) VALUES (?1, ?2)",
        params![started_at, full],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Closes a cycle row.
pub fn finish_cycle(
    conn: &Connection,
    id: i64,
    duration_ms: i64,
    outcome: &str,
    summary: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE cycles SET finished_at = ?2, duration_ms = ?3, outcome = ?4, summary = ?5 WHERE id = ?1",
        params![id, now_ms(), duration_ms, outcome, summary],
    )?;
    Ok(())
}

/// When the database's first cycle started (ms since the epoch), if one ever did.
pub fn first_cycle_at(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT started_at FROM cycles ORDER BY id LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?)
}

/// The next cycle id a dry run would have (it writes no row).
pub fn next_cycle_id(conn: &Connection) -> Result<i64, StoreError> {
    let last: Option<i64> = conn
        .query_row("SELECT max(id) FROM cycles", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(last.unwrap_or(0) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_new_database_is_created_0600_with_its_folder_and_reopens_at_the_same_version() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/state/invsync.db");
        let store = Store::open(&path).await.expect("opens");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("created").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "a new database is the owner's alone");
        store
            .call(|c| {
                let id = endpoint_id(c, Side::Target, "hardtofind")?;
                let mut skus = crate::plan::ledger::SkuTable::default();
                skus.intern("A");
                skus.intern("B");
                write_name_chunks(c, &name_chunks_from(&skus, 0))?;
                let chunks = quantity_chunks_after(
                    &crate::plan::ledger::Column::default(),
                    &[(0, 5), (1, 0)],
                );
                acknowledge(c, id, &chunks, &[], now_ms())?;
                Ok(())
            })
            .await
            .expect("writes");
        drop(store);
        let store = Store::open(&path).await.expect("reopens");
        let (skus, acked, version) = store
            .call(|c| {
                let id = endpoint_id(c, Side::Target, "hardtofind")?;
                let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
                Ok((load_skus(c)?, load_column(c, Side::Target, id)?, version))
            })
            .await
            .expect("reads");
        assert_eq!(version, migrations::VERSION);
        assert_eq!(skus.name(1), "B");
        assert_eq!(acked.get(0), Some(5));
        assert_eq!(acked.get(1), Some(0));
    }

    #[tokio::test]
    async fn a_database_from_a_newer_invsync_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("invsync.db");
        {
            let conn = Connection::open(&path).expect("opens");
            conn.pragma_update(None, "user_version", 99).expect("sets");
        }
        let error = Store::open(&path).await.err().expect("refused");
        assert!(
            matches!(error, StoreError::TooNew { found: 99, .. }),
            "{error}"
        );
    }
}
