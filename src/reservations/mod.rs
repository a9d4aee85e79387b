//! Open orders reserve stock until a source of truth shows their sale, and only until then.
//!
//! A marketplace sells a unit; the warehouse counts it minutes or days later. Until it does, the
//! warehouse's total is stale by that unit, and pushing it would undo the sale and oversell: so
//! the order is subtracted (it is *reserved*). Once the warehouse has counted it, subtracting it
//! again would hide a unit that is there: so the reservation must end exactly when the source
//! shows the sale. This module is that bookkeeping, pure: no I/O, no SQLite and no clock (every
//! time is passed in, in milliseconds since the Unix epoch), so every rule is tested directly.
//!
//! A cycle uses a [`Reservations`] book like this:
//! 1. read every page of each feed's `reserve` states; [`Reservations::to_look_up`] names the
//!    orders the book holds that the lists no longer show, which the caller looks up one by one
//!    (absence is no evidence: an order it cannot look up is simply not passed on);
//! 2. [`Reservations::observe_orders`] with the listed and looked-up orders;
//! 3. after each complete fetch of the sources, [`Reservations::absorb`] with each SKU's fall in
//!    its total since the previous complete fetch, and which SKUs have a failing or stale source;
//! 4. [`Reservations::reserved`] for the planner; [`Reservations::take_changes`] for what to
//!    persist and the summary line.
//!
//! A drop in a total says how many units left, never whose. With `release = "absorb"` a drop is
//! given to the SKU's reservations oldest order first, which is a guess; the guess is put right
//! when an order leaves, so that a wrong guess never outlives it (see [`pool`]'s documentation):
//! a cancelled order hands back what it was given, and a shipped order, once settled, takes back
//! from the others what the source showed of it.

mod observe;
mod pool;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use pool::SkuBook;

/// A time: milliseconds since the Unix epoch.
pub type Millis = i64;

const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;

/// How far an order's `created_at` (the marketplace's clock) may be ahead of ours and still
/// count as before a fetch (our clock).
pub const CLOCK_SKEW_MS: Millis = 2 * MINUTE;

/// How far back a reservation seen for the first time looks for the drop that already counted
/// it. Unallotted drops older than this are forgotten.
pub const BACKFILL_WINDOW_MS: Millis = 48 * HOUR;

/// An order still open this long after its `dispatch_due_at` is STUCK.
pub const STUCK_AFTER_DUE_MS: Millis = 7 * 24 * HOUR;

/// The unallotted drops kept per SKU; beyond it the two oldest are merged (at the older time, so
/// that no order created between them can take the later one's units: a merge may cost a
/// back-fill, never cause a wrong one).
pub const MAX_UNALLOTTED_PER_SKU: usize = 16;

/// A Hardtofind order's state, as its orders document names it (plus `PENDING`, which
/// `GET /orders` answers when no `status` is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderState {
    /// Not fully paid yet.
    Pending,
    /// Paid, awaiting fulfilment.
    Ready,
    /// Picked up by the seller, being fulfilled.
    Processed,
    /// Shipped in full.
    Shipped,
    /// Returned in full (after shipping).
    Returned,
    /// Refunded to the shopper.
    Refunded,
    /// Cancelled by customer support.
    Cancelled,
}

impl OrderState {
    /// Every state, in the document's order.
    pub const ALL: [OrderState; 7] = [
        OrderState::Pending,
        OrderState::Ready,
        OrderState::Processed,
        OrderState::Shipped,
        OrderState::Returned,
        OrderState::Refunded,
        OrderState::Cancelled,
    ];

    /// The state named `text` (any case, surrounding blanks ignored); `None` for a name the
    /// document does not list, which the caller must treat as no answer rather than guess.
    pub fn parse(text: &str) -> Option<OrderState> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
    }

    /// The name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "PENDING",
            OrderState::Ready => "READY",
            OrderState::Processed => "PROCESSED",
            OrderState::Shipped => "SHIPPED",
            OrderState::Returned => "RETURNED",
            OrderState::Refunded => "REFUNDED",
            OrderState::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When a reservation ends (`[orders.NAME] release`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseMode {
    /// When the sources show the sale (their total falls), or the order is cancelled, or it
    /// shipped and the sources had `settle_after` to show it. For a source that counts sales on
    /// its own schedule.
    #[default]
    Absorb,
    /// When the order ships or reaches a final state: for a source that counts exactly at
    /// dispatch.
    Status,
    /// Never reserve: for a source that already subtracts this channel's orders.
    None,
}

/// One order feed's rules (`[orders.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRules {
    /// The states in which an order holds stock.
    pub reserve: Vec<OrderState>,
    /// When a reservation ends.
    pub release: ReleaseMode,
    /// How long a shipped order's unabsorbed remainder waits for the sources to show it.
    pub settle_after_ms: Millis,
}

