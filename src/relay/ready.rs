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
//! `Run::fresh` in `read.rs`): placing moves money, and the walk's one blind spot (a service that does
//! not date a change of state, with an order leaving and another coming back in one cycle) is
//! closed only by the hourly full read.

use std::collections::{HashMap, HashSet};

use crate::http::Meter;
use crate::services::ConnectorError;
use crate::services::hardtofind::OrderFeed;
use crate::services::hardtofind::incremental::{FeedMemory, Walked};
use crate::services::hardtofind::listed::{Unreadable, WholeOrder};
use crate::services::hardtofind::wire::{Order, OrderStatus};

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

    /// Takes in a look-up of an order the list no longer shows (see
    /// [`FeedMemory::looked_up`]): what it says when the service does not date changes of state.
    pub fn looked_up(&mut self, order: &Order) -> Option<String> {
        (self.lists).looked_up(&order.id, &order.status, order.dates.updated_at)
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
