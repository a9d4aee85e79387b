//! The simulator's order book (seed `001`): orders by id, each state's list newest-updated first,
//! and the `process` and `ship` transitions. Plain data, no HTTP: [`super::routes`] serves it.
//!
//! The transitions are in [`super::transitions`].
//!
//! A page is a slice of a per-state index that is sorted again only after a change to that
//! state, so walking 1,000 pages costs one sort, not one per page.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{Value, json};

use crate::harness::dialect::{Dialect, EmptyPages, Fields, Numbers, Spoken};
use crate::services::hardtofind::wire::{Address, Date, OrderStatus, ShippingProvider};

/// Orders on a page of `GET /orders`; fixed by the service (API_NOTES).
pub const PAGE_SIZE: usize = 10;
/// How many `GET /orders` queries are kept for tests to read; older ones are forgotten so a
/// long demo does not grow without end (the count of queries without `status` is kept whole).
const QUERY_LOG: usize = 100_000;
/// The store's offset: the document's dates are written `+1000`.
const STORE_OFFSET_SECS: i32 = 10 * 3600;

/// An order a test places; [`NewOrder::new`] fills in the rest.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// `(sku, quantity)` lines; a SKU may appear on two lines.
    pub lines: Vec<(String, i64)>,
    /// Its state; `READY` (paid, awaiting the seller) unless set.
    pub status: OrderStatus,
    /// When it was placed; now unless set.
    pub created_at: Option<DateTime<Utc>>,
    /// When it should leave; five days after creation unless set.
    pub dispatch_due_at: Option<DateTime<Utc>>,
    /// When it was last changed; now unless set (a test seeds orders nobody has touched for an
    /// hour). The list is sorted on it.
    pub updated_at: Option<DateTime<Utc>>,
    /// Where it goes; the document's sample address unless set.
    pub address: Address,
}

impl NewOrder {
    /// A `READY` order for `lines`, placed now, due in five days, to the document's address.
    pub fn new<S: Into<String>>(lines: impl IntoIterator<Item = (S, i64)>) -> NewOrder {
        NewOrder {
            lines: lines.into_iter().map(|(s, q)| (s.into(), q)).collect(),
            status: OrderStatus::Ready,
            created_at: None,
            dispatch_due_at: None,
            updated_at: None,
            address: Address {
                first_name: Some("Tim".into()),
                last_name: Some("Massey".into()),
                line_one: Some("12 Address Street".into()),
                line_two: Some(String::new()),
                suburb: Some("Suburbia".into()),
                state: Some("ACT".into()),
                postcode: Some("1001".into()),
                country: Some("Australia".into()),
                company: None,
            },
        }
    }
}

/// One `GET /orders` as the simulator saw it: what `status` and `page_number` said, if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersQuery {
    /// The `status` parameter, as sent.
    pub status: Option<String>,
    /// The `page_number` parameter, as sent.
    pub page_number: Option<String>,
}

/// A shipment `ship` recorded.
pub(super) struct Shipment {
    pub(super) date: DateTime<FixedOffset>,
    pub(super) tracking_number: String,
    pub(super) provider: String,
}

/// One order as the store keeps it.
pub(super) struct SimOrder {
    pub(super) status: OrderStatus,
    /// Order of last update: of two orders updated at one time, the later is listed first.
    seq: u64,
    created: DateTime<Utc>,
    /// Last update, by the service's clock: the lists are sorted on it, newest first.
    updated: DateTime<Utc>,
    due: DateTime<Utc>,
    pub(super) lines: Vec<(String, i64)>,
    address: Address,
    pub(super) shipments: Vec<Shipment>,
    /// The order as JSON, rendered once per change: the simulator must not be what a benchmark
    /// of a thousand pages measures.
    rendered: Option<Bytes>,
    /// A test's change to the order as written (a line's `sku` made `null`, a zero date).
    pub(super) rewrite: Option<Rewrite>,
}

/// A change to an order's JSON as the simulator writes it.
pub type Rewrite = std::sync::Arc<dyn Fn(&mut Value) + Send + Sync>;

