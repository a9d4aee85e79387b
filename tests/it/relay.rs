//! The dropship relay: a Hardtofind order is placed at Endless Aisles at most once, Hardtofind
//! is told, and the tracking goes back; nothing is placed unless `[relay] mode` says so.

use invsync::services::endless_aisles::sim::SimSize;
use invsync::services::hardtofind::sim::NewOrder;
use invsync::services::hardtofind::wire::OrderStatus;
use invsync::sim::EndlessAislesSim;
use invsync::sim::Fault;

use crate::helpers::*;

/// Option ids `1001`…`1005` are sellable sizes at Endless Aisles (`EA-1001`… at Hardtofind).
pub const SIZES: u64 = 5;

/// Lists every size of the world's Endless Aisles stock in its catalogue, sellable.
pub fn stock_catalogue(ea: &EndlessAislesSim) {
    for i in 1..=SIZES {
        let id = 1000 + i;
        ea.add_product(
            i,
            "Shirt",
            vec![SimSize::new(id, &format!("'06499210{id:04}"))],
        );
    }
}

/// The `[orders.hardtofind]` feed and a `[relay]` table with `mode` and `extra` lines.
pub fn relay_tables(world: &World, mode: &str, extra: &str) -> String {
    format!(
        "\n[orders.hardtofind]\ntype = \"hardtofind\"\nbase_url = \"{htf}\"\nusername = \"{HTF_USER}\"\npassword = \"{HTF_PASSWORD}\"\n\n[relay]\nmode = \"{mode}\"\nfrom = \"hardtofind\"\nto = \"dropship\"\n{extra}\n",
        htf = world.htf.base_url()
    )
}

/// A world with the relay in `mode` (and `extra` lines in `[relay]`).
pub async fn relay_world(mode: &str, extra: &str) -> World {
    let world = World::with(Setup {
        warehouse_skus: 3,
        dropship_skus: SIZES as usize,
        ..Setup::default()
    })
    .await;
    stock_catalogue(&world.ea);
    let mut text = std::fs::read_to_string(&world.config).expect("config");
    text.push_str(&relay_tables(&world, mode, extra));
    std::fs::write(&world.config, text).expect("config");
    world
}

/// A `READY` order to a US address Endless Aisles takes, for a customer of its own name.
pub fn us_order(lines: &[(&str, i64)], customer: &str) -> NewOrder {
    let mut order = NewOrder::new(lines.iter().map(|(s, q)| ((*s).to_owned(), *q)));
    order.address.state = Some("NC".into());
    order.address.last_name = Some(customer.into());
    order.address.postcode = Some("27511".into());
    order.address.suburb = Some("Cary".into());
    order
}

/// The relay's state of order `id` as `relay list` shows it.
fn listed_state(world: &World, list: &str, id: &str) -> String {
    let _ = world;
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("absent")
        .to_owned()
}

async fn state_of(world: &World, id: &str) -> String {
    let list = world.invsync(&["relay", "list"]).await;
    list.assert_code(0);
    listed_state(world, &list.stdout, id)
}

/// Supplier orders per `custom_order_id`.
fn supplier_orders_of(world: &World, id: &str) -> usize {
    let custom = format!("htf-{id}");
    (world.ea.orders().iter())
        .filter(|o| o.custom_order_id.as_deref() == Some(custom.as_str()))
        .count()
}

