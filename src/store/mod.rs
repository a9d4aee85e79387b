//! SQLite: the state that survives a restart or a crash.
//!
//! What is on disk: every SKU name once (`skus`), each source's latest complete snapshot
//! (`source_stock`), each target's acknowledged quantities (`acknowledged`: written only after
//! the target answered 2xx), per-endpoint health (`sources`, `targets`) and the cycle history
//! (`cycles`). Writes are only ever of rows that changed, one transaction per step.
//!
//! The schema is versioned with `PRAGMA user_version` and upgraded by [`MIGRATIONS`] at open.
//! All calls run on the blocking pool ([`Store::call`]), never on the async runtime.
//!
//! Every error says what kind of trouble it is ([`Trouble`]), which decides the exit status.
//! Nothing read back is trusted blindly: a file that contradicts itself is
//! [`StoreError::Corrupt`] here, never a panic later.
//! The cycle history and forgotten SKUs are pruned ([`prune_cycles`], [`prune_sku_names`]).
//! A daemon's database stops being written the moment its file (or lock file) is found removed
//! or replaced under it ([`Store::check_files`], `file.rs`).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use db::{Connection, OptionalExtension, params};

use crate::plan::ledger::SkuId;

pub mod access;
mod chunks;
pub mod db;
mod deltas;
pub use deltas::{
    FOLD_AFTER, Written, fold, fold_all, load_column, quantity_of, write_changed, write_changes,
    write_voids,
};
mod endpoints;
mod feeds;
mod file;
pub use feeds::{FeedRead, FeedRow, UnreadableOrder, feeds, prune_feeds, record_feed_reads};
pub use file::{FileId, Moved};
mod flags;
pub mod lock;
pub mod mapping;
mod memory;
mod reservations;
mod unchangeable;
pub use reservations::{
    Unabsorbed, all_reservations, forget_unabsorbed, load_reservations, load_unabsorbed,
    reservations_of, write_reservation_changes, write_unabsorbed,
};
mod migrations;
mod pg_schema;
mod prune;
pub mod reads;
mod relay;
pub use relay::{
    Approval, open_for_approval, relay_approve, relay_auto_approve, relay_counts,
    relay_insert_seen, relay_record, relay_records, relay_write,
};
mod doubt;
pub use doubt::{before_request, in_doubt_blob, load_in_doubt};
mod settled;
pub use settled::{
    load_answer, load_generation, load_settled, source_answered_same, write_answer,
    write_generation, write_settled,
};

pub use chunks::{
    CHUNK, Chunk, load_skus, name_chunks_from, names_once, sku_count, sku_names, write_name_chunks,
    write_names_from,
};
pub use endpoints::{
    Reconciled, existing_fingerprint_key, fingerprint_key, has_history, inspect, last_fetch_times,
    reconcile,
};
pub use flags::{load_flags, write_flags};
pub use memory::{
    Memory, auth_accepted, auth_refused, credentials_now, load_memory, restart_guard,
    write_zeroings,
};
pub use prune::{
    CYCLE_RETENTION, CycleRetention, SKU_NAMES_PRUNED_EVERY_MS, prune_cycles, prune_sku_names,
    prune_sku_names_when_due,
};
pub use unchangeable::{
    forget_unchangeable, load_unchangeable, unchangeable_of_sku, unchangeable_of_target,
    write_unchangeable,
};

