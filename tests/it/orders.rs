//! Open orders reserve stock: a sale the warehouse has not counted yet is never pushed back, and
//! once the warehouse shows it, it is not subtracted twice.

use invsync::services::hardtofind::sim::NewOrder;
use invsync::services::hardtofind::wire::OrderStatus;

use crate::helpers::*;

/// A world whose Hardtofind account is also an order feed; `HK-1` starts at 10 in the warehouse.
async fn world_with_orders(release: &str) -> World {
    let world = World::with(Setup {
        daemon_extra: String::new(),
        ..Setup::default()
    })
    .await;
    world.hako.set_quantity("warehouse-010", "HK-1", 10);
    add_order_feed(&world, release);
    world
}

fn order_of(sku: &str, quantity: i64) -> NewOrder {
    NewOrder::new([(sku.to_owned(), quantity)])
}

#[tokio::test]
async fn an_order_for_3_of_10_shows_7_and_the_warehouse_counting_it_keeps_7() {
    let world = world_with_orders("absorb").await;
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(10));
    world.htf.place_order(order_of("HK-1", 3));

    let reserved = world.invsync(&["once"]).await;

    reserved.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(7), "{}", reserved.stderr);
    assert!(
        reserved.summary().contains("made=1"),
        "{}",
        reserved.summary()
    );
    // The warehouse counts the sale: 10 -> 7. Still 7 at Hardtofind, not 4.
    world.hako.set_quantity("warehouse-010", "HK-1", 7);
    let absorbed = world.invsync(&["once"]).await;
    absorbed.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(7), "{}", absorbed.stderr);
    assert!(
        absorbed.summary().contains("absorbed=1"),
        "{}",
        absorbed.summary()
    );
    let explained = world.invsync(&["status", "--sku", "HK-1"]).await;
    assert!(
        explained
            .stdout
            .contains("3 shown by the sources, 0 subtracted"),
        "{}",
        explained.stdout
    );
    assert_eq!(
        world.htf.orders_queries_without_status(),
        0,
        "/orders always asked with status="
    );
}

#[tokio::test]
async fn a_sale_the_warehouse_counted_before_invsync_saw_the_order_is_not_subtracted_twice() {
    let world = world_with_orders("absorb").await;
    world.invsync(&["once"]).await.assert_code(0);
    // The warehouse counts the sale first (10 -> 7); the order shows up a cycle later.
    let id = world.htf.place_order(order_of("HK-1", 3));
    world.htf.set_order_status(&id, OrderStatus::Pending);
    world.hako.set_quantity("warehouse-010", "HK-1", 7);
    world.invsync(&["once"]).await.assert_code(0);
    world.htf.set_order_status(&id, OrderStatus::Ready);

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(7), "{}", run.stderr);
}

#[tokio::test]
async fn a_cancelled_order_gives_its_units_back_and_status_sku_lists_reservations() {
    let world = world_with_orders("absorb").await;
    world.invsync(&["once"]).await.assert_code(0);
    let first = world.htf.place_order(order_of("HK-1", 3));
    world.htf.place_order(order_of("HK-1", 2));
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(5));
    let explained = world.invsync(&["status", "--sku", "HK-1"]).await;
    println!("{}", explained.stdout);
    assert_eq!(
        explained.stdout.matches("reserved by order").count(),
        2,
        "{}",
        explained.stdout
    );
    assert!(
        explained.stdout.contains("minus 5 reserved"),
        "{}",
        explained.stdout
    );

    world.htf.set_order_status(&first, OrderStatus::Cancelled);
    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(
        world.htf.inventory("HK-1"),
        Some(8),
        "10 - the 2 still open"
    );
}

