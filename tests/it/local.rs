//! The machine's own troubles: a second invsync, a full disk, a damaged database, a stderr
//! nobody reads. Each ends with the exit status systemd reads right, and never a panic.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rand::RngCore;

use crate::helpers::{Setup, World, dropship_id, wait_until};

/// The exit status of a temporary local condition.
const TEMPORARY: i32 = 75;

#[tokio::test(flavor = "multi_thread")]
async fn a_second_once_through_a_symlink_to_the_same_database_exits_75() {
    let world = World::with(Setup {
        htf_batch_size: 10,
        ..Setup::default()
    })
    .await;
    // The first `once` is slow enough to be caught holding the lock.
    world.htf.faults().set_latency(Duration::from_millis(300));
    let first = world.spawn(&["once"], &[]);
    wait_until("the first once holds the lock", || {
        std::fs::read_to_string(invsync::store::lock::lock_path(&world.database()))
            .is_ok_and(|s| !s.trim().is_empty())
    })
    .await;
    // The second reaches the same file through a symlink in another folder.
    let elsewhere = world.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("folder");
    let link = elsewhere.join("link.db");
    std::os::unix::fs::symlink(world.database(), &link).expect("symlink");
    let config = std::fs::read_to_string(&world.config).expect("config");
    let second_config = world.dir.path().join("second.toml");
    std::fs::write(
        &second_config,
        config.replace(
            &world.database().display().to_string(),
            &link.display().to_string(),
        ),
    )
    .expect("config");

    let second = world.invsync_with(&second_config, &["once"]).await;

    second.assert_code(TEMPORARY);
    let pid = first.id().expect("running").to_string();
    let said = second.stderr.lines().last().unwrap_or_default();
    println!("{said}");
    assert!(
        said.contains(&format!("process {pid}")),
        "{}",
        second.stderr
    );
    let output = first.wait_with_output().await.expect("exits");
    assert_eq!(output.status.code(), Some(0));
    let pushed: usize = world.htf.batches().iter().map(Vec::len).sum();
    assert_eq!(pushed, 50, "only the first pushed");
    world.assert_in_sync();
}

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

