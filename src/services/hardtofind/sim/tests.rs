//! The simulator: its order book directly, then accounts, batches and orders over loopback HTTP.

use super::orders::{OrderBook, Refusal};
use super::*;
use crate::services::hardtofind::wire::OrderStatus;
use serde_json::Value;

fn query(status: Option<&str>, page: usize) -> OrdersQuery {
    OrdersQuery {
        status: status.map(str::to_owned),
        page_number: Some(page.to_string()),
    }
}

fn ids(page: &Value) -> Vec<&str> {
    let data = page["data"].as_array().map_or(&[][..], Vec::as_slice);
    data.iter().filter_map(|o| o["id"].as_str()).collect()
}

/// One `GET /orders` answer, read back.
fn list(book: &mut OrderBook, query: OrdersQuery) -> Result<Value, Refusal> {
    let answer = book.list(query, &Default::default())?;
    Ok(serde_json::from_slice(&answer).unwrap_or_default())
}

#[test]
fn a_list_is_newest_updated_first_and_no_status_means_pending() {
    let mut book = OrderBook::default();
    let [a, b] = [1, 2].map(|q| book.place(NewOrder::new([("SKU", q)])));
    let mut pending = NewOrder::new([("SKU", 9)]);
    pending.status = OrderStatus::Pending;
    let p = book.place(pending);
    let ready = list(&mut book, query(Some("READY"), 1)).expect("a page");
    assert_eq!(ids(&ready), [b.as_str(), a.as_str()]);
    assert_eq!(
        (ready["total_results"].as_u64(), ready["pages"].as_u64()),
        (Some(2), Some(1))
    );
    book.update(&a, |_| ());
    let ready = list(&mut book, query(Some("ready"), 1)).expect("a page");
    assert_eq!(ids(&ready), [a.as_str(), b.as_str()]);
    let none = list(
        &mut book,
        OrdersQuery {
            status: None,
            page_number: None,
        },
    );
    assert_eq!(none.as_ref().map(ids).ok(), Some(vec![p.as_str()]));
    assert_eq!(
        list(&mut book, query(Some("LOST"), 1)).err().map(|e| e.0),
        Some(400)
    );
}

#[test]
fn a_touch_waits_for_its_request_then_moves_the_order_to_page_one() {
    let mut book = OrderBook::default();
    let first = book.place(NewOrder::new([("SKU", 1)]));
    (0..14).for_each(|_| drop(book.place(NewOrder::new([("SKU", 1)]))));
    book.touch_after(2, &first);
    let page = |book: &mut OrderBook, n| list(book, query(Some("READY"), n)).expect("page");
    assert_eq!(ids(&page(&mut book, 2)).last(), Some(&first.as_str()));
    assert_eq!(
        ids(&page(&mut book, 2)).last(),
        Some(&first.as_str()),
        "not yet"
    );
    assert_eq!(ids(&page(&mut book, 1)).first(), Some(&first.as_str()));
}

#[test]
fn ten_thousand_orders_over_a_thousand_pages_cost_one_sort_and_one_rendering_each() {
    let mut book = OrderBook::default();
    for i in 0..10_000 {
        book.place(NewOrder::new([(format!("SKU-{}", i % 97), 1)]));
    }
    let mut seen = std::collections::HashSet::new();
    for _walk in 0..2 {
        for n in 1..=1_001 {
            let page = list(&mut book, query(Some("READY"), n)).expect("a page");
            seen.extend(ids(&page).into_iter().map(str::to_owned));
            assert_eq!(page["pages"].as_u64(), Some(1_000));
        }
    }
    // Counted, not timed: the machine is shared, and work per page is what must not grow.
    assert_eq!(seen.len(), 10_000);
    assert_eq!((book.index_builds, book.renders), (1, 10_000));
}

async fn sim(catalogue: &[&str]) -> HardtofindSim {
    let config = HardtofindSimConfig {
        catalogue: catalogue.iter().map(|s| s.to_string()).collect(),
        ..HardtofindSimConfig::default()
    };
    HardtofindSim::start(config).await.expect("start")
}

async fn call(
    sim: &HardtofindSim,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.base_url()))
        .header("X-Auth-Token", token)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

