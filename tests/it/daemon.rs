//! `invsync run`: cycles on the schedule, a clean exit on SIGTERM, one budget per account.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Setup, World, read_until, signal};

#[tokio::test(flavor = "multi_thread")]
async fn run_cycles_on_its_schedule_and_exits_0_on_sigterm() {
    let world = World::start().await;
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut cycles = 0;
    // Two cycles prove the schedule; the safety timeout only keeps a broken build from hanging CI.
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("cycle finished") {
                cycles += 1;
                if cycles == 2 {
                    return;
                }
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "two cycles were logged");
    world.assert_in_sync();

    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");

    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    assert!(rest.contains("invsync stopped"), "{rest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_hako_account_used_as_source_and_target_is_never_answered_429_however_it_is_spelt() {
    // Hako allows 120 requests a minute. The source and the target share the account: with a
    // budget each they would send 240 a minute. 125 dropship SKUs pushed one per request make
    // more than 120 requests, so only a shared budget keeps every 60-second window under the limit.
    let setup = Setup {
        dropship_skus: 125,
        hako_batch_size: 1,
        requests_per_minute: 120,
        ..Setup::default()
    };
    let world = World::with(setup).await;
    // The target spells the account's URL otherwise: canonically it is the same account.
    let text = std::fs::read_to_string(&world.config).expect("config");
    let url = world.hako.base_url();
    let at = text.rfind(&url).expect("the target's base_url");
    let mut spelt = text.clone();
    spelt.replace_range(
        at..at + url.len(),
        &(url.replace("127.0.0.1", "LOCALHOST") + "/"),
    );
    std::fs::write(&world.config, spelt).expect("config");

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(
        world.hako.rate_limited_count(),
        0,
        "never answered 429:\n{}",
        run.stderr
    );
    assert!(
        world.hako.requests().len() > 120,
        "the budget was really put to the test"
    );
    assert!(
        run.lines_at("WARN").is_empty(),
        "no retry was needed:\n{}",
        run.stderr
    );
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_beside_a_running_daemon_prints_its_plan_and_changes_nothing() {
    let world = World::start().await;
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("cycle finished") {
                return;
            }
        }
    })
    .await;
    assert!(first.is_ok(), "a first cycle was logged");
    world.ea.set_stock("1001", 77);

    let dry = world.invsync(&["once", "--dry-run"]).await;

    dry.assert_code(0);
    assert!(
        dry.stdout
            .lines()
            .any(|l| l.starts_with("hardtofind\tEA-1001\t") && l.contains("\t77\t")),
        "{}\n{}",
        dry.stdout,
        dry.stderr
    );
    assert!(!dry.stderr.contains("locked"), "{}", dry.stderr);
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0));
}

/// What is done to the database's files while `invsync run` runs.
#[derive(Clone, Copy, Debug)]
enum Meddling {
    /// A copy of the database moved over it (a backup restored).
    ReplaceDatabase,
    /// The database removed.
    RemoveDatabase,
    /// The lock file removed (as `rm invsync.db*` would).
    RemoveLock,
}

/// Moves a copy of `database` over it, as restoring a backup does (a consistent copy: SQLite's
/// own); returns the copy's bytes.
fn restore_a_copy(database: &std::path::Path) -> Vec<u8> {
    let copy = database.with_extension("restored");
    let conn = rusqlite::Connection::open(database).expect("db opens");
    conn.execute("VACUUM INTO ?1", [copy.to_str().expect("utf-8")])
        .expect("copied");
    drop(conn);
    std::fs::rename(&copy, database).expect("moved over");
    std::fs::read(database).expect("the copy")
}

