//! The relay's promise under every way Endless Aisles may answer where its document is silent
//! (see `invsync::sim::dialect`), and what a refusal of a resent `custom_order_id` means: the
//! order is already there, so it is found, or a person is told it probably exists; it is never
//! `rejected`.

use std::collections::BTreeSet;

use invsync::services::hardtofind::wire::OrderStatus;
use invsync::sim::{Dialect, Fault};

use crate::helpers::*;
use crate::relay::{relay_tables, state_of, stock_catalogue, supplier_orders_of, us_order};

/// Stock items at Endless Aisles: more than one page of `/api/stock` when it is paged.
const DROPSHIP_SKUS: usize = 25;

/// A world whose Endless Aisles speaks `dialect`, with the relay in `auto`.
async fn world_speaking(dialect: Dialect) -> World {
    let world = World::with(Setup {
        warehouse_skus: 3,
        dropship_skus: DROPSHIP_SKUS,
        ..Setup::default()
    })
    .await;
    world.ea.set_dialect(dialect);
    stock_catalogue(&world.ea);
    let mut text = std::fs::read_to_string(&world.config).expect("config");
    text.push_str(&relay_tables(&world, "auto", ""));
    std::fs::write(&world.config, text).expect("config");
    world
}

/// Ships every line of every open supplier order with an Australia Post tracking number.
fn ship_everything(world: &World) {
    let url = "https://auspost.com.au/mypost/track/#/details/";
    for order in world.ea.orders().iter().filter(|o| o.status == "Scheduled") {
        let number = format!("AP{}", order.id);
        for line in &order.lines {
            let tracking = format!("{url}{number}");
            world
                .ea
                .ship_line(order.id, line.option_id, line.quantity, &tracking, &number);
        }
    }
}