/// A database problem.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no. Shown on one line: SQLite's messages may quote a whole statement.
    #[error("database: {}", one_line(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// The database folder could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The folder.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file system holding the database has no room left.
    #[error("disk full: the database at {path} cannot be written; free some space ({detail})")]
    DiskFull {
        /// The database file.
        path: String,
        /// What failed, in its own words.
        detail: String,
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
    /// The mapping file's lines recorded are not those of the file this process checked: a
    /// daemon beside it took a newer file meanwhile, and the file is not the one checked either.
    #[error(
        "the mapping file changed since this invsync checked it, and the database holds another: {0}; run it again"
    )]
    MappingChanged(String),
    /// The blocking task did not finish (the runtime is shutting down).
    #[error("database task did not finish")]
    Join,
    /// The database file (or its lock file) is no longer the one opened: nothing more is
    /// written, and the daemon stops so that its restart works on the file now there.
    #[error(transparent)]
    Moved(#[from] Moved),
    /// PostgreSQL could not be reached (no connection from the pool in time).
    #[error("database: PostgreSQL cannot be reached: {0}")]
    Unreachable(String),
    /// A fleet worker's lease on the shop ran out before a remote action: nothing is sent.
    #[error("the lease on shop {schema} ran out: nothing more is sent until it is held again")]
    LeaseEnded {
        /// The shop's schema.
        schema: String,
    },
    /// A query that must find a row found none.
    #[error("database: a row expected is missing")]
    NoRows,
    /// PostgreSQL said no, or could not be reached. Shown on one line, without the URL.
    #[error("database: {}", pg_one_line(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The shop's lease moved to another worker (or expired) before this write: nothing of it
    /// was written, and this worker lets the shop go.
    #[error(
        "the lease on {group} (epoch {epoch}) is no longer this worker's: the write was refused"
    )]
    Fenced {
        /// The lease group.
        group: String,
        /// The epoch this worker held.
        epoch: i64,
    },
}

impl From<pg_schema::PgSchemaError> for StoreError {
    fn from(e: pg_schema::PgSchemaError) -> StoreError {
        match e {
            pg_schema::PgSchemaError::Sql(e) => StoreError::Postgres(e),
            pg_schema::PgSchemaError::TooNew { found, known } => {
                StoreError::TooNew { found, known }
            }
            pg_schema::PgSchemaError::Corrupt(why) => StoreError::Corrupt(why),
        }
    }
}

/// What kind of trouble a [`StoreError`] is, which decides the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// Passing, on this machine: the disk is full, or the file is busy. Restarting later helps.
    Temporary,
    /// The database contradicts itself, is damaged, or is from a newer invsync: it must be
    /// rebuilt (or invsync upgraded); restarting does not help.
    Inconsistent,
    /// The configured path cannot hold a database (not a folder, no permission): fix
    /// `daemon.database`.
    Unusable,
    /// Anything else.
    Other,
}

impl StoreError {
    /// Sorts the error for the exit status (see [`Trouble`]).
    pub fn trouble(&self) -> Trouble {
        use rusqlite::ErrorCode as C;
        match self {
            // Restarting is the cure: the new process opens the file now at the path.
            StoreError::DiskFull { .. } | StoreError::Moved(_) | StoreError::Unreachable(_) => {
                Trouble::Temporary
            }
            StoreError::Corrupt(_) | StoreError::TooNew { .. } => Trouble::Inconsistent,
            StoreError::CreateDir { .. } => Trouble::Unusable,
            StoreError::Sqlite(e) => match sqlite_code(e) {
                Some(C::DiskFull | C::DatabaseBusy | C::DatabaseLocked) => Trouble::Temporary,
                Some(C::DatabaseCorrupt | C::NotADatabase) => Trouble::Inconsistent,
                Some(C::CannotOpen | C::ReadOnly | C::PermissionDenied) => Trouble::Unusable,
                _ => Trouble::Other,
            },
            StoreError::Postgres(e) => pg_trouble(e),
            StoreError::Outdated { .. }
            | StoreError::MappingChanged(_)
            | StoreError::Join
            | StoreError::NoRows
            | StoreError::Fenced { .. }
            | StoreError::LeaseEnded { .. } => Trouble::Other,
        }
    }
}

/// SQLite's primary result code of `e`, if SQLite produced it.
fn sqlite_code(e: &rusqlite::Error) -> Option<rusqlite::ErrorCode> {
    match e {
        rusqlite::Error::SqlInputError { error, .. } => Some(error.code),
        other => other.sqlite_error_code(),
    }
}

