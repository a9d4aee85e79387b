//! An order feed reads in proportion to what changed since its last complete read: ten thousand
//! open orders nobody touched cost a couple of requests a cycle, and reserve what a full read
//! reserves; every list is read in full on the first cycle and on the full-sync schedule's.

use std::time::Duration;

use invsync::services::hardtofind::sim::NewOrder;
use invsync::services::hardtofind::wire::OrderStatus;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

/// A world whose Hardtofind account is also an order feed (`release = "status"`: a shipped
/// order's reservation ends at once), with `daemon_extra` in `[daemon]`.
async fn world_with_feed(daemon_extra: &str) -> World {
    let world = World::with(Setup {
        daemon_extra: daemon_extra.to_owned(),
        ..Setup::default()
    })
    .await;
    add_order_feed(&world, "status");
    world
}

/// `n` READY orders as a shop has them: the newest last changed an hour ago, each older one a
/// minute before the next (ten thousand span a week). Their SKUs are no source's: the targets
/// are left alone.
fn open_orders(world: &World, n: usize) -> Vec<String> {
    let now = chrono::Utc::now();
    world.htf.place_orders((0..n).map(|i| {
        let mut order = NewOrder::new([(format!("ORDERED-{}", i % 50), 1)]);
        let updated = now - chrono::Duration::minutes(60 + i as i64);
        order.updated_at = Some(updated);
        order.created_at = Some(updated - chrono::Duration::days(1));
        order
    }))
}

/// What `status` says open orders hold now.
async fn open_reservations(world: &World) -> i64 {
    let status = world.invsync(&["status", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    value["reservations"]["open"].as_i64().expect("a count")
}

/// The summary lines of `log`.
pub fn summaries(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("cycle finished"))
        .collect()
}

/// The `pages=` of a summary line's `reservations`.
fn pages(summary: &str) -> u64 {
    let at = summary.find(" pages=").expect("pages=") + " pages=".len();
    let digits: String = summary[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number")
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_open_orders_nobody_changed_cost_a_few_requests_a_cycle_and_reserve_what_a_full_read_does()
 {
    let world = world_with_feed("").await;
    let placed = open_orders(&world, 10_000);
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();

    // The first cycle reads every page; the next three, with nothing changed, page 1 and 2.
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 4).await,
        "{log}"
    );
    let cycles = summaries(&log);
    assert!(
        cycles[0].contains("walk=full pages=1001"),
        "READY's 1,000 pages and PROCESSED's one: {}",
        cycles[0]
    );
    for unchanged in &cycles[1..] {
        assert!(unchanged.contains("walk=incremental"), "{unchanged}");
        assert!(
            pages(unchanged) <= 4,
            "two lists, two pages each at most: {unchanged}"
        );
        assert!(
            unchanged.contains("made=0") && unchanged.contains("released=0"),
            "{unchanged}"
        );
    }
    // The simulator saw the same: after the first 1,001, nothing beyond page 2 was asked for.
    let queries = world.htf.orders_queries();
    assert!(queries.len() >= 1_001 + 3, "{}", queries.len());
    let beyond: Vec<_> = (queries[1_001..].iter())
        .filter(|q| {
            q.page_number
                .as_deref()
                .is_some_and(|p| p != "1" && p != "2")
        })
        .collect();
    assert!(beyond.is_empty(), "{beyond:?}");
    assert_eq!(open_reservations(&world).await, 10_000);

    // One order ships: the next cycle finds it at the top of SHIPPED, looks it up, releases it.
    world
        .htf
        .set_order_status(&placed[5_000], OrderStatus::Shipped);
    assert!(
        read_until(&mut lines, &mut log, "released=1", 1).await,
        "{log}"
    );
    let released = *summaries(&log).last().expect("a summary");
    assert!(released.contains("walk=incremental"), "{released}");
    assert!(pages(released) <= 10, "{released}");
    assert_eq!(open_reservations(&world).await, 9_999);
    assert_eq!(
        world.htf.count("GET", &format!("/order/{}", placed[5_000])),
        1,
        "looked up once"
    );

    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    // A new process reads every list in full: it finds nothing to change.
    let full = world.invsync(&["once"]).await;
    let summary = full.summary();
    assert!(summary.contains("walk=full"), "{summary}");
    assert!(
        summary.contains("made=0") && summary.contains("released=0"),
        "{summary}"
    );
    assert_eq!(open_reservations(&world).await, 9_999);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_full_sync_schedules_cycles_read_every_list_in_full_and_the_others_go_on_from_the_last()
{
    let world = world_with_feed("full_sync_schedule = \"*/3 * * * * *\"").await;
    open_orders(&world, 40);
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();

    // Two full syncs, and the cycles around them.
    assert!(
        read_until(&mut lines, &mut log, "full=true", 2).await,
        "{log}"
    );

    let cycles = summaries(&log);
    assert!(cycles[0].contains("walk=full"), "the first: {}", cycles[0]);
    for cycle in &cycles {
        if cycle.contains("full=true") {
            assert!(cycle.contains("walk=full pages=5"), "{cycle}");
        }
    }
    let went_on = (cycles[1..].iter())
        .filter(|c| c.contains("full=false"))
        .collect::<Vec<_>>();
    assert!(!went_on.is_empty(), "{log}");
    for cycle in went_on {
        assert!(cycle.contains("walk=incremental"), "{cycle}");
    }
    drop(child);
}
