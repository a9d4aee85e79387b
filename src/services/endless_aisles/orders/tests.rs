use bytes::Bytes;
use chrono::NaiveDate;

use super::*;
use crate::harness::Fault;
use crate::services::endless_aisles::api::test_api;
use crate::services::endless_aisles::sim::{EndlessAislesSim, EndlessAislesSimConfig, SimSize};
use crate::services::endless_aisles::wire::orders::{NewCustomer, NewLineItem, NewShipping};

const FEDEX: &str = "https://www.fedex.com/apps/fedextrack/?trackingnumber=123456789012";

async fn setup() -> (EndlessAislesSim, Orders) {
    let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
        .await
        .expect("start");
    sim.add_product(
        12209,
        "Taste Of The Wild",
        vec![
            SimSize::new(22397, "'074198609628"),
            SimSize::new(22398, "074198609635"),
        ],
    );
    let orders = Orders::from_api(test_api(&sim));
    (sim, orders)
}

fn new_order(custom_order_id: &str, last_name: &str) -> NewOrder {
    NewOrder {
        custom_order_id: custom_order_id.to_owned(),
        shipping: NewShipping {
            first_name: "Cardi".into(),
            last_name: last_name.into(),
            address_line_1: "1 Cat St".into(),
            city: "New York".into(),
            state: "NY".into(),
            zip: "10001".into(),
            ..NewShipping::default()
        },
        customer: Some(NewCustomer {
            email: format!("{last_name}@example.com"),
        }),
        line_items: vec![
            NewLineItem {
                id: 22397,
                upc: "'074198609628".into(),
                quantity: 2,
                price: 8.82,
            },
            NewLineItem {
                id: 22398,
                upc: "074198609635".into(),
                quantity: 1,
                price: 21.67,
            },
        ],
        shipping_cost: None,
        tax_rate: None,
        discount: None,
    }
}

fn answer(status: u16, body: &str) -> Result<Answer, HttpError> {
    Ok(Answer {
        status: StatusCode::from_u16(status).expect("a status"),
        retry_after: None,
        headers: Default::default(),
        body: Bytes::copy_from_slice(body.as_bytes()),
    })
}

