//! Targets are independent: a long push to one never holds back another, and it re-plans from
//! the newest snapshot as it goes.

use std::collections::HashSet;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

/// Waits (bounded, so a broken build fails instead of hanging) until `check` holds.
async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hako_target_keeps_syncing_while_a_first_hardtofind_push_of_10000_skus_is_in_progress() {
    let world = World::with(Setup {
        dropship_skus: 10_000,
        htf_requests_per_minute: Some(60),
        ..Setup::default()
    })
    .await;
    let total = world.expected_hardtofind().len();
    let mut child = world.spawn(&["run"], &[]);
    let stderr = child.stderr.take().expect("stderr");
    let log = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    eventually(
        "the Hako target's first sync",
        Duration::from_secs(60),
        || world.hako.inventory("dropship").len() == 10_000,
    )
    .await;

    for round in 1..=3 {
        world.ea.set_stock("1001", 100 + round);
        eventually(
            "the Hako target follows the change",
            Duration::from_secs(20),
            || world.hako.quantity("dropship", "EA-1001") == Some(100 + round),
        )
        .await;
    }

    let sent: usize = world.htf.batches().iter().map(Vec::len).sum();
    assert!(
        sent < total,
        "Hardtofind's first push was still in progress ({sent} of {total} sent)"
    );
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    let log = log.await.expect("log");
    assert!(
        log.lines()
            .any(|l| l.contains("cycle finished") && l.contains("hardtofind(state=busy")),
        "later cycles report Hardtofind as busy:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sku_changed_in_the_middle_of_a_long_push_is_only_ever_sent_its_new_figure() {
    let world = World::with(Setup {
        dropship_skus: 600,
        htf_batch_size: 20,
        htf_requests_per_minute: Some(120),
        ..Setup::default()
    })
    .await;
    // The last dropship SKU of the plan is pushed (nearly) last: change it mid-push.
    let dry = world.invsync(&["once", "--dry-run"]).await;
    dry.assert_code(0);
    let last = dry
        .stdout
        .lines()
        .rfind(|l| l.starts_with("hardtofind\tEA-"))
        .and_then(|l| l.split('\t').nth(1))
        .expect("a plan for hardtofind")
        .to_owned();
    let id = last.strip_prefix("EA-").expect("a dropship SKU").to_owned();
    let mut child = world.spawn(&["run"], &[]);
    eventually("the push is under way", Duration::from_secs(60), || {
        world.htf.batches().len() >= 3
    })
    .await;
    let before_change: HashSet<String> = world
        .htf
        .batches()
        .iter()
        .flatten()
        .map(|(sku, _)| sku.clone())
        .collect();
    assert!(!before_change.contains(&last), "changed before it was sent");
    world.ea.set_stock(&id, 4242);
    let expected_total = world.expected_hardtofind();

    eventually("the push ends", Duration::from_secs(120), || {
        world.hardtofind_shows() == expected_total
    })
    .await;

    let sent: Vec<i64> = world
        .htf
        .batches()
        .iter()
        .flatten()
        .filter(|(sku, _)| *sku == last)
        .map(|(_, q)| *q)
        .collect();
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|&q| q == 4242),
        "{last} was sent {sent:?}: never its old figure"
    );
    signal(&child, "TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
}
