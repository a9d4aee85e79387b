//! The services as they really are: where a document is silent, the simulators answer every
//! plausible way (a dialect, see `invsync::sim::dialect`), and the core promises hold in each.

use std::collections::BTreeSet;

use invsync::services::hardtofind::sim::NewOrder;
use invsync::sim::Dialect;
use invsync::sim::dialect::VALUES;

use crate::helpers::*;

/// A world whose Hardtofind account is also an order feed, speaking `dialect`; `HK-1` and
/// `HK-2` start at 10 in the warehouse.
async fn orders_world(dialect: Dialect, feed_extra: &str) -> World {
    let world = World::with(Setup {
        dialect,
        ..Setup::default()
    })
    .await;
    world.hako.set_quantity("warehouse-010", "HK-1", 10);
    world.hako.set_quantity("warehouse-010", "HK-2", 10);
    let mut text = std::fs::read_to_string(&world.config).expect("config");
    text.push_str(&format!(
        "\n[orders.hardtofind]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"{HTF_USER}\"\n{feed_extra}\nrequests_per_minute = 100000\n",
        world.htf.base_url()
    ));
    if !feed_extra.contains("password") {
        text.push_str(&format!("password = \"{HTF_PASSWORD}\"\n"));
    }
    std::fs::write(&world.config, text).expect("config");
    world
}

fn order_of(sku: &str, quantity: i64) -> NewOrder {
    NewOrder::new([(sku.to_owned(), quantity)])
}

/// Every `(point, value)` the covering set must have made some simulator answer with.
fn assert_every_value_spoken(used: &BTreeSet<(&str, &str)>, points: &[&str]) {
    for (point, values) in VALUES.iter().filter(|(p, _)| points.contains(p)) {
        for value in *values {
            assert!(
                used.contains(&(*point, *value)),
                "no simulator ever answered {point}={value}: the tests prove nothing about it (spoken: {used:?})"
            );
        }
    }
}

/// Reservations in one dialect: `READY` orders and no `PROCESSED` one (so one list is empty),
/// reserved, then absorbed when the warehouse counts the sale; an order gone from the store is
/// looked up and its reservation kept; a token the service forgot is renewed.
async fn reservations_hold_in(dialect: Dialect) -> BTreeSet<(&'static str, &'static str)> {
    let world = orders_world(dialect, "").await;
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-1"), Some(10), "{dialect}");
    world.htf.place_order(order_of("HK-1", 3));
    let gone = world.htf.place_order(order_of("HK-2", 4));
    world.htf.expire_all_tokens();

    let reserved = world.invsync(&["once"]).await;

    reserved.assert_code(0);
    assert_eq!(
        (world.htf.inventory("HK-1"), world.htf.inventory("HK-2")),
        (Some(7), Some(6)),
        "{dialect}: READY orders are reserved though no order is PROCESSED\n{}",
        reserved.stderr
    );
    assert!(
        reserved.summary().contains("made=2"),
        "{dialect}: {}",
        reserved.summary()
    );
    world.hako.set_quantity("warehouse-010", "HK-1", 7);
    world.htf.remove_order(&gone);

    let absorbed = world.invsync(&["once"]).await;

    absorbed.assert_code(0);
    assert_eq!(
        (world.htf.inventory("HK-1"), world.htf.inventory("HK-2")),
        (Some(7), Some(6)),
        "{dialect}: the counted sale is not subtracted twice, and an order the store no longer \
         shows keeps its reservation (absence is no evidence)\n{}",
        absorbed.stderr
    );
    assert!(
        absorbed.summary().contains("absorbed=1"),
        "{dialect}: {}",
        absorbed.summary()
    );
    world.dialect_used()
}

#[tokio::test]
async fn reservations_are_made_and_absorbed_in_every_dialect_an_empty_list_being_empty_whatever_its_pages()
 {
    let runs = Dialect::covering().into_iter().map(reservations_hold_in);
    let used: BTreeSet<_> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();

    assert_every_value_spoken(
        &used,
        &[
            "empty_pages",
            "gone",
            "errors",
            "fields",
            "numbers",
            "encoding",
        ],
    );
}

