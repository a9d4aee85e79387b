//! Simulator of the Endless Aisles stock endpoint (`GET /api/stock`), with
//! `X-EA-REQUEST-TOKEN` auth and optional Laravel-style pagination.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::server::{Handler, Server, SimRequest, SimResponse, push_int, push_json_str};

/// The answer when there is nothing to return, byte for byte as documented.
const EMPTY: &str = "{\"data\": []}";

/// Configuration of an [`EndlessAislesSim`].
#[derive(Debug, Clone)]
pub struct EndlessAislesSimConfig {
    /// The token clients must send in `X-EA-REQUEST-TOKEN`.
    pub token: String,
    /// Entries per page of an unfiltered `GET /api/stock`; `None` answers
    /// everything at once.
    pub page_size: Option<usize>,
}

impl Default for EndlessAislesSimConfig {
    fn default() -> Self {
        EndlessAislesSimConfig {
            token: "ea-test-token".to_string(),
            page_size: None,
        }
    }
}

#[derive(Default)]
struct Inner {
    stock: HashMap<String, i64>,
    /// Option ids in page order; rebuilt lazily when the set of ids changes.
    order: Option<Vec<String>>,
    /// The whole-stock answer, rendered once per change of stock: the simulator must never be
    /// what a benchmark of a million SKUs measures.
    rendered: Option<bytes::Bytes>,
}

impl Inner {
    fn set(&mut self, id: String, quantity: i64) {
        self.rendered = None;
        if let Some(current) = self.stock.get_mut(&id) {
            *current = quantity;
        } else {
            self.stock.insert(id, quantity);
            self.order = None;
        }
    }
}

/// Ids in a stable page order (numeric ids ascending, then longer ids),
/// sorted only when the set of ids changed since the last call.
fn ordered<'a>(stock: &HashMap<String, i64>, order: &'a mut Option<Vec<String>>) -> &'a [String] {
    order.get_or_insert_with(|| {
        let mut ids: Vec<String> = stock.keys().cloned().collect();
        ids.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        ids
    })
}

struct State {
    token: String,
    page_size: Option<usize>,
    inner: Mutex<Inner>,
}

/// Writes `{"data": {...}}`, or the documented empty answer.
fn render<'a>(entries: impl Iterator<Item = (&'a str, i64)>, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + capacity.saturating_mul(24));
    out.extend_from_slice(b"{\"data\":");
    if !push_entries(&mut out, entries) {
        return EMPTY.as_bytes().to_vec();
    }
    out.push(b'}');
    out
}

/// Writes the `data` value: an object of id → quantity, or `[]` when empty
/// (then returns false).
fn push_entries<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a str, i64)>) -> bool {
    let start = out.len();
    for (id, quantity) in entries {
        out.push(if out.len() == start { b'{' } else { b',' });
        push_json_str(out, id);
        out.push(b':');
        push_int(out, quantity);
    }
    if out.len() == start {
        out.extend_from_slice(b"[]");
        return false;
    }
    out.push(b'}');
    true
}