async fn login(sim: &HardtofindSim) -> String {
    let credentials = json!({"username": sim.username(), "password": sim.password()});
    let (status, answer) = call(sim, reqwest::Method::POST, "/authenticate", "", credentials).await;
    assert_eq!((status, &answer["person"]["role"]), (200, &json!("seller")));
    answer["token"].as_str().expect("a token").to_string()
}

#[tokio::test]
async fn hardtofind_issues_a_jwt_and_describes_it() {
    let sim = sim(&[]).await;
    let token = login(&sim).await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("base64")).expect("JSON");
    assert_eq!(claims["sub"], PERSON_ID);
    let lifetime = claims["exp"]
        .as_u64()
        .zip(claims["iat"].as_u64())
        .map(|(e, i)| e - i);
    assert_eq!(lifetime, Some(900));
    let (status, info) = call(&sim, reqwest::Method::GET, "/info", &token, json!({})).await;
    assert_eq!(
        (status, &info["user_id"], &info["roles"]),
        (200, &json!(111), &json!(["seller"]))
    );
    assert!(info["expires"].as_str().is_some_and(|e| e.ends_with('Z')));
    let wrong = json!({"username": sim.username(), "password": "nope"});
    let (status, answer) = call(&sim, reqwest::Method::POST, "/authenticate", "", wrong).await;
    assert_eq!(
        (status, answer),
        (401, json!({"error": "Invalid credentials"}))
    );
    assert_eq!((sim.authentications(), sim.unauthorized_count()), (1, 1));
}

#[tokio::test]
async fn hardtofind_rejects_an_expired_token() {
    let sim = sim(&["A"]).await;
    let token = login(&sim).await;
    sim.expire_all_tokens();
    let batch = json!({"action": "update", "entity_type": "variant", "entities": [{"sku": "A", "inventory": 1}]});
    let (status, answer) = call(&sim, reqwest::Method::POST, "/batch", &token, batch).await;
    assert_eq!(
        (status, answer),
        (401, json!({"error": "Token expired or invalid"}))
    );
    let (status, _) = call(&sim, reqwest::Method::GET, "/info", "made-up", json!({})).await;
    assert_eq!(
        (status, sim.unauthorized_count(), sim.inventory("A")),
        (401, 2, Some(0))
    );
}

#[tokio::test]
async fn hardtofind_ignores_unknown_skus() {
    let sim = sim(&["A", "B"]).await;
    let token = login(&sim).await;
    let entities = json!([{"sku": "A", "inventory": 5}, {"sku": "X", "inventory": 3}]);
    let batch = json!({"action": "update", "entity_type": "variant", "entities": entities});
    let (status, answer) = call(&sim, reqwest::Method::POST, "/batch", &token, batch).await;
    assert_eq!((status, answer), (200, json!({"updated": 1, "ignored": 1})));
    assert_eq!(
        (sim.inventory("A"), sim.inventory("B"), sim.inventory("X")),
        (Some(5), Some(0), None)
    );
    assert_eq!(
        sim.batches(),
        vec![vec![("A".to_string(), 5), ("X".to_string(), 3)]]
    );
}

#[tokio::test]
async fn hardtofind_rejects_malformed_batches_without_applying_any() {
    let sim = sim(&["A"]).await;
    let token = login(&sim).await;
    let good = json!({"sku": "A", "inventory": 5});
    for (action, entity_type, bad) in [
        ("delete", "variant", json!({"sku": "A", "inventory": 1})),
        ("update", "product", json!({"sku": "A", "inventory": 1})),
        ("update", "variant", json!({"sku": "A", "inventory": -1})),
        ("update", "variant", json!({"sku": "A", "inventory": "7"})),
        ("update", "variant", json!({"inventory": 1})),
    ] {
        let batch = json!({"action": action, "entity_type": entity_type, "entities": [good, bad]});
        let (status, answer) = call(&sim, reqwest::Method::POST, "/batch", &token, batch).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"].is_string());
    }
    assert_eq!((sim.inventory("A"), sim.batches().len()), (Some(0), 0));
}

