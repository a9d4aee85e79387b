//! `invsync run`: cycles on the schedule, a clean exit on SIGTERM, one budget per account.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Setup, World, signal};

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
