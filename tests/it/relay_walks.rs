//! The relay reads its feed's `READY` list in proportion to what changed, as the order feeds
//! read theirs: thousands of `READY` orders nobody touched cost a page a cycle, and an order that
//! comes between two cycles, or while the lists are paged, is still placed, and placed once.

use std::time::Duration;

use invsync::services::hardtofind::sim::{NewOrder, OrderChange};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;
use crate::relay::{relay_world, state_of, supplier_orders_of, us_order};
use crate::walks::summaries;

/// `order` as nobody has touched it for `seconds`, placed a day before.
fn untouched_for(mut order: NewOrder, seconds: i64) -> NewOrder {
    let updated = chrono::Utc::now() - chrono::Duration::seconds(seconds);
    order.updated_at = Some(updated);
    order.created_at = Some(updated - chrono::Duration::days(1));
    order
}

/// `order` as nobody has touched it for `minutes`.
fn untouched(order: NewOrder, minutes: i64) -> NewOrder {
    untouched_for(order, 60 * minutes)
}

/// `n` `READY` orders of the shop's own warehouse (no line of the supplier's: none of the
/// relay's business), as a shop has them: the newest changed an hour ago, each older one a
/// minute before the next.
fn warehouse_orders(world: &World, n: usize) {
    world.htf.place_orders((0..n).map(|i| {
        let order = NewOrder::new([(format!("ORDERED-{}", i % 50), 1)]);
        untouched(order, 60 + i as i64)
    }));
}

/// The summary line's `relay_read`: how the relay read `READY`, and the pages it asked for.
fn relay_read(summary: &str) -> (&str, u64) {
    let at = summary.find("relay_read=\"walk=").expect("relay_read=") + "relay_read=\"walk=".len();
    let (walk, rest) = summary[at..].split_once(" pages=").expect("pages=");
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (walk, digits.parse().expect("a number"))
}

/// The summary lines of the cycles whose relay step ran (and read `READY`).
fn relayed(log: &str) -> Vec<&str> {
    summaries(log)
        .into_iter()
        .filter(|l| l.contains("relay_read=\"walk="))
        .collect()
}

/// `READY` pages asked for beyond page 2, by anyone.
fn ready_pages_beyond_2(world: &World) -> usize {
    (world.htf.orders_queries().iter())
        .filter(|q| q.status.as_deref() == Some("READY"))
        .filter(|q| (q.page_number.as_deref()).is_some_and(|p| p != "1" && p != "2"))
        .count()
}

