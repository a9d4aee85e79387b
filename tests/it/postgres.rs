//! One shop whose `daemon.database` is a PostgreSQL URL, end to end: the real binary against
//! the test process's PostgreSQL server (see `invsync::harness::postgres`), the state in the
//! schema named after the configuration file.

use std::time::Duration;

use crate::helpers::{SCHEMA, Setup, World, signal, wait_until};

async fn world() -> World {
    World::with(Setup {
        postgres: true,
        ..Setup::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn once_on_postgresql_converges_and_an_unchanged_once_pushes_nothing() {
    let world = world().await;

    let first = world.invsync(&["once"]).await;
    let (batches, hako_writes) = (world.htf.batches().len(), world.hako.write_requests());
    let second = world.invsync(&["once"]).await;

    first.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hardtofind"),
        world.expected_hardtofind(),
        "acknowledged in PostgreSQL"
    );
    assert!(
        !world.database().exists(),
        "no SQLite file beside the configuration"
    );
    second.assert_code(0);
    assert_eq!(world.htf.batches().len(), batches, "no Hardtofind batch");
    assert_eq!(world.hako.write_requests(), hako_writes, "no Hako write");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_reads_a_shop_on_postgresql_as_text_json_and_check() {
    let world = world().await;
    let before = world.invsync(&["status", "--check"]).await;
    world.invsync(&["once"]).await.assert_code(0);

    let text = world.invsync(&["status"]).await;
    let json = world.invsync(&["status", "--json"]).await;
    let check = world.invsync(&["status", "--check"]).await;

    before.assert_code(3);
    assert!(before.stdout.starts_with("UNKNOWN: "), "{}", before.stdout);
    text.assert_code(0);
    println!("{}", text.stdout);
    assert!(text.stdout.contains("hardtofind"), "{}", text.stdout);
    assert!(text.stdout.contains("in sync"), "{}", text.stdout);
    json.assert_code(0);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(value["database_exists"], true);
    let database = value["database"].as_str().expect("a database");
    assert!(
        database.starts_with("postgres://") && database.ends_with(&format!("(schema {SCHEMA})")),
        "{database}"
    );
    check.assert_code(0);
    assert_eq!(check.stdout.lines().count(), 1, "{}", check.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_daemon_on_the_same_schema_exits_75_naming_it() {
    let world = world().await;
    world.htf.faults().set_latency(Duration::from_millis(200));
    let first = world.spawn(&["run"], &[]);
    wait_until("the first daemon pushed", || {
        world.htf.count("POST", "/batch") > 0
    })
    .await;

    let second = world.invsync(&["once"]).await;
    let dry_run = world.invsync(&["once", "--dry-run"]).await;

    second.assert_code(75);
    println!("{}", second.stderr.lines().last().unwrap_or_default());
    assert!(
        second
            .stderr
            .contains(&format!("the schema {SCHEMA} is in use by another invsync")),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("daemon.database"),
        "{}",
        second.stderr
    );
    assert_ne!(
        dry_run.code,
        Some(75),
        "a dry run takes no lock:\n{}",
        dry_run.stderr
    );
    signal(&first, "TERM");
    let first = first.wait_with_output().await.expect("exits");
    assert_eq!(first.status.code(), Some(0));
    let log = String::from_utf8_lossy(&first.stderr);
    let starting = log
        .lines()
        .find(|l| l.contains("invsync starting"))
        .unwrap_or_default();
    println!("{starting}");
    assert!(
        starting.contains("database=\"postgres://invsync@")
            && starting.contains(&format!("(schema {SCHEMA})")),
        "{starting}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn check_says_the_schema_will_be_created_then_that_it_exists_creating_nothing() {
    let world = world().await;

    let before = world.invsync(&["check", "--offline"]).await;
    let status = world.invsync(&["status", "--check"]).await;
    world.invsync(&["once"]).await.assert_code(0);
    let after = world.invsync(&["check"]).await;

    before.assert_code(0);
    println!("{}\n{}", before.stdout, after.stdout);
    let line = |run: &crate::helpers::Run| {
        run.stdout
            .lines()
            .find(|l| l.contains("database"))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line(&before).starts_with("ok    database postgres://"));
    assert!(
        line(&before).ends_with("(will be created)"),
        "{}",
        line(&before)
    );
    status.assert_code(3);
    assert!(
        status.stdout.starts_with("UNKNOWN: "),
        "check created nothing: {}",
        status.stdout
    );
    after.assert_code(0);
    assert!(
        line(&after).ends_with("(exists, at this invsync's version)"),
        "{}",
        line(&after)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_server_fails_check_and_once_passes_75_without_the_password() {
    let world = World::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "postgres://invsync:canary-pg-password@{}/nowhere",
        dir.path().display().to_string().replace('/', "%2F")
    );
    let text = std::fs::read_to_string(&world.config).expect("config");
    let path = world.database().display().to_string();
    std::fs::write(&world.config, text.replace(&path, &url)).expect("config");

    let check = world.invsync(&["check", "--offline"]).await;
    let once = world.invsync(&["once"]).await;

    check.assert_code(1);
    println!("{}\n{}", check.stdout, once.stderr);
    assert!(
        check.stdout.contains("FAIL  database postgres://invsync@"),
        "{}",
        check.stdout
    );
    once.assert_code(75);
    for run in [&check, &once] {
        assert!(!run.stdout.contains("canary-pg-password"), "{}", run.stdout);
        assert!(!run.stderr.contains("canary-pg-password"), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_url_is_a_configuration_error_that_does_not_print_the_password() {
    let world = World::start().await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    let path = world.database().display().to_string();
    let url = "postgres://invsync:canary-pg-password@db.example:notaport/shop";
    std::fs::write(&world.config, text.replace(&path, url)).expect("config");

    let once = world.invsync(&["once"]).await;
    let status = world.invsync(&["status"]).await;

    once.assert_code(2);
    println!("{}", once.stderr);
    assert!(once.stderr.contains("daemon.database"), "{}", once.stderr);
    status.assert_code(2);
    for run in [&once, &status] {
        assert!(!run.stdout.contains("canary-pg-password"), "{}", run.stdout);
        assert!(!run.stderr.contains("canary-pg-password"), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_whose_schema_lock_is_lost_stops_with_75_so_that_its_restart_holds_it_again() {
    let world = world().await;
    let daemon = world.spawn(&["run"], &[]);
    wait_until("the first cycle pushed", || {
        world.htf.count("POST", "/batch") > 0
    })
    .await;

    // The server ends the lock's session, as a restart of the server or an administrator would.
    let ended: i64 = world.read(|conn| {
        conn.query_row(
            "SELECT count(*) FROM pg_locks l, pg_terminate_backend(l.pid) t
             WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            [],
            |r| r.get(0),
        )
    });
    let output = tokio::time::timeout(Duration::from_secs(30), daemon.wait_with_output())
        .await
        .expect("stops")
        .expect("exits");

    assert_eq!(ended, 1, "one daemon held one lock");
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{}", stderr.lines().last().unwrap_or_default());
    assert_eq!(output.status.code(), Some(75), "{stderr}");
    assert!(
        stderr.contains(&format!("the lock on the schema {SCHEMA} was lost")),
        "{stderr}"
    );
    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_queue_is_listed_and_approved_in_the_schema() {
    use crate::relay::{relay_tables, state_of, stock_catalogue, supplier_orders_of, us_order};
    let world = World::with(Setup {
        warehouse_skus: 3,
        dropship_skus: crate::relay::SIZES as usize,
        postgres: true,
        ..Setup::default()
    })
    .await;
    stock_catalogue(&world.ea);
    let mut text = std::fs::read_to_string(&world.config).expect("config");
    text.push_str(&relay_tables(&world, "approve", ""));
    std::fs::write(&world.config, text).expect("config");
    let id = world.htf.place_order(us_order(&[("EA-1001", 1)], "Waits"));

    let before = world.invsync(&["relay", "list"]).await;
    let unknown_before = world.invsync(&["relay", "approve", &id]).await;
    world.invsync(&["once"]).await.assert_code(0);
    let waiting = state_of(&world, &id).await;
    let approved = world.invsync(&["relay", "approve", &id]).await;
    world.invsync(&["once"]).await.assert_code(0);
    let unknown = world.invsync(&["relay", "approve", "424242"]).await;

    before.assert_code(0);
    assert!(
        before.stdout.contains("no database yet at postgres://"),
        "{}",
        before.stdout
    );
    unknown_before.assert_code(2);
    assert_eq!(waiting, "eligible");
    approved.assert_code(0);
    println!("{}", approved.stdout);
    assert_eq!(supplier_orders_of(&world, &id), 1, "placed once approved");
    unknown.assert_code(2);
}