#[tokio::test]
async fn an_order_is_placed_once_processed_and_its_tracking_goes_back_with_a_matched_provider() {
    let world = relay_world("auto", "").await;
    let id = world
        .htf
        .place_order(us_order(&[("EA-1001", 2), ("EA-1002", 1)], "Nguyen"));

    let placed = world.invsync(&["once"]).await;

    placed.assert_code(0);
    assert_eq!(world.ea.order_count(), 1, "{}", placed.stderr);
    assert_eq!(supplier_orders_of(&world, &id), 1);
    assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Processed));
    assert!(
        placed.summary().contains("relay=\"processing=1\""),
        "{}",
        placed.summary()
    );
    let supplier = world.ea.orders()[0].clone();
    assert_eq!(supplier.lines.len(), 2);
    assert_eq!(supplier.lines[0].price, 19.99, "the supplier's price");

    // Half shipped: nothing goes back yet.
    let url = "https://auspost.com.au/mypost/track/#/details/AP123";
    assert!(world.ea.ship_line(supplier.id, 1001, 2, url, "AP123"));
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Processed));
    assert!(world.ea.ship_line(supplier.id, 1002, 1, url, "AP123"));

    let shipped = world.invsync(&["once"]).await;

    shipped.assert_code(0);
    assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Shipped));
    let ship = world
        .htf
        .transitions()
        .into_iter()
        .find(|t| t.action == "ship")
        .expect("a ship transition");
    assert_eq!(ship.tracking_number.as_deref(), Some("AP123"));
    assert_eq!(
        ship.shipping_provider_name.as_deref(),
        Some("Australia Post")
    );
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(state_of(&world, &id).await, "done");
    assert_eq!(world.ea.order_puts(), 1, "one PUT in all");
    let log: Vec<&str> = (placed.stderr.lines().chain(shipped.stderr.lines()))
        .filter(|l| l.contains("relay:"))
        .collect();
    println!("{}", log.join("\n"));
}

#[tokio::test]
async fn apply_then_drop_and_500_after_apply_each_end_with_exactly_one_supplier_order() {
    let world = relay_world("auto", "").await;
    let lost = [
        Fault::AfterHandling(Box::new(Fault::Drop)),
        Fault::AfterHandling(Box::new(Fault::status(500, "Server Error"))),
    ];
    for (i, fault) in lost.into_iter().enumerate() {
        let customer = format!("Lost{i}");
        let id = world
            .htf
            .place_order(us_order(&[("EA-1003", 1)], &customer));
        world.ea.faults().push_for("PUT", "/api/orders", fault);

        let run = world.invsync(&["once"]).await;

        run.assert_code(0);
        assert_eq!(supplier_orders_of(&world, &id), 1, "{}", run.stderr);
        assert_eq!(world.ea.order_count(), i + 1, "{}", run.stderr);
        assert!(
            run.lines_at("WARN")
                .iter()
                .any(|l| l.contains("outcome of placing the order is unknown")),
            "{}",
            run.stderr
        );
        assert_eq!(state_of(&world, &id).await, "processing");
        assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Processed));
    }
    assert_eq!(
        world.ea.order_puts(),
        2,
        "the lost answers were found, not sent again"
    );
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.ea.order_count(), 2);
}

#[tokio::test]
async fn an_order_that_is_not_there_after_a_lost_answer_is_sent_again_with_the_same_id() {
    let world = relay_world("auto", "").await;
    let id = world
        .htf
        .place_order(us_order(&[("EA-1001", 1)], "Dropped"));
    // Dropped before it was applied: unknown to the relay, absent at Endless Aisles.
    world
        .ea
        .faults()
        .push_for("PUT", "/api/orders", Fault::Drop);

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(supplier_orders_of(&world, &id), 1, "{}", run.stderr);
    let puts: Vec<String> = (world.ea.requests().iter())
        .filter(|r| r.method == "PUT" && r.path == "/api/orders")
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).expect("json")["custom_order_id"]
                .to_string()
        })
        .collect();
    assert_eq!(
        puts,
        vec![format!("\"htf-{id}\""); 2],
        "the same id both times"
    );
}