#[tokio::test]
async fn release_none_subtracts_nothing_and_release_status_ends_at_shipping() {
    let none = world_with_orders("none").await;
    none.invsync(&["once"]).await.assert_code(0);
    none.htf.place_order(order_of("HK-1", 3));
    none.invsync(&["once"]).await.assert_code(0);
    assert_eq!(none.htf.inventory("HK-1"), Some(10));

    let status = world_with_orders("status").await;
    status.invsync(&["once"]).await.assert_code(0);
    let id = status.htf.place_order(order_of("HK-1", 3));
    status.invsync(&["once"]).await.assert_code(0);
    assert_eq!(status.htf.inventory("HK-1"), Some(7));
    // The source decrements at dispatch, exactly when the order ships.
    status.htf.set_order_status(&id, OrderStatus::Shipped);
    status.hako.set_quantity("warehouse-010", "HK-1", 7);
    status.invsync(&["once"]).await.assert_code(0);
    assert_eq!(status.htf.inventory("HK-1"), Some(7));
}

#[tokio::test]
async fn a_shipped_remainder_is_released_only_after_settle_after_and_a_later_fetch_with_a_warn() {
    let world = world_with_orders("absorb").await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(
        &world.config,
        text.replace(
            "release = \"absorb\"",
            "release = \"absorb\"\nsettle_after = \"2s\"",
        ),
    )
    .expect("config");
    world.invsync(&["once"]).await.assert_code(0);
    let id = world.htf.place_order(order_of("HK-1", 3));
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(7));

    // It ships; the warehouse never shows the sale.
    world.htf.set_order_status(&id, OrderStatus::Shipped);
    let shipped = world.invsync(&["once"]).await;
    assert_eq!(
        world.htf.inventory("HK-1"),
        Some(7),
        "held while it settles"
    );
    assert!(
        !shipped.stderr.contains("settle_after"),
        "{}",
        shipped.stderr
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_200)).await;
    let settled = world.invsync(&["once"]).await;

    settled.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(10), "{}", settled.stderr);
    assert!(
        settled
            .lines_at("WARN")
            .iter()
            .any(|l| l.contains("settle_after")),
        "{}",
        settled.stderr
    );
}

#[tokio::test]
async fn an_order_a_week_past_its_dispatch_date_is_stuck_an_error_every_cycle_and_never_released() {
    let world = world_with_orders("absorb").await;
    world.invsync(&["once"]).await.assert_code(0);
    let mut order = order_of("HK-1", 3);
    let now = chrono::Utc::now();
    order.created_at = Some(now - chrono::Duration::days(12));
    order.dispatch_due_at = Some(now - chrono::Duration::days(8));
    world.htf.place_order(order);

    for _ in 0..2 {
        let run = world.invsync(&["once"]).await;
        assert!(
            run.lines_at("ERROR")
                .iter()
                .any(|l| l.contains("STUCK") && l.contains("sku=HK-1")),
            "{}",
            run.stderr
        );
        assert_eq!(world.htf.inventory("HK-1"), Some(7), "still reserved");
    }
    let explained = world.invsync(&["status", "--sku", "HK-1"]).await;
    assert!(explained.stdout.contains("STUCK"), "{}", explained.stdout);
}

