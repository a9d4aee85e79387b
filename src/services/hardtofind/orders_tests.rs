//! The order feed against the simulator over loopback.
use super::*;
use crate::harness::Fault;
use crate::services::PushItem;
use crate::services::hardtofind::HardtofindTarget;
use crate::services::hardtofind::sim::{HardtofindSim, NewOrder};

const READY: OrderStatus = OrderStatus::Ready;

async fn sim() -> HardtofindSim {
    HardtofindSim::start(Default::default())
        .await
        .expect("a simulator")
}

fn ready(sim: &HardtofindSim, n: usize) -> Vec<String> {
    sim.place_orders((0..n).map(|i| NewOrder::new([(format!("SKU-{i}"), 1)])))
}

fn ids(orders: &[Order]) -> Vec<&str> {
    orders.iter().map(|o| o.id.as_str()).collect()
}

#[tokio::test]
async fn twenty_five_open_orders_over_three_pages_are_all_counted_when_one_moves_mid_walk() {
    let sim = sim().await;
    let placed = ready(&sim, 25);
    // The oldest order sits on page 3; it moves to page 1 once page 1 has been read.
    sim.touch_order_after(1, &placed[0]);
    let feed = OrderFeed::new(sim.session());

    let orders = feed
        .open_orders(&Meter::default(), &[READY])
        .await
        .map(|l| l.orders);

    let orders = orders.expect("the open orders");
    assert_eq!(ids(&orders), placed);
    let pages: Vec<Option<String>> = sim
        .orders_queries()
        .into_iter()
        .map(|q| q.page_number)
        .collect();
    let expected = ["1", "2", "3", "1", "2", "3"].map(|p| Some(p.to_owned()));
    assert_eq!(
        pages, expected,
        "a second walk, because the first saw 24 of 25"
    );
}

#[tokio::test]
async fn orders_is_never_asked_for_without_a_status() {
    let sim = sim().await;
    ready(&sim, 12);
    let mut pending = NewOrder::new([("SKU-P", 1)]);
    pending.status = OrderStatus::Pending;
    sim.place_order(pending);
    let feed = OrderFeed::new(sim.session());
    let states = [READY, OrderStatus::Processed, READY];

    let orders = feed
        .open_orders(&Meter::default(), &states)
        .await
        .map(|l| l.orders);

    assert_eq!(orders.map(|o| o.len()).ok(), Some(12));
    let statuses: Vec<Option<String>> =
        sim.orders_queries().into_iter().map(|q| q.status).collect();
    let asked = ["READY", "READY", "PROCESSED"].map(|s| Some(s.to_owned()));
    assert_eq!(statuses, asked);
    assert_eq!(sim.orders_queries_without_status(), 0);
    let on_the_wire = sim.requests().into_iter().filter(|r| r.path == "/orders");
    assert!(on_the_wire.clone().count() == 3);
    assert!(
        on_the_wire
            .into_iter()
            .all(|r| r.query.is_some_and(|q| q.contains("status=")))
    );
}

#[tokio::test]
async fn an_order_that_left_the_list_is_found_by_its_id() {
    let sim = sim().await;
    let [shipped, gone] = [0, 1].map(|_| sim.place_order(NewOrder::new([("SKU-1", 2)])));
    sim.set_order_status(&shipped, OrderStatus::Shipped);
    sim.remove_order(&gone);
    let (feed, meter) = (OrderFeed::new(sim.session()), Meter::default());

    let open = feed
        .open_orders(&meter, &[READY])
        .await
        .expect("open orders")
        .orders;
    let found = feed.order(&meter, &shipped).await.expect("a lookup");
    let missing = feed.order(&meter, &gone).await.expect("a lookup");

    assert!(open.is_empty());
    let found = found.expect("the shipped order");
    assert_eq!(
        (found.status, found.lines[0].quantity.0),
        (OrderStatus::Shipped, 2)
    );
    assert!(missing.is_none());
    assert!(feed.order(&meter, "..").await.is_err());
}

