//! One SKU's reservations and the drops its sources showed: who is given which units.
//!
//! A drop is given to the oldest reservations first; what none can take is kept as an
//! *unallotted* drop, so that an order the warehouse counted before invsync saw it can claim it
//! later (a back-fill). Both are guesses about whose sale a drop was, and the sum over a SKU
//! matters more than any one order: the rules below keep "units shown" attached to orders that
//! still hold stock, so that the total subtracted is neither more nor less than what the
//! sources have not shown yet.
//! - A cancelled order that never shipped sold nothing the source could show: what it was
//!   given belonged to other orders, so it goes back to them (or back to the unallotted drops).
//! - A line cut below what was given hands back the excess the same way.
//! - A shipped order has certainly left the warehouse. Once settled, it must have been shown in
//!   full: if it was given less, the rest of its units were given to other orders (oldest first
//!   guessed wrong), and it takes them back from the orders still held (or from the unallotted
//!   drops). Only what it finds nowhere is released unseen (the WARN).
//!
//! None of this undoes a drop because a total rose: rises never un-allot.

use super::{
    BACKFILL_WINDOW_MS, CLOCK_SKEW_MS, FeedRules, MAX_UNALLOTTED_PER_SKU, Millis, OrderIndex,
    Reservation, Shown, Step,
};
use std::collections::BTreeMap;

/// The configured feeds, by name.
pub(super) type Feeds = BTreeMap<String, FeedRules>;

/// One SKU's reservations (oldest order first) and its unallotted drops (oldest first).
#[derive(Debug, Default, Clone)]
pub(super) struct SkuBook {
    pub(super) held: Vec<Reservation>,
    pub(super) unallotted: Vec<Shown>,
}

