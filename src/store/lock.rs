//! One daemon per database: `run` and `once` hold an exclusive lock on `<database>.lock` for as
//! long as they live. The lock is the kernel's (`flock`), so it dies with its process: a lock file
//! left by a crash or a SIGKILL is no obstacle. The file holds the holder's process id, so the
//! second process can say who is in the way.
//!
//! The lock belongs to the database *file*: its path is resolved (symlinks, `..`) before the
//! lock file is named, so two configurations that reach one file by different paths (a symlink,
//! a bind of the folder under another name) still find each other.
//!
//! A lock file removed while its holder runs would let a second process lock a new one: the
//! holder's store watches it (see `super::file`) and the daemon stops when it goes.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "the database is in use by another invsync (process {holder}); stop it first (lock file {path})"
    )]
    Held {
        /// The holder's process id, as it wrote it.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl LockError {
    /// Whether the lock file could not be written for want of space: a passing condition,
    /// unlike a permission or a path that is wrong.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, LockError::Io { source, .. } if super::is_full(source))
    }
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct DatabaseLock {
    file: File,
    path: PathBuf,
}

/// The lock file of `database`: next to the file the path resolves to (see the module's doc).
/// Where it cannot be resolved yet (a folder still to be made), the path as written.
pub fn lock_path(database: &Path) -> PathBuf {
    let mut name = resolve(database).into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Links a database path may go through before it is taken as broken (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// `database` with every symlink resolved, the file itself included even when it does not
/// exist yet (a link to a database still to be created), and its folder made absolute.
fn resolve(database: &Path) -> PathBuf {
    let mut path = database.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::read_link(&path) {
            Ok(target) => {
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                }
            }
            Err(_) => break,
        }
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return path;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match std::fs::canonicalize(dir) {
        Ok(dir) => dir.join(name),
        Err(_) => path,
    }
}

impl DatabaseLock {
    /// Takes the lock of `database` or says who holds it. Creates the folder if missing.
    pub fn acquire(database: &Path) -> Result<DatabaseLock, LockError> {
        if let Some(dir) = database.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
                path: lock_path(database),
                source,
            })?;
        }
        // Resolved only now that the folder exists, so that it can be.
        let path = lock_path(database);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "unknown".to_owned()
                } else {
                    holder.to_owned()
                };
                return Err(LockError::Held { holder, path });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DatabaseLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file locked (`fstat` of the open handle), to tell whether the lock file's path still
    /// reaches it; `None` when the kernel would not say.
    pub fn file_id(&self) -> Option<super::FileId> {
        self.file.metadata().ok().map(|m| super::FileId::of(&m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_holds_the_lock_until_it_is_released() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("db/invsync.db");
        let first = DatabaseLock::acquire(&database).expect("first takes it");
        let error = DatabaseLock::acquire(&database)
            .expect_err("second is refused")
            .to_string();
        assert!(
            error.contains(&format!("process {}", std::process::id())),
            "{error}"
        );
        drop(first);
        assert!(
            DatabaseLock::acquire(&database).is_ok(),
            "free again once released"
        );
    }

    #[test]
    fn a_database_reached_through_a_symlink_or_another_spelling_has_the_same_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let real = dir.path().join("state/invsync.db");
        std::fs::create_dir_all(dir.path().join("state")).expect("folder");
        std::fs::create_dir_all(dir.path().join("elsewhere")).expect("folder");
        let link = dir.path().join("elsewhere/link.db");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let spelt = dir.path().join("elsewhere/../state/./invsync.db");

        let first = DatabaseLock::acquire(&real).expect("first takes it");

        assert!(matches!(
            DatabaseLock::acquire(&link),
            Err(LockError::Held { .. })
        ));
        assert!(matches!(
            DatabaseLock::acquire(&spelt),
            Err(LockError::Held { .. })
        ));
        assert_eq!(lock_path(&link), lock_path(&real));
        drop(first);
        assert!(DatabaseLock::acquire(&link).is_ok());
    }

    #[test]
    fn a_lock_file_left_by_a_dead_process_is_no_obstacle() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("invsync.db");
        std::fs::write(lock_path(&database), "999999\n").expect("stale file");
        assert!(DatabaseLock::acquire(&database).is_ok());
    }
}