/// What kind of trouble PostgreSQL's error is: a lost connection, a server shutting down or
/// short of resources, a conflict between transactions pass; data errors are the data's.
fn pg_trouble(e: &tokio_postgres::Error) -> Trouble {
    if e.is_closed() {
        return Trouble::Temporary;
    }
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection or the network failed.
        return Trouble::Temporary;
    };
    match &code.code()[..2] {
        // Connection exception, insufficient resources, operator intervention, transaction
        // rollback (serialization failure, deadlock).
        "08" | "53" | "57" | "40" => Trouble::Temporary,
        // Data corrupted.
        "XX" => Trouble::Inconsistent,
        // Invalid authorization, insufficient privilege, invalid catalog (no such database).
        "28" | "42" if code.code() == "42501" => Trouble::Unusable,
        "28" | "3D" => Trouble::Unusable,
        _ => Trouble::Other,
    }
}

/// PostgreSQL's words on one line: its message, and the detail when there is one.
pub(crate) fn pg_one_line(e: &tokio_postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => e.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SQLite's words on one line, without the statement it may quote in full.
fn one_line(e: &rusqlite::Error) -> String {
    let text = match e {
        rusqlite::Error::SqlInputError { msg, .. } => msg.clone(),
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Milliseconds since the Unix epoch, the unit of every timestamp in the database.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A time for people and for JSON: RFC 3339 in UTC, to the second (ms since the epoch in).
pub fn rfc3339(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// The database, shared by the cycle's tasks.
#[derive(Clone)]
pub struct Store {
    engine: Backend,
    /// The files a daemon's database works through (`None`: read-only or in memory, where
    /// nothing is written that could go astray).
    files: Option<Arc<file::Files>>,
}

/// Where a [`Store`]'s calls go.
#[derive(Clone)]
enum Backend {
    /// One SQLite connection, taken in turn.
    Sqlite(Arc<Mutex<Connection>>),
    /// A connection from the pool for each call, in the shop's schema.
    Postgres(Arc<db::shop::PgShop>),
}

impl Store {
    /// The shop in `schema` of the PostgreSQL database `pool` reaches (the schema made, and
    /// migrated, now).
    pub async fn open_postgres(
        pool: deadpool_postgres::Pool,
        schema: &str,
    ) -> Result<Store, StoreError> {
        Ok(Store {
            engine: Backend::Postgres(db::shop::PgShop::open(pool, schema).await?),
            // Nothing but the schema's lock, once a daemon watches it.
            files: Some(Arc::default()),
        })
    }

    /// The shop in `schema` read as it is, for `status`, `check` and dry runs: never made,
    /// migrated or written (its transactions are read-only), so they work beside a running
    /// daemon. `None` when the schema does not exist yet (or holds no tables of invsync); one of
    /// another version is refused as a SQLite file of another version is.
    pub async fn open_postgres_read_only(
        pool: deadpool_postgres::Pool,
        schema: &str,
    ) -> Result<Option<Store>, StoreError> {
        Store::open_postgres_existing(pool, schema, true).await
    }

    /// The shop in `schema` as it is, to approve a relay order beside a running daemon (see
    /// [`open_for_approval`]): writable, never made nor migrated; `None` as in
    /// [`Store::open_postgres_read_only`].
    pub async fn open_postgres_for_approval(
        pool: deadpool_postgres::Pool,
        schema: &str,
    ) -> Result<Option<Store>, StoreError> {
        Store::open_postgres_existing(pool, schema, false).await
    }

    async fn open_postgres_existing(
        pool: deadpool_postgres::Pool,
        schema: &str,
        read_only: bool,
    ) -> Result<Option<Store>, StoreError> {
        let shop = db::shop::PgShop::open_existing(pool, schema, read_only).await?;
        Ok(shop.map(|shop| Store {
            engine: Backend::Postgres(shop),
            files: None,
        }))
    }

    /// The shop's PostgreSQL schema, when its state lives there (for fencing its writes).
    pub fn postgres(&self) -> Option<&db::shop::PgShop> {
        match &self.engine {
            Backend::Postgres(shop) => Some(shop),
            Backend::Sqlite(_) => None,
        }
    }

    /// Whether this process may act on the shop remotely now (push a batch, place an order):
    /// always with SQLite; on PostgreSQL, while a fleet worker's lease lasts (see
    /// [`db::shop::PgShop::act_until`]). Checked just before each request, after the fenced write
    /// that precedes it: a worker stalled between the two (SIGSTOP) does not send what another
    /// worker may now be sending.
    pub fn may_act(&self) -> Result<(), StoreError> {
        match &self.engine {
            Backend::Postgres(shop) if !shop.may_act() => Err(StoreError::LeaseEnded {
                schema: shop.schema().to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Opens (creating file and folder if missing) and migrates the database, and remembers the
    /// file it opened (see [`Store::check_files`]).
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let path = path.to_path_buf();
        let (conn, opened) = tokio::task::spawn_blocking(move || {
            let conn = open_blocking(&path)?;
            // Just opened: the path reaches the file SQLite holds.
            let opened = std::fs::metadata(&path).ok().map(|m| FileId::of(&m));
            Ok::<_, StoreError>((conn, opened.map(|id| (path, id))))
        })
        .await
        .map_err(|_| StoreError::Join)??;
        let files = file::Files::default();
        if let Some((path, id)) = opened {
            files.watch(file::Kind::Database, &path, id);
        }
        Ok(Store {
            engine: Backend::Sqlite(Arc::new(Mutex::new(conn))),
            files: Some(Arc::new(files)),
        })
    }

    /// Watches the lock file too: one removed or replaced lets a second daemon start beside
    /// this one (see [`Store::check_files`]).
    pub fn watch_lock(&self, lock: &lock::DatabaseLock) {
        if let (Some(files), Some(id)) = (&self.files, lock.file_id()) {
            files.watch(file::Kind::Lock, lock.path(), id);
        }
    }

    /// Watches a daemon's lock on the shop's schema: once its connection closes, a second
    /// daemon could take the shop, so every later call fails with [`StoreError::Moved`], as for
    /// a lock file removed.
    pub fn watch_schema_lock(&self, lock: Arc<db::shop::ShopLock>) {
        if let (Some(files), Some(shop)) = (&self.files, self.postgres()) {
            files.watch_schema_lock(shop.schema(), Box::new(move || lock.is_held()));
        }
    }

    /// Whether the database's path still reaches the file opened, and the lock's path the file
    /// locked: one `stat` each, off the runtime. Once one does not, every later call fails with
    /// [`StoreError::Moved`], so nothing more is written to the old file.
    pub async fn check_files(&self) -> Result<(), StoreError> {
        self.call_checked(|_| Ok(())).await
    }

    /// [`Store::call`], after [`Store::check_files`] in the same trip to the blocking pool.
    pub async fn call_checked<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let files = self.files.clone();
        self.call(move |c| {
            if let Some(files) = files {
                files.check()?;
            }
            f(c)
        })
        .await
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
            engine: Backend::Sqlite(Arc::new(Mutex::new(conn))),
            files: None,
        }))
    }

    /// A fresh, empty database in memory: what a dry run plans against when there is no
    /// database yet.
    pub async fn in_memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrations::migrate(&mut conn)?;
        Ok(Store {
            engine: Backend::Sqlite(Arc::new(Mutex::new(conn))),
            files: None,
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if let Some(moved) = self.files.as_ref().and_then(|f| f.moved()) {
            return Err(moved.clone().into());
        }
        // What the call logs is the caller's: a fleet's lines name their shop (its span).
        let span = tracing::Span::current();
        match &self.engine {
            Backend::Sqlite(conn) => {
                let conn = conn.clone();
                tokio::task::spawn_blocking(move || {
                    // A panic while holding the lock cannot leave SQLite half-written
                    // (transactions roll back), so a poisoned lock is still a usable connection.
                    let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    span.in_scope(|| f(&mut guard))
                })
                .await
                .map_err(|_| StoreError::Join)?
            }
            Backend::Postgres(shop) => {
                let shop = shop.clone();
                let handle = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || {
                    span.in_scope(|| f(&mut shop.connect(&handle)?))
                })
                .await
                .map_err(|_| StoreError::Join)?
            }
        }
    }
}

/// Runs `read` (a whole column, every name: megabytes of BLOBs) with the SQLite file mapped
/// into memory, and unmaps it after. Read through `pread`, each page is copied by the kernel and
/// looked up in its cache one by one; mapped, SQLite reads the pages where they are, which
/// takes a third off loading a million SKUs. Only for these reads: a mapping left in place
/// would count the file's pages in the process's RSS for as long as it lives, and an I/O error
/// of the disk under a mapped read is a signal rather than an error SQLite can report (so it
/// is confined to these few tens of milliseconds of reading, which a failing disk fails anyway).
pub(crate) fn mapped_reads<T>(
    conn: &db::Connection,
    read: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let Some(sqlite) = conn.sqlite() else {
        return read();
    };
    sqlite.pragma_update(None, "mmap_size", 1i64 << 40)?;
    let result = read();
    sqlite.pragma_update(None, "mmap_size", 0)?;
    result
}

/// Opens and migrates, telling a full disk apart from other I/O failures: SQLite reports a disk
/// that filled while it made its WAL index as a "disk I/O error", which reads like broken
/// hardware (or, before, a configuration error) when freeing space is all it takes.
fn open_blocking(path: &Path) -> Result<Connection, StoreError> {
    open_unchecked(path).map_err(|e| {
        use rusqlite::ErrorCode as C;
        let dir = folder_of(path);
        let full = match &e {
            StoreError::CreateDir { source, .. } => is_full(source),
            StoreError::Sqlite(sqlite) => match sqlite_code(sqlite) {
                Some(C::DiskFull) => true,
                Some(C::SystemIoFailure | C::CannotOpen) => out_of_space(dir),
                _ => false,
            },
            _ => false,
        };
        if full {
            StoreError::DiskFull {
                path: path.display().to_string(),
                detail: e.to_string(),
            }
        } else {
            e
        }
    })
}

/// The folder a database file lives in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Whether an I/O error says the file system is out of room.
pub(crate) fn is_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Whether the file system holding `dir` has no room left. The standard library has no
/// `statvfs`, so this writes (and syncs, so delayed allocation cannot hide it) a small scratch
/// file and sees; it is only asked after SQLite failed to write.
fn out_of_space(dir: &Path) -> bool {
    use std::io::Write as _;
    let mut file = match tempfile::tempfile_in(dir) {
        Ok(file) => file,
        Err(e) => return is_full(&e),
    };
    let written = file
        .write_all(&[0; 64 * 1024])
        .and_then(|()| file.sync_all());
    matches!(written, Err(e) if is_full(&e))
}

fn open_unchecked(path: &Path) -> Result<Connection, StoreError> {
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
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // WAL with NORMAL is durable against a process crash (what invsync must survive); only an
    // OS crash may lose the last transactions, which the next cycle simply pushes again.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let mut conn = Connection::from(conn);
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
    let version = |conn: &rusqlite::Connection| -> Result<i64, rusqlite::Error> {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
    };
    let conn = rusqlite::Connection::open_with_flags(path, flags)?;
    let (conn, found) = match version(&conn) {
        Ok(found) => (conn, found),
        // A WAL database on a read-only file system cannot make its shared-memory file: read it
        // as immutable instead (nothing can be writing it there).
        Err(_) => {
            let uri = format!("file:{}?immutable=1", path.display());
            let conn = rusqlite::Connection::open_with_flags(uri, flags)?;
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
    Ok(Some(conn.into()))
}

/// Which kind of endpoint a row is about.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    /// `sources`, and source snapshots.
    Source,
    /// `targets`, and acknowledged quantities.
    Target,
    /// A source's mass-zero guard memory: when each SKU went from positive to 0.
    SourceZeroedAt,
    /// A target's mass-zero guard memory.
    TargetZeroedAt,
}

impl Side {
    fn table(self) -> &'static str {
        match self {
            Side::Source | Side::SourceZeroedAt => "sources",
            Side::Target | Side::TargetZeroedAt => "targets",
        }
    }
}

/// The id of the named source or target, creating its row the first time.
pub fn endpoint_id(conn: &Connection, side: Side, name: &str) -> Result<i64, StoreError> {
    let table = side.table();
    conn.execute(
        &format!("INSERT INTO {table} (name) VALUES (?1) ON CONFLICT (name) DO NOTHING"),
        [name],
    )?;
    conn.query_row(
        &format!("SELECT id FROM {table} WHERE name = ?1"),
        [name],
        |r| r.get(0),
    )
}

/// The id of the named source or target, if the database has it (without creating it).
pub fn find_endpoint(conn: &Connection, side: Side, name: &str) -> Result<Option<i64>, StoreError> {
    conn.query_row(
        &format!("SELECT id FROM {} WHERE name = ?1", side.table()),
        [name],
        |r| r.get(0),
    )
    .optional()
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

/// Records a target's acknowledged batch (`(SKU, quantity)`: what the target now shows, written
/// as a delta of its acknowledgements, see [`write_changes`]) and marks the push successful, in
/// one transaction; `zeroings`: the guard's memory of the batch's SKUs gone to 0; `healed` are
/// SKUs of the batch that had failed before, whose failure is now over; `in_doubt`: the target's
/// SKUs in doubt without the batch's (see [`doubt`]).
pub fn acknowledge(
    conn: &mut Connection,
    target: i64,
    changes: &[(SkuId, i64)],
    zeroings: &[(SkuId, i64)],
    healed: &[SkuId],
    in_doubt: Option<Vec<u8>>,
    at: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    write_changes(&tx, Side::Target, target, changes)?;
    write_zeroings(&tx, Side::Target, target, zeroings)?;
    tx.execute(
        "UPDATE targets SET last_success_at = ?2, in_doubt = ?3 WHERE id = ?1",
        params![target, at, in_doubt],
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
    /// Refusals in a row, this one included.
    pub attempts: i64,
    /// When to try it again (ms since the epoch).
    pub next_attempt_at: i64,
}

/// When a refused SKU is tried again, and how many times it was refused in a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Refusals in a row.
    pub attempts: i64,
    /// Not before this (ms since the epoch; `None`: at the next cycle).
    pub next_attempt_at: Option<i64>,
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
            "INSERT INTO failed_skus (target_id, sku_id, quantity, message, first_failed_at, last_failed_at,
                                      attempts, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)
             ON CONFLICT (target_id, sku_id) DO UPDATE SET
                 quantity = excluded.quantity, message = excluded.message, last_failed_at = excluded.last_failed_at,
                 attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at",
        )?;
        for r in refusals {
            upsert.execute(params![
                target,
                r.sku,
                r.quantity,
                r.message,
                at,
                r.attempts,
                r.next_attempt_at
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The SKUs a target has refused and not accepted since, with when each is tried again (each
/// one a SKU that has a name, or the file is inconsistent).
pub fn load_failed(
    conn: &Connection,
    target: i64,
) -> Result<std::collections::HashMap<SkuId, Retry>, StoreError> {
    let skus = sku_count(conn)?;
    let mut stmt = conn.prepare(
        "SELECT sku_id, attempts, next_attempt_at FROM failed_skus WHERE target_id = ?1",
    )?;
    let rows = stmt.query_map([target], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            Retry {
                attempts: r.get(1)?,
                next_attempt_at: r.get(2)?,
            },
        ))
    })?;
    let mut failed = std::collections::HashMap::new();
    for row in rows {
        let (id, retry) = row?;
        failed.insert(chunks::check_named(id, skus, "failed_skus")?, retry);
    }
    Ok(failed)
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
    /// What it was left wholly in sync with (see `targets::settled`); `None` when it was not.
    pub settled: Option<String>,
    /// The SKUs it may or may not have taken (see `store::doubt`).
    pub in_doubt: Option<Vec<u8>>,
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
                last_error = ?5, last_error_at = CASE WHEN CAST(?5 AS TEXT) IS NULL THEN last_error_at ELSE ?6 END,
                synced_at = ?6, progress_pushed = NULL, progress_total = NULL, progress_at = NULL,
                settled = ?7, in_doubt = ?8
         WHERE id = ?1",
        params![
            target,
            outcome.pending as i64,
            outcome.held.is_some(),
            outcome.held,
            outcome.error,
            at,
            outcome.settled,
            outcome.in_doubt
        ],
    )?;
    Ok(())
}

/// How far a target's push has got: `pushed` of `total` planned changes acknowledged, so
/// `status` shows `syncing pushed/total` while it lasts. The push loop writes it before each
/// request, with the SKUs in doubt ([`before_request`]); [`target_outcome`] clears it.
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
    conn.query_row(
        "INSERT INTO cycles (started_at, \"full\") VALUES (?1, ?2) RETURNING id",
        params![started_at, full],
        |r| r.get(0),
    )
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
    conn.query_row(
        "SELECT started_at FROM cycles ORDER BY id LIMIT 1",
        [],
        |r| r.get(0),
    )
    .optional()
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
                acknowledge(c, id, &[(0, 5), (1, 0)], &[], &[], None, now_ms())?;
                Ok(())
            })
            .await
            .expect("writes");
        drop(store);
        let store = Store::open(&path).await.expect("reopens");
        let (skus, acked, version) = store
            .call(|c| {
                let id = endpoint_id(c, Side::Target, "hardtofind")?;
                let version: i64 =
                    c.sqlite()
                        .expect("sqlite")
                        .pragma_query_value(None, "user_version", |r| r.get(0))?;
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
    async fn a_lowered_schema_version_is_refused_as_inconsistent_in_one_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("invsync.db");
        drop(Store::open(&path).await.expect("creates"));
        {
            let conn = Connection::open(&path).expect("opens");
            conn.sqlite()
                .expect("sqlite")
                .pragma_update(None, "user_version", 1)
                .expect("lowers");
        }

        let error = Store::open(&path).await.err().expect("refused");

        let text = error.to_string();
        println!("{text}");
        assert_eq!(error.trouble(), Trouble::Inconsistent, "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
        assert!(!text.contains("CREATE"), "no SQL dump: {text}");
        assert!(text.contains("schema version (1)"), "{text}");
    }

    #[test]
    fn sqlite_errors_read_on_one_line_without_the_statement() {
        let conn = Connection::open_in_memory().expect("db");
        let error = conn
            .execute_batch("CREATE TABLE t (a);\n CREATE TABLE t (\n a\n );")
            .expect_err("twice");
        let text = error.to_string();
        assert_eq!(text, "database: table t already exists");
    }

    #[tokio::test]
    async fn a_database_from_a_newer_invsync_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("invsync.db");
        {
            let conn = Connection::open(&path).expect("opens");
            conn.sqlite()
                .expect("sqlite")
                .pragma_update(None, "user_version", 99)
                .expect("sets");
        }
        let error = Store::open(&path).await.err().expect("refused");
        assert!(
            matches!(error, StoreError::TooNew { found: 99, .. }),
            "{error}"
        );
    }
}
