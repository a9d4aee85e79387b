//! Simulator of the Hako API (`/v0/warehouses`, `/v0/inventory`): Basic
//! auth with the API key as user name, mandatory JSON content type, a
//! sliding per-minute rate limit and all-or-nothing inventory writes.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::sim::server::{
    Handler, Server, SimRequest, SimResponse, fail, parse_json, push_json_str,
};

/// Length of the rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Configuration of a [`HakoSim`].
#[derive(Debug, Clone)]
pub struct HakoSimConfig {
    /// The API key clients must send as the Basic auth user name.
    pub api_key: String,
    /// Accepted requests allowed in any sliding 60-second window.
    pub requests_per_minute: u32,
    /// The `warehouseID`s that exist at start.
    pub warehouses: Vec<String>,
}

impl Default for HakoSimConfig {
    fn default() -> Self {
        HakoSimConfig {
            api_key: "hako-test-key".to_string(),
            requests_per_minute: 120,
            warehouses: vec!["warehouse-010".to_string(), "dropship".to_string()],
        }
    }
}

/// The optional search parameters of `GET /inventory`.
#[derive(Default, Deserialize)]
struct Filter {
    #[serde(rename = "warehouseID")]
    warehouse: Option<String>,
    sku: Option<String>,
}

/// One element of a `POST` (`quantity`) or `PUT` (`updates.quantity`) body.
#[derive(Deserialize)]
struct Write {
    sku: String,
    #[serde(rename = "warehouseID")]
    warehouse: String,
    quantity: Option<u64>,
    updates: Option<Updates>,
}

#[derive(Deserialize)]
struct Updates {
    quantity: u64,
}

impl Write {
    /// The quantity to set: `quantity` for a POST, `updates.quantity` for a PUT.
    fn quantity(&self, create: bool) -> Option<i64> {
        let quantity = match create {
            true => self.quantity,
            false => self.updates.as_ref().map(|u| u.quantity),
        };
        quantity.and_then(|q| i64::try_from(q).ok())
    }
}

/// An RFC 3339 timestamp, rendered once and shared by everything written
/// at the same time.
type Stamp = Arc<str>;

fn stamp() -> Stamp {
    humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .into()
}

struct Entry {
    id: u64,
    quantity: i64,
    created: Stamp,
    updated: Stamp,
}

struct Warehouse {
    id: u64,
    warehouse_id: String,
    created: Stamp,
    stock: HashMap<String, Entry>,
}

#[derive(Default)]
struct Inner {
    /// Few warehouses, so a list searched linearly.
    warehouses: Vec<Warehouse>,
    next_id: u64,
    window: VecDeque<Instant>,
    rate_limited: u64,
    writes: usize,
    /// SKUs whose writes are answered 2xx but neither applied nor listed in the answer.
    skipped: HashSet<String>,
}

impl Inner {
    fn warehouse(&self, id: &str) -> Option<&Warehouse> {
        self.warehouses.iter().find(|w| w.warehouse_id == id)
    }

    /// Index of a warehouse, creating it if needed.
    fn add_warehouse(&mut self, id: &str) -> usize {
        if let Some(index) = self.warehouses.iter().position(|w| w.warehouse_id == id) {
            return index;
        }
        self.next_id += 1;
        self.warehouses.push(Warehouse {
            id: self.next_id,
            warehouse_id: id.to_string(),
            created: stamp(),
            stock: HashMap::new(),
        });
        self.warehouses.len() - 1
    }

    fn set(&mut self, warehouse: &str, sku: String, quantity: i64, now: &Stamp) -> &Entry {
        let index = self.add_warehouse(warehouse);
        let next_id = &mut self.next_id;
        match self.warehouses[index].stock.entry(sku) {
            Slot::Occupied(slot) => {
                let entry = slot.into_mut();
                entry.quantity = quantity;
                entry.updated = now.clone();
                entry
            }
            Slot::Vacant(slot) => {
                *next_id += 1;
                let (created, updated) = (now.clone(), now.clone());
                slot.insert(Entry {
                    id: *next_id,
                    quantity,
                    created,
                    updated,
                })
            }
        }
    }

    /// Count the request against the window unless the budget is spent
    /// (then count a rate-limited answer instead).
    fn admit(&mut self, limit: u32, now: Instant) -> bool {
        while let Some(&first) = self.window.front() {
            if now.duration_since(first) < RATE_WINDOW {
                break;
            }
            self.window.pop_front();
        }
        if self.window.len() >= limit as usize {
            self.rate_limited += 1;
            return false;
        }
        self.window.push_back(now);
        true
    }
}

