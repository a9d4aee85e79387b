//! The simulated orders: `PUT /api/orders` validated by the document's rules (and
//! `custom_order_id` unique within the account, API_NOTES), `GET /api/orders[/{id}]`, and
//! cancelling by either documented form.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::products::Catalogue;
use super::speak::{self, Problem};
use super::validate::{numeric, validate};
use super::{Params, laravel_page};
use crate::harness::dialect::Spoken;
use crate::harness::server::SimResponse;

/// One line of a simulated order.
#[derive(Debug, Clone, PartialEq)]
pub struct SimLine {
    /// The option id ordered.
    pub option_id: u64,
    /// The UPC as sent.
    pub upc: String,
    /// How many were ordered.
    pub quantity: u64,
    /// How many have shipped ([`super::EndlessAislesSim::ship_line`]).
    pub quantity_shipped: u64,
    /// The price per unit as sent.
    pub price: f64,
}

/// A simulated order.
#[derive(Debug, Clone, PartialEq)]
pub struct SimOrder {
    /// Endless Aisles' id.
    pub id: u64,
    /// As sent; never shown in answers (the document does not show it).
    pub custom_order_id: Option<String>,
    /// `Scheduled`, `Shipped` or `Canceled`.
    pub status: String,
    /// `customer.email` as sent.
    pub email: Option<String>,
    /// `shipping` as sent (the document's request names).
    pub shipping: Map<String, Value>,
    /// The lines of goods.
    pub lines: Vec<SimLine>,
    /// `shipping_cost` as sent.
    pub shipping_cost: f64,
    /// Tracking: `(url, number)`.
    pub shipments: Vec<(String, String)>,
    /// When it was placed (today unless changed by a hook).
    pub created: NaiveDate,
    /// Packed at the warehouse: no longer cancellable.
    pub packed: bool,
    /// Listings that would show it and do not yet (a search index behind the database).
    pub unsearchable_for: usize,
}

/// Every order of the account.
pub(super) struct Book {
    pub(super) orders: BTreeMap<u64, SimOrder>,
    next_id: u64,
    /// Every `PUT /api/orders` that reached the simulator, refused ones included.
    pub(super) puts: usize,
    /// How many listings a new order is missing from ([`SimOrder::unsearchable_for`]).
    pub(super) search_lag: usize,
}

impl Default for Book {
    fn default() -> Book {
        Book {
            orders: BTreeMap::new(),
            next_id: 10_030,
            puts: 0,
            search_lag: 0,
        }
    }
}

impl SimOrder {
    fn summary(&self) -> Value {
        let s = |name: &str| self.shipping.get(name).cloned().unwrap_or(Value::Null);
        let full_name = format!(
            "{} {}",
            s("first_name").as_str().unwrap_or_default(),
            s("last_name").as_str().unwrap_or_default()
        );
        let goods: f64 = self.lines.iter().map(|l| l.price * l.quantity as f64).sum();
        json!({
            "id": self.id,
            "status": self.status,
            "customer": {"email": self.email},
            "shipping": {
                "id": self.id, "first_name": s("first_name"), "last_name": s("last_name"),
                "line_1": s("address_line_1"), "line_2": s("address_line_2"), "city": s("city"),
                "zip": s("zip"), "state": s("state"), "phone": s("phone"), "full_name": full_name,
            },
            "wholesale": goods, "freight": 7.52, "pick_pack": 2, "margin": 0,
            "total": goods + self.shipping_cost,
            "created_at": self.created.format("%m-%d-%Y").to_string(),
        })
    }

    fn detail(&self, catalogue: &Catalogue) -> Value {
        let mut order = self.summary();
        let mut lines: Vec<Value> = self.lines.iter().map(|l| {
            let product = catalogue.size(l.option_id).map_or(0, |(p, _)| p);
            // Nothing shipped yet is `null`, as in the document's unshipped sample.
            let shipped = (l.quantity_shipped > 0).then_some(l.quantity_shipped);
            json!({"id": l.option_id, "product_id": product, "upc": l.upc, "quantity": l.quantity,
                   "quantity_shipped": shipped, "price": l.price, "is_shipping": false})
        }).collect();
        lines.push(json!({"id": 1, "product_id": 1, "upc": null, "quantity": 1,
                          "price": self.shipping_cost, "is_shipping": true}));
        let shipments: Vec<Value> = self
            .shipments
            .iter()
            .map(|(url, number)| json!({"url": url, "number": number}))
            .collect();
        if let Some(fields) = order.as_object_mut() {
            fields.insert("line_items".into(), Value::Array(lines));
            fields.insert("shipments".into(), Value::Array(shipments));
            fields.insert(
                "placed_on".into(),
                json!(self.created.format("%Y-%m-%d").to_string()),
            );
        }
        order
    }

    fn cancellable(&self) -> bool {
        self.status == "Scheduled"
            && !self.packed
            && self.lines.iter().all(|l| l.quantity_shipped == 0)
    }
}