impl Default for FeedRules {
    fn default() -> FeedRules {
        FeedRules {
            reserve: vec![OrderState::Ready, OrderState::Processed],
            release: ReleaseMode::Absorb,
            settle_after_ms: 30 * MINUTE,
        }
    }
}

/// What an order's state means for the stock it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In a `reserve` state: it holds stock.
    Holding,
    /// Shipped, returned, or moved on to any other state outside `reserve` without being
    /// cancelled: its goods have left or are leaving, so the sources should show it soon.
    Dispatched,
    /// Cancelled or refunded: nothing more will leave for it.
    Cancelled,
}

impl FeedRules {
    fn phase(&self, state: OrderState) -> Phase {
        match state {
            OrderState::Cancelled | OrderState::Refunded => Phase::Cancelled,
            OrderState::Shipped | OrderState::Returned => Phase::Dispatched,
            state if self.reserve.contains(&state) => Phase::Holding,
            _ => Phase::Dispatched,
        }
    }

    fn absorbs(&self) -> bool {
        self.release == ReleaseMode::Absorb
    }
}

/// One order as a feed answered it (the caller has parsed and mapped it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The feed's order id.
    pub id: String,
    /// Its state.
    pub state: OrderState,
    /// `dates.created_at`.
    pub created_at: Millis,
    /// `dates.dispatch_due_at`, if given.
    pub dispatch_due_at: Option<Millis>,
    /// Its lines, SKUs already mapped to canonical SKUs.
    pub lines: Vec<OrderLine>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// The canonical SKU.
    pub sku: String,
    /// Units ordered (a negative quantity counts as 0).
    pub quantity: i64,
}

impl Order {
    /// The order's quantity of each SKU, lines summed; SKUs with nothing ordered left out.
    fn quantities(&self) -> BTreeMap<&str, i64> {
        let mut sums = BTreeMap::new();
        for line in &self.lines {
            let sum: &mut i64 = sums.entry(line.sku.as_str()).or_default();
            *sum = sum.saturating_add(line.quantity.max(0));
        }
        sums.retain(|_, q| *q > 0);
        sums
    }
}

/// A fall in a SKU's total over the sources between two complete fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drop {
    /// The SKU.
    pub sku: String,
    /// How many units the total fell by (anything below 1 is ignored: rises never un-allot).
    pub quantity: i64,
}

/// Units of a drop given to one reservation, with the time of the fetch that showed them (kept
/// so that they can go back to orders that existed then, if the guess proves wrong).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allotment {
    /// When the fetch that showed the drop was made.
    pub at: Millis,
    /// Units.
    pub quantity: i64,
}

/// Units of a drop that no reservation took, kept [`BACKFILL_WINDOW_MS`] for orders seen later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastDrop {
    /// When the fetch that showed the drop was made.
    pub at: Millis,
    /// Units not allotted.
    pub quantity: i64,
}

/// What identifies a reservation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReservationKey {
    /// `[orders.NAME]`.
    pub feed: String,
    /// The feed's order id.
    pub order_id: String,
    /// The canonical SKU.
    pub sku: String,
}

/// One order's hold on one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// `[orders.NAME]`.
    pub feed: String,
    /// The feed's order id.
    pub order_id: String,
    /// The canonical SKU.
    pub sku: String,
    /// The order's quantity of this SKU, lines summed.
    pub quantity: i64,
    /// What the sources have shown of it so far, by fetch (`release = "absorb"` only).
    pub allotments: Vec<Allotment>,
    /// The order's state when last seen.
    pub state: OrderState,
    /// The order's `created_at`, as first seen (allotments were decided on it).
    pub created_at: Millis,
    /// The order's `dispatch_due_at`, if given.
    pub dispatch_due_at: Option<Millis>,
    /// When invsync first saw this reservation.
    pub first_seen_at: Millis,
    /// When invsync first saw the order outside its `reserve` states (not cancelled): the
    /// settle clock starts here.
    pub dispatched_seen_at: Option<Millis>,
}

impl Reservation {
    /// Units the sources have shown.
    pub fn allotted(&self) -> i64 {
        self.allotments
            .iter()
            .fold(0, |sum, a| sum.saturating_add(a.quantity))
    }

    /// Units still subtracted: ordered and not yet shown.
    pub fn outstanding(&self) -> i64 {
        self.quantity.saturating_sub(self.allotted()).max(0)
    }

