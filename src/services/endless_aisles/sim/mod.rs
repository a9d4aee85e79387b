//! Simulator of Endless Aisles (seed `004` and API_NOTES), with `X-EA-REQUEST-TOKEN` auth:
//!
//! - [`stock`]: `GET /api/stock`, optionally in Laravel pages.
//! - [`products`]: `GET /api/products` with sizes, and hooks to change a size.
//! - [`orders`]: `PUT /api/orders` (checked by [`validate`]), `GET /api/orders[/{id}]`, both
//!   cancel forms, and hooks to ship and cancel. Faults after applying a request (a placed order whose answer is lost)
//!   come from the shared harness: `Fault::AfterHandling`.
//! - [`speak`]: what its dialect changes (error bodies, loose fields, numbers as strings);
//!   `stock_pages` is answered by [`stock`].

mod orders;
mod products;
mod speak;
mod stock;
mod validate;

pub use orders::{SimLine, SimOrder};
pub use products::SimSize;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::harness::server::{Handler, Server, SimRequest, SimResponse};
use orders::Book;
use products::Catalogue;
use stock::StockBook;

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

/// A listing's query parameters.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Params {
        let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        Params(
            pairs
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Like Laravel, anything but a positive page number means page 1.
    pub(super) fn page(&self) -> usize {
        let page = self.get("page").and_then(|p| p.trim().parse().ok());
        page.unwrap_or(1).max(1)
    }

    /// `per_page` (default 10, as documented), at most `max`.
    pub(super) fn per_page(&self, max: usize) -> usize {
        let asked = self.get("per_page").and_then(|p| p.trim().parse().ok());
        asked.unwrap_or(10).clamp(1, max.max(1))
    }
}

/// A Laravel page around `data`.
pub(super) fn laravel_page(
    path: &str,
    page: usize,
    per_page: usize,
    total: usize,
    data: Vec<Value>,
) -> Value {
    let last_page = total.div_ceil(per_page).max(1);
    let url = |p: usize| format!("{path}?page={p}");
    let start = page.saturating_sub(1).saturating_mul(per_page);
    let (from, to) = if data.is_empty() {
        (None, None)
    } else {
        (Some(start + 1), Some(start + data.len()))
    };
    json!({
        "current_page": page, "data": data, "first_page_url": url(1), "from": from,
        "last_page": last_page, "last_page_url": url(last_page),
        "next_page_url": (page < last_page).then(|| url(page + 1)), "path": path,
        "per_page": per_page, "prev_page_url": (page > 1).then(|| url(page - 1)),
        "to": to, "total": total,
    })
}

struct State {
    token: String,
    page_size: Option<usize>,
    /// The most records a listing page holds, whatever `per_page` asks.
    max_per_page: AtomicUsize,
    stock: Mutex<StockBook>,
    // Lock order: catalogue before orders.
    catalogue: Mutex<Catalogue>,
    orders: Mutex<Book>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn lock(&self) -> MutexGuard<'_, StockBook> {
        lock(&self.stock)
    }

    fn orders(&self, act: impl FnOnce(&Catalogue, &mut Book) -> SimResponse) -> SimResponse {
        let catalogue = lock(&self.catalogue);
        act(&catalogue, &mut lock(&self.orders))
    }
}

impl Handler for State {
    fn handle(&self, request: &SimRequest) -> SimResponse {
        let dialect = &request.dialect;
        if request.header("x-ea-request-token") != Some(self.token.as_str()) {
            return speak::error(dialect, 401, "Unauthenticated.");
        }
        let params = Params::parse(request.query.as_deref());
        let max = self.max_per_page.load(Ordering::Relaxed);
        let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
        let id = |s: &str| s.parse::<u64>().ok();
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["api", "stock"]) => {
                let skus = params.get("sku").filter(|s| !s.trim().is_empty());
                let page_size = match skus {
                    Some(_) => None,
                    None => stock::page_size(dialect, self.page_size),
                };
                let body = self.lock().answer(skus, params.page(), page_size);
                speak::stock(dialect, body)
            }
            ("GET", ["api", "products"]) => {
                let (page, per_page) = (params.page(), params.per_page(max));
                speak::answer(dialect, lock(&self.catalogue).page(page, per_page))
            }
            ("PUT", ["api", "orders"]) => {
                let today = chrono::Utc::now().date_naive();
                self.orders(|c, book| book.place(c, (&request.body, dialect), today))
            }
            ("GET", ["api", "orders"]) => lock(&self.orders).list(&params, max, dialect),
            ("GET", ["api", "orders", n]) if id(n).is_some() => {
                self.orders(|c, book| book.get(c, id(n).unwrap_or_default(), dialect))
            }
            // Both documented forms; the PUT under `/api` and, as its heading reads, without.
            ("PUT", ["api", "orders", n, "cancel"] | ["orders", n, "cancel"])
            | ("GET", ["api", "orders", n, "cancel"])
                if id(n).is_some() =>
            {
                self.orders(|c, book| book.cancel(c, id(n).unwrap_or_default(), dialect))
            }
            (_, ["api", "stock" | "products" | "orders"]) => {
                speak::error(dialect, 405, "Method not allowed.")
            }
            _ => speak::error(dialect, 404, "Not found."),
        }
    }
}

