//! The order feeds' part of a cycle: read every open order, look up those that left the lists,
//! and once every source is in, give the sources' drops to the reservations (the pure book in
//! [`crate::plan::reservations`]), record what changed, and publish what is reserved per SKU
//! for the targets to subtract.
//!
//! Targets wait for this step when feeds are configured: a plan made before the reservations
//! are known could push a stale total back over a sale.

use std::sync::{Arc, RwLock};

use futures_util::future::join_all;
use tokio::sync::watch;
use tracing::{error, warn};

use super::generation::Generation;
use super::per_sku::PerSku;
use super::sources::{SourceDone, SourceSlot};
use crate::http::Meter;
use crate::mapping::Mapping;
use crate::ops::report::OrdersDone;
use crate::ops::rfc3339;
use crate::plan::ledger::{Column, SkuTable};
use crate::plan::reservations::{Drop, Order, OrderLine, OrderState, Reservations};
use crate::services::Feed;
use crate::services::hardtofind::wire;
use crate::store::{self, Store, StoreError};

/// An order feed as the engine keeps it.
pub struct FeedSlot {
    /// `[orders.NAME]`.
    pub name: String,
    /// Its client.
    pub client: Feed,
    /// The states that hold stock.
    pub reserve: Vec<OrderState>,
    /// The SKU mapping: what its order lines' SKUs are.
    pub mapper: Arc<super::mapping::Mapper>,
}

/// The book and what it reserves, shared by the cycles.
pub struct Book {
    /// Every reservation.
    pub book: tokio::sync::Mutex<Reservations>,
    /// What is reserved per SKU id, published to the targets.
    pub reserved: watch::Sender<Arc<Column>>,
    /// The world's generation, which a change of what is reserved moves on.
    pub generation: Generation,
    /// The sources' changes a crash kept from the book (recorded with their snapshots, never
    /// taken in): given to it at the next cycle, before anything else.
    pub unabsorbed: std::sync::Mutex<Vec<store::Unabsorbed>>,
}