/// `invsync run` with a cycle every 100 ms; after its first cycle `meddling` is done; it must
/// exit 75 (systemd's `Restart=` starts it again) with an ERROR saying what happened, and write
/// nothing to the file now at the database's path. Returns the log.
async fn run_while(meddling: Meddling) -> String {
    let world = World::start().await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(
        &world.config,
        text.replace("every = \"1s\"", "every = \"100ms\""),
    )
    .expect("config");
    let database = world.database();
    let mut lock = database.clone().into_os_string();
    lock.push(".lock");
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 1).await,
        "a first cycle:\n{log}"
    );

    let now_there = match meddling {
        Meddling::ReplaceDatabase => Some(restore_a_copy(&database)),
        Meddling::RemoveDatabase => {
            std::fs::remove_file(&database).expect("removed");
            None
        }
        Meddling::RemoveLock => {
            std::fs::remove_file(&lock).expect("removed");
            None
        }
    };
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    if status.is_err() {
        // Still running: stopped here, so that its log ends and says what it did.
        let _ = child.kill().await;
    }
    while let Ok(Some(line)) = lines.next_line().await {
        log.push_str(&line);
        log.push('\n');
    }
    let status = status
        .unwrap_or_else(|_| panic!("{meddling:?}: the daemon did not stop:\n{log}"))
        .expect("status");

    assert_eq!(status.code(), Some(75), "{meddling:?}:\n{log}");
    let (file, how) = match meddling {
        Meddling::ReplaceDatabase => ("database file", "was replaced by another file"),
        Meddling::RemoveDatabase => ("database file", "was removed"),
        Meddling::RemoveLock => ("lock file", "was removed"),
    };
    let path = match meddling {
        Meddling::RemoveLock => lock.to_string_lossy().into_owned(),
        _ => database.display().to_string(),
    };
    let said = log
        .lines()
        .filter(|l| l.contains(" ERROR ") && l.contains("exit_status=75"))
        .collect::<Vec<_>>();
    assert_eq!(said.len(), 1, "{meddling:?}: one ERROR says why:\n{log}");
    assert!(
        said[0].contains(&format!("the {file} {path} {how} while invsync ran")),
        "{meddling:?}: {}",
        said[0]
    );
    match (meddling, now_there) {
        (Meddling::RemoveDatabase, _) => {
            assert!(
                !database.exists(),
                "nothing was created at the path:\n{log}"
            );
        }
        (Meddling::ReplaceDatabase, Some(bytes)) => {
            assert!(
                std::fs::read(&database).expect("still there") == bytes,
                "the file now at the path was not written to:\n{log}"
            );
        }
        // The database is the daemon's own: what it committed is in it, and no cycle began
        // after the lock was found gone (each cycle begun was summed up before).
        (Meddling::RemoveLock, _) => {
            let conn = rusqlite::Connection::open(&database).expect("db opens");
            let cycles: usize = conn
                .query_row("SELECT count(*) FROM cycles", [], |r| r.get(0))
                .expect("counts");
            assert_eq!(cycles, log.matches("cycle finished").count(), "{log}");
        }
        (Meddling::ReplaceDatabase, None) => unreachable!("the copy is kept"),
    }
    log
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_replaced_under_a_running_daemon_stops_it_with_75_writing_nothing_more() {
    let log = run_while(Meddling::ReplaceDatabase).await;
    println!("{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_removed_under_a_running_daemon_stops_it_with_75_creating_nothing() {
    run_while(Meddling::RemoveDatabase).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_file_removed_under_a_running_daemon_stops_it_with_75_before_a_second_can_start() {
    run_while(Meddling::RemoveLock).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn once_whose_database_is_replaced_mid_cycle_exits_75_without_writing_its_results_there() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.hako.set_quantity("warehouse-010", "HK-1", 40);
    // The push is slow enough for a backup to be put in place while it is in flight.
    world.htf.faults().push_for(
        "POST",
        "/batch",
        invsync::sim::Fault::Delay(Duration::from_millis(500)),
    );
    let database = world.database();
    let once = world.spawn(&["once"], &[]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(world.htf.requests().iter()).any(|r| r.path == "/batch" && r.status == 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the push never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restored = restore_a_copy(&database);

    let run = crate::helpers::Run::from(once.wait_with_output().await.expect("exits"));

    run.assert_code(75);
    assert!(
        (run.lines_at("ERROR").iter()).any(|l| l.contains(&format!(
            "the database file {} was replaced by another file",
            database.display()
        ))),
        "{}",
        run.stderr
    );
    assert!(
        std::fs::read(&database).expect("still there") == restored,
        "the restored file was not written to:\n{}",
        run.stderr
    );
}
