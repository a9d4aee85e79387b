//! What invsync refuses to believe (the contract's "Trust"): an answer that is not the
//! service's, a pair the answer leaves out, a record it cannot read, a pause it was asked for.

use std::time::Duration;

use invsync::sim::Fault;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Setup, World, initial_dropship, read_until, signal, warehouse_sku};

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_page_answering_200_to_a_batch_is_retried_like_a_5xx_and_never_acknowledged() {
    let world = World::start().await;
    // Every attempt of the one batch (retry_max_attempts = 4) meets the maintenance page.
    for _ in 0..4 {
        world.htf.faults().push_for("POST", "/batch", Fault::Html);
    }

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert!(
        world.acknowledged("hardtofind").is_empty(),
        "a page that is not the service's answer acknowledges nothing"
    );
    let retries = run.lines_at("WARN");
    let retried: Vec<&&str> = retries
        .iter()
        .filter(|l| l.contains("not JSON") && l.contains("retrying"))
        .collect();
    assert_eq!(retried.len(), 3, "retried like a 5xx:\n{}", run.stderr);
    println!("{}", retried[0]);

    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hardtofind"),
        world.expected_hardtofind()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hako_pair_left_out_of_the_write_answer_is_not_acknowledged_and_is_pushed_again() {
    let world = World::start().await;
    world.hako.skip_writes_of("EA-1001", true);

    let run = world.invsync(&["once"]).await;

    let acked = world.acknowledged("hako_dropship");
    assert!(!acked.contains_key("EA-1001"), "{acked:?}");
    assert_eq!(acked.len(), 29, "the rest of the batch is acknowledged");
    let warning = run
        .lines_at("WARN")
        .into_iter()
        .find(|l| l.contains("leaves out"))
        .unwrap_or_else(|| panic!("a WARN says so:\n{}", run.stderr));
    println!("{warning}");
    assert!(warning.contains("EA-1001"), "{warning}");

    world.hako.skip_writes_of("EA-1001", false);
    let again = world.invsync(&["once"]).await;

    again.assert_code(0);
    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hako_dropship").get("EA-1001"),
        Some(&initial_dropship(1)),
        "pushed again, and acknowledged once confirmed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_far_retry_after_pauses_the_account_across_cycles_fails_fast_and_never_delays_shutdown() {
    let world = World::start().await;
    // "Come back tomorrow", to the account's source read: its target shares the account.
    world
        .hako
        .faults()
        .push_for("GET", "/inventory", Fault::retry_after(86_400));
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    let three = read_until(&mut lines, &mut log, "cycle finished", 3).await;
    assert!(three, "three cycles were logged:\n{log}");

    assert_eq!(
        world.hako.requests().len(),
        1,
        "nothing more was sent to the paused account in three cycles:\n{log}"
    );
    let pauses: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("asked for a pause"))
        .collect();
    assert_eq!(pauses.len(), 1, "one WARN says so:\n{log}");
    println!("{}", pauses[0]);
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" ERROR ") && l.contains("sends nothing until"))
        .collect();
    assert!(
        failures.iter().any(|l| l.contains("source=warehouse")),
        "the failure says until when:\n{log}"
    );
    assert!(
        world.ea.requests().len() >= 3,
        "other accounts go on: {}",
        world.ea.requests().len()
    );

    let stopping = std::time::Instant::now();
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the pause does not delay shutdown")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    assert!(stopping.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quantity_that_is_not_a_whole_number_is_named_and_the_rest_of_the_answer_is_used() {
    let world = World::start().await;
    let mut data = serde_json::Map::new();
    for i in 4..=30 {
        data.insert((1000 + i).to_string(), initial_dropship(i).into());
    }
    data.insert("1001".into(), serde_json::json!(1.5));
    data.insert("1002".into(), serde_json::json!("7.5"));
    // A string of digits is the number it spells (see the Endless Aisles stock reader).
    data.insert("1005".into(), serde_json::json!("7"));
    data.insert("1003".into(), serde_json::Value::Null);
    data.insert(String::new(), 4.into());
    data.insert("10\t99".into(), 5.into());
    let body = serde_json::json!({ "data": data }).to_string();
    world
        .ea
        .faults()
        .push_for("GET", "/api/stock", Fault::answer(body));

    let run = world.invsync(&["once"]).await;

    let warnings = run.lines_at("WARN");
    for sku in ["EA-1001", "EA-1002", "EA-1003"] {
        let named = warnings
            .iter()
            .find(|l| l.contains(&format!("sku={sku}")) && l.contains("not a whole number"))
            .unwrap_or_else(|| panic!("{sku} is named:\n{}", run.stderr));
        assert!(named.contains("source=\"source dropship\""), "{named}");
    }
    let dropped: Vec<&&str> = warnings
        .iter()
        .filter(|l| l.contains("control characters"))
        .collect();
    assert_eq!(dropped.len(), 1, "one WARN per fetch:\n{}", run.stderr);
    assert!(dropped[0].contains("records=2"), "{}", dropped[0]);
    println!("{}", dropped[0]);
    assert!(
        !run.lines_at("ERROR")
            .iter()
            .any(|l| l.contains("source=dropship")),
        "the source did not fail:\n{}",
        run.stderr
    );
    let shows = world.htf.inventories();
    assert_eq!(
        shows.get("EA-1004"),
        Some(&initial_dropship(4)),
        "the rest is used"
    );
    assert_eq!(shows.get("EA-1005"), Some(&7), "\"7\" is 7");
    let pushed: Vec<String> = world
        .htf
        .batches()
        .into_iter()
        .flatten()
        .map(|(sku, _)| sku)
        .chain(world.hako.inventory("dropship").into_keys())
        .collect();
    assert!(
        !pushed.iter().any(|s| s == "EA-" || s.contains('\t')),
        "never pushed: {pushed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_reported_with_where_it_points() {
    let world = World::start().await;
    world.htf.faults().push_for(
        "POST",
        "/batch",
        Fault::Redirect("https://login.elsewhere.example/sso?session=abc".into()),
    );

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    let error = run
        .lines_at("ERROR")
        .into_iter()
        .find(|l| l.contains("target=hardtofind"))
        .unwrap_or_else(|| panic!("an ERROR names the target:\n{}", run.stderr));
    println!("{error}");
    assert!(
        error.contains("HTTP 302") && error.contains("https://login.elsewhere.example/sso"),
        "{error}"
    );
    assert!(!run.stderr.contains("session=abc"), "{}", run.stderr);
    let status = world.invsync(&["status"]).await;
    assert!(
        status
            .stdout
            .contains("https://login.elsewhere.example/sso"),
        "{}",
        status.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigterm_during_a_retry_wait_logs_no_error_and_keeps_the_real_last_error() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    // The real last error: Hako answering 500 for as long as the retries last.
    world.hako.faults().set_down(Some(500));
    let failed = world.invsync(&["once"]).await;
    failed.assert_code(1);
    // Now a long retry wait: the next attempt is 10 s away when SIGTERM comes.
    let config = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(
        &world.config,
        config
            .replace(
                "retry_initial_backoff = \"20ms\"",
                "retry_initial_backoff = \"10s\"",
            )
            .replace(
                "retry_max_backoff = \"100ms\"",
                "retry_max_backoff = \"10s\"",
            ),
    )
    .expect("config");
    world.hako.faults().set_down(Some(503));
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    let waiting = read_until(&mut lines, &mut log, "retrying", 1).await;
    assert!(waiting, "a retry wait began:\n{log}");

    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("a wait does not delay shutdown")
        .expect("status");
    read_until(&mut lines, &mut log, "the end of the stream", 1).await;

    assert_eq!(status.code(), Some(0));
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(" ERROR ")).collect();
    println!("{} ERROR lines after SIGTERM", errors.len());
    assert!(errors.is_empty(), "a stop is not an error:\n{log}");
    world.hako.faults().set_down(None);
    let shown = world.invsync(&["status"]).await;
    assert!(shown.stdout.contains("HTTP 500"), "{}", shown.stdout);
    assert!(!shown.stdout.contains("shutting down"), "{}", shown.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sku_whose_quantity_cannot_be_read_keeps_its_last_figure_while_the_rest_moves_on() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    let mut data = serde_json::Map::new();
    for i in 2..=30 {
        data.insert((1000 + i).to_string(), (initial_dropship(i) + 1).into());
    }
    data.insert("1001".into(), serde_json::json!("seven"));
    let body = serde_json::json!({ "data": data }).to_string();
    world
        .ea
        .faults()
        .push_for("GET", "/api/stock", Fault::answer(body));

    world.invsync(&["once"]).await;

    let shows = world.htf.inventories();
    assert_eq!(
        shows.get("EA-1001"),
        Some(&initial_dropship(1)),
        "held at its last snapshot quantity, not zeroed"
    );
    assert_eq!(shows.get("EA-1002"), Some(&(initial_dropship(2) + 1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_tried_again_after_1_2_4_cycles_not_every_cycle() {
    let world = World::start().await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(
        &world.config,
        text.replace("password = \"htf-canary-password\"", "password = \"wrong\""),
    )
    .expect("config");
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();

    // Eight cycles, one a second: without a backoff, eight logins.
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 8).await,
        "{log}"
    );
    signal(&child, "TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    let logins = world.htf.count("POST", "/authenticate");
    println!("{logins} logins in 8 cycles");
    assert!(
        (2..=4).contains(&logins),
        "{logins} logins in 8 cycles:\n{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains(" ERROR ") && l.contains("next login")),
        "the ERROR says when the next login is:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_slower_than_fetch_timeout_fails_alone() {
    let world = World::with(Setup {
        daemon_extra: "fetch_timeout = \"1s\"".into(),
        ..Setup::default()
    })
    .await;
    world.ea.faults().set_latency(Duration::from_secs(3));

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert!(
        run.lines_at("ERROR")
            .iter()
            .any(|l| l.contains("source=dropship") && l.contains("fetch_timeout")),
        "{}",
        run.stderr
    );
    assert!(
        world.htf.batches().is_empty(),
        "Hardtofind reads dropship too: skipped"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn losing_20_percent_a_cycle_trips_the_guard_before_a_quarter_is_zeroed() {
    let world = World::with(Setup {
        warehouse_skus: 100,
        ..Setup::default()
    })
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    let mut removed = 0;
    let mut held = false;
    for _ in 0..8 {
        let left = 100 - removed;
        for i in removed + 1..=removed + left / 5 {
            world.hako.remove("warehouse-010", &warehouse_sku(i));
        }
        removed += left / 5;
        let run = world.invsync(&["once"]).await;
        held |= run.stderr.contains("held by the mass-zero guard");
    }

    let zeroed = (1..=100)
        .filter(|&i| world.htf.inventory(&warehouse_sku(i)) == Some(0))
        .count();
    println!("{removed} of 100 removed at the source, {zeroed} zeroed at Hardtofind");
    assert!(held, "the guard held the source");
    assert!(zeroed <= 25, "{zeroed} of 100 zeroed");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_skus_wait_for_their_next_attempt_and_never_pass_for_a_target_refusing_everything()
{
    let world = World::with(Setup {
        htf_batch_size: 10,
        ..Setup::default()
    })
    .await;
    for i in 1..=12 {
        world
            .htf
            .reject_sku(&format!("EA-{}", 1000 + i), "variant archived");
    }
    let first = world.invsync(&["once"]).await;
    first.assert_code(1);
    let requests_first = world.htf.count("POST", "/batch");

    // At once again: the twelve are not due yet (the next cycle, 1 s here), so nothing is sent.
    let second = world.invsync(&["once"]).await;
    let requests_second = world.htf.count("POST", "/batch") - requests_first;

    println!("first cycle {requests_first} requests, an immediate second {requests_second}");
    assert_eq!(requests_second, 0, "{}", second.stderr);
    for run in [&first, &second] {
        assert!(
            !run.stderr.contains("refuses every SKU"),
            "twelve refusals among pushed SKUs are not 'every SKU':\n{}",
            run.stderr
        );
    }
    let status = world.invsync(&["status", "--json"]).await;
    assert!(
        status.stdout.contains("\"failed_skus\": 12"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("\"next_attempt_at\": \"20"),
        "{}",
        status.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_error_in_one_target_keeps_the_cycles_summary_line_and_the_other_target() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    {
        // From now on the database refuses to record a push or an outcome for hako_dropship.
        let conn = rusqlite::Connection::open(world.database()).expect("db");
        conn.execute_batch(
            "CREATE TRIGGER refuse_hako BEFORE UPDATE OF last_success_at, synced_at ON targets WHEN NEW.name = 'hako_dropship'
             BEGIN SELECT RAISE(ABORT, 'injected: this row cannot be written'); END;",
        )
        .expect("trigger");
    }
    world.hako.set_quantity("warehouse-010", "HK-1", 99);
    world.ea.set_stock(&crate::helpers::dropship_id(1), 42);

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    let summary = run.summary();
    println!("{summary}");
    assert!(
        summary.contains("hardtofind(state=in_sync"),
        "the other target's part is there:\n{}",
        run.stderr
    );
    assert!(
        summary.contains("hako_dropship(state=failed"),
        "{}",
        run.stderr
    );
    assert_eq!(world.htf.inventory("HK-1"), Some(99), "hardtofind went on");
    assert!(
        run.lines_at("ERROR")
            .iter()
            .any(|l| l.contains("target=hako_dropship") && l.contains("injected")),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_waits_across_runs_but_check_always_tries_once() {
    let world = World::start().await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    // A cycle a minute: the first wait (one cycle) outlasts the test whatever the load.
    let text = text.replace("every = \"1s\"", "every = \"1m\"");
    std::fs::write(
        &world.config,
        text.replace("password = \"htf-canary-password\"", "password = \"wrong\""),
    )
    .expect("config");

    let first = world.invsync(&["once"]).await;
    let after_first = world.htf.count("POST", "/authenticate");
    let second = world.invsync(&["once"]).await;
    let after_second = world.htf.count("POST", "/authenticate");
    let check = world.invsync(&["check"]).await;
    let after_check = world.htf.count("POST", "/authenticate");

    first.assert_code(1);
    second.assert_code(1);
    let waiting = second
        .lines_at("ERROR")
        .into_iter()
        .find(|l| l.contains("target=hardtofind") && l.contains("next login"))
        .unwrap_or_else(|| panic!("the ERROR says when:\n{}", second.stderr))
        .to_owned();
    println!("{waiting}");
    assert_eq!(after_first, 1, "{}", first.stderr);
    assert_eq!(
        after_second, 1,
        "the next run waits: the backoff is in the database"
    );
    assert_eq!(
        after_check - after_second,
        1,
        "check tries once:\n{}",
        check.stderr
    );
    assert_ne!(check.code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sku_hako_refuses_is_split_out_without_reading_the_warehouse_again_for_every_split() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    // Every dropship SKU changes, and Hako will not take one of them: the batch of 30 is halved
    // around it.
    let refused = format!("EA-{}", crate::helpers::dropship_id(7));
    world.hako.refuse_writes_of(&refused, true);
    for i in 0..30 {
        world
            .ea
            .set_stock(&crate::helpers::dropship_id(i), 40 + i as i64);
    }
    let reads_before = world.hako.count("GET", "/inventory");

    let run = world.invsync(&["once"]).await;

    // One read is the warehouse source's own; one more looks up the dropship pairs once.
    let reads = world.hako.count("GET", "/inventory") - reads_before;
    println!("{reads} reads of /inventory for a batch split around one refused SKU");
    assert!(reads <= 2, "{reads} reads:\n{}", run.stderr);
    let shows = world.hako.inventory("dropship");
    for i in (0..30).filter(|&i| i != 7) {
        let sku = format!("EA-{}", crate::helpers::dropship_id(i));
        assert_eq!(shows.get(&sku), Some(&(40 + i as i64)), "{sku}");
    }
    assert_ne!(
        shows.get(&refused),
        Some(&47),
        "the refused SKU was not written"
    );
    assert!(
        run.stderr.contains(&refused) && run.stderr.contains("cannot be written to"),
        "the refusal is named:\n{}",
        run.stderr
    );
}