    /// Its identity.
    pub fn key(&self) -> ReservationKey {
        ReservationKey {
            feed: self.feed.clone(),
            order_id: self.order_id.clone(),
            sku: self.sku.clone(),
        }
    }

    /// Whether the order is still open past its `dispatch_due_at` plus [`STUCK_AFTER_DUE_MS`].
    /// Such a reservation is never released by time: an operator must look.
    pub fn is_stuck(&self, now: Millis) -> bool {
        self.dispatched_seen_at.is_none()
            && self
                .dispatch_due_at
                .is_some_and(|due| now > due.saturating_add(STUCK_AFTER_DUE_MS))
    }
}

/// Counts for the cycle's summary line (and the WARN for settled units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Reservations seen for the first time.
    pub made: usize,
    /// Reservations the sources have now shown in full.
    pub absorbed: usize,
    /// Reservations ended without being shown in full: cancelled, settled, released by status,
    /// or a line removed from its order.
    pub released: usize,
    /// Units of fresh drops allotted.
    pub allotted: i64,
    /// Units matched against past drops for reservations seen for the first time (or grown).
    pub backfilled: i64,
    /// Units handed back by cancelled orders and cut lines, and given again.
    pub returned: i64,
    /// Units a settled order took back from other reservations the sources had shown it as.
    pub reclaimed: i64,
    /// Units of shipped orders released by `settle_after` though no drop showed them: the WARN.
    /// If this keeps happening the source never shows these sales, and `release = "status"` fits.
    pub settled_unseen: i64,
}

/// What changed since the last [`Reservations::take_changes`], so the caller persists only that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Reservations made or changed: write them as they are now.
    pub upserted: Vec<Reservation>,
    /// Reservations that ended: delete them.
    pub removed: Vec<ReservationKey>,
    /// SKUs whose unallotted drops changed, with all of them now (empty: delete the SKU's).
    pub unallotted: Vec<(String, Vec<PastDrop>)>,
    /// The counts for the summary line.
    pub summary: Summary,
}

/// An order feed that is not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("order feed {0:?} is not configured")]
pub struct UnknownFeed(pub String);

/// What changed this step, as keys (the values are read when the changes are taken).
#[derive(Debug, Default)]
struct Step {
    touched: BTreeSet<ReservationKey>,
    removed: BTreeSet<ReservationKey>,
    unallotted: BTreeSet<String>,
    summary: Summary,
}

impl Step {
    fn touch(&mut self, reservation: &Reservation) {
        self.touched.insert(reservation.key());
    }

    fn remove(&mut self, reservation: &Reservation) {
        let key = reservation.key();
        self.touched.remove(&key);
        self.removed.insert(key);
    }
}

/// Which SKUs each order holds, so an order's reservations are found without a scan.
type OrderIndex = BTreeMap<(String, String), BTreeSet<String>>;

/// Every reservation of every order feed, and every SKU's recent unallotted drops.
#[derive(Debug, Default)]
pub struct Reservations {
    feeds: BTreeMap<String, FeedRules>,
    skus: BTreeMap<String, SkuBook>,
    orders: OrderIndex,
    step: Step,
}

impl Reservations {
    /// An empty book for the configured feeds.
    pub fn new(feeds: impl IntoIterator<Item = (String, FeedRules)>) -> Reservations {
        Reservations {
            feeds: feeds.into_iter().collect(),
            ..Reservations::default()
        }
    }

    /// The book as persisted. Reservations of feeds that are not configured, or configured with
    /// `release = "none"`, are left out (the caller deletes them); of two with one key the last
    /// wins. Nothing restored counts as a change.
    pub fn restore(
        feeds: impl IntoIterator<Item = (String, FeedRules)>,
        reservations: impl IntoIterator<Item = Reservation>,
        unallotted: impl IntoIterator<Item = (String, PastDrop)>,
    ) -> Reservations {
        let mut book = Reservations::new(feeds);
        for reservation in reservations {
            let reserves = book
                .feeds
                .get(&reservation.feed)
                .is_some_and(|rules| rules.release != ReleaseMode::None);
            if reserves {
                book.put(reservation);
            }
        }
        for (sku, drop) in unallotted {
            let sku_book = book.skus.entry(sku.clone()).or_default();
            sku_book.keep_unallotted(&sku, drop.at, drop.quantity, &mut book.step);
        }
        book.step = Step::default();
        book
    }