/// Every order of the simulated store.
pub(super) struct OrderBook {
    /// The simulator's own URL, for the orders' `_links`.
    pub(super) base_url: String,
    next_id: u64,
    next_seq: u64,
    orders: HashMap<String, SimOrder>,
    /// Per state, ids newest-updated first; an entry is dropped when its state changes.
    index: HashMap<OrderStatus, Vec<String>>,
    /// How often an index was sorted and an order rendered: the check that a page costs no
    /// sort and no rendering of its own beyond its ten orders' first.
    pub(super) index_builds: usize,
    pub(super) renders: usize,
    /// Changes to make after so many more `GET /orders`: how a test moves an order mid-walk.
    pub(super) later: Vec<(usize, OrderChange)>,
    /// `GET /orders` answered so far, and how many had been answered when each of `later` was
    /// made: a test tells a change made while a client paged from one made after.
    pub(super) answered: usize,
    pub(super) fired: Vec<usize>,
    /// Seconds the service's clock is ahead of the host's: the orders' dates are its.
    pub(super) clock_offset: i64,
    /// Whether a change of state is an update like any other (a new `updated_at`, page 1 of the
    /// new list). The document sorts by "last updated date" and says no more; a store whose
    /// state changes leave the date alone is the other reading.
    pub(super) state_changes_move: bool,
    pub(super) queries: VecDeque<OrdersQuery>,
    pub(super) without_status: usize,
    pub(super) providers: Vec<ShippingProvider>,
    pub(super) transitions: Vec<SimTransition>,
}

/// A refusal: status and message.
pub(super) type Refusal = (u16, String);

impl Default for OrderBook {
    /// An empty book with the providers a real store lists; ids look like the document's.
    fn default() -> OrderBook {
        OrderBook {
            base_url: "http://127.0.0.1".to_owned(),
            next_id: 100_000,
            next_seq: 0,
            orders: HashMap::new(),
            index: HashMap::new(),
            index_builds: 0,
            renders: 0,
            later: Vec::new(),
            answered: 0,
            fired: Vec::new(),
            clock_offset: 0,
            state_changes_move: true,
            queries: VecDeque::new(),
            without_status: 0,
            providers: default_providers(),
            transitions: Vec::new(),
        }
    }
}

