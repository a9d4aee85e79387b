//! One order feed's part of a cycle: its open lists read (from where the last read left them,
//! see [`crate::services::hardtofind::incremental`], or in full), the orders that left them
//! looked up, and all of it given to the reservations' book, after which the memory of the
//! lists is kept for the next cycle. The service hands the orders over in the book's terms
//! ([`crate::services::hardtofind::reserving`]): the daemon knows none of its wire types.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::{debug, error, warn};

use crate::http::Meter;
use crate::mapping::Mapping;
use crate::plan::reservations::{Order, Reservations};
use crate::services::hardtofind::OrderState;
use crate::services::hardtofind::incremental::{FeedMemory, Walked};
use crate::services::hardtofind::reserving::BadOrder;
use crate::services::hardtofind::reserving::{BookListing, BookTerms, book_listing};
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

/// One feed's open lists as read, in the book's terms ([`BookListing`], whose fields it reads
/// as its own), and the mapping they were read under.
pub struct FeedListing {
    listing: BookListing,
    mapping: u64,
}

impl std::ops::Deref for FeedListing {
    type Target = BookListing;

    fn deref(&self) -> &BookListing {
        &self.listing
    }
}

impl std::ops::DerefMut for FeedListing {
    fn deref_mut(&mut self) -> &mut BookListing {
        &mut self.listing
    }
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
        (client.read_open_for_book(&meter, &feed.reserve, &walks.memory, full)).await?
    };
    Ok(FeedListing {
        listing: book_listing(open, terms(feed, mapping)),
        mapping: ask.mapping,
    })
}

/// How `feed`'s orders are put in the book's terms, read now.
fn terms<'a>(feed: &'a FeedSlot, mapping: &'a Mapping) -> BookTerms<'a> {
    BookTerms {
        feed: &feed.name,
        mapping,
        reserve: &feed.reserve,
        now: store::now_ms(),
    }
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
        let looked_up = (client.look_up_for_book(&meter, &id, terms(feed, mapping), memory)).await;
        if let Ok(Some(order)) = looked_up {
            if let Some(seen) = order.unmoved {
                warn!(feed = %feed.name, order = %order.id, error = %seen, "Hardtofind does not move an order to the top of its list when its state changes; this feed's order lists are read in full every cycle from now on");
            }
            found.extend(order.order);
        }
    }
    found
}

#[cfg(test)]
#[path = "feeds_tests.rs"]
mod tests;