/// Runs the step (see the module documentation). A dry run reads nothing and changes nothing:
/// it plans with the reservations as recorded.
pub async fn orders_step(
    feeds: Arc<Vec<FeedSlot>>,
    book: Arc<Book>,
    sources: Arc<Vec<Arc<SourceSlot>>>,
    fetches: Vec<impl std::future::Future<Output = Arc<SourceDone>>>,
    per_sku: Arc<PerSku>,
    store: Store,
    dry_run: bool,
) -> Result<OrdersDone, StoreError> {
    let mut done = OrdersDone::default();
    if dry_run {
        join_all(fetches).await;
        return Ok(done);
    }
    // The mapping is built only when it may map a feed's order lines.
    let mapping = match feeds.first() {
        Some(feed) if feeds.iter().any(|f| feed.mapper.may_map(&f.name)) => {
            feed.mapper.mapping().await?
        }
        Some(_) | None => Arc::default(),
    };
    let listed = join_all(feeds.iter().map(|f| list_feed(f, &mapping))).await;
    // The lists only show open orders: one the book holds that left them is looked up before
    // anything of it is released; one that cannot be looked up is not passed on (absence is
    // no evidence). An order listed but not read whole was listed.
    let to_look_up: Vec<Vec<String>> = {
        let book = book.book.lock().await;
        feeds
            .iter()
            .zip(&listed)
            .map(|(feed, listed)| match listed {
                // An order missing from a read with a list that failed may be in that list.
                Ok(read) if read.failed.is_empty() => {
                    book.to_look_up_ids(&feed.name, &read.listed_ids())
                }
                Ok(_) | Err(_) => Vec::new(),
            })
            .collect()
    };
    let looked_up = join_all(
        feeds
            .iter()
            .zip(to_look_up)
            .map(|(f, ids)| look_up(f, ids, &mapping)),
    )
    .await;
    let sources_done = join_all(fetches).await;
    let names = per_sku.names();
    let replayed = std::mem::take(&mut *book.unabsorbed.lock().unwrap_or_else(|p| p.into_inner()));
    // The sources' drops are per SKU: a source that changed or failed, or changes a crash kept
    // from the book, need every SKU's name.
    if !replayed.is_empty()
        || sources_done
            .iter()
            .any(|d| !d.ok() || !d.changed.is_empty())
    {
        per_sku.ensure().await?;
    }
    let now = store::now_ms();
    let mut book_guard = book.book.lock().await;
    let reserved_before = reserved_by_sku(&book_guard);
    let mut absorbed: Vec<(i64, i64)> = Vec::new();
    if let Some(last) = replayed.last() {
        // As the cycle that recorded them would have: its drops, as of its fetch. Its orders
        // are read again just below, and back-filled from these drops if they are new.
        book_guard.absorb(last.at, &replayed_drops(&replayed, &names), |_| false);
        absorbed.extend(replayed.iter().map(|u| (u.source, u.at)));
    }
    absorbed.extend(sources_done.iter().filter_map(|done| done.unabsorbed));
    let mut reads = Vec::new();
    for ((feed, read), looked_up) in feeds.iter().zip(listed).zip(looked_up) {
        match read {
            Ok(read) => {
                warn_unreadable(&feed.name, &read.bad);
                let mut orders = read.to_observe(&book_guard, &feed.name);
                orders.extend(looked_up);
                if let Err(e) = book_guard.observe_orders(&feed.name, now, &orders) {
                    error!(feed = %feed.name, error = %e, "orders could not be recorded");
                }
                done.unreadable += read.bad.len();
                if !read.failed.is_empty() {
                    let error = read.failed.join("; ");
                    error!(feed = %feed.name, error = %error, "an order list could not be read; the orders of the other lists are used, and orders missing from them are left as they were until it reads again");
                    done.failed.push(feed.name.clone());
                    reads.push(store::FeedRead::failed(&feed.name, now, &error));
                    continue;
                }
                let bad = (read.bad.iter())
                    .map(|b| store::UnreadableOrder {
                        order_id: b.id.clone(),
                        reason: b.reason.clone(),
                    })
                    .collect();
                reads.push(store::FeedRead::complete(&feed.name, now, bad));
            }
            Err(e) => {
                error!(feed = %feed.name, error = %e, "order feed could not be read; its reservations stand as they were and it is read again at the next cycle");
                done.failed.push(feed.name.clone());
                reads.push(store::FeedRead::failed(&feed.name, now, &e.to_string()));
            }
        }
    }
    let (drops, blocked) = drops_of(&sources, &sources_done, &names);
    book_guard.absorb(now, &drops, |sku| blocked.contains(sku));
    let changes = book_guard.take_changes();
    done.summary = changes.summary;
    if changes.summary.settled_unseen > 0 {
        warn!(
            units = changes.summary.settled_unseen,
            "shipped orders were released after settle_after although no source showed their sale; if this keeps happening the source never shows these sales and release = \"status\" fits"
        );
    }
    done.open = book_guard.iter().filter(|r| r.outstanding() > 0).count();
    for r in book_guard.stuck(now) {
        done.stuck += 1;
        error!(feed = %r.feed, order = %r.order_id, sku = %r.sku, due = %r.dispatch_due_at.map(rfc3339).unwrap_or_default(), "order STUCK: open a week past its dispatch date; its reservation is kept until someone looks at it");
    }
    // What targets subtract changed: the world moves on (see `Generation`), and the new
    // reservations are published where the names are loaded (else they are computed with
    // them, when a target first needs them).
    let moved = reserved_by_sku(&book_guard) != reserved_before;
    let reserved = per_sku.is_loaded().then(|| {
        let names = names.read().unwrap_or_else(|p| p.into_inner());
        let mut column = Column::default();
        for (sku, quantity) in book_guard.reserved_by_sku() {
            match names.get(sku) {
                Some(id) => column.set(id, quantity),
                None => done.unknown_skus += 1,
            }
        }
        column
    });
    drop(book_guard);
    if done.unknown_skus > 0 {
        warn!(
            skus = done.unknown_skus,
            "open orders hold SKUs no source knows; they are listed in status"
        );
    }
    let turn = if moved {
        Some(book.generation.next().await)
    } else {
        None
    };
    let number = turn.as_ref().map(|t| t.number);
    if !changes.upserted.is_empty()
        || !changes.removed.is_empty()
        || !changes.unallotted.is_empty()
        || !absorbed.is_empty()
    {
        store
            .call(move |c| store::write_reservation_changes(c, &changes, &absorbed, number))
            .await?;
    }
    store
        .call(move |c| store::record_feed_reads(c, &reads))
        .await?;
    if let Some(reserved) = reserved
        && **book.reserved.borrow() != reserved
    {
        book.reserved.send_replace(Arc::new(reserved));
    }
    if let Some(turn) = turn {
        turn.published();
    }
    Ok(done)
}

/// What the book reserves per SKU, in SKU order: what the targets subtract.
fn reserved_by_sku(book: &Reservations) -> Vec<(String, i64)> {
    let mut reserved: Vec<(String, i64)> = book
        .reserved_by_sku()
        .map(|(sku, q)| (sku.to_owned(), q))
        .collect();
    reserved.sort_unstable();
    reserved
}