impl OrderBook {
    /// The service's clock.
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.clock_offset)
    }

    pub(super) fn place(&mut self, order: NewOrder) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let now = self.now();
        let created = order.created_at.unwrap_or(now);
        let sim = SimOrder {
            status: order.status,
            seq: 0,
            created,
            updated: now,
            due: order
                .dispatch_due_at
                .unwrap_or(created + chrono::Duration::days(5)),
            lines: order.lines,
            address: order.address,
            shipments: Vec::new(),
            rendered: None,
            rewrite: None,
        };
        self.orders.insert(id.clone(), sim);
        self.update(&id, |_| ());
        if let (Some(at), Some(placed)) = (order.updated_at, self.orders.get_mut(&id)) {
            placed.updated = at;
        }
        id
    }

    /// Changes an order and moves it to the top of its list, as any update does; `false` when
    /// there is no such order.
    pub(super) fn update(&mut self, id: &str, change: impl FnOnce(&mut SimOrder)) -> bool {
        let now = self.now();
        let Some(order) = self.orders.get_mut(id) else {
            return false;
        };
        self.index.remove(&order.status);
        change(order);
        order.rendered = None;
        self.next_seq += 1;
        (order.seq, order.updated) = (self.next_seq, now);
        self.index.remove(&order.status);
        true
    }

    /// Changes an order's state (and what comes with it): an update, unless this store leaves
    /// the date alone on a change of state (see [`OrderBook::state_changes_move`]), in which
    /// case the order keeps its place in the order of the lists.
    pub(super) fn change_state(&mut self, id: &str, change: impl FnOnce(&mut SimOrder)) -> bool {
        if self.state_changes_move {
            return self.update(id, change);
        }
        let Some(order) = self.orders.get_mut(id) else {
            return false;
        };
        self.index.remove(&order.status);
        change(order);
        order.rendered = None;
        self.index.remove(&order.status);
        true
    }

    pub(super) fn remove(&mut self, id: &str) -> bool {
        let removed = self.orders.remove(id);
        if let Some(order) = &removed {
            self.index.remove(&order.status);
        }
        removed.is_some()
    }

    pub(super) fn status(&self, id: &str) -> Option<OrderStatus> {
        self.orders.get(id).map(|o| o.status.clone())
    }

    /// Remembers one `GET /orders`, answered or not, for tests to read.
    pub(super) fn record(&mut self, query: &OrdersQuery) {
        self.without_status += usize::from(query.status.is_none());
        if self.queries.len() == QUERY_LOG {
            self.queries.pop_front();
        }
        self.queries.push_back(query.clone());
    }

    /// Answers one `GET /orders`: `status` defaults to `PENDING`, as the service's does; then
    /// fires the touches that were waiting for this request.
    pub(super) fn list(
        &mut self,
        query: OrdersQuery,
        dialect: &Spoken,
    ) -> Result<Vec<u8>, Refusal> {
        let status = query
            .status
            .as_deref()
            .map_or(OrderStatus::Pending, OrderStatus::parse);
        // Like a PHP backend, anything but a positive page number is page 1.
        let page = query
            .page_number
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(1)
            .max(1);
        let answer = match status {
            OrderStatus::Other(name) => Err((400, format!("Unknown order status {name:?}"))),
            status => Ok(self.page(&status, page, dialect)),
        };
        self.answered += 1;
        self.fire_changes();
        answer
    }

    /// One page, assembled from the orders' cached JSON, in `dialect` (see [`dialect_page`]).
    fn page(&mut self, status: &OrderStatus, page: usize, dialect: &Spoken) -> Vec<u8> {
        if !self.index.contains_key(status) {
            // Newest updated first; of two updated in one instant, the later update first.
            let mut ids: Vec<(DateTime<Utc>, u64, &String)> = (self.orders.iter())
                .filter(|(_, o)| o.status == *status)
                .map(|(id, o)| (o.updated, o.seq, id))
                .collect();
            ids.sort_unstable_by(|a, b| b.cmp(a));
            let ids = ids.into_iter().map(|(_, _, id)| id.clone()).collect();
            self.index.insert(status.clone(), ids);
            self.index_builds += 1;
        }
        let ids = self.index.get(status).map_or(&[][..], Vec::as_slice);
        let total = ids.len();
        let start = (page - 1).saturating_mul(PAGE_SIZE).min(total);
        let end = start.saturating_add(PAGE_SIZE).min(total);
        let on_page = ids[start..end].to_vec();
        let orders: Vec<Bytes> = (on_page.iter())
            .filter_map(|id| self.rendered(id))
            .collect();
        let pages = total.div_ceil(PAGE_SIZE);
        let plain = dialect.get() == Dialect::documented();
        if plain {
            for point in ["numbers", "fields"] {
                dialect.answer(point);
            }
            if total == 0 {
                dialect.answer("empty_pages");
            }
            let mut out = b"{\"data\":[".to_vec();
            for (i, order) in orders.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(order);
            }
            let tail = format!(
                "],\"page_size\":{PAGE_SIZE},\"page_number\":{page},\"total_results\":{total},\"pages\":{pages}}}"
            );
            out.extend_from_slice(tail.as_bytes());
            return out;
        }
        dialect_page(&orders, page, total, pages, dialect)
    }

    /// An order's JSON, from the cache when it has not changed since last rendered.
    fn rendered(&mut self, id: &str) -> Option<Bytes> {
        if let Some(bytes) = self.orders.get(id)?.rendered.clone() {
            return Some(bytes);
        }
        let bytes = Bytes::from(self.render(id)?.to_string());
        self.renders += 1;
        self.orders.get_mut(id)?.rendered = Some(bytes.clone());
        Some(bytes)
    }

    /// The Standard Order structure, dates written as the document writes them.
    pub(super) fn render(&self, id: &str) -> Option<Value> {
        let o = self.orders.get(id)?;
        let base = &self.base_url;
        let lines: Vec<Value> = (o.lines.iter())
            .map(|(sku, quantity)| {
                json!({"description": format!("Product {sku}"), "price": 10.0, "product_id": sku,
                       "quantity": quantity, "sku": sku, "variant_data": [], "personalisations": []})
            })
            .collect();
        let total = 10.0 * o.lines.iter().map(|(_, q)| *q as f64).sum::<f64>();
        let shipments: Vec<Value> = (o.shipments.iter())
            .map(|s| {
                json!({"shipment_date": Date(s.date).to_string(),
                       "tracking_number": s.tracking_number, "shipping_provider_name": s.provider})
            })
            .collect();
        let mut order = json!({
            "id": id,
            "status": o.status,
            "_links": {
                "self": format!("{base}/order/{id}"),
                "manage": format!("{base}/mfadmin/sales_order_part/view/{id}"),
                "packing_slip": format!("{base}/order/{id}/packing-slip"),
            },
            "dates": {"created_at": store_date(o.created), "updated_at": store_date(o.updated),
                      "dispatch_due_at": store_date(o.due)},
            "payment_summary": {"price": total, "shipping": 0, "value_addition": 0, "discount": 0,
                                "credit": 0, "payment": total, "total": total},
            "lines": lines,
            "shipping": {"address": o.address,
                         "method": {"description": "Shipping - FREE standard shipping", "price": 0, "quantity": 1},
                         "instructions": ""},
            "shipments": shipments,
        });
        if let Some(rewrite) = &o.rewrite {
            rewrite(&mut order);
        }
        Some(order)
    }
}