#[tokio::test]
async fn an_order_with_an_unreadable_line_or_date_is_named_and_never_stops_the_rest_of_the_feed() {
    let world = orders_world(Dialect::production(), "").await;
    world.hako.set_quantity("warehouse-010", "HK-3", 10);
    world.hako.set_quantity("warehouse-010", "HK-4", 10);
    world.invsync(&["once"]).await.assert_code(0);
    // A deleted variant (`"sku": null`) beside a line that reads; half a unit; a zero date.
    let deleted = world
        .htf
        .place_order(NewOrder::new([("HK-1", 2), ("HK-9", 1)]));
    world
        .htf
        .rewrite_order(&deleted, |o| o["lines"][1]["sku"] = serde_json::Value::Null);
    let half = world
        .htf
        .place_order(NewOrder::new([("HK-2", 1), ("HK-3", 1)]));
    world.htf.rewrite_order(&half, |o| {
        o["lines"][0]["quantity"] = serde_json::json!(2.5)
    });
    let zero = world.htf.place_order(order_of("HK-4", 3));
    world.htf.rewrite_order(&zero, |o| {
        o["dates"]["dispatch_due_at"] = serde_json::json!("0000-00-00 00:00:00")
    });

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    let shown = |sku: &str| world.htf.inventory(sku);
    assert_eq!(
        (shown("HK-1"), shown("HK-2"), shown("HK-3"), shown("HK-4")),
        (Some(8), Some(10), Some(9), Some(7)),
        "each order reserves the lines that read; a zero date is no date\n{}",
        run.stderr
    );
    for (order, what) in [(&deleted, "line 2: SKU null"), (&half, "quantity 2.5")] {
        assert!(
            run.stderr.lines().any(|l| l.contains("WARN")
                && l.contains(&format!("order={order}"))
                && l.contains(what)),
            "a WARN names order {order} and says {what:?}\n{}",
            run.stderr
        );
    }
    assert!(run.summary().contains("unreadable=2"), "{}", run.summary());
    let status = world.invsync(&["status"]).await;
    assert!(
        status.stdout.contains("2 orders could not be read whole")
            && status
                .stdout
                .contains(&format!("order {deleted}: line 2: SKU null"))
            && status
                .stdout
                .contains(&format!("order {half}: line 1 (HK-2): quantity 2.5")),
        "{}",
        status.stdout
    );

    // The order that did not read holds what it held, whatever its readable lines now say;
    // later sales are reserved as ever.
    world
        .htf
        .set_order_lines(&deleted, [("HK-1", 5), ("HK-9", 1)]);
    world.htf.place_order(order_of("HK-2", 2));
    let later = world.invsync(&["once"]).await;

    later.assert_code(0);
    assert_eq!(
        (shown("HK-1"), shown("HK-2")),
        (Some(8), Some(8)),
        "{}",
        later.stderr
    );
}

#[tokio::test]
async fn an_order_feed_with_a_wrong_password_fails_check_once_and_status_check_naming_it() {
    let world = World::start().await;
    let mut text = std::fs::read_to_string(&world.config).expect("config");
    // Its own account: nothing else logs in with this user name.
    text.push_str(&format!(
        "\n[orders.shop_orders]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"orders@example.com\"\npassword = \"wrong-password\"\n",
        world.htf.base_url()
    ));
    std::fs::write(&world.config, text).expect("config");

    let check = world.invsync(&["check"]).await;
    let once = world.invsync(&["once"]).await;
    let status = world.invsync(&["status"]).await;
    let monitor = world.invsync(&["status", "--check"]).await;
    let json = world.invsync(&["status", "--json"]).await;

    check.assert_code(1);
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("order feed shop_orders")),
        "{}",
        check.stdout
    );
    once.assert_code(1);
    assert!(
        once.summary().contains("outcome=\"partial\"")
            || once.summary().contains("outcome=partial"),
        "{}",
        once.summary()
    );
    assert!(
        status.stdout.contains("shop_orders: FAILING"),
        "{}",
        status.stdout
    );
    monitor.assert_code(2);
    assert!(
        monitor.stdout.contains("order feed shop_orders FAILING"),
        "{}",
        monitor.stdout
    );
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert!(json["feeds"][0]["failing"].is_string(), "{}", json["feeds"]);
    assert!(!check.stdout.contains("wrong-password") && !once.stderr.contains("wrong-password"));
}

