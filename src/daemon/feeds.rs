//! One order feed's part of a cycle: its open lists read (from where the last read left them,
//! see [`crate::services::hardtofind::incremental`], or in full), the orders that left them
//! looked up, and all of it given to the reservations' book, after which the memory of the
//! lists is kept for the next cycle.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::{debug, error, warn};

use crate::http::Meter;
use crate::mapping::Mapping;
use crate::plan::reservations::{Order, OrderLine, OrderState, Reservations};
use crate::services::hardtofind::incremental::{FeedMemory, Walked};
use crate::services::hardtofind::wire;
use crate::services::{ConnectorError, Feed};
use crate::store;

/// An order feed as the engine keeps it.
pub struct FeedSlot {
    /// `[orders.NAME]`.
    pub name: String,
    /// Its client.
    pub client: Feed,
    /// The states that hold stock.
    pub reserve: Vec<OrderState>,
    /// The SKU mapping: what its order lines' SKUs are.
    pub mapper: Arc<crate::mapper::Mapper>,
    /// What its next read goes on from.
    pub walks: tokio::sync::Mutex<Walks>,
}

/// What a feed's next read goes on from: the memory of its lists, and the mapping they were
/// read under (under another, every order is read again, so that its lines are mapped anew).
#[derive(Debug, Default)]
pub struct Walks {
    memory: FeedMemory,
    mapping: Option<u64>,
}

/// What this cycle asks of the reads.
#[derive(Debug, Clone, Copy)]
pub struct ReadAs {
    /// A full sync: every list is read in full.
    pub full_sync: bool,
    /// The mapping's version (see [`crate::mapper::Mapper::version`]).
    pub mapping: u64,
}

/// One feed's open lists as read: the orders read whole, and those that were not.
pub struct FeedListing {
    /// Orders read whole this time, in the book's terms.
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
    next: FeedMemory,
    mapping: u64,
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

impl FeedListing {
    /// Every id the lists showed, read whole or not, read again or not.
    fn listed_ids(&self) -> BTreeSet<&str> {
        let whole = self.orders.iter().map(|o| o.id.as_str());
        (whole.chain(self.bad.iter().filter_map(|b| b.id.as_deref())))
            .chain(self.unchanged.iter().map(String::as_str))
            .collect()
    }