#[test]
fn each_answer_to_a_placement_means_one_thing() {
    assert_eq!(
        classify_place(answer(
            200,
            r#"{"data": {"id": "10030", "line_items": "odd"}}"#
        )),
        PlaceOutcome::Placed { id: 10030 }
    );
    let taken = [
        r#"{"error": " [\"The custom order id has already been taken.\"]"}"#,
        r#"{"message": "The given data was invalid.", "errors": {"custom_order_id": ["taken"]}}"#,
        "Duplicate Custom-Order-ID",
    ];
    for body in taken {
        let outcome = classify_place(answer(422, body));
        assert!(
            matches!(outcome, PlaceOutcome::AlreadyExists { .. }),
            "{body}"
        );
    }
    let refused = classify_place(answer(422, r#"{"error": "The shipping.state is bad."}"#));
    assert!(matches!(refused, PlaceOutcome::Refused { status: 422, .. }));
    for status in [401, 429] {
        let outcome = classify_place(answer(status, "{}"));
        assert!(
            matches!(outcome, PlaceOutcome::NotPlaced { .. }),
            "{status}"
        );
    }
    for unknown in [
        answer(500, r#"{"error": "custom_order_id"}"#),
        answer(502, "<html>Bad Gateway</html>"),
        answer(408, "{}"),
        answer(200, "<html>OK</html>"),
        answer(201, r#"{"data": {}}"#),
        Err(HttpError::Timeout),
        Err(HttpError::Connect("reset".into())),
    ] {
        let outcome = classify_place(unknown);
        assert!(
            matches!(outcome, PlaceOutcome::Unknown { .. }),
            "{outcome:?}"
        );
    }
    let cancelled = classify_place(Err(HttpError::Cancelled));
    assert!(matches!(cancelled, PlaceOutcome::NotPlaced { .. }));
}

#[test]
fn a_409_or_a_refusal_that_does_not_say_why_is_never_read_as_a_judged_refusal() {
    let exists = [
        (409, r#"{"message":"Conflict"}"#),
        (409, ""),
        (409, r#"{"message":"The shipping.state is bad."}"#),
    ];
    for (status, body) in exists {
        let outcome = classify_place(answer(status, body));
        assert!(
            matches!(outcome, PlaceOutcome::AlreadyExists { .. }),
            "{status} {body}: {outcome:?}"
        );
    }
    let unexplained = [
        (400, r#"{"message":"Bad Request"}"#),
        (422, r#"{"message":"Unprocessable Entity"}"#),
        (422, r#"{"message":"The given data was invalid."}"#),
        (403, r#"{"message":""}"#),
        (400, "<html>Bad Request</html>"),
    ];
    for (status, body) in unexplained {
        let outcome = classify_place(answer(status, body));
        assert!(
            matches!(outcome, PlaceOutcome::Unexplained { .. }),
            "{status} {body}: {outcome:?}"
        );
    }
    // Laravel's validation keeps its messages in production: a judged refusal.
    let validation = r#"{"message":"The given data was invalid.","errors":{"shipping.state":["The shipping.state may not be greater than 2 characters."]}}"#;
    let outcome = classify_place(answer(422, validation));
    assert!(
        matches!(outcome, PlaceOutcome::Refused { status: 422, .. }),
        "{outcome:?}"
    );
}

#[test]
fn preflight_names_what_endless_aisles_would_refuse() {
    assert_eq!(preflight(&new_order("htf-1", "B")), Vec::<String>::new());
    let mut order = new_order("", "B");
    order.shipping.state = "NSW".into();
    order.shipping.zip = " ".into();
    order.line_items[0].upc = "n/a".into();
    order.line_items[1].quantity = 0;
    assert_eq!(
        preflight(&order),
        vec![
            "custom_order_id is required",
            "shipping.zip is required",
            "shipping.state \"NSW\" is longer than 2 characters",
            "line 0: upc \"n/a\" is not numeric",
            "line 1: quantity is 0",
        ]
    );
}

#[tokio::test]
async fn a_placed_order_reads_back_with_its_lines_and_then_its_tracking() {
    let (sim, orders) = setup().await;
    let meter = Meter::default();
    let PlaceOutcome::Placed { id } = orders.place(&meter, &new_order("htf-1", "B")).await else {
        panic!("not placed");
    };
    let sent = sim.order(id).expect("the sim has it");
    assert_eq!(
        sent.lines[0].upc, "074198609628",
        "sent as digits, zeros kept"
    );
    let order = orders.get(&meter, id).await.expect("read").expect("found");
    assert_eq!(order.status.as_deref(), Some("Scheduled"));
    let goods: Vec<_> = order.line_items.iter().filter(|l| !l.is_shipping).collect();
    assert_eq!(goods.len(), 2);
    assert_eq!(
        (goods[0].quantity, goods[0].quantity_shipped),
        (Some(2), None)
    );
    assert!(!order.is_fully_shipped() && order.shipments.is_empty());

    assert!(sim.ship_line(id, 22397, 2, FEDEX, "123456789012"));
    assert!(sim.ship_line(id, 22398, 1, FEDEX, "123456789012"));
    let order = orders.get(&meter, id).await.expect("read").expect("found");
    assert!(order.is_fully_shipped());
    assert_eq!(order.status.as_deref(), Some("Shipped"));
    assert_eq!(order.shipments.len(), 1);
    assert_eq!(order.shipments[0].url.as_deref(), Some(FEDEX));
    assert_eq!(
        orders.get(&meter, 999).await.expect("a 404 is an answer"),
        None
    );
}

#[tokio::test]
async fn placing_the_same_custom_order_id_again_is_already_exists_and_places_nothing() {
    let (sim, orders) = setup().await;
    let meter = Meter::default();
    let first = orders.place(&meter, &new_order("htf-7", "B")).await;
    assert!(matches!(first, PlaceOutcome::Placed { .. }));
    let second = orders.place(&meter, &new_order("htf-7", "B")).await;
    assert!(
        matches!(second, PlaceOutcome::AlreadyExists { .. }),
        "{second:?}"
    );
    assert_eq!((sim.order_count(), sim.order_puts()), (1, 2));
}

#[tokio::test]
async fn an_order_applied_but_unanswered_is_unknown_and_never_sent_twice() {
    for fault in [Fault::Drop, Fault::status(500, "Server Error")] {
        let (sim, orders) = setup().await;
        let meter = Meter::default();
        let lost = Fault::AfterHandling(Box::new(fault.clone()));
        sim.faults().push_for("PUT", "/api/orders", lost);
        let outcome = orders.place(&meter, &new_order("htf-9", "B")).await;
        assert!(
            matches!(outcome, PlaceOutcome::Unknown { .. }),
            "{fault:?}: {outcome:?}"
        );
        assert_eq!((sim.order_count(), sim.order_puts()), (1, 1), "{fault:?}");
        assert_eq!((meter.requests(), meter.retries()), (1, 0));
        // Resolving by sending the same id again cannot make a second order.
        let again = orders.place(&meter, &new_order("htf-9", "B")).await;
        assert!(
            matches!(again, PlaceOutcome::AlreadyExists { .. }),
            "{again:?}"
        );
        assert_eq!(sim.order_count(), 1);
    }
}

#[tokio::test]
async fn a_refused_order_places_nothing() {
    let (sim, orders) = setup().await;
    sim.set_discontinued(22398, true);
    let outcome = orders
        .place(&Meter::default(), &new_order("htf-2", "B"))
        .await;
    let PlaceOutcome::Refused { status, message } = outcome else {
        panic!("not refused: {outcome:?}");
    };
    assert_eq!(status, 422);
    assert!(
        message.contains("line_items.1.id is discontinued"),
        "{message}"
    );
    assert_eq!(sim.order_count(), 0);
}

#[tokio::test]
async fn orders_are_found_by_query_and_since_across_pages() {
    let (sim, orders) = setup().await;
    let meter = Meter::default();
    let mut ids = Vec::new();
    for (i, name) in ["Poke", "Poke", "Poke", "Dog"].iter().enumerate() {
        let outcome = orders
            .place(&meter, &new_order(&format!("htf-{i}"), name))
            .await;
        let PlaceOutcome::Placed { id } = outcome else {
            panic!("not placed: {outcome:?}");
        };
        ids.push(id);
    }
    let date = |d| NaiveDate::from_ymd_opt(2024, 3, d).expect("a date");
    sim.set_order_created(ids[0], date(1));
    sim.set_order_created(ids[1], date(9));
    sim.set_order_created(ids[2], date(20));
    sim.set_max_per_page(1);
    let found = |q: &'static str, since| {
        let (orders, meter) = (&orders, &meter);
        async move {
            let list = orders.find(meter, q, since).await.expect("a listing");
            list.iter().map(|o| o.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(found("Poke", None).await, ids[..3].to_vec());
    assert_eq!(found("poke", Some(date(9))).await, ids[1..3].to_vec());
    assert_eq!(found("dog@example.com", None).await, vec![ids[3]]);
    let by_number = orders.find(&meter, &ids[1].to_string(), None).await;
    assert_eq!(by_number.expect("a listing").len(), 1);
    let query = sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/api/orders" && r.method == "GET")
        .and_then(|r| r.query)
        .unwrap_or_default();
    assert!(query.contains("per_page=1000"), "{query}");
    let dated = sim.requests().into_iter().filter_map(|r| r.query);
    assert!(dated.into_iter().any(|q| q.contains("since=03-09-2024")));
}

#[tokio::test]
async fn an_order_is_cancelled_by_either_form_in_the_order_given() {
    use CancelMethod::{Get, Put};
    let (sim, orders) = setup().await;
    let meter = Meter::default();
    let mut ids = Vec::new();
    for i in 0..3 {
        if let PlaceOutcome::Placed { id } = orders
            .place(&meter, &new_order(&format!("c-{i}"), "B"))
            .await
        {
            ids.push(id);
        }
    }
    let cancelled = |method| Some(CancelOutcome::Cancelled { method });
    assert_eq!(
        orders.cancel(&meter, ids[0], &[Put, Get]).await.ok(),
        cancelled(Put)
    );
    assert_eq!(
        orders.cancel(&meter, ids[1], &[Get, Put]).await.ok(),
        cancelled(Get)
    );
    assert_eq!(sim.count("PUT", "/cancel"), 1);
    assert_eq!(sim.count("GET", "/cancel"), 1);
    let statuses: Vec<_> = sim.orders().into_iter().map(|o| o.status).collect();
    assert_eq!(statuses, ["Canceled", "Canceled", "Scheduled"]);

    // A form the service lacks is passed over; a refusal ends the attempt.
    sim.faults()
        .push_for("PUT", "/cancel", Fault::status(405, "Method not allowed."));
    assert_eq!(
        orders.cancel(&meter, ids[2], &[Put, Get]).await.ok(),
        cancelled(Get)
    );
    sim.ship_line(ids[0], 22397, 1, FEDEX, "1");
    sim.update_order(ids[0], |o| o.status = "Scheduled".into());
    let refused = orders.cancel(&meter, ids[0], &[Put, Get]).await;
    assert!(matches!(
        refused,
        Ok(CancelOutcome::Refused {
            method: Put,
            status: 422,
            ..
        })
    ));
    let missing = orders.cancel(&meter, 1, &[Put, Get]).await.ok();
    assert_eq!(missing, Some(CancelOutcome::NotFound));
}