#[tokio::test]
async fn ship_needs_a_provider_the_store_lists_and_a_second_ship_is_done() {
    let sim = sim().await;
    let id = sim.place_order(NewOrder::new([("SKU-1", 1)]));
    let (feed, meter) = (OrderFeed::new(sim.session()), Meter::default());
    let providers = feed.shipping_providers(&meter).await.expect("providers");
    let shipment_date = Date(chrono::Utc::now().fixed_offset());
    let ship = |provider: &str| Transition::Ship {
        tracking_number: "TRACK-1".into(),
        shipping_provider_name: provider.into(),
        shipment_date,
    };

    let guessed = feed.transition(&meter, &id, &ship("Pigeon Post")).await;
    let processed = feed.transition(&meter, &id, &Transition::Process).await;
    let shipped = feed
        .transition(&meter, &id, &ship(&providers[0].provider_name))
        .await;
    let again = feed
        .transition(&meter, &id, &ship(&providers[0].provider_name))
        .await;
    let late_process = feed.transition(&meter, &id, &Transition::Process).await;

    assert_eq!(guessed.err().and_then(|e| e.status()), Some(400));
    assert_eq!(processed.ok(), Some(Transitioned::Done));
    assert_eq!(shipped.ok(), Some(Transitioned::Done));
    assert_eq!(again.ok(), Some(Transitioned::AlreadyDone));
    assert_eq!(late_process.ok(), Some(Transitioned::AlreadyDone));
    let recorded = sim.transitions();
    assert_eq!(recorded.len(), 2);
    assert_eq!(
        recorded[1].shipping_provider_name.as_deref(),
        Some("Royal Mail")
    );
    let cancelled = sim.place_order(NewOrder::new([("SKU-1", 1)]));
    sim.set_order_status(&cancelled, OrderStatus::Cancelled);
    let refused = feed
        .transition(&meter, &cancelled, &Transition::Process)
        .await;
    assert_eq!(refused.err().and_then(|e| e.status()), Some(400));
}

#[tokio::test]
async fn a_feed_and_a_target_on_one_session_log_in_once() {
    let sim = sim().await;
    sim.add_variant("SKU-1");
    ready(&sim, 3);
    let shared = sim.session();
    let (feed, target) = (
        OrderFeed::new(shared.clone()),
        HardtofindTarget::new(shared),
    );
    let meter = Meter::default();
    let item = PushItem {
        sku: "SKU-1",
        quantity: 4,
        known: true,
    };

    let orders = feed.open_orders(&meter, &[READY]).await.map(|l| l.orders);
    let pushed = target.push(&meter, &[item]).await;
    let providers = feed.shipping_providers(&meter).await;

    assert_eq!(orders.map(|o| o.len()).ok(), Some(3));
    assert!(pushed.is_ok() && providers.is_ok());
    assert_eq!(
        (sim.authentications(), sim.inventory("SKU-1")),
        (1, Some(4))
    );
}

#[tokio::test]
async fn a_feed_and_a_target_that_get_401_together_on_one_session_log_in_again_once() {
    let sim = sim().await;
    sim.add_variant("SKU-1");
    ready(&sim, 3);
    let shared = sim.session();
    let (feed, target) = (
        OrderFeed::new(shared.clone()),
        HardtofindTarget::new(shared),
    );
    let meter = Meter::default();
    let item = PushItem {
        sku: "SKU-1",
        quantity: 4,
        known: true,
    };
    target.push(&meter, &[item]).await.expect("logged in");
    sim.expire_all_tokens();

    // Both send the token the service just revoked, both are answered 401, both need a new one.
    let (states, batch) = ([READY], [item]);
    let (orders, pushed) = tokio::join!(
        feed.open_orders(&meter, &states),
        target.push(&meter, &batch)
    );

    assert!(orders.is_ok() && pushed.is_ok());
    assert_eq!(
        (sim.unauthorized_count(), sim.authentications()),
        (2, 2),
        "two refused requests, one login before and one after"
    );
}