/// Append one inventory object to a JSON array being written into `out`.
fn push_entry(out: &mut Vec<u8>, sku: &str, warehouse: &str, entry: &Entry) {
    out.push(if out.is_empty() { b'[' } else { b',' });
    let _ = write!(out, "{{\"id\":{},\"sku\":", entry.id);
    push_json_str(out, sku);
    out.extend_from_slice(b",\"warehouseID\":");
    push_json_str(out, warehouse);
    let (quantity, created, updated) = (entry.quantity, &entry.created, &entry.updated);
    let _ = write!(out, ",\"quantity\":{quantity},\"createdAt\":\"{created}\"");
    let _ = write!(out, ",\"updatedAt\":\"{updated}\"}}");
}

/// Close the array [`push_entry`] wrote into `out`.
fn finish(mut out: Vec<u8>) -> SimResponse {
    if out.is_empty() {
        out.push(b'[');
    }
    out.push(b']');
    SimResponse::raw(200, out)
}

struct State {
    api_key: String,
    requests_per_minute: u32,
    inner: Mutex<Inner>,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn authorised(&self, request: &SimRequest) -> bool {
        let credentials = request.header("authorization").and_then(|v| {
            let (scheme, encoded) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(())?;
            String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()
        });
        let user_and_password = credentials.as_deref().and_then(|c| c.split_once(':'));
        user_and_password == Some((self.api_key.as_str(), ""))
    }

    fn get_warehouses(&self) -> SimResponse {
        let inner = self.lock();
        let list = inner.warehouses.iter().map(|w| {
            let (id, ts) = (&w.warehouse_id, &*w.created);
            json!({"id": w.id, "warehouseID": id, "name": id, "createdAt": ts, "updatedAt": ts})
        });
        SimResponse::json(200, &Value::Array(list.collect()))
    }

    fn get_inventory(&self, filter: Filter) -> SimResponse {
        let (warehouse, sku) = (filter.warehouse.as_deref(), filter.sku.as_deref());
        let inner = self.lock();
        let wanted = |w: &&Warehouse| warehouse.is_none_or(|f| f == w.warehouse_id);
        let selected = inner.warehouses.iter().filter(wanted);
        let estimate: usize = selected.clone().map(|w| w.stock.len()).sum();
        let mut out = Vec::with_capacity(if sku.is_some() { 160 } else { estimate * 160 });
        for w in selected {
            let id = w.warehouse_id.as_str();
            let entries: Box<dyn Iterator<Item = (&String, &Entry)>> = match sku {
                Some(sku) => Box::new(w.stock.get_key_value(sku).into_iter()),
                None => Box::new(w.stock.iter()),
            };
            entries.for_each(|(sku, entry)| push_entry(&mut out, sku, id, entry));
        }
        finish(out)
    }

    /// `POST` (`create`) or `PUT` inventory: validate everything, then apply all.
    fn write(&self, items: Option<Vec<Write>>, create: bool) -> Result<SimResponse, SimResponse> {
        let Some(items) = items.filter(|items| !items.is_empty()) else {
            return fail(400, "Expected an array of one or more objects");
        };
        let mut quantities = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Some(quantity) = item.quantity(create) else {
                let name = if create {
                    "quantity"
                } else {
                    "updates.quantity"
                };
                let message = format!("item {i}: {name} must be a non-negative integer");
                return fail(400, message);
            };
            quantities.push(quantity);
        }
        let mut inner = self.lock();
        let mut seen = HashSet::new();
        for Write { sku, warehouse, .. } in &items {
            let Some(w) = inner.warehouse(warehouse) else {
                return fail(400, format!("Warehouse {warehouse} does not exist"));
            };
            let exists = w.stock.contains_key(sku);
            let at = || format!("SKU {sku} at warehouse {warehouse}");
            if create && (exists || !seen.insert((sku, warehouse))) {
                let advice = "update it with PUT /inventory instead";
                let message = format!("Inventory for {} already exists; {advice}", at());
                return fail(400, message);
            }
            if !create && !exists {
                let advice = "create it with POST /inventory";
                return fail(404, format!("No inventory for {}; {advice}", at()));
            }
        }
        let (now, mut out) = (stamp(), Vec::with_capacity(items.len() * 160));
        for (Write { sku, warehouse, .. }, quantity) in items.iter().zip(quantities) {
            if inner.skipped.contains(sku) {
                continue;
            }
            let entry = inner.set(warehouse, sku.clone(), quantity, &now);
            push_entry(&mut out, sku, warehouse, entry);
        }
        inner.writes += 1;
        Ok(finish(out))
    }

    fn route(&self, request: &SimRequest) -> Result<SimResponse, SimResponse> {
        let Some(route) = request.path.strip_prefix("/v0") else {
            return fail(404, "Not found");
        };
        if !self.authorised(request) {
            let message = "Unauthorized: send the API key as Basic auth user name";
            return fail(401, message);
        }
        if !self.lock().admit(self.requests_per_minute, Instant::now()) {
            return fail(429, "Too many requests, please try again later.");
        }
        let content_type = request.header("content-type");
        let essence = content_type.and_then(|v| v.split(';').next());
        if !essence.is_some_and(|e| e.trim().eq_ignore_ascii_case("application/json")) {
            return fail(415, "Content-Type must be application/json");
        }
        let body = &request.body;
        match (request.method.as_str(), route.trim_end_matches('/')) {
            ("GET", "/warehouses") => parse_json::<IgnoredAny>(body).map(|_| self.get_warehouses()),
            ("GET", "/inventory") => Ok(self.get_inventory(parse_json(body)?.unwrap_or_default())),
            ("POST", "/inventory") => self.write(parse_json(body)?, true),
            ("PUT", "/inventory") => self.write(parse_json(body)?, false),
            (_, "/warehouses" | "/inventory" | "/items") => fail(405, "Method not allowed"),
            _ => fail(404, "Not found"),
        }
    }
}