/// One feed's open lists as read: the orders read whole, and those that were not.
pub struct FeedListing {
    /// Orders read whole, in the book's terms.
    pub orders: Vec<Order>,
    /// Orders listed but not read whole.
    pub bad: Vec<BadOrder>,
    /// The lists that could not be read at all (the others were), with why.
    pub failed: Vec<String>,
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
    /// Every id the lists showed, read whole or not.
    fn listed_ids(&self) -> std::collections::BTreeSet<&str> {
        let whole = self.orders.iter().map(|o| o.id.as_str());
        whole
            .chain(self.bad.iter().filter_map(|b| b.id.as_deref()))
            .collect()
    }

    /// What the book is given: the orders read whole; of an order not read whole, nothing if
    /// the book already holds it (it holds what it held before: a line that no longer reads
    /// is no evidence that it was removed), else the lines that did read, so that a new order
    /// with one deleted variant still reserves the rest.
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

/// One WARN per order not read whole, naming it and what did not read.
fn warn_unreadable(feed: &str, bad: &[BadOrder]) {
    for b in bad {
        warn!(feed = %feed, order = %b.id.as_deref().unwrap_or("?"), error = %b.reason,
            "an order could not be read whole; it holds what it held before (a new one: the lines that could be read), and the rest of the feed is used");
    }
}

/// One feed's open orders: every page of each `reserve` state.
async fn list_feed(
    feed: &FeedSlot,
    mapping: &Mapping,
) -> Result<FeedListing, crate::services::ConnectorError> {
    let meter = Meter::default();
    let Feed::Hardtofind(client) = &feed.client;
    let states: Vec<wire::OrderStatus> = feed
        .reserve
        .iter()
        .map(|s| wire::OrderStatus::parse(s.as_str()))
        .collect();
    // Only what the reservations read is kept of each order: ten thousand whole orders
    // (addresses, links, descriptions) cost tens of MiB.
    let listing = client.open_order_summaries(&meter, &states).await?;
    let mut read = FeedListing {
        orders: Vec::with_capacity(listing.orders.len()),
        bad: Vec::new(),
        failed: listing.failed,
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

/// The orders `ids`, one by one; those that cannot be looked up are left out.
async fn look_up(feed: &FeedSlot, ids: Vec<String>, mapping: &Mapping) -> Vec<Order> {
    let meter = Meter::default();
    let Feed::Hardtofind(client) = &feed.client;
    let mut found = Vec::new();
    for id in ids {
        if let Ok(Some(order)) = client.order(&meter, &id).await {
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

/// The drops in changes a crash kept from the book, summed per SKU over sources and cycles
/// (a SKU that moved from one source to another did not drop).
fn replayed_drops(replayed: &[store::Unabsorbed], names: &RwLock<SkuTable>) -> Vec<Drop> {
    let names = names.read().unwrap_or_else(|p| p.into_inner());
    let mut delta: std::collections::BTreeMap<u32, i64> = Default::default();
    for u in replayed {
        for &(sku, change) in &u.changes {
            *delta.entry(sku).or_default() += change;
        }
    }
    delta
        .into_iter()
        .filter(|&(sku, d)| d < 0 && (sku as usize) < names.len() && !names.name(sku).is_empty())
        .map(|(sku, d)| Drop {
            sku: names.name(sku).to_owned(),
            quantity: -d,
        })
        .collect()
}

/// Each SKU's fall in its total over the sources this cycle, and the SKUs a failed source holds
/// (nothing is allotted for them while it fails).
fn drops_of(
    sources: &[Arc<SourceSlot>],
    done: &[Arc<SourceDone>],
    names: &RwLock<SkuTable>,
) -> (Vec<Drop>, std::collections::HashSet<String>) {
    let names = names.read().unwrap_or_else(|p| p.into_inner());
    let mut delta: std::collections::BTreeMap<u32, i64> = Default::default();
    let mut blocked = std::collections::HashSet::new();
    for (slot, done) in sources.iter().zip(done) {
        if done.ok() {
            for change in &done.changed {
                *delta.entry(change.sku).or_default() += change.new - change.old.unwrap_or(0);
            }
        } else {
            for (sku, _) in slot.snapshot.borrow().iter() {
                blocked.insert(names.name(sku).to_owned());
            }
        }
    }
    let drops = delta
        .into_iter()
        .filter(|&(_, d)| d < 0)
        .map(|(sku, d)| Drop {
            sku: names.name(sku).to_owned(),
            quantity: -d,
        })
        .collect();
    (drops, blocked)
}