/// A sync in one dialect: every target brought in line, then only what changed pushed, a SKU
/// Hako refuses set apart without sinking the rest.
async fn a_sync_holds_in(dialect: Dialect) -> BTreeSet<(&'static str, &'static str)> {
    let world = World::with(Setup {
        dialect,
        ..Setup::default()
    })
    .await;
    world.hako.refuse_writes_of("EA-1003", true);

    let first = world.invsync(&["once"]).await;

    first.assert_code(1);
    assert_eq!(
        world.htf.inventory("HK-1"),
        Some(2),
        "{dialect}\n{}",
        first.stderr
    );
    assert_eq!(
        world.htf.inventory("EA-1004"),
        Some(initial_dropship(4)),
        "{dialect}"
    );
    assert_eq!(
        world.hako.quantity("dropship", "EA-1004"),
        Some(initial_dropship(4)),
        "{dialect}: the rest of a batch with a refused SKU is written\n{}",
        first.stderr
    );
    assert_eq!(
        world.hako.quantity("dropship", "EA-1003"),
        None,
        "{dialect}"
    );
    world.hako.refuse_writes_of("EA-1003", false);
    world.hako.set_quantity("warehouse-010", "HK-1", 9);
    world.ea.set_stock(&dropship_id(4), 0);
    world.htf.clear_batches();

    let second = world.invsync(&["once", "--force"]).await;

    second.assert_code(0);
    assert_eq!(
        world.htf.inventory("HK-1"),
        Some(9),
        "{dialect}\n{}",
        second.stderr
    );
    assert_eq!(world.htf.inventory("EA-1004"), Some(0), "{dialect}");
    assert_eq!(
        world.hako.quantity("dropship", "EA-1004"),
        Some(0),
        "{dialect}"
    );
    let sent: BTreeSet<String> = (world.htf.batches().into_iter().flatten())
        .map(|(sku, _)| sku)
        .collect();
    assert_eq!(
        sent,
        BTreeSet::from(["HK-1".to_owned(), "EA-1004".to_owned()]),
        "{dialect}: only what changed is pushed"
    );
    world.dialect_used()
}

#[tokio::test]
async fn a_sync_pushes_what_changed_and_sets_a_refusal_apart_in_every_dialect() {
    let runs = Dialect::covering().into_iter().map(a_sync_holds_in);
    let used: BTreeSet<_> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();

    assert_every_value_spoken(&used, &["errors", "fields", "numbers", "encoding"]);
}

/// A mapping in one dialect: an alias of the file and a size linked by barcode land on
/// Hardtofind under their canonical SKUs on a first `once`.
async fn a_mapping_applies_in(dialect: Dialect) -> BTreeSet<(&'static str, &'static str)> {
    let mut world = World::with(Setup {
        dialect,
        ..Setup::default()
    })
    .await;
    world.htf.add_variant("CAT-1");
    world.ea.add_product(
        1,
        "Taste Of The Wild",
        vec![invsync::services::endless_aisles::sim::SimSize::new(
            1001,
            "0074198609628",
        )],
    );
    world.hako.set_quantity("warehouse-010", "HK-OLD", 50);
    let shop = crate::mapping::catalogue_of(&mut world, "074198609628").await;
    shop.set_dialect(dialect);
    crate::mapping::with_mapping(
        &mut world,
        "sku,endpoint,key\nHK-21,warehouse,HK-OLD\n",
        "by_barcode = true\n",
    );
    world.htf.add_variant("HK-21");

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(
        (world.htf.inventory("HK-21"), world.htf.inventory("CAT-1")),
        (Some(50), Some(3)),
        "{dialect}: the alias and the barcode are applied on the first cycle\n{}",
        run.stderr
    );
    let mut used = world.dialect_used();
    used.extend(shop.dialect_used());
    used
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mapping_by_file_and_by_barcode_applies_in_every_dialect() {
    let runs = Dialect::covering().into_iter().map(a_mapping_applies_in);
    let used: BTreeSet<_> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .collect();

    assert_every_value_spoken(&used, &["fields", "numbers", "encoding", "stock_pages"]);
}

#[tokio::test]
async fn a_list_that_does_not_read_is_named_and_the_other_lists_are_still_used() {
    let world = orders_world(Dialect::documented(), "").await;
    world.invsync(&["once"]).await.assert_code(0);
    let processed = world.htf.place_order(order_of("HK-2", 4));
    world.htf.set_order_status(
        &processed,
        invsync::services::hardtofind::wire::OrderStatus::Processed,
    );
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.inventory("HK-2"), Some(6));
    world.htf.place_order(order_of("HK-1", 3));
    // READY's page reads; PROCESSED's page is JSON of another shape.
    world.htf.faults().push_for(
        "GET",
        "/orders",
        invsync::sim::Fault::Delay(std::time::Duration::ZERO),
    );
    world.htf.faults().push_for(
        "GET",
        "/orders",
        invsync::sim::Fault::answer(r#"{"data": "none"}"#),
    );

    let run = world.invsync(&["once"]).await;

    run.assert_code(1);
    assert_eq!(
        (world.htf.inventory("HK-1"), world.htf.inventory("HK-2")),
        (Some(7), Some(6)),
        "the READY list's new order is reserved, the PROCESSED order keeps its reservation\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("the PROCESSED list")),
        "{}",
        run.stderr
    );
    let status = world.invsync(&["status"]).await;
    assert!(
        status
            .stdout
            .contains("hardtofind: FAILING: the PROCESSED list"),
        "{}",
        status.stdout
    );
}
