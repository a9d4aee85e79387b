//! The machine's own troubles: a second invsync, a full disk, a damaged database, a stderr
//! nobody reads. Each ends with the exit status systemd reads right, and never a panic.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::World;

/// The exit status of a temporary local condition.
const TEMPORARY: i32 = 75;

/// A small tmpfs mounted on a folder for as long as it lives (unmounted on drop, even when the
/// test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it, or says why not (no root, no mount namespace of our own).
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// Fills it to the last page; returns the file that holds the space.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let page = [0u8; 4096];
        while file.write_all(&page).is_ok() {}
        while file.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_at_start_up_exits_75_saying_disk_full_and_the_next_start_syncs() {
    let world = World::start().await;
    let state = world.database().parent().expect("folder").to_path_buf();
    let tmpfs = match Tmpfs::mount(&state, "2m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            println!("skipped: cannot mount a small tmpfs for the database here ({why})");
            return;
        }
    };
    world.invsync(&["once"]).await.assert_code(0);
    world.ea.set_stock("1001", 42);
    let filler = tmpfs.fill();

    let full = world.invsync(&["once"]).await;

    full.assert_code(TEMPORARY);
    let said = full.stderr.lines().last().unwrap_or_default();
    println!("{said}");
    assert!(said.contains("disk full"), "{}", full.stderr);
    assert!(!full.stderr.contains("panicked"), "{}", full.stderr);
    std::fs::remove_file(filler).expect("space freed");
    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
    drop(tmpfs);
}