/// The `PUT /api/orders` answers Endless Aisles gave, by status.
fn put_statuses(world: &World) -> Vec<u16> {
    (world.ea.requests().iter())
        .filter(|r| r.method == "PUT" && r.path == "/api/orders")
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn a_ready_order_is_placed_exactly_once_moved_to_process_and_shipped_with_tracking_in_every_dialect()
 {
    let mut spoken = BTreeSet::new();
    for dialect in Dialect::covering() {
        let world = world_speaking(dialect).await;
        let plain = (world.htf).place_order(us_order(&[("EA-1001", 2), ("EA-1002", 1)], "Plain"));
        let lost = (world.htf).place_order(us_order(&[("EA-1003", 1)], "Lost"));
        // The second placement is applied but its answer is lost; the search does not show it
        // at first, so the resend meets the duplicate-id refusal in this dialect's shape.
        world.ea.set_search_lag(1);
        let put = |fault| world.ea.faults().push_for("PUT", "/api/orders", fault);
        put(Fault::Delay(std::time::Duration::ZERO));
        put(Fault::AfterHandling(Box::new(Fault::Drop)));

        let placed = world.invsync(&["once"]).await;

        placed.assert_code(0);
        let log = &placed.stderr;
        for id in [&plain, &lost] {
            assert_eq!(supplier_orders_of(&world, id), 1, "{dialect}: {log}");
            assert_eq!(state_of(&world, id).await, "processing", "{dialect}: {log}");
            assert_eq!(world.htf.order_status(id), Some(OrderStatus::Processed));
        }
        assert_eq!(put_statuses(&world).len(), 3, "{dialect}: one resend");
        assert!(
            put_statuses(&world)[2] == 409 || put_statuses(&world)[2] == 422,
            "{dialect}: the resend is refused as a duplicate: {:?}",
            put_statuses(&world)
        );
        // Every figure of the stock read in this dialect reached Hardtofind.
        let last = format!("EA-{}", 1000 + DROPSHIP_SKUS);
        assert_eq!(
            world.htf.inventory(&last),
            Some(initial_dropship(DROPSHIP_SKUS)),
            "{dialect}: {log}"
        );

        ship_everything(&world);
        world.invsync(&["once"]).await.assert_code(0);
        world.invsync(&["once"]).await.assert_code(0);

        for id in [&plain, &lost] {
            assert_eq!(world.htf.order_status(id), Some(OrderStatus::Shipped));
            assert_eq!(state_of(&world, id).await, "done", "{dialect}");
        }
        let tracked: Vec<String> = (world.htf.transitions().into_iter())
            .filter(|t| t.action == "ship")
            .filter_map(|t| t.tracking_number)
            .collect();
        assert_eq!(tracked.len(), 2, "{dialect}: {tracked:?}");
        assert_eq!(world.ea.order_count(), 2, "{dialect}");
        spoken.extend(world.ea.dialect_used());
    }
    for point in ["errors", "fields", "numbers", "encoding", "stock_pages"] {
        let values = invsync::sim::dialect::VALUES
            .iter()
            .find(|(p, _)| *p == point);
        for value in values.map(|(_, v)| *v).unwrap_or_default() {
            assert!(
                spoken.contains(&(point, *value)),
                "{point}={value} was never spoken: {spoken:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_resend_refused_as_a_bare_409_is_never_rejected_and_the_order_is_found_once_the_search_shows_it()
 {
    let world = world_speaking(Dialect::production()).await;
    let id = (world.htf).place_order(us_order(&[("EA-1004", 1)], "Conflict"));
    // Not in the two searches of the first cycle: the resend between them meets a bare 409.
    world.ea.set_search_lag(2);
    (world.ea.faults()).push_for(
        "PUT",
        "/api/orders",
        Fault::AfterHandling(Box::new(Fault::Drop)),
    );

    let first = world.invsync(&["once"]).await;

    first.assert_code(0);
    // The first answer was lost (no status); the resend met the bare 409.
    assert_eq!(put_statuses(&world), vec![0, 409], "{}", first.stderr);
    assert_eq!(state_of(&world, &id).await, "placing", "{}", first.stderr);
    assert!(
        (first.lines_at("WARN").iter())
            .any(|l| l.contains("probably exists at Endless Aisles") && l.contains("htf-")),
        "{}",
        first.stderr
    );
    let second = world.invsync(&["once"]).await;
    second.assert_code(0);
    assert_eq!(
        state_of(&world, &id).await,
        "processing",
        "{}",
        second.stderr
    );
    assert_eq!(supplier_orders_of(&world, &id), 1);
    assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Processed));
}

#[tokio::test]
async fn an_order_endless_aisles_says_exists_but_that_no_search_finds_is_manual_saying_it_probably_exists_there()
 {
    let world = world_speaking(Dialect::production()).await;
    let id = (world.htf).place_order(us_order(&[("EA-1005", 1)], "Hidden"));
    world.ea.set_search_lag(1_000);
    (world.ea.faults()).push_for(
        "PUT",
        "/api/orders",
        Fault::AfterHandling(Box::new(Fault::Drop)),
    );

    let mut last = None;
    for _ in 0..6 {
        let run = world.invsync(&["once"]).await;
        run.assert_code(0);
        last = Some(run);
    }

    let run = last.expect("ran");
    assert_eq!(state_of(&world, &id).await, "MANUAL", "{}", run.stderr);
    assert_eq!(world.ea.order_count(), 1, "placed once, never again");
    let said = world.invsync(&["relay", "show", &id]).await.stdout;
    assert!(
        said.contains("probably exists at Endless Aisles") && said.contains(&format!("htf-{id}")),
        "{said}"
    );
    let errors = world.invsync(&["relay", "list"]).await.stdout;
    assert!(!errors.contains("rejected"), "{errors}");
    assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Ready));
}

#[tokio::test]
async fn a_first_send_answered_409_finds_the_order_already_there_instead_of_rejecting_it() {
    let world = world_speaking(Dialect::production()).await;
    let id = (world.htf).place_order(us_order(&[("EA-1002", 1)], "Restored"));
    // The database lost after the order was placed, and the order READY again at Hardtofind
    // (a restored backup of both): the relay does not know it placed the order.
    world.invsync(&["once"]).await.assert_code(0);
    let db = world.database();
    std::fs::remove_file(&db).expect("database");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    world.htf.set_order_status(&id, OrderStatus::Ready);
    assert_eq!(supplier_orders_of(&world, &id), 1);

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(put_statuses(&world).last(), Some(&409), "{}", run.stderr);
    assert_eq!(supplier_orders_of(&world, &id), 1, "{}", run.stderr);
    assert_eq!(state_of(&world, &id).await, "processing", "{}", run.stderr);
    assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Processed));
}

#[tokio::test]
async fn a_resend_refused_for_another_reason_is_never_rejected_because_the_first_send_may_have_placed_it()
 {
    let world = world_speaking(Dialect::production()).await;
    let id = (world.htf).place_order(us_order(&[("EA-1001", 1)], "Other"));
    world.ea.set_search_lag(1_000);
    let put = |fault| world.ea.faults().push_for("PUT", "/api/orders", fault);
    put(Fault::AfterHandling(Box::new(Fault::Drop)));
    // Validation came before the unique key: the answer names something else.
    put(Fault::Status {
        status: 422,
        body: r#"{"message":"The given data was invalid.","errors":{"line_items.0.id":["The line_items.0.id is not available for purchase."]}}"#.into(),
        retry_after: None,
    });

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(state_of(&world, &id).await, "placing", "{}", run.stderr);
    let show = world.invsync(&["relay", "show", &id]).await.stdout;
    assert!(show.contains("may exist at Endless Aisles"), "{show}");
    assert_eq!(world.ea.order_count(), 1);
}

