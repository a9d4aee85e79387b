//! The relay's read of its feed's `READY` list, in proportion to what changed: the same
//! incremental reader as the order feeds' ([`crate::services::hardtofind::incremental`]: from
//! page 1 down to the last complete read's mark less the margin, checked against
//! `total_results`, the tops of the other lists for orders that left, in full when anything is
//! in doubt), with a memory of its own ([`Memory`]). Read in full on the first step after a
//! start or a reload (the memory is the engine's), hourly, on a full sync's cycle and under a
//! new mapping (which may make an order read before a dropship order now).
//!
//! Why a memory of its own rather than what the `from` feed read earlier in the same cycle:
//! the feed keeps of each order only what the reservations read (its id, state, dates, lines'
//! SKU and quantity), while the relay places the order with its address and prices; the feed
//! need not reserve `READY` at all (`reserve` is the feed's own); the relay runs when the feed's
//! read failed; and the feed's memory moves on when the book takes its read, not when the
//! relay has recorded what it saw. Its own walk costs one more page on a quiet cycle.
//!
//! An order the walk does not read again is unchanged since it was last read, so the relay
//! keeps the whole orders of its open records ([`Memory`]'s `orders`) and goes on from them.
//! One it does not keep is looked up by id, as every open record missing from the list always
//! was. Before an order known only from memory is placed, it is read again by id (see
//! [`Run::fresh`]): placing moves money, and the walk's one blind spot (a service that does
//! not date a change of state, with an order leaving and another coming back in one cycle) is
//! closed only by the hourly full read.

use std::collections::{HashMap, HashSet};

use tracing::{debug, error, warn};

use super::step::Run;
use super::{Record, decide};
use crate::http::Meter;
use crate::services::ConnectorError;
use crate::services::hardtofind::OrderFeed;
use crate::services::hardtofind::incremental::{FeedMemory, Walked};
use crate::services::hardtofind::listed::{Unreadable, WholeOrder};
use crate::services::hardtofind::wire::{Order, OrderStatus};
use crate::store::{self, StoreError};

/// What the relay's next read of `READY` goes on from. Empty at first: the first read is full.
#[derive(Debug, Default)]
pub struct Memory {
    /// The list as the last read left it.
    lists: FeedMemory<WholeOrder>,
    /// The mapping's version it was read under.
    mapping: Option<u64>,
    /// The whole orders of the open records that the list showed, as last read.
    orders: HashMap<String, Order>,
}

/// What this cycle asks of the read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadAs {
    /// A full sync's cycle: the list is read in full.
    pub full_sync: bool,
    /// The SKU mapping's version (a new one decides anew which orders are dropship orders).
    pub mapping: u64,
}

/// How the list was read, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Walk {
    /// Read in full.
    pub full: bool,
    /// `GET /orders` made.
    pub pages: u64,
}

impl Walk {
    /// `walk=incremental pages=1`, as the reservations' field says it.
    pub fn field(&self) -> String {
        let walk = if self.full { "full" } else { "incremental" };
        format!("walk={walk} pages={}", self.pages)
    }
}

/// One read of the `READY` list (see [`Memory::read`]).
pub struct Ready {
    /// The whole orders: read now, or unchanged and kept from the last read.
    pub orders: HashMap<String, Order>,
    /// Those of `orders` kept from the last read, not read now.
    pub kept: HashSet<String>,
    /// Orders listed that do not read whole, with why: not to be acted on until they do.
    pub not_whole: Vec<(String, String)>,
    /// Orders listed that could not be read at all (not even their id).
    pub unreadable: Vec<Unreadable>,
    /// How the list was read.
    pub walks: Vec<Walked>,
    /// `GET /orders` made.
    pub walk: Walk,
    /// What to remember once the read is taken in ([`Memory::keep`]).
    pub next: Next,
}