impl Book {
    /// `PUT /api/orders`.
    pub(super) fn place(
        &mut self,
        catalogue: &Catalogue,
        request: (&[u8], &Spoken),
        today: NaiveDate,
    ) -> SimResponse {
        let (body, dialect) = request;
        self.puts += 1;
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            let problem: Problem = ("order".into(), "The request body is not JSON.".into());
            return speak::refuse_order(dialect, &[problem], false);
        };
        let taken = body["custom_order_id"].as_str().is_some_and(|id| {
            (self.orders.values()).any(|o| o.custom_order_id.as_deref() == Some(id))
        });
        let problems = validate(&body, catalogue);
        if taken || !problems.is_empty() {
            return speak::refuse_order(dialect, &problems, taken);
        }
        let number = |v: Option<&Value>| v.and_then(numeric).unwrap_or(0.0);
        let lines = body["line_items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| SimLine {
                option_id: number(l.get("id")) as u64,
                upc: l["upc"]
                    .as_str()
                    .map_or_else(|| l["upc"].to_string(), str::to_owned),
                quantity: number(l.get("quantity")) as u64,
                quantity_shipped: 0,
                price: number(l.get("price")),
            });
        let id = self.next_id;
        self.next_id += 1;
        let order = SimOrder {
            id,
            custom_order_id: body["custom_order_id"].as_str().map(str::to_owned),
            status: "Scheduled".to_owned(),
            email: body
                .pointer("/customer/email")
                .and_then(Value::as_str)
                .map(str::to_owned),
            shipping: body["shipping"].as_object().cloned().unwrap_or_default(),
            lines: lines.collect(),
            shipping_cost: number(body.get("shipping_cost")),
            shipments: Vec::new(),
            created: today,
            packed: false,
            unsearchable_for: self.search_lag,
        };
        let answer = json!({"data": order.detail(catalogue)});
        self.orders.insert(id, order);
        speak::answer(dialect, answer)
    }

    /// `GET /api/orders/{id}`.
    pub(super) fn get(&self, catalogue: &Catalogue, id: u64, dialect: &Spoken) -> SimResponse {
        match self.orders.get(&id) {
            Some(order) => speak::answer(dialect, json!({"data": order.detail(catalogue)})),
            None => speak::error(dialect, 404, "Order not found."),
        }
    }

    /// `GET /api/orders`: newest first, filtered by `query` (an email, an order number, or a
    /// last name), `since` (m-d-Y; another form is ignored) and `status` (open or closed).
    /// An order still [`SimOrder::unsearchable_for`] listings is left out of this one.
    pub(super) fn list(
        &mut self,
        params: &Params,
        max_per_page: usize,
        dialect: &Spoken,
    ) -> SimResponse {
        let query = params.get("query").map(str::trim).filter(|q| !q.is_empty());
        let since = params
            .get("since")
            .and_then(|s| NaiveDate::parse_from_str(s, "%m-%d-%Y").ok());
        let status = params.get("status");
        let matches = |o: &&SimOrder| {
            let by_query = query.is_none_or(|q| {
                let field = |name: &str| {
                    o.shipping
                        .get(name)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                if q.contains('@') {
                    o.email
                        .as_deref()
                        .is_some_and(|e| e.eq_ignore_ascii_case(q))
                } else if q.bytes().all(|b| b.is_ascii_digit()) {
                    q.parse() == Ok(o.id)
                } else {
                    field("last_name").eq_ignore_ascii_case(q)
                }
            });
            let by_status = match status {
                Some("open") => matches!(o.status.as_str(), "Scheduled" | "Pending"),
                Some("closed") => matches!(o.status.as_str(), "Shipped" | "Canceled" | "Failed"),
                _ => true,
            };
            by_query && by_status && since.is_none_or(|d| o.created >= d)
        };
        let mut found: Vec<u64> = Vec::new();
        for order in self.orders.values_mut().rev() {
            if !matches(&&*order) {
                continue;
            }
            if order.unsearchable_for > 0 {
                order.unsearchable_for -= 1;
            } else {
                found.push(order.id);
            }
        }
        let found: Vec<&SimOrder> = found.iter().filter_map(|id| self.orders.get(id)).collect();
        let (page, per_page) = (params.page(), params.per_page(max_per_page));
        let start = page.saturating_sub(1).saturating_mul(per_page);
        let data = found
            .iter()
            .skip(start)
            .take(per_page)
            .map(|o| o.summary())
            .collect();
        let page = laravel_page("/api/orders", page, per_page, found.len(), data);
        speak::answer(dialect, page)
    }

    /// Either cancel form: a cancelled order stays cancelled (200 again).
    pub(super) fn cancel(
        &mut self,
        catalogue: &Catalogue,
        id: u64,
        dialect: &Spoken,
    ) -> SimResponse {
        let Some(order) = self.orders.get_mut(&id) else {
            return speak::error(dialect, 404, "Order not found.");
        };
        if order.status != "Canceled" {
            if !order.cancellable() {
                return speak::error(dialect, 422, "This order can no longer be cancelled.");
            }
            order.status = "Canceled".to_owned();
        }
        speak::answer(dialect, json!({"data": order.detail(catalogue)}))
    }

    /// Ships `quantity` more of a line and records the tracking; the order is `Shipped` once
    /// every line is. False when there is no such order or line.
    pub(super) fn ship(
        &mut self,
        id: u64,
        option_id: u64,
        quantity: u64,
        url: &str,
        number: &str,
    ) -> bool {
        let Some(order) = self.orders.get_mut(&id) else {
            return false;
        };
        let Some(line) = order.lines.iter_mut().find(|l| l.option_id == option_id) else {
            return false;
        };
        line.quantity_shipped = (line.quantity_shipped + quantity).min(line.quantity);
        let tracking = (url.to_owned(), number.to_owned());
        if !order.shipments.contains(&tracking) {
            order.shipments.push(tracking);
        }
        if order.lines.iter().all(|l| l.quantity_shipped >= l.quantity) {
            order.status = "Shipped".to_owned();
        }
        true
    }
}
