//! The Hako simulator's own tests.
use super::*;

async fn sim(requests_per_minute: u32) -> HakoSim {
    let config = HakoSimConfig {
        requests_per_minute,
        ..HakoSimConfig::default()
    };
    HakoSim::start(config).await.expect("start the sim")
}

/// Send an authenticated JSON request; answer status and parsed body.
async fn call(sim: &HakoSim, method: &str, path: &str, body: &str) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", sim.base_url()))
        .basic_auth(sim.api_key(), None::<&str>)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string())
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

fn len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn hako_lists_warehouses_and_filters_inventory() {
    let sim = sim(120).await;
    sim.set_quantity("warehouse-010", "hk-001", 15);
    sim.set_quantities("dropship", [("hk-001", 3), ("hk \"2\"", 7)]);
    let (status, warehouses) = call(&sim, "GET", "/warehouses", "").await;
    assert_eq!((status, len(&warehouses)), (200, 2));
    assert_eq!(warehouses[0]["warehouseID"], "warehouse-010");
    assert_eq!(len(&call(&sim, "GET", "/inventory", "").await.1), 3);
    let dropship = call(&sim, "GET", "/inventory", r#"{"warehouseID":"dropship"}"#).await;
    assert_eq!(len(&dropship.1), 2);
    let filter = r#"{"warehouseID":"dropship","sku":"hk \"2\""}"#;
    let (_, one) = call(&sim, "GET", "/inventory", filter).await;
    assert_eq!(
        (len(&one), &one[0]["quantity"], &one[0]["sku"]),
        (1, &json!(7), &json!("hk \"2\""))
    );
    assert!(one[0]["createdAt"].is_string() && one[0]["id"].is_u64());
}

#[tokio::test]
async fn hako_requires_basic_auth_and_a_json_content_type() {
    let sim = sim(120).await;
    let (url, client) = (
        format!("{}/inventory", sim.base_url()),
        reqwest::Client::new(),
    );
    let anonymous = client.get(&url).header("content-type", "application/json");
    assert_eq!(anonymous.send().await.expect("send").status(), 401);
    let wrong = client.get(&url).basic_auth("nope", None::<&str>);
    assert_eq!(wrong.send().await.expect("send").status(), 401);
    let untyped = client.get(&url).basic_auth(sim.api_key(), None::<&str>);
    assert_eq!(untyped.send().await.expect("send").status(), 415);
    let (status, body) = call(&sim, "GET", "/inventory", "{not json").await;
    assert!(status == 400 && body["error"].is_string());
}

#[tokio::test]
async fn hako_answers_429_beyond_its_per_minute_budget() {
    let sim = sim(3).await;
    let unauthenticated = reqwest::Client::new().get(format!("{}/warehouses", sim.base_url()));
    assert_eq!(unauthenticated.send().await.expect("send").status(), 401);
    for _ in 0..3 {
        assert_eq!(call(&sim, "GET", "/warehouses", "").await.0, 200);
    }
    let (status, body) = call(&sim, "GET", "/warehouses", "").await;
    assert_eq!(
        (status, body),
        (
            429,
            json!({"error": "Too many requests, please try again later."})
        )
    );
    assert_eq!(sim.rate_limited_count(), 1);
}

#[tokio::test]
async fn hako_refuses_to_create_a_pair_that_exists() {
    let sim = sim(120).await;
    sim.set_quantity("warehouse-010", "a", 1);
    let body = r#"[{"sku":"b","warehouseID":"warehouse-010","quantity":2},
                   {"sku":"a","warehouseID":"warehouse-010","quantity":3}]"#;
    let (status, answer) = call(&sim, "POST", "/inventory", body).await;
    let expected = "Inventory for SKU a at warehouse warehouse-010 already exists; \
                    update it with PUT /inventory instead";
    assert_eq!((status, answer), (400, json!({ "error": expected })));
    assert_eq!(
        sim.inventory("warehouse-010"),
        HashMap::from([("a".to_string(), 1)])
    );
    let twice = r#"[{"sku":"c","warehouseID":"dropship","quantity":2},
                    {"sku":"c","warehouseID":"dropship","quantity":2}]"#;
    assert_eq!(call(&sim, "POST", "/inventory", twice).await.0, 400);
    assert_eq!(sim.write_requests(), 0);
}

#[tokio::test]
async fn hako_creates_and_updates_inventory_all_or_nothing() {
    let sim = sim(120).await;
    let create = r#"[{"sku":"a","warehouseID":"warehouse-010","quantity":5}]"#;
    let (status, created) = call(&sim, "POST", "/inventory", create).await;
    assert_eq!((status, &created[0]["quantity"]), (200, &json!(5)));
    let update = r#"[{"sku":"a","warehouseID":"warehouse-010","updates":{"quantity":4}},
                     {"sku":"z","warehouseID":"warehouse-010","updates":{"quantity":1}}]"#;
    let (status, answer) = call(&sim, "PUT", "/inventory", update).await;
    let expected =
        "No inventory for SKU z at warehouse warehouse-010; create it with POST /inventory";
    assert_eq!((status, answer), (404, json!({ "error": expected })));
    assert_eq!(sim.quantity("warehouse-010", "a"), Some(5));
    let update = r#"[{"sku":"a","warehouseID":"warehouse-010","updates":{"quantity":4}}]"#;
    let (status, updated) = call(&sim, "PUT", "/inventory", update).await;
    assert_eq!(
        (status, &updated[0]["quantity"], &updated[0]["id"]),
        (200, &json!(4), &created[0]["id"])
    );
    let nowhere = r#"[{"sku":"a","warehouseID":"nowhere","quantity":1}]"#;
    let (status, answer) = call(&sim, "POST", "/inventory", nowhere).await;
    assert_eq!(
        (status, answer),
        (400, json!({"error": "Warehouse nowhere does not exist"}))
    );
    for bad in [
        r#"[{"sku":"n","warehouseID":"dropship","quantity":-1}]"#,
        r#"[{"sku":"n","warehouseID":"dropship","quantity":1.5}]"#,
        r#"[{"sku":"n","warehouseID":"dropship"}]"#,
        r#"{"sku":"n","warehouseID":"dropship","quantity":1}"#,
        "[]",
    ] {
        assert_eq!(call(&sim, "POST", "/inventory", bad).await.0, 400, "{bad}");
    }
    assert_eq!(
        (sim.write_requests(), sim.count("PUT", "/inventory")),
        (2, 2)
    );
    assert_eq!(sim.inventory("dropship"), HashMap::new());
}