async fn stop(mut child: tokio::process::Child) {
    signal(&child, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_over_two_thousand_ready_orders_nobody_changed_reads_a_page_a_cycle_not_every_page()
{
    let world = relay_world("approve", "").await;
    warehouse_orders(&world, 2_000);
    // Three of the relay's own, awaiting approval: open records whose orders nobody changes.
    let waiting: Vec<String> = (1..=3)
        .map(|i| {
            let order = us_order(&[(&format!("EA-100{i}"), 1)], "Waits");
            world.htf.place_order(untouched(order, 30 + i))
        })
        .collect();
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();

    // Four cycles whose relay step ran: on a busy machine the first one's full read can outlast
    // a cycle, which then leaves the relay to it (its summary says `relay="-"`).
    let mut cycles = Vec::new();
    for _ in 0..40 {
        assert!(
            read_until(&mut lines, &mut log, "cycle finished", 1).await,
            "{log}"
        );
        cycles = relayed(&log);
        if cycles.len() >= 4 {
            break;
        }
    }
    assert!(cycles.len() >= 4, "{log}");

    // 2,003 READY orders are 201 pages: pages 3 to 201 were asked for twice in all, by the
    // feed's first read and by the relay's; after that, page 1 (or 2) a cycle.
    assert_eq!(ready_pages_beyond_2(&world), 2 * 199);
    assert_eq!(relay_read(cycles[0]), ("full", 201), "{}", cycles[0]);
    for unchanged in &cycles[1..] {
        let (walk, pages) = relay_read(unchanged);
        assert_eq!(walk, "incremental", "{unchanged}");
        assert!(pages <= 2, "{unchanged}");
    }
    for id in &waiting {
        assert_eq!(state_of(&world, id).await, "eligible");
        assert_eq!(
            world.htf.count("GET", &format!("/order/{id}")),
            0,
            "an open record whose order nobody changed is not looked up one by one"
        );
    }

    // Approved, it is placed once (read again by id first: the relay knew it from memory).
    world
        .invsync(&["relay", "approve", &waiting[0]])
        .await
        .assert_code(0);
    let ea = world.ea.clone();
    let placed = waiting[0].clone();
    wait_until("the approved order is placed", || {
        (ea.orders().iter()).any(|o| o.custom_order_id.as_deref() == Some(&format!("htf-{placed}")))
    })
    .await;
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 3).await,
        "{log}"
    );
    assert_eq!(supplier_orders_of(&world, &waiting[0]), 1);
    assert_eq!(world.ea.order_puts(), 1, "one PUT in all");
    assert_eq!(ready_pages_beyond_2(&world), 2 * 199, "no full read since");
    stop(child).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ready_order_that_comes_between_cycles_or_while_the_lists_are_paged_is_placed_once() {
    let world = relay_world("auto", "max_orders_per_cycle = 100").await;
    // The feed reserves PROCESSED alone, so that every READY page asked for is the relay's.
    let text = std::fs::read_to_string(&world.config).expect("config");
    let text = text.replace(
        "[orders.hardtofind]\n",
        "[orders.hardtofind]\nreserve = [\"PROCESSED\"]\n",
    );
    std::fs::write(&world.config, text).expect("config");
    warehouse_orders(&world, 300);
    // Forty orders changed in the last minutes: every read goes down through them (the margin
    // for clocks), four or five pages, so a change can come between two of its pages.
    world.htf.place_orders(
        (0..40).map(|i| untouched_for(NewOrder::new([(format!("ORDERED-{i}"), 1)]), 60 + 5 * i)),
    );
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut log = String::new();
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 2).await,
        "{log}"
    );

    // One between two cycles, and six more, one right after each of the next six
    // `GET /orders`: most between two pages of the relay's read.
    let between = world
        .htf
        .place_order(us_order(&[("EA-1001", 1)], "Between"));
    let (fired_before, _) = world.htf.changes_made();
    let paged: Vec<String> = (0..6).map(|i| format!("Paged{i}")).collect();
    for (i, name) in paged.iter().enumerate() {
        let order = us_order(&[("EA-1002", 1)], name);
        world
            .htf
            .change_after(1 + i, OrderChange::Place(Box::new(order)));
    }
    let ea = world.ea.clone();
    wait_until("every order is placed", || {
        ea.orders().len() == 1 + paged.len()
    })
    .await;
    assert!(
        read_until(&mut lines, &mut log, "cycle finished", 3).await,
        "{log}"
    );

    assert_eq!(supplier_orders_of(&world, &between), 1);
    for name in &paged {
        let theirs = (world.ea.orders().iter())
            .filter(|o| o.shipping.get("last_name").and_then(|n| n.as_str()) == Some(name))
            .count();
        assert_eq!(theirs, 1, "{name}");
    }
    assert_eq!(world.ea.order_puts(), 1 + paged.len(), "one PUT each");
    // Some came between two pages of the relay's read (the next page asked for was a READY
    // page after the first), or this test proved nothing.
    let (fired, _) = world.htf.changes_made();
    let queries = world.htf.orders_queries();
    let mid_walk = (fired[fired_before.len()..].iter())
        .filter_map(|&at| queries.get(at))
        .filter(|q| q.status.as_deref() == Some("READY") && q.page_number.as_deref() != Some("1"))
        .count();
    assert!(mid_walk >= 1, "{fired:?}: {queries:?}");
    let cycles = relayed(&log);
    assert!(
        (cycles.iter().skip(2)).all(|c| relay_read(c).0 == "incremental"),
        "{log}"
    );
    stop(child).await;
}