#[tokio::test]
async fn an_order_closed_at_hardtofind_while_its_placing_is_unknown_is_looked_for_until_found_and_cancelled_there()
 {
    let world = world_speaking(Dialect::production()).await;
    let id = (world.htf).place_order(us_order(&[("EA-1004", 1)], "Lagging"));
    world.ea.set_search_lag(1_000);
    (world.ea.faults()).push_for(
        "PUT",
        "/api/orders",
        Fault::AfterHandling(Box::new(Fault::Drop)),
    );
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.ea.order_count(), 1, "the lost answer placed it");
    world.htf.set_order_status(&id, OrderStatus::Cancelled);

    let unfound = world.invsync(&["once"]).await;

    unfound.assert_code(0);
    assert_eq!(
        state_of(&world, &id).await,
        "placing",
        "not taken as never placed while the search may lag\n{}",
        unfound.stderr
    );
    let placed = world.ea.orders()[0].id;
    world.ea.update_order(placed, |o| o.unsearchable_for = 0);
    let found = world.invsync(&["once"]).await;
    found.assert_code(0);
    assert_eq!(state_of(&world, &id).await, "cancelled", "{}", found.stderr);
    let orders = world.ea.orders();
    assert_eq!(orders.len(), 1, "placed once, never again");
    assert_eq!(
        orders[0].status, "Canceled",
        "cancelled at Endless Aisles too"
    );
}

#[tokio::test]
async fn status_shows_orders_awaiting_approval_with_their_age_and_manual_ones_and_check_says_so() {
    let world = crate::relay::relay_world("approve", "approval_alert_after = \"1ms\"").await;
    let waiting = world.htf.place_order(us_order(&[("EA-1004", 1)], "Waits"));
    let placed = world.htf.place_order(us_order(&[("EA-1005", 1)], "Ups"));
    world.invsync(&["once"]).await.assert_code(0);
    world
        .invsync(&["relay", "approve", &placed])
        .await
        .assert_code(0);
    let listed = world.invsync(&["relay", "list"]).await;
    assert!(
        (listed.stdout.lines())
            .any(|l| l.contains(&placed) && l.contains("approved: placed at the next cycle")),
        "an approved order no longer says it waits for approval\n{}",
        listed.stdout
    );
    world.invsync(&["once"]).await.assert_code(0);
    let supplier = world.ea.orders()[0].id;
    world.ea.ship_line(
        supplier,
        1005,
        1,
        "https://www.ups.com/track?tracknum=1Z9",
        "1Z9",
    );
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(state_of(&world, &placed).await, "MANUAL");

    let status = world.invsync(&["status"]).await;
    let check = world.invsync(&["status", "--check"]).await;
    let json = world.invsync(&["status", "--json"]).await;

    assert!(
        status
            .stdout
            .contains(&format!("order {waiting} awaits approval for"))
            && status.stdout.contains(&format!("MANUAL order {placed}: ")),
        "{}",
        status.stdout
    );
    check.assert_code(2);
    assert!(
        check
            .stdout
            .contains(&format!("relay order {placed} MANUAL"))
            && check
                .stdout
                .contains(&format!("relay order {waiting} awaits approval")),
        "{}",
        check.stdout
    );
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(
        json["relay"]["awaiting_approval"][0]["order_id"],
        waiting.as_str()
    );
    assert_eq!(json["relay"]["manual"][0]["order_id"], placed.as_str());
}

#[tokio::test]
async fn an_order_of_the_warehouse_alone_is_none_of_the_relays_business_and_a_mixed_one_waits_naming_its_line()
 {
    let world = crate::relay::relay_world("auto", "").await;
    let warehouse_only = world.htf.place_order(us_order(&[("HK-1", 1)], "Shelf"));
    let mixed = world
        .htf
        .place_order(us_order(&[("HK-2", 1), ("EA-1004", 1)], "Mixed"));

    world.invsync(&["once"]).await.assert_code(0);
    let listed = world.invsync(&["relay", "list"]).await;

    assert!(
        !listed.stdout.contains(&warehouse_only),
        "a warehouse order is not a relay record:\n{}",
        listed.stdout
    );
    assert_eq!(
        state_of(&world, &mixed).await,
        "waiting",
        "{}",
        listed.stdout
    );
    assert!(
        (listed.stdout.lines())
            .any(|l| l.contains(&mixed) && l.contains("\"HK-2\" maps to no Endless Aisles size")),
        "{}",
        listed.stdout
    );
    assert_eq!(world.ea.order_count(), 0);
}
