//! Whether the daemon will be able to write its database, found out without creating or
//! writing anything: what `invsync check` says about `daemon.database`.
//!
//! SQLite writes the file itself and, beside it, its `-wal` and `-shm` files, so the file and its
//! folder must both be writable. A file or folder without a single write bit is taken as
//! read-only even when `check` runs as root (who may write anything): the daemon does not run
//! as root, and an operator who made it read-only meant it.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// `Ok` with what will happen (`exists` or `will be created`), or why the daemon could not write.
pub fn writable(database: &Path) -> Result<&'static str, String> {
    match std::fs::metadata(database) {
        Ok(meta) if meta.is_dir() => Err(format!("{} is a folder", database.display())),
        Ok(meta) => {
            may_write(database, meta.permissions().mode())
                .map_err(|e| format!("the database file is read-only ({e})"))?;
            let folder = folder_of(database);
            folder_writable(folder)?;
            Ok("exists and is writable")
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The daemon creates the missing folders: the nearest one that exists must take them.
            let mut folder = folder_of(database);
            loop {
                match std::fs::metadata(folder) {
                    Ok(meta) if meta.is_dir() => break,
                    Ok(_) => return Err(format!("{} is not a folder", folder.display())),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        folder = folder.parent().unwrap_or(Path::new("/"));
                    }
                    Err(e) => return Err(format!("cannot look at {}: {e}", folder.display())),
                }
            }
            folder_writable(folder)?;
            Ok("will be created")
        }
        Err(e) => Err(format!("cannot look at {}: {e}", database.display())),
    }
}

fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn folder_writable(folder: &Path) -> Result<(), String> {
    let mode = std::fs::metadata(folder)
        .map_err(|e| format!("cannot look at {}: {e}", folder.display()))?
        .permissions()
        .mode();
    may_write(folder, mode).map_err(|e| {
        format!(
            "its folder {} is not writable ({e}); SQLite creates its journal files there",
            folder.display()
        )
    })
}

/// Whether this process may write `path` (a read-only file system included), and whether
/// anyone may at all.
fn may_write(path: &Path, mode: u32) -> Result<(), io::Error> {
    if mode & 0o222 == 0 {
        return Err(io::Error::from(io::ErrorKind::PermissionDenied));
    }
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; access(2) only
    // reads it.
    let answer = unsafe { libc::access(c_path.as_ptr(), libc::W_OK) };
    if answer == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_database_or_folder_is_not_writable_and_nothing_is_created() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("state/invsync.db");

        let missing = writable(&database);
        std::fs::create_dir(dir.path().join("state")).expect("folder");
        std::fs::write(&database, b"").expect("file");
        let present = writable(&database);
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        let read_only_file = writable(&database);
        std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let folder = dir.path().join("state");
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let read_only_folder = writable(&database);
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");

        assert_eq!(missing, Ok("will be created"));
        assert_eq!(present, Ok("exists and is writable"));
        println!("{read_only_file:?}\n{read_only_folder:?}");
        assert!(read_only_file.is_err_and(|e| e.starts_with("the database file is read-only")));
        assert!(read_only_folder.is_err_and(|e| e.contains("is not writable")));
        let entries: Vec<_> = std::fs::read_dir(&folder).expect("list").collect();
        assert_eq!(entries.len(), 1, "nothing beside the database was created");
    }
}