fn push_field(out: &mut Vec<u8>, name: &str, value: Option<usize>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match value {
        Some(v) => out.extend_from_slice(v.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_url(out: &mut Vec<u8>, name: &str, page: Option<usize>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match page {
        Some(p) => out.extend_from_slice(format!("\"/api/stock?page={p}\"").as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn page(&self, page: usize, per_page: usize) -> Vec<u8> {
        let mut inner = self.lock();
        let total = inner.stock.len();
        let last_page = total.div_ceil(per_page).max(1);
        let start = page.saturating_sub(1).saturating_mul(per_page).min(total);
        let end = start.saturating_add(per_page).min(total);
        let mut out = Vec::with_capacity(400 + (end - start) * 24);
        out.extend_from_slice(b"{\"current_page\":");
        out.extend_from_slice(page.to_string().as_bytes());
        out.extend_from_slice(b",\"data\":");
        let Inner { stock, order, .. } = &mut *inner;
        let ids = ordered(stock, order).get(start..end).unwrap_or_default();
        let entries = ids
            .iter()
            .map(|id| (id.as_str(), stock.get(id).copied().unwrap_or(0)));
        let _ = push_entries(&mut out, entries);
        let (from, to) = if end > start {
            (Some(start + 1), Some(end))
        } else {
            (None, None)
        };
        push_url(&mut out, "first_page_url", Some(1));
        push_field(&mut out, "from", from);
        push_field(&mut out, "last_page", Some(last_page));
        push_url(&mut out, "last_page_url", Some(last_page));
        push_url(
            &mut out,
            "next_page_url",
            (page < last_page).then_some(page + 1),
        );
        out.extend_from_slice(b",\"path\":\"/api/stock\"");
        push_field(&mut out, "per_page", Some(per_page));
        let previous = (page > 1).then(|| (page - 1).min(last_page));
        push_url(&mut out, "prev_page_url", previous);
        push_field(&mut out, "to", to);
        push_field(&mut out, "total", Some(total));
        out.push(b'}');
        out
    }
}

impl Handler for State {
    fn handle(&self, request: &SimRequest) -> SimResponse {
        if request.header("x-ea-request-token") != Some(self.token.as_str()) {
            return SimResponse::error(401, "Unauthenticated.");
        }
        match (request.method.as_str(), request.path.trim_end_matches('/')) {
            ("GET", "/api/stock") => {}
            (_, "/api/stock") => return SimResponse::error(405, "Method not allowed."),
            _ => return SimResponse::error(404, "Not found."),
        }
        let (mut skus, mut page) = (None, 1);
        let query = request.query.as_deref().unwrap_or_default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "sku" if !value.trim().is_empty() => skus = Some(value.into_owned()),
                // Like Laravel, anything but a positive page number means page 1.
                "page" => page = value.trim().parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        let body = match (skus, self.page_size) {
            (Some(skus), _) => {
                let inner = self.lock();
                let mut seen = HashSet::new();
                let wanted = skus.split(',').map(str::trim).filter(|id| seen.insert(*id));
                let found = wanted.filter_map(|id| inner.stock.get(id).map(|&q| (id, q)));
                render(found, 0)
            }
            (None, Some(per_page)) => self.page(page, per_page.max(1)),
            (None, None) => {
                let mut inner = self.lock();
                let Inner {
                    stock, rendered, ..
                } = &mut *inner;
                let body = rendered.get_or_insert_with(|| {
                    let all = stock.iter().map(|(id, &q)| (id.as_str(), q));
                    render(all, stock.len()).into()
                });
                return SimResponse::raw(200, body.clone());
            }
        };
        SimResponse::raw(200, body)
    }
}

/// A running Endless Aisles simulator; base URL `http://127.0.0.1:PORT`.
#[derive(Clone)]
pub struct EndlessAislesSim {
    server: Server,
    state: Arc<State>,
}

super::common_methods!(EndlessAislesSim);

impl EndlessAislesSim {
    /// Start a simulator on `127.0.0.1:0` on the current tokio runtime.
    pub async fn start(config: EndlessAislesSimConfig) -> std::io::Result<EndlessAislesSim> {
        EndlessAislesSim::start_on(config, 0).await
    }

    /// Start a simulator on `127.0.0.1:port` (`0`: a free port), as `invsync sim` does.
    pub async fn start_on(
        config: EndlessAislesSimConfig,
        port: u16,
    ) -> std::io::Result<EndlessAislesSim> {
        let state = Arc::new(State {
            token: config.token,
            page_size: config.page_size,
            inner: Mutex::new(Inner::default()),
        });
        let server = Server::start(state.clone(), port).await?;
        Ok(EndlessAislesSim { server, state })
    }

    /// Base URL without a trailing slash (routes live under `/api`).
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The token the simulator accepts.
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// Set the available stock of an option id (creating it).
    pub fn set_stock(&self, id: &str, quantity: i64) {
        self.state.lock().set(id.to_string(), quantity);
    }

    /// Bulk form of [`EndlessAislesSim::set_stock`].
    pub fn set_stocks<S: Into<String>>(&self, items: impl IntoIterator<Item = (S, i64)>) {
        let mut inner = self.state.lock();
        for (id, quantity) in items {
            inner.set(id.into(), quantity);
        }
    }

    /// Forget an option id; returns its stock if it existed.
    pub fn remove(&self, id: &str) -> Option<i64> {
        let mut inner = self.state.lock();
        let removed = inner.stock.remove(id);
        if removed.is_some() {
            inner.order = None;
            inner.rendered = None;
        }
        removed
    }

    /// Forget all stock.
    pub fn clear(&self) {
        *self.state.lock() = Inner::default();
    }

    /// Option id → stock.
    pub fn stock(&self) -> HashMap<String, i64> {
        self.state.lock().stock.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    async fn get(sim: &EndlessAislesSim, path_and_query: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .get(format!("{}{path_and_query}", sim.base_url()))
            .header("X-EA-REQUEST-TOKEN", sim.token())
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    fn parse(body: &str) -> Value {
        serde_json::from_str(body).expect("valid JSON")
    }

    #[tokio::test]
    async fn endless_aisles_answers_an_empty_array_when_it_has_no_stock() {
        let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
            .await
            .expect("start");
        assert_eq!(get(&sim, "/api/stock").await, (200, EMPTY.to_string()));
        sim.set_stock("24752", 149);
        assert_eq!(
            get(&sim, "/api/stock?sku=1,2").await,
            (200, EMPTY.to_string())
        );
    }

    #[tokio::test]
    async fn endless_aisles_serves_stock_and_filters_by_sku() {
        let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
            .await
            .expect("start");
        sim.set_stocks([("24752", 149), ("24751", 74), ("24750", 104)]);
        let (status, all) = get(&sim, "/api/stock").await;
        assert_eq!(status, 200);
        assert_eq!(
            parse(&all),
            json!({"data": {"24752": 149, "24751": 74, "24750": 104}})
        );
        let (_, some) = get(&sim, "/api/stock?sku=24752%2C24750,99999,24752").await;
        assert_eq!(parse(&some), json!({"data": {"24752": 149, "24750": 104}}));
        assert_eq!(sim.remove("24752"), Some(149));
        assert_eq!(sim.stock().len(), 2);
        assert_eq!(sim.count("GET", "/api/stock"), 2);
    }

    #[tokio::test]
    async fn endless_aisles_requires_its_token() {
        let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
            .await
            .expect("start");
        let response = reqwest::Client::new()
            .get(format!("{}/api/stock", sim.base_url()))
            .header("X-EA-REQUEST-TOKEN", "wrong")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body, json!({"error": "Unauthenticated."}));
    }

    #[tokio::test]
    async fn endless_aisles_paginates_when_configured() {
        let config = EndlessAislesSimConfig {
            page_size: Some(2),
            ..EndlessAislesSimConfig::default()
        };
        let sim = EndlessAislesSim::start(config).await.expect("start");
        sim.set_stocks((1..=5).map(|i| (format!("{}", 100 - i), i)));
        let mut seen = HashMap::new();
        let mut next = Some("/api/stock".to_string());
        while let Some(url) = next.take() {
            let (status, body) = get(&sim, &url).await;
            let page = parse(&body);
            assert_eq!(
                (status, page["total"].as_u64(), page["last_page"].as_u64()),
                (200, Some(5), Some(3))
            );
            let data = page["data"].as_object().expect("an object");
            assert!(data.len() <= 2);
            seen.extend(
                data.iter()
                    .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(-1))),
            );
            next = page["next_page_url"].as_str().map(str::to_string);
        }
        assert_eq!(seen, sim.stock());
        let first = parse(&get(&sim, "/api/stock?page=1").await.1);
        assert_eq!(first["data"], json!({"95": 5, "96": 4}));
        let beyond = parse(&get(&sim, "/api/stock?page=9").await.1);
        assert_eq!(
            (beyond["data"].clone(), beyond["from"].clone()),
            (json!([]), Value::Null)
        );
        let filtered = parse(&get(&sim, "/api/stock?sku=99,95").await.1);
        assert_eq!(filtered, json!({"data": {"99": 1, "95": 5}}));
    }
}