#[tokio::test]
async fn a_refund_while_waiting_never_places() {
    let world = relay_world("approve", "").await;
    let waiting = world
        .htf
        .place_order(us_order(&[("EA-1001", 1)], "Approves"));
    let mut far = us_order(&[("EA-1002", 1)], "Faraway");
    far.address.state = Some("ACT".into());
    let unshippable = world.htf.place_order(far);
    let first = world.invsync(&["once"]).await;
    first.assert_code(0);
    assert_eq!(state_of(&world, &waiting).await, "eligible");
    let list = world.invsync(&["relay", "list"]).await.stdout;
    assert!(list.contains("longer than 2 characters"), "{list}");
    assert_eq!(state_of(&world, &unshippable).await, "waiting");
    world
        .invsync(&["relay", "approve", &waiting])
        .await
        .assert_code(0);
    world.htf.set_order_status(&waiting, OrderStatus::Refunded);
    world
        .htf
        .set_order_status(&unshippable, OrderStatus::Cancelled);

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(world.ea.order_puts(), 0, "{}", run.stderr);
    assert_eq!(state_of(&world, &waiting).await, "cancelled");
    assert_eq!(state_of(&world, &unshippable).await, "cancelled");
}

#[tokio::test]
async fn an_unmatched_provider_is_manual_and_nothing_is_guessed() {
    let world = relay_world("auto", "").await;
    let id = world.htf.place_order(us_order(&[("EA-1004", 1)], "Ups"));
    world.invsync(&["once"]).await.assert_code(0);
    let supplier = world.ea.orders()[0].id;
    world.ea.ship_line(
        supplier,
        1004,
        1,
        "https://www.ups.com/track?tracknum=1Z999",
        "1Z999",
    );

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(state_of(&world, &id).await, "MANUAL");
    assert!(world.htf.transitions().iter().all(|t| t.action != "ship"));
    let errors = run.lines_at("ERROR");
    assert!(
        errors.iter().any(
            |l| l.contains("no Hardtofind shipping provider tracks at ups.com")
                && l.contains(&format!("htf-{id}"))
        ),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_configured_carrier_names_the_provider() {
    let world = relay_world("auto", "carriers = { \"ups.com\" = \"FedEx\" }").await;
    let id = world
        .htf
        .place_order(us_order(&[("EA-1004", 1)], "Carrier"));
    world.invsync(&["once"]).await.assert_code(0);
    let supplier = world.ea.orders()[0].id;
    world.ea.ship_line(
        supplier,
        1004,
        1,
        "https://www.ups.com/track?tracknum=1Z9",
        "1Z9",
    );

    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(state_of(&world, &id).await, "shipped");
    let ship = world
        .htf
        .transitions()
        .into_iter()
        .find(|t| t.action == "ship");
    assert_eq!(
        ship.and_then(|t| t.shipping_provider_name),
        Some("FedEx".into())
    );
}

#[tokio::test]
async fn a_refund_after_placing_cancels_at_endless_aisles_or_is_manual() {
    let world = relay_world("auto", "cancel = [\"get\", \"put\"]").await;
    let open = world
        .htf
        .place_order(us_order(&[("EA-1001", 1)], "Cancels"));
    let packed = world.htf.place_order(us_order(&[("EA-1002", 1)], "Packed"));
    world.invsync(&["once"]).await.assert_code(0);
    let id_of = |name: &str| {
        (world.ea.orders().into_iter())
            .find(|o| o.shipping["last_name"] == name)
            .expect("placed")
            .id
    };
    world.ea.update_order(id_of("Packed"), |o| o.packed = true);
    world.htf.set_order_status(&open, OrderStatus::Refunded);
    world.htf.set_order_status(&packed, OrderStatus::Cancelled);

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(
        world.ea.order(id_of("Cancels")).expect("there").status,
        "Canceled"
    );
    assert_eq!(state_of(&world, &open).await, "cancelled");
    assert_eq!(state_of(&world, &packed).await, "MANUAL");
    assert_eq!(
        world.ea.count("GET", "/cancel"),
        2,
        "GET first, as configured"
    );
    assert!(
        run.lines_at("ERROR")
            .iter()
            .any(|l| l.contains("refused to cancel")),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn mode_off_never_calls_put_api_orders() {
    let world = relay_world("off", "").await;
    world.htf.place_order(us_order(&[("EA-1001", 1)], "Off"));

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(world.ea.count("PUT", "/api/orders"), 0);
    assert!(
        world
            .ea
            .requests()
            .iter()
            .all(|r| !r.path.starts_with("/api/orders"))
    );
    assert!(run.summary().contains("relay=\"-\""), "{}", run.summary());
    let list = world.invsync(&["relay", "list"]).await;
    list.assert_code(0);
    assert_eq!(list.stdout.trim(), "no orders relayed");
}

#[tokio::test]
async fn dry_run_logs_the_order_it_would_place_and_places_nothing() {
    let world = relay_world("dry_run", "").await;
    let id = world.htf.place_order(us_order(&[("EA-1005", 3)], "Dry"));

    let run = world.invsync(&["once"]).await;

    run.assert_code(0);
    assert_eq!(world.ea.count("PUT", "/api/orders"), 0);
    let would: Vec<&str> = run
        .lines_at("INFO")
        .into_iter()
        .filter(|l| l.contains("would place"))
        .collect();
    assert_eq!(would.len(), 1, "{}", run.stderr);
    assert!(
        would[0].contains(&format!("htf-{id}")) && would[0].contains("3x1005"),
        "{}",
        would[0]
    );
    assert_eq!(state_of(&world, &id).await, "eligible");
    assert_eq!(world.htf.order_status(&id), Some(OrderStatus::Ready));
}

#[tokio::test]
async fn approve_waits_until_the_order_is_approved() {
    let world = relay_world("approve", "max_order_value = 100.0").await;
    let id = world.htf.place_order(us_order(&[("EA-1001", 1)], "Waits"));
    let dear = world.htf.place_order(us_order(&[("EA-1002", 10)], "Dear"));
    for _ in 0..2 {
        world.invsync(&["once"]).await.assert_code(0);
    }
    assert_eq!(world.ea.count("PUT", "/api/orders"), 0);
    assert_eq!(state_of(&world, &id).await, "eligible");
    let show = world.invsync(&["relay", "show", &dear]).await;
    assert!(
        show.stdout.contains("over max_order_value 100.00"),
        "{}",
        show.stdout
    );

    let approved = world.invsync(&["relay", "approve", &id]).await;
    approved.assert_code(0);
    world.invsync(&["once"]).await.assert_code(0);

    assert_eq!(supplier_orders_of(&world, &id), 1);
    assert_eq!(
        supplier_orders_of(&world, &dear),
        0,
        "the dear one still waits"
    );
    world
        .invsync(&["relay", "approve", &dear])
        .await
        .assert_code(0);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(supplier_orders_of(&world, &dear), 1);
    let unknown = world.invsync(&["relay", "approve", "424242"]).await;
    unknown.assert_code(2);
    let list = world.invsync(&["relay", "list"]).await.stdout;
    println!("{list}");
}

#[tokio::test]
async fn max_orders_per_cycle_holds_the_rest_for_the_next_cycle() {
    let world = relay_world("auto", "max_orders_per_cycle = 2").await;
    for i in 0..3 {
        world
            .htf
            .place_order(us_order(&[("EA-1001", 1)], &format!("Many{i}")));
    }
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.ea.order_count(), 2);
    world.invsync(&["once"]).await.assert_code(0);
    assert_eq!(world.ea.order_count(), 3);
}

#[tokio::test]
async fn a_relay_to_an_unknown_source_or_production_without_leave_is_an_error_naming_the_key() {
    let world = relay_world("auto", "").await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    std::fs::write(
        &world.config,
        text.replace("to = \"dropship\"", "to = \"dropshp\""),
    )
    .expect("write");
    let run = world.invsync(&["once"]).await;
    run.assert_code(2);
    assert!(
        run.stderr.contains("relay.to: unknown source \"dropshp\""),
        "{}",
        run.stderr
    );
    let production = text.replace(&world.ea.base_url(), "https://app.endlessaisles.io");
    std::fs::write(&world.config, production).expect("write");
    let run = world.invsync(&["check", "--offline"]).await;
    run.assert_code(2);
    assert!(
        run.stderr.contains("relay.allow_production"),
        "{}",
        run.stderr
    );
    assert_eq!(world.ea.requests().len(), 0);
}