/// A page in a dialect other than the documented one (slower: each order is parsed again, which
/// a benchmark in the documented dialect never pays). Where the document is silent: what an
/// empty list says in `pages`; counts written as strings; fields the document does not show
/// added, and optional ones (`_links`, `payment_summary`, a line's `description` and `price`)
/// left out.
fn dialect_page(
    orders: &[Bytes],
    page: usize,
    total: usize,
    pages: usize,
    dialect: &Spoken,
) -> Vec<u8> {
    let mut pages = json!(pages);
    if total == 0 {
        pages = match dialect.answer("empty_pages").empty_pages {
            EmptyPages::Zero => json!(0),
            EmptyPages::One => json!(1),
        };
    }
    let mut counts = [json!(PAGE_SIZE), json!(page), json!(total), pages];
    if dialect.answer("numbers").numbers == Numbers::Strings {
        for count in &mut counts {
            *count = json!(count.to_string());
        }
    }
    let loose = dialect.answer("fields").fields == Fields::Loose;
    let data: Vec<Value> = (orders.iter())
        .filter_map(|o| serde_json::from_slice::<Value>(o).ok())
        .map(|mut order| {
            if loose {
                loosen(&mut order);
            }
            order
        })
        .collect();
    let [page_size, page_number, total_results, pages] = counts;
    let mut body = json!({"data": data, "page_size": page_size, "page_number": page_number,
        "total_results": total_results, "pages": pages});
    if loose {
        body["_links"] = json!({"self": "/orders", "next": null});
    }
    body.to_string().into_bytes()
}

/// An order with fields the document does not name and without its optional ones.
fn loosen(order: &mut Value) {
    if let Some(fields) = order.as_object_mut() {
        fields.remove("_links");
        fields.remove("payment_summary");
        fields.insert("channel".to_owned(), json!("marketplace"));
        fields.insert("gift_message".to_owned(), Value::Null);
    }
    if let Some(lines) = order.get_mut("lines").and_then(Value::as_array_mut) {
        for line in lines.iter_mut().filter_map(Value::as_object_mut) {
            line.remove("description");
            line.remove("price");
            line.insert("variant_id".to_owned(), json!(7));
        }
    }
}

fn store_date(at: DateTime<Utc>) -> String {
    let at = FixedOffset::east_opt(STORE_OFFSET_SECS)
        .map_or_else(|| at.fixed_offset(), |store| at.with_timezone(&store));
    Date(at).to_string()
}

/// A change a test has the store make between two `GET /orders` (see
/// [`super::HardtofindSim::change_after`]): what happens to a client that is paging.
#[derive(Debug, Clone)]
pub enum OrderChange {
    /// The order is updated without changing (it moves to page 1 of its list).
    Touch(String),
    /// The order's lines are replaced.
    Lines(String, Vec<(String, i64)>),
    /// The order moves to another state, as its staff or the shopper move it.
    Status(String, OrderStatus),
    /// A new order is placed.
    Place(Box<NewOrder>),
}

/// A transition the simulator accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTransition {
    /// The order it moved.
    pub order_id: String,
    /// `process` or `ship`.
    pub action: String,
    /// For `ship`: the tracking number.
    pub tracking_number: Option<String>,
    /// For `ship`: the provider name.
    pub shipping_provider_name: Option<String>,
}

/// Providers as a real store lists them: the document's Royal Mail, and carriers an Australian
/// store ships with, some of which take the tracking number in their URL.
fn default_providers() -> Vec<ShippingProvider> {
    let provider = |id: &str, name: &str, url: &str, in_url: bool| ShippingProvider {
        id: id.into(),
        provider_name: name.into(),
        tracking_url: Some(url.into()),
        accepts_tracking_id_in_url: Some(in_url),
    };
    vec![
        provider(
            "8",
            "Royal Mail",
            "https://www.royalmail.com/track-your-item",
            false,
        ),
        provider(
            "1",
            "Australia Post",
            "https://auspost.com.au/mypost/track/#/details/",
            true,
        ),
        provider(
            "2",
            "StarTrack",
            "https://startrack.com.au/track/details/",
            true,
        ),
        provider(
            "5",
            "FedEx",
            "https://www.fedex.com/fedextrack/?trknbr=",
            true,
        ),
        provider(
            "6",
            "DHL Express",
            "https://www.dhl.com/au-en/home/tracking.html",
            false,
        ),
    ]
}