    /// What the book is given: the orders read whole; of an order not read whole, nothing if
    /// the book already holds it (it holds what it held before: a line that no longer reads
    /// is no evidence that it was removed), else the lines that did read, so that a new order
    /// with one deleted variant still reserves the rest. An order not read again is not given:
    /// the book holds it as it was, which is as it is.
    pub fn to_observe(&self, book: &Reservations, feed: &str) -> Vec<Order> {
        let new_and_readable = (self.bad.iter())
            .filter(|b| {
                b.id.as_deref()
                    .is_some_and(|id| !book.knows_order(feed, id))
            })
            .filter_map(|b| b.readable.clone());
        self.orders
            .iter()
            .cloned()
            .chain(new_and_readable)
            .collect()
    }
}

/// One feed's open lists, and the orders the book holds that left them, looked up (`Err`: the
/// lists could not be read; nothing is looked up).
pub async fn read_feed(
    feed: &FeedSlot,
    mapping: &Mapping,
    ask: ReadAs,
    book: &tokio::sync::Mutex<Reservations>,
) -> (Result<FeedListing, ConnectorError>, Vec<Order>) {
    let mut read = match list_feed(feed, mapping, ask).await {
        Ok(read) => read,
        Err(e) => return (Err(e), Vec::new()),
    };
    // The lists only show open orders: one the book holds that left them is looked up before
    // anything of it is released; one that cannot be looked up is not passed on (absence is
    // no evidence). An order missing from a read with a list that failed may be in that list.
    let ids = if read.failed.is_empty() {
        book.lock()
            .await
            .to_look_up_ids(&feed.name, &read.listed_ids())
    } else {
        Vec::new()
    };
    let looked_up = look_up(feed, ids, mapping, &mut read.next).await;
    (Ok(read), looked_up)
}

/// Gives one feed's read to the book, and keeps the memory of its lists once the book has it
/// (a read the book did not take is read again from the memory before it).
pub async fn take_in(
    feed: &FeedSlot,
    book: &mut Reservations,
    read: &mut FeedListing,
    looked_up: Vec<Order>,
    now: i64,
) {
    let lists: Vec<String> = read.walks.iter().map(Walked::to_string).collect();
    debug!(feed = %feed.name, walk = if read.full { "full" } else { "incremental" }, pages = read.pages,
        lists = %lists.join(" "), unchanged = read.unchanged.len(), "order lists read");
    warn_unreadable(&feed.name, &read.bad);
    let mut orders = read.to_observe(book, &feed.name);
    orders.extend(looked_up);
    match book.observe_orders(&feed.name, now, &orders) {
        Ok(()) => {
            let mut walks = feed.walks.lock().await;
            walks.memory = std::mem::take(&mut read.next);
            walks.mapping = Some(read.mapping);
        }
        Err(e) => error!(feed = %feed.name, error = %e, "orders could not be recorded"),
    }
}

/// One WARN per order not read whole, naming it and what did not read.
fn warn_unreadable(feed: &str, bad: &[BadOrder]) {
    for b in bad {
        warn!(feed = %feed, order = %b.id.as_deref().unwrap_or("?"), error = %b.reason,
            "an order could not be read whole; it holds what it held before (a new one: the lines that could be read), and the rest of the feed is used");
    }
}

/// One feed's open orders: each `reserve` state's list, from where the last read left it.
async fn list_feed(
    feed: &FeedSlot,
    mapping: &Mapping,
    ask: ReadAs,
) -> Result<FeedListing, ConnectorError> {
    let meter = Meter::default();
    let Feed::Hardtofind(client) = &feed.client;
    let states: Vec<wire::OrderStatus> = feed
        .reserve
        .iter()
        .map(|s| wire::OrderStatus::parse(s.as_str()))
        .collect();
    let open = {
        let walks = feed.walks.lock().await;
        let full = if ask.full_sync {
            Some("full sync")
        } else if walks.mapping.is_some_and(|m| m != ask.mapping) {
            Some("new mapping")
        } else {
            None
        };
        // Only what the reservations read is kept of each order: ten thousand whole orders
        // (addresses, links, descriptions) cost tens of MiB.
        (client.read_open_orders(&meter, &states, &walks.memory, full)).await?
    };
    let (pages, full) = (open.pages(), open.full());
    let listing = open.listing;
    let mut read = FeedListing {
        orders: Vec::with_capacity(listing.orders.len()),
        bad: Vec::new(),
        unchanged: open.unchanged,
        failed: listing.failed,
        walks: open.walks,
        pages,
        full,
        next: open.next,
        mapping: ask.mapping,
    };
    for order in &listing.orders {
        let mapped = order_of(order, &feed.name, mapping);
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
    Ok(read)
}

/// The orders `ids`, one by one; those that cannot be looked up are left out. Each is shown to
/// the memory of the lists, which learns from it whether the service dates changes of state.
async fn look_up(
    feed: &FeedSlot,
    ids: Vec<String>,
    mapping: &Mapping,
    memory: &mut FeedMemory,
) -> Vec<Order> {
    let meter = Meter::default();
    let Feed::Hardtofind(client) = &feed.client;
    let mut found = Vec::new();
    for id in ids {
        if let Ok(Some(order)) = client.order(&meter, &id).await {
            if let Some(seen) = memory.looked_up(&order.id, &order.status, order.dates.updated_at) {
                warn!(feed = %feed.name, order = %order.id, error = %seen, "Hardtofind does not move an order to the top of its list when its state changes; this feed's order lists are read in full every cycle from now on");
            }
            found.extend(order_of(
                &wire::OrderSummary::from(&order),
                &feed.name,
                mapping,
            ));
        }
    }
    found
}

/// The book's view of a wire order, its lines under their canonical SKUs (a key in a mapping
/// conflict keeps its own name: no source knows it, so `status` lists it); an order without a
/// state the book knows is not passed on.
fn order_of(order: &wire::OrderSummary, feed: &str, mapping: &Mapping) -> Option<Order> {
    let state = OrderState::parse(order.status.as_str())?;
    let ms = |d: &Option<wire::Date>| d.as_ref().map(|d| d.0.timestamp_millis());
    Some(Order {
        id: order.id.clone(),
        state,
        created_at: ms(&order.dates.created_at).unwrap_or_else(store::now_ms),
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

#[cfg(test)]
#[path = "feeds_tests.rs"]
mod tests;