impl Handler for State {
    fn handle(&self, request: &SimRequest) -> SimResponse {
        self.route(request).unwrap_or_else(|error| error)
    }
}

/// A running Hako simulator; base URL `http://127.0.0.1:PORT/v0`.
#[derive(Clone)]
pub struct HakoSim {
    server: Server,
    state: Arc<State>,
}

crate::sim::common_methods!(HakoSim);

impl HakoSim {
    /// Start a simulator on `127.0.0.1:0` on the current tokio runtime.
    pub async fn start(config: HakoSimConfig) -> std::io::Result<HakoSim> {
        HakoSim::start_on(config, 0).await
    }

    /// Start a simulator on `127.0.0.1:port` (`0`: a free port), as `invsync sim` does.
    pub async fn start_on(config: HakoSimConfig, port: u16) -> std::io::Result<HakoSim> {
        let mut inner = Inner::default();
        for warehouse in &config.warehouses {
            inner.add_warehouse(warehouse);
        }
        let (api_key, requests_per_minute) = (config.api_key, config.requests_per_minute);
        let state = Arc::new(State {
            api_key,
            requests_per_minute,
            inner: Mutex::new(inner),
        });
        let server = Server::start(state.clone(), port).await?;
        Ok(HakoSim { server, state })
    }

    /// Base URL including the `/v0` prefix, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("{}/v0", self.server.base_url())
    }

    /// The API key the simulator accepts.
    pub fn api_key(&self) -> &str {
        &self.state.api_key
    }

    /// Set the quantity of a pair, creating the pair (and the warehouse) if needed.
    pub fn set_quantity(&self, warehouse: &str, sku: &str, quantity: i64) {
        self.state
            .lock()
            .set(warehouse, sku.to_string(), quantity, &stamp());
    }

    /// Bulk form of [`HakoSim::set_quantity`] for one warehouse.
    pub fn set_quantities<S: Into<String>>(
        &self,
        warehouse: &str,
        items: impl IntoIterator<Item = (S, i64)>,
    ) {
        let (now, mut inner) = (stamp(), self.state.lock());
        for (sku, quantity) in items {
            inner.set(warehouse, sku.into(), quantity, &now);
        }
    }

    /// Delete a pair's inventory; returns its quantity if it existed.
    pub fn remove(&self, warehouse: &str, sku: &str) -> Option<i64> {
        let mut inner = self.state.lock();
        let w = inner
            .warehouses
            .iter_mut()
            .find(|w| w.warehouse_id == warehouse)?;
        w.stock.remove(sku).map(|e| e.quantity)
    }

    /// The quantity of a pair, if it has inventory.
    pub fn quantity(&self, warehouse: &str, sku: &str) -> Option<i64> {
        let inner = self.state.lock();
        inner
            .warehouse(warehouse)?
            .stock
            .get(sku)
            .map(|e| e.quantity)
    }

    /// SKU → quantity for one warehouse (empty if it does not exist).
    pub fn inventory(&self, warehouse: &str) -> HashMap<String, i64> {
        let inner = self.state.lock();
        let stock = inner
            .warehouse(warehouse)
            .into_iter()
            .flat_map(|w| &w.stock);
        stock.map(|(sku, e)| (sku.clone(), e.quantity)).collect()
    }

    /// Create a warehouse (no-op if it exists).
    pub fn add_warehouse(&self, id: &str) {
        self.state.lock().add_warehouse(id);
    }

    /// From now on, writes of `sku` are answered 2xx but neither applied nor listed among the
    /// affected objects, as a service that skips a pair without a word (`false` undoes it).
    pub fn skip_writes_of(&self, sku: &str, skip: bool) {
        let mut inner = self.state.lock();
        if skip {
            inner.skipped.insert(sku.to_owned());
        } else {
            inner.skipped.remove(sku);
        }
    }

    /// POST and PUT requests to `/inventory` answered 2xx.
    pub fn write_requests(&self) -> usize {
        self.state.lock().writes
    }

    /// Requests answered 429 by the rate limiter.
    pub fn rate_limited_count(&self) -> u64 {
        self.state.lock().rate_limited
    }
}

#[cfg(test)]
mod tests {
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
}