impl SkuBook {
    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty() && self.unallotted.is_empty()
    }

    /// What the SKU's reservations subtract.
    pub(super) fn reserved(&self) -> i64 {
        self.held
            .iter()
            .fold(0, |sum, r| sum.saturating_add(r.outstanding()))
    }

    /// Where `feed`'s order `order_id`, created at `created_at`, sits in `held`.
    pub(super) fn position(&self, feed: &str, order_id: &str, created_at: Millis) -> Option<usize> {
        let key = (created_at, feed, order_id);
        let i = self.held.partition_point(|r| age(r) < key);
        self.held.get(i).filter(|r| age(r) == key).map(|_| i)
    }

    /// Adds a reservation in age order and returns where it went.
    pub(super) fn insert(
        &mut self,
        reservation: Reservation,
        orders: &mut OrderIndex,
        step: &mut Step,
    ) -> usize {
        let i = self.held.partition_point(|r| age(r) < age(&reservation));
        orders
            .entry((reservation.feed.clone(), reservation.order_id.clone()))
            .or_default()
            .insert(reservation.sku.clone(), reservation.created_at);
        step.touch(&reservation);
        self.held.insert(i, reservation);
        i
    }

    /// Takes reservation `i` out of the book (what it was given stays with it).
    pub(super) fn remove(
        &mut self,
        i: usize,
        orders: &mut OrderIndex,
        step: &mut Step,
    ) -> Option<Reservation> {
        if i >= self.held.len() {
            return None;
        }
        let reservation = self.held.remove(i);
        let order = (reservation.feed.clone(), reservation.order_id.clone());
        if let Some(skus) = orders.get_mut(&order) {
            skus.remove(&reservation.sku);
            if skus.is_empty() {
                orders.remove(&order);
            }
        }
        step.remove(&reservation);
        Some(reservation)
    }

    /// Gives `quantity` units of reservation `i` from a drop seen at `at`.
    fn give(&mut self, i: usize, at: Millis, quantity: i64, step: &mut Step) {
        let Some(r) = self.held.get_mut(i) else {
            return;
        };
        if quantity <= 0 {
            return;
        }
        let was_outstanding = r.outstanding() > 0;
        add(&mut r.allotments, at, quantity);
        if was_outstanding && r.outstanding() == 0 {
            step.summary.absorbed += 1;
        }
        step.touch(r);
    }

    /// Gives up to `quantity` units of a drop seen at `at` to the reservations that may have
    /// caused it (absorbing feeds, orders created before the fetch plus the clock skew), oldest
    /// order first. Returns what none could take.
    pub(super) fn allot(
        &mut self,
        feeds: &Feeds,
        at: Millis,
        quantity: i64,
        step: &mut Step,
    ) -> i64 {
        self.give_oldest_first(
            feeds,
            at,
            quantity,
            Some(at.saturating_add(CLOCK_SKEW_MS)),
            step,
        )
    }

    /// Gives up to `quantity` units shown at `at` to the outstanding reservations of absorbing
    /// feeds, oldest order first, among orders created by `created_by` if given.
    fn give_oldest_first(
        &mut self,
        feeds: &Feeds,
        at: Millis,
        quantity: i64,
        created_by: Option<Millis>,
        step: &mut Step,
    ) -> i64 {
        let mut left = quantity.max(0);
        for i in 0..self.held.len() {
            if left == 0 {
                break;
            }
            let r = &self.held[i];
            if created_by.is_some_and(|by| r.created_at > by) {
                break; // held is in age order: no later one is eligible either
            }
            let absorbs = feeds.get(&r.feed).is_some_and(FeedRules::absorbs);
            let take = if absorbs {
                r.outstanding().min(left)
            } else {
                0
            };
            if take > 0 {
                self.give(i, at, take, step);
                left -= take;
            }
        }
        left
    }

    /// Keeps units no reservation took, for back-fills.
    pub(super) fn keep_unallotted(
        &mut self,
        sku: &str,
        at: Millis,
        quantity: i64,
        step: &mut Step,
    ) {
        if quantity <= 0 {
            return;
        }
        add(&mut self.unallotted, at, quantity);
        if self.unallotted.len() > MAX_UNALLOTTED_PER_SKU {
            // Merged at the older time: see MAX_UNALLOTTED_PER_SKU.
            let second = self.unallotted.remove(1);
            self.unallotted[0].quantity =
                self.unallotted[0].quantity.saturating_add(second.quantity);
        }
        step.unallotted.insert(sku.to_owned());
    }

    /// Gives units that turned out not to be their holder's to the others: first as a fresh
    /// drop would go, then to any order still outstanding (a unit passed from order to order
    /// keeps the time of its drop, which then no longer says whose it can be: the sum is what
    /// must stay right), and only what no order can take back to the unallotted drops.
    pub(super) fn hand_back(
        &mut self,
        sku: &str,
        feeds: &Feeds,
        units: Vec<Shown>,
        step: &mut Step,
    ) {
        for unit in units {
            step.summary.returned = step.summary.returned.saturating_add(unit.quantity);
            let left = self.allot(feeds, unit.at, unit.quantity, step);
            let left = self.give_oldest_first(feeds, unit.at, left, None, step);
            self.keep_unallotted(sku, unit.at, left, step);
        }
    }

    /// Matches up to `want` units of reservation `i`, just seen for the first time (or grown),
    /// against drops no reservation took since its order was created (within the back-fill
    /// window), oldest drop first: the warehouse may have counted the order before invsync saw
    /// it. Oldest first leaves the later drops to orders created later, which can take only those.
    pub(super) fn backfill(
        &mut self,
        sku: &str,
        i: usize,
        want: i64,
        now: Millis,
        step: &mut Step,
    ) {
        let Some(r) = self.held.get(i) else {
            return;
        };
        let not_before = r
            .created_at
            .saturating_sub(CLOCK_SKEW_MS)
            .max(now.saturating_sub(BACKFILL_WINDOW_MS));
        let want = want.min(r.outstanding());
        let taken = take(&mut self.unallotted, want, End::Oldest, not_before);
        if taken.is_empty() {
            return;
        }
        step.unallotted.insert(sku.to_owned());
        for unit in taken {
            step.summary.backfilled = step.summary.backfilled.saturating_add(unit.quantity);
            self.give(i, unit.at, unit.quantity, step);
        }
    }

    /// Takes back up to `want` units given to the other reservations (oldest order first,
    /// latest drop first within one), then from the unallotted drops (latest first). Which
    /// of them holds a settling order's units cannot be told, and need not be: each unit shown
    /// must end up with exactly one order, and what is subtracted is the sum. The drops' times
    /// are no guide here, as units handed back and given again keep the time of their drop.
    /// Returns how many.
    fn reclaim(&mut self, sku: &str, want: i64, step: &mut Step) -> i64 {
        let mut got = 0;
        for r in &mut self.held {
            if got >= want {
                break;
            }
            let taken = take_latest(&mut r.allotments, want - got);
            if taken > 0 {
                got += taken;
                step.touch(r);
            }
        }
        let taken = take_latest(&mut self.unallotted, want - got);
        if taken > 0 {
            got += taken;
            step.unallotted.insert(sku.to_owned());
        }
        step.summary.reclaimed = step.summary.reclaimed.saturating_add(got);
        got
    }

    /// Ends the shipped reservations whose `settle_after` had passed by `fetch_at`, trueing up
    /// what they were given to their quantity (see the module documentation).
    pub(super) fn settle_due(
        &mut self,
        sku: &str,
        feeds: &Feeds,
        orders: &mut OrderIndex,
        fetch_at: Millis,
        step: &mut Step,
    ) {
        let mut i = 0;
        while i < self.held.len() {
            let r = &self.held[i];
            let due = feeds.get(&r.feed).is_some_and(|rules| {
                rules.absorbs()
                    && r.dispatched_seen_at
                        .is_some_and(|seen| fetch_at >= seen.saturating_add(rules.settle_after_ms))
            });
            if !due {
                i += 1;
                continue;
            }
            let Some(mut r) = self.remove(i, orders, step) else {
                break;
            };
            step.summary.released += 1;
            let shortfall = r.quantity.saturating_sub(r.allotted());
            if shortfall > 0 {
                let found = self.reclaim(sku, shortfall, step);
                step.summary.settled_unseen = step
                    .summary
                    .settled_unseen
                    .saturating_add(shortfall - found);
            } else if shortfall < 0 {
                let excess = take(&mut r.allotments, -shortfall, End::Latest, Millis::MIN);
                self.hand_back(sku, feeds, excess, step);
            }
        }
    }

    /// Forgets unallotted drops seen before `before`.
    pub(super) fn prune(&mut self, sku: &str, before: Millis, step: &mut Step) {
        let len = self.unallotted.len();
        self.unallotted.retain(|d| d.at >= before);
        if self.unallotted.len() != len {
            step.unallotted.insert(sku.to_owned());
        }
    }
}

