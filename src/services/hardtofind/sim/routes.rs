//! The simulator's order endpoints (seed `001`) over HTTP, and the hooks tests use to place,
//! change and move orders while a client reads them.

use serde_json::{Value, json};

use super::orders::OrderChange;
use super::orders::SimTransition;
use super::orders::{NewOrder, OrdersQuery};
use super::{HardtofindSim, State};
use crate::harness::dialect::Gone;
use crate::harness::server::{SimRequest, SimResponse, fail, parse_json};
use crate::services::hardtofind::wire::{OrderStatus, ShippingProvider};

impl State {
    /// Routes a request under `/orders`, `/order/…` or `/shipping-providers`; `None` when the
    /// path is none of them.
    pub(super) fn orders_route(
        &self,
        request: &SimRequest,
    ) -> Option<Result<SimResponse, SimResponse>> {
        let answer = match (request.method.as_str(), request.path.trim_end_matches('/')) {
            ("GET", "/orders") => self.list(request),
            ("GET", "/shipping-providers") => self.providers(request),
            (_, "/orders" | "/shipping-providers") => fail(405, "Method not allowed"),
            (method, path) => {
                let parts: Vec<&str> = path.strip_prefix("/order/")?.split('/').collect();
                match (method, parts.as_slice()) {
                    ("GET", [id]) => self.one(request, id),
                    ("POST", [id, "transition"]) => self.transition(request, id),
                    (_, [_] | [_, "transition"]) => fail(405, "Method not allowed"),
                    _ => return None,
                }
            }
        };
        Some(answer)
    }

    fn list(&self, request: &SimRequest) -> Result<SimResponse, SimResponse> {
        let mut query = OrdersQuery {
            status: None,
            page_number: None,
        };
        let raw = request.query.as_deref().unwrap_or_default();
        for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
            match key.as_ref() {
                "status" => query.status = Some(value.into_owned()),
                "page_number" => query.page_number = Some(value.into_owned()),
                _ => {}
            }
        }
        // Recorded before the token is checked: tests assert on every query a client sent.
        self.lock().orders.record(&query);
        self.token(request)?;
        let page = self.lock().orders.list(query, &request.dialect);
        page.map(|page| SimResponse::raw(200, page))
            .or_else(|(status, message)| fail(status, message))
    }

    fn one(&self, request: &SimRequest, id: &str) -> Result<SimResponse, SimResponse> {
        self.token(request)?;
        match self.lock().orders.render(id) {
            Some(order) => Ok(SimResponse::json(200, &order)),
            // The document names no status for an unknown order.
            None => match request.dialect.answer("gone").gone {
                Gone::NotFound => fail(404, "Order not found"),
                Gone::Gone => fail(410, "Order not found"),
            },
        }
    }

    fn transition(&self, request: &SimRequest, id: &str) -> Result<SimResponse, SimResponse> {
        self.token(request)?;
        let body: Value = parse_json(&request.body)?.unwrap_or(Value::Null);
        let mut inner = self.lock();
        match inner.orders.transition(id, &body) {
            // The answer is not documented; the order as it now stands is what an API of this
            // shape answers, and a client must not rely on more than "2xx and JSON".
            Ok(()) => Ok(SimResponse::json(
                200,
                &inner.orders.render(id).unwrap_or(Value::Null),
            )),
            Err((status, message)) => fail(status, message),
        }
    }

    fn providers(&self, request: &SimRequest) -> Result<SimResponse, SimResponse> {
        self.token(request)?;
        let providers: Vec<Value> = (self.lock().orders.providers.iter())
            .map(|p| {
                json!({"id": p.id, "provider_name": p.provider_name, "tracking_url": p.tracking_url,
                       "accepts_tracking_id_in_url": p.accepts_tracking_id_in_url.unwrap_or(false)})
            })
            .collect();
        Ok(SimResponse::json(200, &Value::Array(providers)))
    }
}

impl HardtofindSim {
    /// Places an order; answers its id. It goes to the top of its state's list.
    pub fn place_order(&self, order: NewOrder) -> String {
        self.state.lock().orders.place(order)
    }

    /// Places many orders under one lock (for benchmarks of thousands); answers their ids.
    pub fn place_orders(&self, orders: impl IntoIterator<Item = NewOrder>) -> Vec<String> {
        let mut inner = self.state.lock();
        orders.into_iter().map(|o| inner.orders.place(o)).collect()
    }

