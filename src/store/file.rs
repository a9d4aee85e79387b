//! Whether the database file a daemon opened is still the one at its path, and its lock file
//! the one it locked.
//!
//! SQLite keeps the file it opened, not its path: a database removed, or replaced by another
//! file (a backup moved over it), while `invsync run` runs goes on being written in the old,
//! unlinked file, and the path's new file is an older world that the next start would trust.
//! The lock is the kernel's on the file it opened too, so a lock file removed (`rm
//! invsync.db*` takes it with the database) lets a second invsync lock a new one beside the
//! first: two daemons on one shop, every push and relay order twice.
//!
//! So the engine asks, before each cycle, before the relay's step and before a cycle's summary
//! is written, whether each path still reaches the file opened (device and inode, one `stat`
//! each). Once one does not, the [`Files`] say so for good: every later database call fails
//! with [`Moved`], so nothing more is written to the old file, and the daemon stops with the
//! status that gets it restarted on the file now there.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// A file as the kernel knows it, whatever path reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The file `meta` describes.
    pub fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Which file moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The SQLite file at `daemon.database`.
    Database,
    /// Its lock file (see [`super::lock`]).
    Lock,
    /// The session advisory lock on a shop's PostgreSQL schema (its path: the schema).
    SchemaLock,
}

/// A path that no longer reaches the file invsync opened there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Moved {
    kind: Kind,
    path: PathBuf,
    /// Nothing is at the path any more (else another file is).
    removed: bool,
}

impl std::fmt::Display for Moved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let path = self.path.display();
        let how = if self.removed {
            "removed"
        } else {
            "replaced by another file"
        };
        match self.kind {
            Kind::Database => write!(
                f,
                "the database file {path} was {how} while invsync ran: invsync stops, writing \
                 nothing more to the file it had open, so that its restart works on the file at \
                 that path (a new one, every SKU pushed afresh, if nothing is there). To put a \
                 backup in place, stop invsync first and move the old file's -wal and -shm files \
                 away with it"
            ),
            Kind::Lock => write!(
                f,
                "the lock file {path} was {how} while invsync ran, so a second invsync could \
                 start on the same database: invsync stops so that its restart holds the lock \
                 again. Leave the .lock file beside the database"
            ),
            Kind::SchemaLock => write!(
                f,
                "the lock on the schema {path} was lost while invsync ran (its connection to \
                 PostgreSQL closed), so a second invsync could start on the same shop: invsync \
                 stops so that its restart holds the lock again"
            ),
        }
    }
}

/// One path and the file opened through it.
#[derive(Debug)]
struct Watched {
    kind: Kind,
    path: PathBuf,
    id: FileId,
}

impl Watched {
    /// Whether the path still reaches the file. A path that cannot be looked at (permissions
    /// changed) is not called moved: SQLite's own errors say what is wrong with it.
    fn check(&self) -> Result<(), Moved> {
        let moved = |removed| Moved {
            kind: self.kind,
            path: self.path.clone(),
            removed,
        };
        match std::fs::metadata(&self.path) {
            Ok(meta) if FileId::of(&meta) == self.id => Ok(()),
            Ok(_) => Err(moved(false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(moved(true)),
            Err(_) => Ok(()),
        }
    }
}

/// The files a daemon's database works through, and whether one of them moved.
#[derive(Debug, Default)]
pub(super) struct Files {
    watched: Mutex<Vec<Watched>>,
    /// A shop's schema lock, when the database is a PostgreSQL schema.
    schema_lock: Mutex<Option<SchemaLock>>,
    moved: OnceLock<Moved>,
}

/// Whether a lock is still held.
pub(super) type HeldCheck = Box<dyn Fn() -> bool + Send + Sync>;

/// A shop's schema, and whether the daemon still holds its lock.
struct SchemaLock {
    schema: String,
    held: HeldCheck,
}

impl std::fmt::Debug for SchemaLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SchemaLock({})", self.schema)
    }
}

impl Files {
    /// Watches `path`, opened as the file `id`.
    pub(super) fn watch(&self, kind: Kind, path: &Path, id: FileId) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        watched.push(Watched {
            kind,
            path: path.to_path_buf(),
            id,
        });
    }

    /// Watches the lock on `schema`: once `held` says it is not, the schema is treated as a
    /// database file removed under the daemon.
    pub(super) fn watch_schema_lock(&self, schema: &str, held: HeldCheck) {
        *self.schema_lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(SchemaLock {
            schema: schema.to_owned(),
            held,
        });
    }

    /// The move found earlier, if any: from then on the database is not to be touched.
    pub(super) fn moved(&self) -> Option<&Moved> {
        self.moved.get()
    }

    /// Looks at every path (one `stat` each); the first that moved is remembered for good.
    pub(super) fn check(&self) -> Result<(), Moved> {
        if let Some(moved) = self.moved.get() {
            return Err(moved.clone());
        }
        let watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        for file in watched.iter() {
            if let Err(moved) = file.check() {
                return Err(self.moved.get_or_init(|| moved).clone());
            }
        }
        let schema_lock = self.schema_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(lock) = schema_lock.as_ref().filter(|lock| !(lock.held)()) {
            let moved = Moved {
                kind: Kind::SchemaLock,
                path: PathBuf::from(&lock.schema),
                removed: true,
            };
            return Err(self.moved.get_or_init(|| moved).clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watching(path: &Path) -> Files {
        let files = Files::default();
        let id = FileId::of(&std::fs::metadata(path).expect("exists"));
        files.watch(Kind::Database, path, id);
        files
    }

    #[test]
    fn a_file_replaced_or_removed_under_its_path_is_seen_and_remembered_for_good() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("invsync.db");
        std::fs::write(&path, b"old").expect("file");
        let replaced = watching(&path);
        let removed = watching(&path);
        let untouched = dir.path().join("other.db");
        std::fs::write(&untouched, b"x").expect("file");
        let kept = watching(&untouched);

        assert_eq!(replaced.check(), Ok(()));
        std::fs::write(dir.path().join("new"), b"backup").expect("file");
        std::fs::rename(dir.path().join("new"), &path).expect("moved over");
        let seen = replaced.check().expect_err("replaced");
        std::fs::remove_file(&path).expect("removed");
        let gone = removed.check().expect_err("removed");

        assert!(!seen.removed && gone.removed);
        assert!(
            seen.to_string().contains("replaced by another file"),
            "{seen}"
        );
        assert!(gone.to_string().contains("was removed"), "{gone}");
        assert_eq!(kept.check(), Ok(()));
        // Put back, the path reaches a file again, but the first answer stands.
        std::fs::write(&path, b"again").expect("file");
        assert_eq!(replaced.moved(), Some(&seen));
        assert_eq!(replaced.check(), Err(seen));
    }
}