#[tokio::test]
async fn status_lists_open_reservations_stuck_orders_with_their_age_and_skus_no_source_knows() {
    let world = world_with_orders("absorb").await;
    world.invsync(&["once"]).await.assert_code(0);
    let now = chrono::Utc::now();
    let mut late = NewOrder::new([("HK-2".to_owned(), 1), ("HK-3".to_owned(), 1)]);
    late.created_at = Some(now - chrono::Duration::days(12));
    late.dispatch_due_at = Some(now - chrono::Duration::days(8));
    let stuck = world.htf.place_order(late);
    world.htf.place_order(order_of("HK-1", 3));
    world.htf.place_order(order_of("NOT-IN-ANY-SOURCE", 2));
    world.invsync(&["once"]).await;

    let text = world.invsync(&["status"]).await;
    let json = world.invsync(&["status", "--json"]).await;
    let check = world.invsync(&["status", "--check"]).await;

    text.assert_code(0);
    println!("{}", text.stdout);
    assert!(
        text.stdout.contains(
            "4 open (7 units subtracted), 1 orders STUCK, 1 SKUs unknown to every source"
        ),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!(
            "STUCK order {stuck} (hardtofind): 8days past its dispatch date"
        )) && text.stdout.contains("holds HK-2, HK-3"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("unknown SKUs held by open orders: NOT-IN-ANY-SOURCE"),
        "{}",
        text.stdout
    );
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    let reservations = &value["reservations"];
    assert_eq!(reservations["open"], 4, "{}", json.stdout);
    assert_eq!(reservations["stuck"][0]["order_id"], stuck.as_str());
    assert!(reservations["stuck"][0]["overdue_ms"].as_i64() > Some(8 * 86_400_000 - 60_000));
    assert_eq!(reservations["unknown_skus"][0], "NOT-IN-ANY-SOURCE");
    check.assert_code(2);
    assert!(
        check.stdout.contains(&format!("order {stuck} STUCK")),
        "{}",
        check.stdout
    );
}

#[tokio::test]
async fn an_order_feed_no_longer_configured_is_deleted_at_start_with_its_reservations_and_named() {
    let world = world_with_orders("absorb").await;
    world.invsync(&["once"]).await.assert_code(0);
    world.htf.place_order(order_of("HK-1", 3));
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(7));
    let text = std::fs::read_to_string(&world.config).expect("config");
    let (without, _) = text.split_once("\n[orders.hardtofind]").expect("the feed");
    std::fs::write(&world.config, without).expect("config");

    let run = world.invsync(&["once"]).await;
    let json = world.invsync(&["status", "--json"]).await;

    run.assert_code(0);
    let named: Vec<&str> = (run.lines_at("INFO").into_iter())
        .filter(|l| l.contains("no longer configured") && l.contains("endpoint=hardtofind"))
        .collect();
    assert_eq!(named.len(), 1, "{}", run.stderr);
    assert!(named[0].contains("kind=\"order feed\""), "{}", named[0]);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(value["feeds"], serde_json::json!([]), "{}", json.stdout);
    assert_eq!(value["reservations"]["open"], 0, "{}", json.stdout);
    let conn = rusqlite::Connection::open(world.database()).expect("db opens");
    let rows = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect("counts") };
    assert_eq!(
        rows("SELECT count(*) FROM feeds"),
        0,
        "its last read is forgotten"
    );
    assert_eq!(rows("SELECT count(*) FROM reservations"), 0);
    assert_eq!(
        world.htf.inventory("HK-1"),
        Some(10),
        "nothing reserves any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_read_cut_short_by_shutdown_is_no_failure_of_the_feed() {
    let world = world_with_orders("absorb").await;
    world.invsync(&["once"]).await.assert_code(0);
    world.htf.clear_requests();
    // The next cycle's first `GET /orders` never answers: SIGTERM comes while it waits.
    world
        .htf
        .faults()
        .push_for("GET", "/orders", invsync::harness::Fault::Hang);
    let child = world.spawn(&["run"], &[]);
    let asked = std::time::Instant::now();
    while !world
        .htf
        .requests()
        .iter()
        .any(|r| r.method == "GET" && r.path.contains("/orders"))
    {
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(30),
            "no GET /orders"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    signal(&child, "TERM");
    let stopped = Run::from(child.wait_with_output().await.expect("run exits"));

    stopped.assert_code(0);
    assert!(
        !stopped.stderr.contains("order feed could not be read"),
        "a shutdown is no failure of the feed:\n{}",
        stopped.stderr
    );
    assert!(
        stopped
            .stderr
            .contains("order feed read stopped by shutdown"),
        "{}",
        stopped.stderr
    );
    let status = world.invsync(&["status", "--json"]).await;
    let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("JSON");
    assert_eq!(
        value["feeds"][0]["last_error"],
        serde_json::Value::Null,
        "{}",
        status.stdout
    );
}