/// What the next read goes on from, once this one is taken in.
pub struct Next {
    lists: FeedMemory<WholeOrder>,
    mapping: u64,
    /// Every id the list showed, read again or not.
    listed: HashSet<String>,
}

impl Next {
    /// Every id the list showed, whole or not, read again or not.
    pub fn listed(&self) -> &HashSet<String> {
        &self.listed
    }
}

impl Memory {
    /// The `READY` list of `feed`, from where the last read left it, or in full (see the
    /// module documentation). The memory moves on only at [`Memory::keep`].
    pub async fn read(
        &self,
        feed: &OrderFeed,
        meter: &Meter,
        ask: ReadAs,
    ) -> Result<Ready, ConnectorError> {
        let full = if ask.full_sync {
            Some("full sync")
        } else if self.mapping.is_some_and(|m| m != ask.mapping) {
            Some("new mapping")
        } else {
            None
        };
        let open = (feed.read_open_orders(meter, &[OrderStatus::Ready], &self.lists, full)).await?;
        let walk = Walk {
            full: open.full(),
            pages: open.pages(),
        };
        let mut ready = Ready {
            orders: HashMap::new(),
            kept: HashSet::new(),
            not_whole: Vec::new(),
            // (`listing.failed` is empty: with one list, a list that fails fails the read.)
            unreadable: open.listing.unreadable,
            walks: open.walks,
            walk,
            next: Next {
                lists: open.next,
                mapping: ask.mapping,
                listed: HashSet::new(),
            },
        };
        for order in open.listing.orders {
            match order {
                WholeOrder::Whole(order) => {
                    ready.next.listed.insert(order.id.clone());
                    ready.orders.insert(order.id.clone(), *order);
                }
                WholeOrder::Not { summary, reason } => {
                    ready.next.listed.insert(summary.id.clone());
                    ready.not_whole.push((summary.id, reason));
                }
            }
        }
        for id in open.unchanged {
            if let Some(order) = self.orders.get(&id) {
                ready.orders.insert(id.clone(), order.clone());
                ready.kept.insert(id.clone());
            }
            ready.next.listed.insert(id);
        }
        Ok(ready)
    }

    /// Keeps what the next read goes on from: the list's memory, and the whole orders of
    /// `orders` that the list showed and that `open` says are open records'.
    pub fn keep(
        &mut self,
        next: Next,
        orders: &HashMap<String, Order>,
        open: impl Fn(&str) -> bool,
    ) {
        self.orders = (orders.iter())
            .filter(|(id, _)| next.listed.contains(*id) && open(id))
            .map(|(id, order)| (id.clone(), order.clone()))
            .collect();
        self.lists = next.lists;
        self.mapping = Some(next.mapping);
    }
}

