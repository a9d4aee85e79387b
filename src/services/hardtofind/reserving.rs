//! Hardtofind's orders in the reservations' terms ([`crate::plan::reservations`]): the open
//! lists of the `reserve` states read, each order's lines under their canonical SKUs, and an
//! order that left the lists looked up, so that the daemon hands the book orders without
//! knowing Hardtofind's wire types.

use super::OrderFeed;
use super::incremental::{FeedMemory, OpenOrders, Walked};
use super::order_state::OrderState;
use super::wire;
use crate::http::Meter;
use crate::mapping::Mapping;
use crate::plan::reservations::{Order, OrderLine, Phase};
use crate::services::ConnectorError;

/// One feed's open lists as read, in the book's terms.
pub struct BookListing {
    /// Orders read whole this time.
    pub orders: Vec<Order>,
    /// Orders listed but not read whole.
    pub bad: Vec<BadOrder>,
    /// Orders listed and not read again: unchanged since the book last saw them.
    pub unchanged: Vec<String>,
    /// The lists that could not be read at all (the others were), with why.
    pub failed: Vec<String>,
    /// How each list was read.
    pub walks: Vec<Walked>,
    /// `GET /orders` made.
    pub pages: u64,
    /// Whether a list was read in full.
    pub full: bool,
    /// What the next read goes on from, once the book has taken this one.
    pub next: FeedMemory,
}

/// An order of the lists that could not be read whole: one bad record, never the whole feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOrder {
    /// Its id, when that much could be read.
    pub id: Option<String>,
    /// What could not be read, in a few words.
    pub reason: String,
    /// What of it did read (its state and the lines that name a SKU and a whole quantity).
    pub readable: Option<Order>,
}

/// An order that left the lists, as looked up.
pub struct LookedUp {
    /// Its id.
    pub id: String,
    /// The book's view of it (`None`: it has no state the book knows).
    pub order: Option<Order>,
    /// Set when its date shows that the service does not move an order to the top of its list
    /// when its state changes (see [`FeedMemory::looked_up`]): why, for the operator.
    pub unmoved: Option<String>,
}

/// How one feed's orders are put in the book's terms.
#[derive(Clone, Copy)]
pub struct BookTerms<'a> {
    /// `[orders.NAME]`, whose order lines' SKUs the mapping names.
    pub feed: &'a str,
    /// The SKU mapping in force.
    pub mapping: &'a Mapping,
    /// The states in which an order holds stock (`[orders.NAME] reserve`).
    pub reserve: &'a [OrderState],
    /// When the orders were read: an order that does not say when it was created was created
    /// then.
    pub now: i64,
}

/// What an order in `state` means for the stock it holds, for a feed whose orders hold stock
/// in the `reserve` states: a cancelled or refunded one holds nothing more; a shipped or
/// returned one, or one moved on to any other state outside `reserve`, was dispatched.
pub fn phase(state: OrderState, reserve: &[OrderState]) -> Phase {
    match state {
        OrderState::Cancelled | OrderState::Refunded => Phase::Cancelled,
        OrderState::Shipped | OrderState::Returned => Phase::Dispatched,
        state if reserve.contains(&state) => Phase::Holding,
        _ => Phase::Dispatched,
    }
}

impl OrderFeed {
    /// The open orders of the `reserve` states, read from where `memory` left them, or in full
    /// for `full`'s reason (see [`OrderFeed::read_open_orders`]). Only what the reservations
    /// read is kept of each order.
    pub async fn read_open_for_book(
        &self,
        meter: &Meter,
        reserve: &[OrderState],
        memory: &FeedMemory,
        full: Option<&'static str>,
    ) -> Result<OpenOrders, ConnectorError> {
        let states: Vec<wire::OrderStatus> = reserve
            .iter()
            .map(|s| wire::OrderStatus::parse(s.as_str()))
            .collect();
        (self.read_open_orders(meter, &states, memory, full)).await
    }

    /// The order `id` in the book's terms; `Ok(None)` when there is no such order. It is shown
    /// to `memory`, which learns from it whether the service dates changes of state.
    pub async fn look_up_for_book(
        &self,
        meter: &Meter,
        id: &str,
        terms: BookTerms<'_>,
        memory: &mut FeedMemory,
    ) -> Result<Option<LookedUp>, ConnectorError> {
        let Some(order) = self.order(meter, id).await? else {
            return Ok(None);
        };
        let unmoved = memory.looked_up(&order.id, &order.status, order.dates.updated_at);
        Ok(Some(LookedUp {
            order: order_of(&wire::OrderSummary::from(&order), terms),
            id: order.id,
            unmoved,
        }))
    }
}

/// The lists as read, in the book's terms: an order read whole is given as it is; of one not
/// read whole, what did read.
pub fn book_listing(open: OpenOrders, terms: BookTerms<'_>) -> BookListing {
    let (pages, full) = (open.pages(), open.full());
    let listing = open.listing;
    let mut read = BookListing {
        orders: Vec::with_capacity(listing.orders.len()),
        bad: Vec::new(),
        unchanged: open.unchanged,
        failed: listing.failed,
        walks: open.walks,
        pages,
        full,
        next: open.next,
    };
    for order in &listing.orders {
        let mapped = order_of(order, terms);
        if order.unreadable.is_empty() {
            read.orders.extend(mapped);
        } else {
            read.bad.push(BadOrder {
                id: Some(order.id.clone()),
                reason: order.unreadable.join("; "),
                readable: mapped,
            });
        }
    }
    read.bad
        .extend(listing.unreadable.into_iter().map(|u| BadOrder {
            id: u.id,
            reason: format!("{}: {}", u.place, u.reason),
            readable: None,
        }));
    read
}

/// The book's view of a wire order, its lines under their canonical SKUs (a key in a mapping
/// conflict keeps its own name: no source knows it, so `status` lists it); an order without a
/// state the book knows is not passed on.
fn order_of(order: &wire::OrderSummary, terms: BookTerms<'_>) -> Option<Order> {
    let BookTerms {
        feed,
        mapping,
        reserve,
        now,
    } = terms;
    let state = OrderState::parse(order.status.as_str())?;
    let ms = |d: &Option<wire::Date>| d.as_ref().map(|d| d.0.timestamp_millis());
    Some(Order {
        id: order.id.clone(),
        state: state.as_str().to_owned(),
        phase: phase(state, reserve),
        created_at: ms(&order.dates.created_at).unwrap_or(now),
        dispatch_due_at: ms(&order.dates.dispatch_due_at),
        lines: order
            .lines
            .iter()
            .map(|l| OrderLine {
                sku: mapping.canonical(feed, &l.sku).unwrap_or(&l.sku).to_owned(),
                quantity: l.quantity.0,
            })
            .collect(),
    })
}