#[tokio::test]
async fn malformed_answers_are_errors_and_html_ones_are_retried_never_empty_lists() {
    let sim = sim().await;
    let id = ready(&sim, 1).remove(0);
    let (feed, meter) = (OrderFeed::new(sim.session()), Meter::default());
    let ok = |body: &str| Fault::Status {
        status: 200,
        body: body.into(),
        retry_after: None,
    };
    let html = ok("<html><body>Gateway</body></html>");
    let orders = |fault: Fault| {
        sim.faults().push_for("GET", "/orders", fault);
        let listed = feed.open_orders(&meter, &[READY]);
        async { listed.await.map(|l| l.orders) }
    };

    let truncated = orders(Fault::Malformed).await;
    let proxy = orders(html.clone()).await;
    let not_paged = orders(ok(r#"{"data": "none"}"#)).await;
    sim.faults().push_for(
        "GET",
        "/orders",
        ok(
            r#"{"data": [{"id": "1"}], "page_size": 10, "page_number": 1,
                  "total_results": 1, "pages": 1}"#,
        ),
    );
    let bad_order = feed.open_orders(&meter, &[READY]).await;
    let endless = orders(ok(r#"{"data": [], "page_size": 10, "page_number": 1,
                                "total_results": 1, "pages": 99999999}"#))
    .await;
    sim.faults()
        .push_for("GET", &format!("/order/{id}"), html.clone());
    let one = feed.order(&meter, &id).await;
    sim.faults()
        .push_for("GET", "/shipping-providers", html.clone());
    let providers = feed.shipping_providers(&meter).await;
    sim.faults().push_for("POST", "/transition", html);
    let moved = feed.transition(&meter, &id, &Transition::Process).await;

    // A body that is not JSON is not the service's word: retried like a 5xx, and the retry
    // reads the truth. JSON of the wrong shape is the service's, and an error.
    for result in [truncated, proxy] {
        assert_eq!(result.map(|o| o.len()).ok(), Some(1));
    }
    for result in [not_paged, endless] {
        assert!(
            matches!(result, Err(ConnectorError::Malformed(_))),
            "{result:?}"
        );
    }
    // One order that is not whole is one bad record, named; not the whole list.
    let bad_order = bad_order.expect("the list");
    assert_eq!(bad_order.orders.len(), 0);
    assert_eq!(bad_order.unreadable[0].id.as_deref(), Some("1"));
    assert!(one.is_ok_and(|o| o.is_some()));
    assert!(providers.is_ok());
    assert!(moved.is_ok(), "{moved:?}");
    assert!(meter.retries() >= 5, "every page was retried");
    assert_eq!(
        feed.open_orders(&meter, &[READY])
            .await
            .map(|o| o.orders.len())
            .ok(),
        Some(0),
        "the process transition went through on its retry"
    );
}

/// An empty page ends a walk whatever `page_number` and `pages` say (an empty list may say
/// `pages` 0 or 1); one that leaves orders uncounted makes the list read again, never taken as
/// the whole.
#[tokio::test]
async fn an_empty_page_that_contradicts_the_count_is_read_again_not_taken_for_the_list() {
    let sim = sim().await;
    ready(&sim, 20);
    let feed = OrderFeed::new(sim.session());
    let page = |number: u64| {
        let body = format!(
            r#"{{"data": [], "page_size": 10, "page_number": {number}, "total_results": 20, "pages": 2}}"#
        );
        Fault::Status {
            status: 200,
            body,
            retry_after: None,
        }
    };

    let mut results = Vec::new();
    for fault in [page(2), page(1)] {
        sim.faults().push_for("GET", "/orders", fault);
        results.push(
            feed.open_orders(&Meter::default(), &[READY])
                .await
                .map(|l| l.orders),
        );
    }

    for result in results {
        assert_eq!(result.map(|o| o.len()).ok(), Some(20));
    }
}

#[tokio::test]
async fn a_page_of_orders_other_than_the_one_asked_for_is_an_error_not_a_loop() {
    let sim = sim().await;
    let feed = OrderFeed::new(sim.session());
    let body = r#"{"data": [{"id": "1", "status": "READY"}], "page_size": 10, "page_number": 1,
                   "total_results": 20, "pages": 2}"#;
    for _ in 0..2 {
        sim.faults().push_for("GET", "/orders", Fault::answer(body));
    }

    let result = feed.open_orders(&Meter::default(), &[READY]).await;

    assert!(
        matches!(result, Err(ConnectorError::Malformed(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn no_open_orders_is_one_request_and_an_empty_list() {
    let sim = sim().await;
    let feed = OrderFeed::new(sim.session());

    let orders = feed
        .open_orders(&Meter::default(), &[READY])
        .await
        .map(|l| l.orders);

    assert_eq!(orders.map(|o| o.len()).ok(), Some(0));
    assert_eq!(sim.count("GET", "/orders"), 1);
}

#[tokio::test]
async fn ten_thousand_orders_over_a_thousand_pages_are_read_in_one_walk() {
    let sim = sim().await;
    ready(&sim, 10_000);
    let feed = OrderFeed::new(sim.session());
    let started = std::time::Instant::now();

    let orders = feed
        .open_orders(&Meter::default(), &[READY])
        .await
        .map(|l| l.orders);

    let elapsed = started.elapsed();
    assert_eq!(orders.map(|o| o.len()).ok(), Some(10_000));
    assert_eq!(sim.count("GET", "/orders"), 1_000);
    // Not asserted: the machine is shared. The simulator's own test counts its work per page.
    eprintln!("10,000 orders over 1,000 pages read in {elapsed:?}");
}

/// An order that leaves the list while we page moves every order below it up one: the first of
/// the next page slips onto a page already read. The walk steps back for it instead of
/// counting the order that left in its place.
#[tokio::test]
async fn an_order_that_leaves_the_list_while_paging_does_not_hide_the_one_below_it() {
    let sim = sim().await;
    let mut placed = ready(&sim, 25);
    // The newest, on page 1, ships once page 1 has been read.
    let shipped = placed.pop().expect("25 orders");
    sim.change_after(
        1,
        crate::services::hardtofind::sim::OrderChange::Status(
            shipped.clone(),
            OrderStatus::Shipped,
        ),
    );
    let feed = OrderFeed::new(sim.session());

    let orders = feed
        .open_orders(&Meter::default(), &[READY])
        .await
        .map(|l| l.orders);

    let orders = orders.expect("the open orders");
    assert_eq!(
        ids(&orders),
        placed,
        "every order still READY, and only they"
    );
}
