//! Simulator of the Hako API (`/v0/warehouses`, `/v0/inventory`): Basic
//! auth with the API key as user name, mandatory JSON content type, a
//! sliding per-minute rate limit and all-or-nothing inventory writes.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::harness::dialect::{Dialect, Errors, Fields, Numbers};
use crate::harness::server::{Handler, Server, SimRequest, SimResponse, fail, parse_json};
use inventory::*;

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
        if let Some(Write { sku, .. }) = items.iter().find(|w| inner.refused.contains(&w.sku)) {
            return fail(400, format!("SKU {sku} cannot be written to"));
        }
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
        let response = self.route(request).unwrap_or_else(|error| error);
        if request.dialect.get() == Dialect::documented() {
            return response;
        }
        in_dialect(request, response)
    }
}

/// An answer in a dialect other than the documented one. The document says only that errors
/// are JSON: a production install may say no more than the status. Records may carry fields
/// the document does not name and leave out the dates, and ids may be strings of digits.
fn in_dialect(request: &SimRequest, response: SimResponse) -> SimResponse {
    let dialect = &request.dialect;
    if response.status >= 400 {
        if dialect.answer("errors").errors == Errors::Debug {
            return response;
        }
        let reason = hyper::StatusCode::from_u16(response.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        return SimResponse::json(response.status, &json!({ "message": reason }));
    }
    let Ok(Value::Array(mut records)) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    let loose = dialect.answer("fields").fields == Fields::Loose;
    let strings = dialect.answer("numbers").numbers == Numbers::Strings;
    for record in records.iter_mut().filter_map(Value::as_object_mut) {
        if loose {
            record.remove("createdAt");
            record.remove("updatedAt");
            record.insert("reserved".to_owned(), json!(0));
            record.insert("location".to_owned(), Value::Null);
        }
        if strings && let Some(id) = record.get("id").filter(|id| id.is_number()) {
            let id = id.to_string();
            record.insert("id".to_owned(), json!(id));
        }
    }
    SimResponse::json(response.status, &Value::Array(records))
}

/// A running Hako simulator; base URL `http://127.0.0.1:PORT/v0`.
#[derive(Clone)]
pub struct HakoSim {
    server: Server,
    state: Arc<State>,
}

crate::harness::common_methods!(HakoSim);

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
        let items = items.into_iter();
        let (now, mut inner) = (stamp(), self.state.lock());
        let at = inner.add_warehouse(warehouse);
        inner.warehouses[at].stock.reserve(items.size_hint().0);
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

    /// From now on, any write that includes `sku` is refused with a 400 (all or nothing, as
    /// every write), as a service that will not take one SKU (`false` undoes it).
    pub fn refuse_writes_of(&self, sku: &str, refuse: bool) {
        let mut inner = self.state.lock();
        if refuse {
            inner.refused.insert(sku.to_owned());
        } else {
            inner.refused.remove(sku);
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

mod inventory;
#[cfg(test)]
mod tests;
