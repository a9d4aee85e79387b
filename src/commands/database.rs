//! `daemon.database` as the commands open it: a SQLite file, or a shop's schema on PostgreSQL;
//! the one-daemon-per-database lock of each (the file's `flock`, PostgreSQL's session advisory
//! lock on the schema); and the exit status each database error deserves.
//!
//! Nothing here shows a PostgreSQL URL but through [`Database`]'s `Display`, which leaves out
//! its password.

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::ExposeSecret;

use super::Failure;
use crate::config::{Config, ConfigError, Database};
use crate::daemon::cycle::EngineError;
use crate::store::db::shop::{self, ShopLock};
use crate::store::lock::{DatabaseLock, LockError};
use crate::store::{Store, StoreError, Trouble};

/// The database of `daemon.database`, ready to be opened: a file's path, or a pool of
/// connections to the PostgreSQL database and the shop's schema there.
pub(super) enum Reach {
    /// A SQLite file.
    File(PathBuf),
    /// A shop's schema on PostgreSQL.
    Postgres {
        /// Connections to the database (made when first needed).
        pool: deadpool_postgres::Pool,
        /// The shop's schema.
        schema: String,
    },
}

/// Connections a command needs at most at once: the store's calls, the mapping's read, the lock.
const POOL_SIZE: usize = 4;

impl Reach {
    /// The database `database` names; nothing is connected yet.
    pub(super) fn of(database: &Database) -> Result<Reach, Failure> {
        Ok(match database {
            Database::File(path) => Reach::File(path.clone()),
            Database::Postgres(pg) => Reach::Postgres {
                pool: crate::store::db::pool::pool(pg.url.expose_secret(), POOL_SIZE)
                    .map_err(|e| Failure::Other(e.to_string()))?,
                schema: pg.schema.clone(),
            },
        })
    }

    /// The database as it is, never created, migrated or written: `None` when there is none
    /// yet (no file, no schema).
    pub(super) async fn read_only(&self) -> Result<Option<Store>, StoreError> {
        match self {
            Reach::File(path) => Store::open_read_only(path).await,
            Reach::Postgres { pool, schema } => {
                Store::open_postgres_read_only(pool.clone(), schema).await
            }
        }
    }
}

/// What keeps a daemon the only one on its database, for as long as it is held.
pub(super) enum Held {
    /// The SQLite file's lock file.
    File(DatabaseLock),
    /// The session advisory lock on the shop's schema.
    Postgres(Arc<ShopLock>),
}

/// Takes the one-daemon-per-database lock. Another invsync in the way, or no room to write the
/// lock file, or a PostgreSQL server out of reach, passes (75); a lock file that cannot be made
/// at all is the path's fault (2).
pub(super) async fn lock_database(config: &Config, reach: &Reach) -> Result<Held, Failure> {
    match reach {
        Reach::File(path) => DatabaseLock::acquire(path)
            .map(Held::File)
            .map_err(|e| match e {
                LockError::Held { .. } => temporary(config, e),
                LockError::Io { .. } if e.is_disk_full() => {
                    temporary(config, format!("disk full: {e}"))
                }
                LockError::Io { .. } => database_error(config, e),
            }),
        Reach::Postgres { pool, schema } => match lock_schema(pool, schema).await {
            Ok(Some(lock)) => Ok(Held::Postgres(Arc::new(lock))),
            Ok(None) => Err(temporary(
                config,
                format!("the schema {schema} is in use by another invsync; stop it first"),
            )),
            Err(e) if e.trouble() == Trouble::Unusable => Err(database_error(config, e)),
            Err(e) => Err(store_failure(&config.daemon.database, e)),
        },
    }
}

