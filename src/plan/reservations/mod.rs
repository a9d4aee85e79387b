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
//! when an order leaves, so that a wrong guess never outlives it (see the `pool` module):
//! a cancelled order hands back what it was given, and a shipped order, once settled, takes back
//! from the others what the source showed of it.

mod input;
mod observe;
mod pool;
mod record;

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use input::{Drop, FeedRules, Order, OrderLine, Phase, ReleaseMode};
pub use record::{Changes, Reservation, ReservationKey, Shown, Summary};

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

/// Each order's reservations: by feed and order id, each SKU's with its `created_at`, which
/// with them finds it in its SKU's age-ordered list without a scan (a best seller may have
/// thousands of open orders).
type OrderIndex = BTreeMap<(String, String), BTreeMap<String, Millis>>;

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
        unallotted: impl IntoIterator<Item = (String, Shown)>,
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

    /// The ids of `feed`'s orders that the book holds as open and `listed` does not show: look
    /// each up (`GET /order/{id}`) before anything of it is released, and pass on what it
    /// answers. An order already seen shipped is not asked about again while it settles.
    pub fn to_look_up(&self, feed: &str, listed: &[Order]) -> Vec<String> {
        let listed: BTreeSet<&str> = listed.iter().map(|o| o.id.as_str()).collect();
        self.to_look_up_ids(feed, &listed)
    }

    /// [`Reservations::to_look_up`], given the ids the lists showed (an order listed but not
    /// read whole was listed: it is not looked up).
    pub fn to_look_up_ids(&self, feed: &str, listed: &BTreeSet<&str>) -> Vec<String> {
        self.orders
            .range((feed.to_owned(), String::new())..)
            .take_while(|((f, _), _)| f == feed)
            .filter(|((_, id), _)| !listed.contains(id.as_str()))
            .filter(|((_, id), skus)| {
                skus.iter().any(|(sku, &created_at)| {
                    self.skus
                        .get(sku)
                        .and_then(|book| {
                            let i = book.position(feed, id, created_at)?;
                            book.held.get(i)
                        })
                        .is_some_and(|r| r.dispatched_seen_at.is_none())
                })
            })
            .map(|((_, id), _)| id.clone())
            .collect()
    }

    /// Whether order `id` of `feed` holds (or held and still tracks) a reservation.
    pub fn knows_order(&self, feed: &str, id: &str) -> bool {
        self.orders.contains_key(&(feed.to_owned(), id.to_owned()))
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
    pub fn unallotted(&self, sku: &str) -> &[Shown] {
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
        let order = (key.feed.clone(), key.order_id.clone());
        let created_at = *self.orders.get(&order)?.get(&key.sku)?;
        let book = self.skus.get(&key.sku)?;
        let i = book.position(&key.feed, &key.order_id, created_at)?;
        book.held.get(i)
    }

    /// Adds or replaces a reservation as it is (restoring).
    fn put(&mut self, reservation: Reservation) {
        let order = (reservation.feed.clone(), reservation.order_id.clone());
        let held = self
            .orders
            .get(&order)
            .and_then(|skus| skus.get(&reservation.sku));
        let book = self.skus.entry(reservation.sku.clone()).or_default();
        if let Some(&created_at) = held
            && let Some(i) = book.position(&reservation.feed, &reservation.order_id, created_at)
        {
            book.remove(i, &mut self.orders, &mut self.step);
        }
        book.insert(reservation, &mut self.orders, &mut self.step);
    }
}