impl Run<'_> {
    /// The `READY` list read (see [`Memory::read`]), what did not read said, its whole orders
    /// put in `orders` (`self.kept` names those known from memory only); `None` when it could
    /// not be read (new orders wait for the next cycle; nothing is lost).
    async fn read_ready(&mut self, orders: &mut HashMap<String, Order>) -> Option<Next> {
        let feed_name = self.clients.feed_name;
        let read = self
            .memory
            .read(self.clients.feed, &self.meter, self.ask)
            .await;
        let ready = match read {
            Ok(ready) => ready,
            Err(e) => {
                error!(feed = feed_name, error = %e, "relay: READY orders could not be read; new orders wait for the next cycle");
                return None;
            }
        };
        self.walk = Some(ready.walk);
        let lists: Vec<String> = ready.walks.iter().map(Walked::to_string).collect();
        debug!(feed = feed_name, walk = if ready.walk.full { "full" } else { "incremental" }, pages = ready.walk.pages,
            lists = %lists.join(" "), kept = ready.kept.len(), "relay: READY orders read");
        for bad in &ready.unreadable {
            warn!(feed = feed_name, order = %bad.id.as_deref().unwrap_or("?"), place = %bad.place, error = %bad.reason, "relay: a READY order could not be read whole; it is not placed until it can be")
        }
        for (id, reason) in &ready.not_whole {
            warn!(feed = feed_name, order = %id, place = "the READY list", error = %reason, "relay: a READY order could not be read whole; it is not placed until it can be")
        }
        orders.extend(ready.orders);
        self.kept = ready.kept;
        Some(ready.next)
    }

    /// Takes in a look-up of an order the list no longer shows: the memory learns from it
    /// whether the service dates changes of state (see [`FeedMemory::looked_up`]).
    fn looked_up(&self, next: Option<&mut Next>, order: &Order) {
        let Some(next) = next else { return };
        let seen = (next.lists).looked_up(&order.id, &order.status, order.dates.updated_at);
        if let Some(seen) = seen {
            warn!(feed = self.clients.feed_name, order = %order.id, error = %seen, "Hardtofind does not move an order to the top of its list when its state changes; the relay's READY list is read in full every cycle from now on");
        }
    }

    /// Order `id` as Hardtofind has it now, read by id before an order this cycle knows only
    /// from memory is placed (see the module documentation); `None` when it cannot be read
    /// (the record waits for the next cycle).
    pub(super) async fn fresh(&mut self, record: &Record) -> Option<Order> {
        self.kept.remove(&record.order_id);
        match self.clients.feed.order(&self.meter, &record.order_id).await {
            Ok(Some(fresh)) => Some(fresh),
            Ok(None) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, "relay: Hardtofind has no such order now; it is left as it is");
                None
            }
            Err(e) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: the order could not be read before placing it; tried again next cycle");
                None
            }
        }
    }

    /// The `READY` orders (new dropship ones recorded as `seen`) and, for every open record
    /// not among them, its order looked up by id. An order that cannot be read is left for the
    /// next cycle: absence is no evidence.
    pub(super) async fn read_orders(&mut self) -> Result<HashMap<String, Order>, StoreError> {
        let mut orders: HashMap<String, Order> = HashMap::new();
        let mut next = self.read_ready(&mut orders).await;
        let known: HashSet<String> = self
            .store
            .call(|c| store::relay_records(c))
            .await?
            .into_iter()
            .map(|r| r.order_id)
            .collect();
        let now = store::now_ms();
        let key_of = self.clients.supplier_key;
        let mut new: Vec<Record> = orders
            .iter()
            .filter(|(id, order)| !known.contains(*id) && decide::is_dropship(order, key_of))
            .map(|(id, _)| Record::seen(id, self.clients.feed_name, now))
            .collect();
        new.sort_by(|a, b| (a.order_id.len(), &a.order_id).cmp(&(b.order_id.len(), &b.order_id)));
        if !new.is_empty() {
            let rows = new.clone();
            self.store
                .call(move |c| store::relay_insert_seen(c, &rows))
                .await?;
            for r in &new {
                tracing::info!(order = %r.order_id, custom_order_id = %r.custom_order_id, state = "seen", "relay: order seen");
            }
        }
        let open = self.store.call(|c| store::relay_records(c)).await?;
        for record in open.iter().filter(|r| !r.state.is_final()) {
            if orders.contains_key(&record.order_id) {
                continue;
            }
            match self.clients.feed.order(&self.meter, &record.order_id).await {
                Ok(Some(order)) => {
                    self.looked_up(next.as_mut(), &order);
                    orders.insert(order.id.clone(), order);
                }
                Ok(None) => {
                    warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, "relay: Hardtofind has no such order now; it is left as it is")
                }
                Err(e) => {
                    warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: the order could not be read; tried again next cycle")
                }
            }
        }
        // The new orders are recorded: the next read may go on from this one.
        if let Some(next) = next {
            let open: HashSet<&str> = (open.iter())
                .filter(|r| !r.state.is_final())
                .map(|r| r.order_id.as_str())
                .collect();
            self.memory.keep(next, &orders, |id| open.contains(id));
        }
        Ok(orders)
    }
}