/// Overwrites `column` of every row of `table` (whose primary key is `key`) with random bytes
/// of the same length.
fn scramble(database: &Path, table: &str, column: &str, key: &[&str]) {
    use rusqlite::types::Value;
    let conn = rusqlite::Connection::open(database).expect("db opens");
    let select = format!("SELECT length({column}), {} FROM {table}", key.join(", "));
    let rows: Vec<(usize, Vec<Value>)> = conn
        .prepare(&select)
        .expect("query")
        .query_map([], |r| {
            let keys = (1..=key.len())
                .map(|i| r.get(i))
                .collect::<Result<_, _>>()?;
            Ok((r.get(0)?, keys))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("keys");
    let matches: Vec<String> = key
        .iter()
        .enumerate()
        .map(|(i, k)| format!("{k} = ?{}", i + 2))
        .collect();
    let update = format!(
        "UPDATE {table} SET {column} = ?1 WHERE {}",
        matches.join(" AND ")
    );
    for (len, keys) in rows {
        let mut bytes = vec![0u8; len];
        rand::rng().fill_bytes(&mut bytes);
        let mut values = vec![Value::Blob(bytes)];
        values.extend(keys);
        conn.execute(&update, rusqlite::params_from_iter(values))
            .expect("scrambled");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn random_bytes_in_the_quantity_chunks_exit_1_saying_how_to_rebuild_never_a_panic() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    scramble(
        &world.database(),
        "quantity_chunks",
        "quantities",
        &["side", "endpoint", "chunk"],
    );
    // Quantities are read when a cycle first needs them: here, for a change to push.
    world
        .hako
        .set_quantity("warehouse-010", &crate::helpers::warehouse_sku(1), 41);

    let damaged = world.invsync(&["once"]).await;

    damaged.assert_code(1);
    let said = damaged.stderr.lines().last().unwrap_or_default();
    println!("{said}");
    assert!(said.contains("inconsistent"), "{}", damaged.stderr);
    assert!(said.contains("invsync once --full"), "{}", damaged.stderr);
    assert!(!damaged.stderr.contains("panicked"), "{}", damaged.stderr);
    let status = world.invsync(&["status"]).await;
    status.assert_code(1);
    assert!(status.stderr.contains("inconsistent"), "{}", status.stderr);

    // As the message says: move it away, and a full sync rebuilds it.
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", world.database().display()));
        let _ = std::fs::rename(&file, format!("{}.damaged", file.display()));
    }
    world.invsync(&["once", "--full"]).await.assert_code(0);
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn random_bytes_in_the_sku_names_exit_1_saying_how_to_rebuild_never_a_panic() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    scramble(&world.database(), "sku_chunks", "names", &["chunk"]);

    let damaged = world.invsync(&["once"]).await;

    damaged.assert_code(1);
    let said = damaged.stderr.lines().last().unwrap_or_default();
    println!("{said}");
    assert!(said.contains("inconsistent"), "{}", damaged.stderr);
    assert!(!damaged.stderr.contains("panicked"), "{}", damaged.stderr);
}

/// Names are checked against each other when they are first looked up, not as they are loaded
/// (see `store::names_once`): a name written twice still stops the cycle before anything is
/// recorded or pushed.
#[tokio::test(flavor = "multi_thread")]
async fn a_sku_named_twice_in_the_file_exits_1_saying_how_to_rebuild_and_pushes_nothing() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    {
        let conn = invsync::store::db::Connection::open(world.database()).expect("db opens");
        let names = invsync::store::load_skus(&conn).expect("names");
        let (first, second) = (names.name(1).to_owned(), names.name(2).to_owned());
        let mut damaged = invsync::plan::ledger::SkuTable::default();
        for id in 0..names.len() as u32 {
            let name = names.name(id);
            damaged.push(if name == second { &first } else { name });
        }
        let chunks = invsync::store::name_chunks_from(&damaged, 0);
        invsync::store::write_name_chunks(&conn, &chunks).expect("written");
    }
    // A new answer, so that the names are looked up.
    world.ea.set_stock(&dropship_id(3), 44);
    let batches = world.htf.batches().len();

    let damaged = world.invsync(&["once"]).await;

    damaged.assert_code(1);
    let said = damaged.stderr.lines().last().unwrap_or_default();
    println!("{said}");
    assert!(
        said.contains("inconsistent") && said.contains("named twice"),
        "{}",
        damaged.stderr
    );
    assert_eq!(world.htf.batches().len(), batches, "nothing pushed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lowered_or_newer_schema_version_is_refused_in_one_line() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    let set_version = |version: i64| {
        let conn = rusqlite::Connection::open(world.database()).expect("db opens");
        conn.pragma_update(None, "user_version", version)
            .expect("version");
    };

    set_version(1);
    let lowered = world.invsync(&["once"]).await;
    set_version(99);
    let newer = world.invsync(&["once"]).await;

    for run in [&lowered, &newer] {
        run.assert_code(1);
        let said: Vec<&str> = run
            .stderr
            .lines()
            // Logging is up by then: the failure is one ERROR line with the exit status.
            .filter(|l| l.starts_with("invsync: ") || l.contains("exit_status="))
            .collect();
        assert_eq!(said.len(), 1, "{}", run.stderr);
        println!("{}", said[0]);
        assert!(
            !run.stderr.contains("CREATE") && !run.stderr.contains("panicked"),
            "no SQL dump:\n{}",
            run.stderr
        );
    }
    assert!(
        lowered.stderr.contains("invsync once --full"),
        "{}",
        lowered.stderr
    );
    assert!(newer.stderr.contains("newer"), "{}", newer.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stderr_nobody_reads_any_more_does_not_stop_the_sync() {
    let world = World::start().await;
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);

    let run = world
        .invsync_with_stderr(&["once"], std::process::Stdio::from(writer))
        .await;

    println!(
        "exit status {:?} with every log line lost to EPIPE",
        run.code
    );
    run.assert_code(0);
    world.assert_in_sync();
}