/// A running Endless Aisles simulator; base URL `http://127.0.0.1:PORT`.
#[derive(Clone)]
pub struct EndlessAislesSim {
    server: Server,
    state: Arc<State>,
}

crate::harness::common_methods!(EndlessAislesSim);

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
            max_per_page: AtomicUsize::new(10_000),
            stock: Mutex::default(),
            catalogue: Mutex::default(),
            orders: Mutex::default(),
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
        let items = items.into_iter();
        let mut inner = self.state.lock();
        inner.stock.reserve(items.size_hint().0);
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
        *self.state.lock() = StockBook::default();
    }

    /// The stock of one option id, if it exists.
    pub fn stock_of(&self, id: &str) -> Option<i64> {
        self.state.lock().stock.get(id).copied()
    }

    /// Option id → stock.
    pub fn stock(&self) -> HashMap<String, i64> {
        self.state.lock().stock.clone()
    }

    /// Caps the records of one listing page (`/api/products`, `/api/orders`) whatever
    /// `per_page` asks, so a test can make a client walk pages (default 10,000).
    pub fn set_max_per_page(&self, max: usize) {
        self.state.max_per_page.store(max.max(1), Ordering::Relaxed);
    }

    /// Adds (or replaces) product `id` with its sizes.
    pub fn add_product(&self, id: u64, title: &str, sizes: Vec<SimSize>) {
        lock(&self.state.catalogue).add(id, title, sizes);
    }

    /// Changes the size with this option id; false when there is none.
    pub fn update_size(&self, option_id: u64, change: impl FnOnce(&mut SimSize)) -> bool {
        lock(&self.state.catalogue)
            .size_mut(option_id)
            .map(change)
            .is_some()
    }

    /// Sets a size's `purchasability`; false when there is no such size.
    pub fn set_purchasability(&self, option_id: u64, purchasable: bool) -> bool {
        self.update_size(option_id, |s| s.purchasability = purchasable)
    }

    /// Sets a size's `discontinued`; false when there is no such size.
    pub fn set_discontinued(&self, option_id: u64, discontinued: bool) -> bool {
        self.update_size(option_id, |s| s.discontinued = discontinued)
    }

    /// Makes every order placed from now on missing from the next `listings` listings that
    /// would show it, as a search index that lags behind the orders does: what a client that
    /// lost a placement's answer meets when it looks for the order at once.
    pub fn set_search_lag(&self, listings: usize) {
        lock(&self.state.orders).search_lag = listings;
    }

    /// Every order, by id.
    pub fn orders(&self) -> Vec<SimOrder> {
        lock(&self.state.orders).orders.values().cloned().collect()
    }

    /// Order `id`, if it exists.
    pub fn order(&self, id: u64) -> Option<SimOrder> {
        lock(&self.state.orders).orders.get(&id).cloned()
    }

    /// How many distinct orders exist: what a "placed exactly once" test counts.
    pub fn order_count(&self) -> usize {
        lock(&self.state.orders).orders.len()
    }

    /// How many `PUT /api/orders` reached the simulator, refused ones included (one stopped
    /// by a fault before handling is only in [`EndlessAislesSim::requests`]).
    pub fn order_puts(&self) -> usize {
        lock(&self.state.orders).puts
    }

    /// Ships `quantity` more of the line for `option_id` with this tracking; the order is
    /// `Shipped` once every line is. False when there is no such order or line.
    pub fn ship_line(
        &self,
        id: u64,
        option_id: u64,
        quantity: u64,
        url: &str,
        number: &str,
    ) -> bool {
        lock(&self.state.orders).ship(id, option_id, quantity, url, number)
    }

    /// Changes order `id` (status, `packed`, `created`, …); false when there is none.
    pub fn update_order(&self, id: u64, change: impl FnOnce(&mut SimOrder)) -> bool {
        lock(&self.state.orders)
            .orders
            .get_mut(&id)
            .map(change)
            .is_some()
    }

    /// Cancels order `id` on the supplier's side, whatever its state.
    pub fn cancel_order(&self, id: u64) -> bool {
        self.update_order(id, |o| o.status = "Canceled".to_owned())
    }

    /// Dates order `id` as placed on `date` (for `since`).
    pub fn set_order_created(&self, id: u64, date: NaiveDate) -> bool {
        self.update_order(id, |o| o.created = date)
    }
}