/// The schema's lock, asked a few times over a second: a daemon that just died (SIGKILL, a
/// restart by its unit) leaves its session to the server for a moment before the server sees
/// the connection closed and lets the lock go.
async fn lock_schema(
    pool: &deadpool_postgres::Pool,
    schema: &str,
) -> Result<Option<ShopLock>, StoreError> {
    const TRIES: u32 = 20;
    for _ in 1..TRIES {
        if let Some(lock) = shop::lock(pool, schema).await? {
            return Ok(Some(lock));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    shop::lock(pool, schema).await
}

/// Opens the database under `held` (a file is watched with its lock file, see
/// [`Store::check_files`]; a schema is made and migrated): a database that cannot be used is a
/// configuration error naming the key; a full disk or a server out of reach passes; a damaged
/// or newer one must be rebuilt (or invsync upgraded).
pub(super) async fn open_store(
    config: &Config,
    reach: &Reach,
    held: &Held,
) -> Result<Store, Failure> {
    let opened = match reach {
        Reach::File(path) => Store::open(path).await,
        Reach::Postgres { pool, schema } => Store::open_postgres(pool.clone(), schema).await,
    };
    let store = opened.map_err(|e| match e.trouble() {
        Trouble::Unusable => database_error(config, e),
        _ => store_failure(&config.daemon.database, e),
    })?;
    match held {
        Held::File(lock) => store.watch_lock(lock),
        Held::Postgres(lock) => store.watch_schema_lock(lock.clone()),
    }
    Ok(store)
}

/// What `check` says of the database, on one line: whether the daemon will be able to use it,
/// found out without creating, migrating or writing anything (a file's folder writable; a
/// PostgreSQL server that answers, the schema there at this invsync's version or the role
/// allowed to create it). `Err` for a database that is there but cannot be read as it is
/// (damaged, of another version), as the daemon would find it.
pub(super) async fn check_line(config: &Config, reach: &Reach) -> Result<bool, Failure> {
    let database = &config.daemon.database;
    let usable = match reach {
        Reach::File(path) => crate::store::access::writable(path),
        Reach::Postgres { pool, .. } => {
            let found = match reach.read_only().await {
                Ok(Some(_)) => Ok(Ok("exists, at this invsync's version")),
                Ok(None) => shop::may_create_schema(pool).await.map(|may| {
                    may.then_some("will be created").ok_or_else(|| {
                        "the schema does not exist, and the role may not create it (it needs CREATE on the database)".to_owned()
                    })
                }),
                Err(e) => Err(e),
            };
            match found {
                Ok(usable) => usable,
                Err(e) if matches!(e.trouble(), Trouble::Temporary | Trouble::Unusable) => {
                    Err(e.to_string())
                }
                Err(e) => return Err(store_failure(database, e)),
            }
        }
    };
    let ok = match usable {
        Ok(how) => {
            outln!("ok    database {database} ({how})");
            true
        }
        Err(why) => {
            outln!("FAIL  database {database}: {why}");
            false
        }
    };
    // A file is opened as the daemon would read it; the schema was, above.
    if let Reach::File(_) = reach {
        match reach.read_only().await {
            Ok(_) => {}
            Err(e) if e.trouble() == Trouble::Unusable => return Err(database_error(config, e)),
            Err(e) => return Err(store_failure(database, e)),
        }
    }
    Ok(ok)
}

/// A problem with `daemon.database`, named like any configuration error.
pub(super) fn database_error(config: &Config, error: impl std::fmt::Display) -> Failure {
    Failure::Config(
        ConfigError {
            file: config.path.clone(),
            key: "daemon.database".to_owned(),
            message: format!("{}: {error}", config.daemon.database),
        }
        .into(),
    )
}

/// A passing condition of the database, named as a configuration error would be.
fn temporary(config: &Config, error: impl std::fmt::Display) -> Failure {
    Failure::Temporary(format!(
        "daemon.database {}: {error}",
        config.daemon.database
    ))
}

/// The exit status a database error deserves (see [`Trouble`]); an inconsistent database is
/// told how to rebuild.
pub(super) fn store_failure(database: &Database, error: StoreError) -> Failure {
    match error.trouble() {
        // Upgrading invsync is the fix here; rebuilding would throw away a newer one's state.
        Trouble::Inconsistent if matches!(error, StoreError::TooNew { .. }) => {
            Failure::Inconsistent(format!("{error} ({database})"))
        }
        Trouble::Inconsistent => Failure::Inconsistent(format!(
            "{error} ({database}). To rebuild it: {}, and run `invsync once --full`, which pushes every SKU again",
            how_to_rebuild(database)
        )),
        // A full disk, or a file moved under the daemon, names the file already.
        Trouble::Temporary
            if matches!(error, StoreError::DiskFull { .. } | StoreError::Moved(_)) =>
        {
            Failure::Temporary(error.to_string())
        }
        Trouble::Temporary => Failure::Temporary(format!("{error} ({database})")),
        Trouble::Unusable | Trouble::Other => Failure::Store(error),
    }
}

/// How a database that contradicts itself is put aside.
fn how_to_rebuild(database: &Database) -> String {
    match database {
        Database::File(path) => format!(
            "stop invsync, move {path} (and its -wal and -shm files) away",
            path = path.display()
        ),
        Database::Postgres(pg) => format!(
            "stop invsync, drop its schema (DROP SCHEMA {} CASCADE)",
            pg.schema
        ),
    }
}

/// [`store_failure`] for the engine's errors.
pub(super) fn engine_failure(database: &Database, error: EngineError) -> Failure {
    match error {
        EngineError::Store(e) => store_failure(database, e),
        EngineError::Mapping(errors) => Failure::Config(errors),
        other => Failure::Engine(other),
    }
}