#[tokio::test]
async fn hardtofind_serves_orders_by_state_and_by_id_to_a_logged_in_seller() {
    let sim = sim(&[]).await;
    let id = sim.place_order(NewOrder::new([("SKU-1", 2), ("SKU-1", 1)]));
    let get = reqwest::Method::GET;
    let (status, _) = call(&sim, get.clone(), "/orders?status=READY", "nope", json!({})).await;
    assert_eq!(status, 401);
    let token = login(&sim).await;
    let (status, page) = call(&sim, get.clone(), "/orders?status=READY", &token, json!({})).await;
    assert_eq!(
        (status, &page["data"][0]["id"], &page["total_results"]),
        (200, &json!(id), &json!(1))
    );
    let (_, pending) = call(&sim, get.clone(), "/orders", &token, json!({})).await;
    assert_eq!(
        (&pending["data"], &pending["pages"]),
        (&json!([]), &json!(0))
    );
    let (status, order) = call(
        &sim,
        get.clone(),
        &format!("/order/{id}"),
        &token,
        json!({}),
    )
    .await;
    assert_eq!((status, &order["lines"][1]["quantity"]), (200, &json!(1)));
    let created = order["dates"]["created_at"].as_str().unwrap_or_default();
    assert!(created.ends_with("+1000"), "{created}");
    assert_eq!(Some(order), sim.order_json(&id));
    let (status, _) = call(&sim, get, "/order/999", &token, json!({})).await;
    assert_eq!(status, 404);
    let statuses: Vec<Option<String>> =
        sim.orders_queries().into_iter().map(|q| q.status).collect();
    let ready = Some("READY".to_owned());
    assert_eq!(statuses, [ready.clone(), ready, None]);
    assert_eq!(sim.orders_queries_without_status(), 1);
}

#[tokio::test]
async fn hardtofind_ships_only_with_a_provider_it_lists_and_only_once() {
    let sim = sim(&[]).await;
    let token = login(&sim).await;
    let id = sim.place_order(NewOrder::new([("SKU-1", 1)]));
    let (_, providers) = call(
        &sim,
        reqwest::Method::GET,
        "/shipping-providers",
        &token,
        json!({}),
    )
    .await;
    assert_eq!(providers[0]["provider_name"], "Royal Mail");
    let path = format!("/order/{id}/transition");
    let transition = |body: Value| call(&sim, reqwest::Method::POST, &path, &token, body);
    let ship = |provider: &str| {
        json!({"action": "ship", "data": {"tracking_number": "TRACK-1",
               "shipping_provider_name": provider, "shipment_date": "2016-09-15T14:41:25+1000"}})
    };
    assert_eq!(transition(ship("Pigeon Post")).await.0, 400);
    assert_eq!(transition(json!({"action": "process"})).await.0, 200);
    assert_eq!(transition(json!({"action": "process"})).await.0, 400);
    let (status, shipped) = transition(ship("Royal Mail")).await;
    assert_eq!((status, &shipped["status"]), (200, &json!("SHIPPED")));
    assert_eq!(shipped["shipments"][0]["tracking_number"], "TRACK-1");
    let (status, answer) = transition(ship("Royal Mail")).await;
    assert_eq!(
        (status, &answer["error"]),
        (400, &json!("Order has already been shipped"))
    );
    let actions: Vec<String> = sim.transitions().into_iter().map(|t| t.action).collect();
    assert_eq!(actions, ["process", "ship"]);
}

#[tokio::test]
async fn test_hooks_change_cancel_and_remove_orders() {
    let sim = sim(&[]).await;
    let id = sim.place_order(NewOrder::new([("SKU-1", 1)]));
    assert!(sim.set_order_lines(&id, [("SKU-2", 3)]));
    assert!(sim.set_order_status(&id, OrderStatus::Cancelled));
    let order = sim.order_json(&id).unwrap_or_default();
    assert_eq!(
        (&order["status"], &order["lines"][0]["sku"]),
        (&json!("CANCELLED"), &json!("SKU-2"))
    );
    assert!(sim.remove_order(&id));
    assert_eq!((sim.order_status(&id), sim.touch_order(&id)), (None, false));
}
