//! Failures of the remotes: retried when passing, contained when lasting.

use std::time::Duration;

use invsync::sim::Fault;

use crate::helpers::{Setup, World, dropship_id};

fn status(code: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status: code,
        body: format!("{{\"error\":\"simulated {code}\"}}"),
        retry_after: retry_after.map(str::to_owned),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_a_429_with_retry_after_and_a_dropped_connection_are_retried_through() {
    let world = World::start().await;
    world
        .htf
        .faults()
        .push_for("POST", "/batch", status(503, None));
    world
        .htf
        .faults()
        .push_for("POST", "/batch", status(429, Some("1")));
    world.htf.faults().push_for("POST", "/batch", Fault::Drop);
    world
        .hako
        .faults()
        .push_for("GET", "/inventory", status(500, None));

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    world.assert_in_sync();
    assert_eq!(world.htf.faults().pending(), 0, "every fault was met");
    let warnings = run.lines_at("WARN");
    assert_eq!(warnings.len(), 4, "one WARN per retry:\n{}", run.stderr);
    assert!(
        warnings
            .iter()
            .all(|l| l.contains("retrying") && l.contains("wait_ms=")),
        "{warnings:#?}"
    );
    assert!(
        run.summary()
            .contains("hardtofind(state=in_sync pushed=50 requests=5 retries=3"),
        "{}",
        run.summary()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_refused_mid_cycle_is_renewed_once_and_the_batch_goes_through() {
    let world = World::with(Setup {
        htf_batch_size: 10,
        ..Setup::default()
    })
    .await;
    world
        .htf
        .faults()
        .push_for("POST", "/batch", Fault::Delay(Duration::from_millis(1)));
    world
        .htf
        .faults()
        .push_for("POST", "/batch", Fault::Delay(Duration::from_millis(1)));
    world
        .htf
        .faults()
        .push_for("POST", "/batch", status(401, None));

    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    assert_eq!(
        world.htf.authentications(),
        2,
        "logged in at the start and after the 401"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_about_to_expire_is_renewed_before_the_service_refuses_it() {
    // Tokens live 4 s and Hardtofind takes one request a second: the login and five batches
    // outlive the first token. (A request waits up to a second for its turn after its token was
    // checked; real tokens live 15 minutes and are renewed a minute early.)
    let setup = Setup {
        htf_batch_size: 10,
        token_lifetime: Duration::from_secs(4),
        ..Setup::default()
    };
    let world = World::with(setup).await;
    let config = std::fs::read_to_string(&world.config).expect("read");
    let slow = config.replacen(
        "batch_size = 10\nrequests_per_minute = 100000",
        "batch_size = 10\nrequests_per_minute = 60",
        1,
    );
    assert_ne!(config, slow);
    std::fs::write(&world.config, slow).expect("write");

    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    assert!(
        world.htf.authentications() >= 2,
        "renewed at least once: {}",
        world.htf.authentications()
    );
    assert_eq!(world.htf.unauthorized_count(), 0, "never refused");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_host_clock_an_hour_off_once_logs_in_exactly_once_for_many_batches() {
    // -3600: the host is an hour fast (every token it gets looks expired an hour ago by its own
    // clock); +3600: an hour slow. Tokens live the documented 15 minutes either way.
    for offset in [-3600, 3600] {
        let world = World::with(Setup {
            htf_batch_size: 1,
            ..Setup::default()
        })
        .await;
        world.htf.set_clock_offset(offset);

        let run = world.invsync(&["once"]).await;

        run.assert_code(0);
        world.assert_in_sync();
        let batches = world.htf.count("POST", "/batch");
        println!(
            "clock off by {offset} s: {} login(s) for {batches} batches, {} refused",
            world.htf.authentications(),
            world.htf.unauthorized_count()
        );
        assert!(batches >= 50, "{batches} batches");
        assert_eq!(world.htf.authentications(), 1, "{}", run.stderr);
        assert_eq!(world.htf.unauthorized_count(), 0, "never refused");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_answering_malformed_json_skips_only_the_targets_that_read_it() {
    let world = World::start().await;
    world
        .hako
        .faults()
        .push_for("GET", "/inventory", Fault::Malformed);

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert_eq!(
        world.htf.count("POST", "/batch"),
        0,
        "hardtofind reads the broken source"
    );
    assert_eq!(
        world.hako.inventory("dropship"),
        world.expected_hako_dropship(),
        "hako_dropship does not"
    );
    let errors = run.lines_at("ERROR");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("source=warehouse") && l.contains("malformed answer")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("target=hardtofind") && l.contains("skipped")),
        "{errors:#?}"
    );

    world.invsync(&["once"]).await.assert_code(0);
    world.assert_in_sync();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_stays_down_fails_the_cycle_without_blocking_the_other_and_catches_up_after()
{
    let world = World::with(Setup {
        htf_batch_size: 10,
        ..Setup::default()
    })
    .await;
    world.htf.faults().set_down(Some(503));

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert_eq!(
        world.hako.inventory("dropship"),
        world.expected_hako_dropship(),
        "the other target is in sync"
    );
    assert!(
        world.acknowledged("hardtofind").is_empty(),
        "nothing unacknowledged is recorded as pushed"
    );
    let errors = run.lines_at("ERROR");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("target=hardtofind") && l.contains("retried at the next")),
        "{errors:#?}"
    );
    assert!(
        run.summary().contains("hardtofind(state=failed"),
        "{}",
        run.summary()
    );
    let status = world.invsync(&["status"]).await;
    assert!(
        status.stdout.contains("hardtofind: FAILING"),
        "{}",
        status.stdout
    );

    world.htf.faults().set_down(None);
    world.ea.set_stock(&dropship_id(1), 55);
    world.invsync(&["once"]).await.assert_code(0);

    world.assert_in_sync();
    assert_eq!(
        world.acknowledged("hardtofind"),
        world.expected_hardtofind()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_failing_for_longer_than_stale_after_raises_the_alarm_and_shows_stale() {
    let world = World::with(Setup {
        daemon_extra: "stale_after = \"1s\"".into(),
        ..Setup::default()
    })
    .await;
    let healthy = world.invsync(&["once"]).await;
    world.ea.faults().set_down(Some(503));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let run = world.invsync(&["once"]).await;
    let status = world.invsync(&["status"]).await;
    let json = world.invsync(&["status", "--json"]).await;

    healthy.assert_code(0);
    assert!(
        !healthy.stderr.contains("stale"),
        "nothing is stale after a good fetch:\n{}",
        healthy.stderr
    );
    run.assert_code(1);
    let alarms: Vec<&str> = run
        .lines_at("ERROR")
        .into_iter()
        .filter(|l| l.contains("stale"))
        .collect();
    assert_eq!(
        alarms.len(),
        1,
        "one alarm, for the failing source only:\n{}",
        run.stderr
    );
    assert!(
        alarms[0].contains("source=dropship")
            && alarms[0].contains("stale_after=1s")
            && alarms[0].contains("keep being skipped until it answers"),
        "{}",
        alarms[0]
    );
    let age = alarms[0]
        .split_whitespace()
        .find_map(|field| field.strip_prefix("age="))
        .and_then(|age| humantime::parse_duration(age).ok());
    assert!(
        age.is_some_and(|age| age > Duration::from_secs(1)),
        "age= is a duration over stale_after: {}",
        alarms[0]
    );
    status.assert_code(0);
    assert!(
        status.stdout.contains("dropship: STALE"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains("warehouse: ok"), "{}", status.stdout);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let stale: Vec<(&str, bool)> = value["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| (s["name"].as_str().unwrap_or("?"), s["stale"] == true))
        .collect();
    assert_eq!(stale, vec![("dropship", true), ("warehouse", false)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_answer_after_a_catalogue_of_stock_holds_the_source_instead_of_zeroing_it() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.ea.clear(); // Endless Aisles now answers {"data": []}

    let held = world.invsync(&["once"]).await;

    held.assert_code(1);
    assert_eq!(
        world.hako.inventory("dropship"),
        world.expected_hako_dropship_before_clear(),
        "nothing was zeroed"
    );
    let errors = held.lines_at("ERROR");
    assert!(
        errors.iter().any(|l| l.contains("mass-zero guard")
            && l.contains("source=dropship")
            && l.contains("take 30 of the 30 SKUs")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("target skipped") && l.contains("target=hako_dropship")),
        "{errors:#?}"
    );

    world.invsync(&["once", "--force"]).await.assert_code(0);
    assert!(
        world.hako.inventory("dropship").values().all(|q| *q == 0),
        "--force pushes the zeros"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_held_by_the_guard_shows_its_targets_held_by_it_not_failing_to_fetch_it() {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    world.ea.clear();
    world.invsync(&["once"]).await.assert_code(1);

    let status = world.invsync(&["status"]).await;
    let text = &status.stdout;
    for target in ["hako_dropship", "hardtofind"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("  {target}: ")))
            .unwrap_or_default();
        assert!(
            line.contains("HELD by the mass-zero guard (input dropship")
                && line.contains("invsync once --force"),
            "{target}: {text}"
        );
    }
    assert!(!text.contains("could not be fetched"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&world.invsync(&["status", "--json"]).await.stdout).expect("json");
    let states: Vec<&str> = json["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| t["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(states, ["held", "held"], "{json:#}");
    let check = world.invsync(&["status", "--check"]).await;
    check.assert_code(2);
    assert!(check.stdout.contains("hardtofind HELD"), "{}", check.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_larger_than_the_cap_is_a_clear_error_not_an_out_of_memory_kill() {
    let setup = Setup {
        dropship_skus: 300,
        daemon_extra: "max_response_size = \"2KiB\"".into(),
        ..Setup::default()
    };
    let world = World::with(setup).await;

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    let errors = run.lines_at("ERROR");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("source=dropship") && l.contains("answer larger than 2048 bytes")),
        "{errors:#?}"
    );
    assert_eq!(world.htf.count("POST", "/batch"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_accepts_and_never_answers_costs_one_timeout() {
    let world = World::start().await;
    let config = std::fs::read_to_string(&world.config).expect("read");
    std::fs::write(
        &world.config,
        config.replace("request_timeout = \"5s\"", "request_timeout = \"1s\""),
    )
    .expect("write");
    // The stock request (the products, read before it, answer).
    world.ea.faults().push_for("GET", "/api/stock", Fault::Hang);

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    world.assert_in_sync();
    let warnings = run.lines_at("WARN");
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("no answer within the request timeout"),
        "{}",
        warnings[0]
    );
    assert!(
        run.summary()
            .contains("dropship(skus=30 changed=30 requests=2)"),
        "{}",
        run.summary()
    );
}

/// A batch Hardtofind took but whose answer never reached invsync (dropped on every attempt)
/// leaves its SKUs in doubt: when the figure then returns to the acknowledged one, they are
/// pushed again, or Hardtofind would go on showing what the lost request said.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_taken_without_its_answer_is_pushed_again_when_the_figure_returns_to_the_acknowledged_one()
 {
    let world = World::start().await;
    world.invsync(&["once"]).await.assert_code(0);
    let id = dropship_id(12);
    let sku = format!("EA-{id}");
    let acked = world.acknowledged("hardtofind")[&sku];
    let before = world.ea.stock()[&id];
    assert_eq!(world.hardtofind_shows()[&sku], acked);

    world.ea.set_stock(&id, before + 4);
    for _ in 0..4 {
        let taken_then_dropped = Fault::AfterHandling(Box::new(Fault::Drop));
        world
            .htf
            .faults()
            .push_for("POST", "/batch", taken_then_dropped);
    }
    let lost = world.invsync(&["once"]).await;
    assert_ne!(lost.code, Some(0), "{}", lost.stderr);
    assert_eq!(
        world.hardtofind_shows()[&sku],
        acked + 4,
        "Hardtofind took the batch"
    );
    assert_eq!(
        world.acknowledged("hardtofind")[&sku],
        acked,
        "without an answer, nothing is acknowledged"
    );
    let status = world.invsync(&["status"]).await;
    assert!(
        status.stdout.contains(
            "1 SKUs sent without their acknowledgement coming back: pushed again at the next cycle"
        ),
        "{}",
        status.stdout
    );
    let json = world.invsync(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let hardtofind = json["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "hardtofind"))
        .expect("the target");
    assert_eq!(hardtofind["in_doubt"], 1, "{hardtofind}");
    let explained = world.invsync(&["status", "--sku", &sku]).await;
    assert!(
        explained
            .stdout
            .contains("sent without its acknowledgement coming back"),
        "{}",
        explained.stdout
    );

    world.ea.set_stock(&id, before);
    // Refused once on the way: the lost request may still have been taken, so it stays in doubt.
    world.htf.reject_sku(&sku, "variant is locked");
    world.invsync(&["once"]).await;
    assert_eq!(
        world.htf.refusals(),
        std::slice::from_ref(&sku),
        "pushed again, and refused"
    );
    let json = world.invsync(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    let hardtofind = json["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "hardtofind"))
        .expect("the target");
    assert_eq!(hardtofind["in_doubt"], 1, "{hardtofind}");
    world.htf.accept_sku(&sku);
    // Its refusal is tried again at the next cycle's time (`every` is a second here).
    let next_attempt: i64 = rusqlite::Connection::open(world.database())
        .expect("db")
        .query_row("SELECT max(next_attempt_at) FROM failed_skus", [], |r| {
            r.get(0)
        })
        .expect("a refusal's schedule");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(
        (next_attempt - now + 50).max(0) as u64
    ))
    .await;
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(
        world.hardtofind_shows()[&sku],
        acked,
        "pushed again although it should show what it was last acknowledged"
    );
    world.assert_in_sync();
    // Answered at last: the next cycle has nothing in doubt and pushes nothing.
    let batches = world.htf.batches().len();
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.batches().len(), batches);
}