    /// The ids of `feed`'s orders that the book holds and `listed` does not show: look each up
    /// (`GET /order/{id}`) before anything of it is released, and pass on what it answers.
    pub fn to_look_up(&self, feed: &str, listed: &[Order]) -> Vec<String> {
        let listed: BTreeSet<&str> = listed.iter().map(|o| o.id.as_str()).collect();
        self.orders
            .range((feed.to_owned(), String::new())..)
            .take_while(|((f, _), _)| f == feed)
            .map(|((_, id), _)| id)
            .filter(|id| !listed.contains(id.as_str()))
            .cloned()
            .collect()
    }

    /// What open orders hold of `sku` now: the planner's `reserved`.
    pub fn reserved(&self, sku: &str) -> i64 {
        self.skus.get(sku).map_or(0, SkuBook::reserved)
    }

    /// Every SKU with something reserved, and how much.
    pub fn reserved_by_sku(&self) -> impl Iterator<Item = (&str, i64)> {
        self.skus
            .iter()
            .map(|(sku, book)| (sku.as_str(), book.reserved()))
            .filter(|(_, q)| *q > 0)
    }

    /// The reservations of `sku`, oldest order first (`status --sku`).
    pub fn reservations_of(&self, sku: &str) -> &[Reservation] {
        self.skus.get(sku).map_or(&[], |book| &book.held)
    }

    /// Every reservation, by SKU, oldest order first within one.
    pub fn iter(&self) -> impl Iterator<Item = &Reservation> {
        self.skus.values().flat_map(|book| &book.held)
    }

    /// The drops of `sku` that no reservation took, oldest first.
    pub fn unallotted(&self, sku: &str) -> &[PastDrop] {
        self.skus.get(sku).map_or(&[], |book| &book.unallotted)
    }

    /// The STUCK reservations: an ERROR each cycle, never released by time.
    pub fn stuck(&self, now: Millis) -> impl Iterator<Item = &Reservation> {
        self.iter().filter(move |r| r.is_stuck(now))
    }

    /// Reads one complete fetch of the sources made at `fetch_at`: allots each SKU's `drops`
    /// (oldest order first, among orders created before the fetch plus [`CLOCK_SKEW_MS`]),
    /// keeps what no reservation took for later back-fills, settles shipped orders whose
    /// `settle_after` had passed by `fetch_at`, and forgets drops older than the back-fill
    /// window. Nothing of a SKU for which `blocked` is true (one of its sources is failing or
    /// stale) is allotted or settled.
    pub fn absorb(&mut self, fetch_at: Millis, drops: &[Drop], blocked: impl Fn(&str) -> bool) {
        let Reservations {
            feeds,
            skus,
            orders,
            step,
        } = self;
        for drop in drops {
            if drop.quantity > 0 && !blocked(&drop.sku) {
                let book = skus.entry(drop.sku.clone()).or_default();
                let left = book.allot(feeds, fetch_at, drop.quantity, step);
                step.summary.allotted = step.summary.allotted.saturating_add(drop.quantity - left);
                book.keep_unallotted(&drop.sku, fetch_at, left, step);
            }
        }
        for (sku, book) in skus.iter_mut() {
            if !blocked(sku) {
                book.settle_due(sku, feeds, orders, fetch_at, step);
            }
            book.prune(sku, fetch_at.saturating_sub(BACKFILL_WINDOW_MS), step);
        }
        skus.retain(|_, book| !book.is_empty());
    }

    /// What changed since the last call, and the counts for the summary line.
    pub fn take_changes(&mut self) -> Changes {
        let step = std::mem::take(&mut self.step);
        let upserted = step
            .touched
            .iter()
            .filter_map(|key| self.get(key).cloned())
            .collect();
        let removed = step
            .removed
            .into_iter()
            .filter(|key| self.get(key).is_none())
            .collect();
        let unallotted = step
            .unallotted
            .into_iter()
            .map(|sku| {
                let drops = self.unallotted(&sku).to_vec();
                (sku, drops)
            })
            .collect();
        Changes {
            upserted,
            removed,
            unallotted,
            summary: step.summary,
        }
    }

    /// The reservation with `key`, if held.
    pub fn get(&self, key: &ReservationKey) -> Option<&Reservation> {
        let book = self.skus.get(&key.sku)?;
        let i = book.position(&key.feed, &key.order_id)?;
        book.held.get(i)
    }

    /// Adds or replaces a reservation as it is (restoring).
    fn put(&mut self, reservation: Reservation) {
        let book = self.skus.entry(reservation.sku.clone()).or_default();
        if let Some(i) = book.position(&reservation.feed, &reservation.order_id) {
            book.remove(i, &mut self.orders, &mut self.step);
        }
        book.insert(reservation, &mut self.orders, &mut self.step);
    }
}