/// What orders reservations are kept in: oldest first, ties by feed and order id so that the
/// order never depends on when they were seen.
fn age(r: &Reservation) -> (Millis, &str, &str) {
    (r.created_at, &r.feed, &r.order_id)
}

/// Adds `quantity` units shown at `at` to `list`, kept in time order with one entry a time.
fn add(list: &mut Vec<Shown>, at: Millis, quantity: i64) {
    match list.iter_mut().find(|units| units.at == at) {
        Some(units) => units.quantity = units.quantity.saturating_add(quantity),
        None => {
            let i = list.partition_point(|units| units.at < at);
            list.insert(i, Shown { at, quantity });
        }
    }
}

/// Which end of a time-ordered list units are taken from first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Oldest,
    Latest,
}

/// Takes up to `want` units from `list`, starting at the `from` end, from entries shown at or
/// after `not_before`, and returns them with their times.
pub(super) fn take(list: &mut Vec<Shown>, want: i64, from: End, not_before: Millis) -> Vec<Shown> {
    let mut want = want.max(0);
    let mut taken = Vec::new();
    let mut take_from = |units: &mut Shown| {
        if want > 0 && units.at >= not_before {
            let n = units.quantity.min(want);
            units.quantity -= n;
            want -= n;
            taken.push(Shown {
                at: units.at,
                quantity: n,
            });
        }
    };
    match from {
        End::Oldest => list.iter_mut().for_each(&mut take_from),
        End::Latest => list.iter_mut().rev().for_each(&mut take_from),
    }
    list.retain(|units| units.quantity > 0);
    taken
}

/// Takes up to `want` units from `list`, latest first, and says how many.
fn take_latest(list: &mut Vec<Shown>, want: i64) -> i64 {
    total(&take(list, want, End::Latest, Millis::MIN))
}

/// The units in `list`.
pub(super) fn total(list: &[Shown]) -> i64 {
    list.iter()
        .fold(0, |sum, units| sum.saturating_add(units.quantity))
}