    /// Replaces an order's lines, as an edit by customer support would; `false` if unknown.
    pub fn set_order_lines<S: Into<String>>(
        &self,
        id: &str,
        lines: impl IntoIterator<Item = (S, i64)>,
    ) -> bool {
        let lines: Vec<(String, i64)> = lines.into_iter().map(|(s, q)| (s.into(), q)).collect();
        self.state.lock().orders.update(id, |o| o.lines = lines)
    }

    /// Moves an order to `status` (cancel, refund, ship, …) without a transition, as the
    /// store's own staff would; `false` if unknown.
    pub fn set_order_status(&self, id: &str, status: OrderStatus) -> bool {
        self.state
            .lock()
            .orders
            .change_state(id, |o| o.status = status)
    }

    /// Updates an order without changing it, so it moves to page 1 of its list.
    pub fn touch_order(&self, id: &str) -> bool {
        self.state.lock().orders.update(id, |_| ())
    }

    /// Writes order `id` through `rewrite` from now on (and moves it to the top of its list, as
    /// any update does): how a test makes an order the document would not write, as a shop
    /// platform does (`"sku": null` for a deleted variant, a quantity of `2.5`, a zero date).
    pub fn rewrite_order(
        &self,
        id: &str,
        rewrite: impl Fn(&mut Value) + Send + Sync + 'static,
    ) -> bool {
        let rewrite: super::orders::Rewrite = std::sync::Arc::new(rewrite);
        self.state
            .lock()
            .orders
            .update(id, |o| o.rewrite = Some(rewrite))
    }

    /// Touches `id` right after the `after`-th `GET /orders` from now has been answered: the
    /// order moves to page 1 while a client is between pages, and the orders above it shift.
    pub fn touch_order_after(&self, after: usize, id: &str) {
        self.state.lock().orders.touch_after(after, id);
    }

    /// Makes `change` right after the `after`-th `GET /orders` from now has been answered
    /// (`after` ≥ 1): an order updated, moved to another state or placed while a client is
    /// between pages.
    pub fn change_after(&self, after: usize, change: OrderChange) {
        self.state.lock().orders.change_after(after, change);
    }

    /// Makes `change` now.
    pub fn change(&self, change: OrderChange) {
        self.state.lock().orders.apply(change);
    }

    /// For each change of [`HardtofindSim::change_after`] made so far, how many `GET /orders`
    /// had been answered when it was made; and how many have been answered now: a change made
    /// before the last answer was made while a client paged.
    pub fn changes_made(&self) -> (Vec<usize>, usize) {
        let inner = self.state.lock();
        (inner.orders.fired.clone(), inner.orders.answered)
    }

    /// Forgets the changes of [`HardtofindSim::change_after`] not made yet.
    pub fn cancel_changes(&self) {
        self.state.lock().orders.cancel_later();
    }

    /// Whether a change of state moves an order to page 1 of its new list with a new
    /// `updated_at`, as any other update does (the default: the document sorts by "last updated
    /// date"), or leaves its date, and so its place in the order, as it was. Not a dialect
    /// point: only the incremental walk depends on it, and `once` never walks incrementally.
    pub fn set_state_changes_move_orders(&self, moved: bool) {
        self.state.lock().orders.state_changes_move = moved;
    }

    /// Deletes an order, so `GET /order/{id}` answers 404.
    pub fn remove_order(&self, id: &str) -> bool {
        self.state.lock().orders.remove(id)
    }

    /// An order's state; `None` if unknown.
    pub fn order_status(&self, id: &str) -> Option<OrderStatus> {
        self.state.lock().orders.status(id)
    }

    /// An order as `GET /order/{id}` answers it.
    pub fn order_json(&self, id: &str) -> Option<Value> {
        self.state.lock().orders.render(id)
    }

    /// Every `GET /orders` answered so far (the newest 100,000), with its parameters.
    pub fn orders_queries(&self) -> Vec<OrdersQuery> {
        self.state.lock().orders.queries.iter().cloned().collect()
    }

    /// How many `GET /orders` came without `status` (and were answered the PENDING orders).
    pub fn orders_queries_without_status(&self) -> usize {
        self.state.lock().orders.without_status
    }

    /// The transitions accepted so far, in order.
    pub fn transitions(&self) -> Vec<SimTransition> {
        self.state.lock().orders.transitions.clone()
    }

    /// Replaces the list `GET /shipping-providers` answers and `ship` accepts.
    pub fn set_shipping_providers(&self, providers: Vec<ShippingProvider>) {
        self.state.lock().orders.providers = providers;
    }
}
