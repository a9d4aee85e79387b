//! The truth the book guesses at: a warehouse, a marketplace's orders, other channels.

use proptest::prop_assert;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

use super::{Event, FEED, SKUS, T0};
use crate::plan::reservations::*;
use crate::services::hardtofind::OrderState;
use crate::services::hardtofind::order_state::DEFAULT_RESERVE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    Ready,
    Processed,
    Shipped,
    Cancelled,
}

impl Truth {
    fn is_open(self) -> bool {
        matches!(self, Truth::Ready | Truth::Processed)
    }

    fn state(self) -> OrderState {
        match self {
            Truth::Ready => OrderState::Ready,
            Truth::Processed => OrderState::Processed,
            Truth::Shipped => OrderState::Shipped,
            Truth::Cancelled => OrderState::Cancelled,
        }
    }
}

#[derive(Debug)]
struct ModelOrder {
    id: String,
    /// `created_at` as the marketplace reports it (skewed).
    created_at: Millis,
    truth: Truth,
    lines: [i64; 2],
    /// Units the warehouse has counted.
    counted: [i64; 2],
    /// Counted units a complete fetch has read.
    shown: [i64; 2],
    /// When the warehouse will have counted a shipped order in full.
    count_by: Option<Millis>,
    /// What the book was last told: its state and lines.
    told: Option<(Truth, [i64; 2])>,
}

impl ModelOrder {
    fn as_order(&self) -> Order {
        Order {
            id: self.id.clone(),
            state: self.truth.state().as_str().to_owned(),
            phase: crate::services::hardtofind::reserving::phase(
                self.truth.state(),
                &DEFAULT_RESERVE,
            ),
            created_at: self.created_at,
            dispatch_due_at: None,
            lines: (0..SKUS.len())
                .map(|s| OrderLine {
                    sku: SKUS[s].to_owned(),
                    quantity: self.lines[s],
                })
                .collect(),
        }
    }

    /// The warehouse counts the rest of line `s`.
    fn count(&mut self, s: usize, physical: &mut [i64; 2]) {
        physical[s] -= self.lines[s] - self.counted[s];
        self.counted[s] = self.lines[s];
    }

    /// The warehouse counts the rest of the order.
    fn count_all(&mut self, physical: &mut [i64; 2]) {
        for s in 0..SKUS.len() {
            self.count(s, physical);
        }
        self.count_by = None;
    }
}

/// How often a run reached each dangerous moment.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Hits {
    pub(super) allotted: bool,
    pub(super) backfilled: bool,
    pub(super) returned: bool,
    pub(super) reclaimed: bool,
    pub(super) settled_unseen: bool,
    pub(super) slack_needed: bool,
    pub(super) checks: usize,
    pub(super) own_checks: usize,
}

pub(super) struct World {
    own_only: bool,
    now: Millis,
    /// The warehouse's figure.
    physical: [i64; 2],
    /// The figure at the last complete fetch.
    fetched: [i64; 2],
    /// Units of drops that belong to no open order of this channel.
    slack: [i64; 2],
    orders: Vec<ModelOrder>,
    book: Reservations,
    /// An order was first seen too late for its back-fill: property 2 no longer holds.
    late: bool,
    pub(super) hits: Hits,
}

impl World {
    pub(super) fn new(own_only: bool) -> World {
        // Enough stock that no figure reaches 0, where "at least 0" would hide a difference.
        let stock = [1_000, 1_000];
        World {
            own_only,
            now: T0,
            physical: stock,
            fetched: stock,
            slack: [0, 0],
            orders: Vec::new(),
            book: Reservations::new([(FEED.to_owned(), FeedRules::default())]),
            late: false,
            hits: Hits::default(),
        }
    }

    fn open(&mut self, index: &Index) -> Option<&mut ModelOrder> {
        self.order(index).filter(|o| o.truth.is_open())
    }

    /// An open order, or a shipped one the warehouse has not counted in full yet.
    fn uncounted(&mut self, index: &Index) -> Option<&mut ModelOrder> {
        self.order(index)
            .filter(|o| o.truth.is_open() || o.count_by.is_some())
    }

    fn order(&mut self, index: &Index) -> Option<&mut ModelOrder> {
        if self.orders.is_empty() {
            return None;
        }
        let i = index.index(self.orders.len());
        Some(&mut self.orders[i])
    }

    pub(super) fn apply(&mut self, event: &Event) -> Result<(), TestCaseError> {
        let own_only = self.own_only;
        match event {
            Event::Place { lines, skew_ms } => {
                let mut quantities = [0; 2];
                for &(s, q) in lines {
                    quantities[s] += q;
                }
                self.orders.push(ModelOrder {
                    id: format!("o{}", self.orders.len()),
                    created_at: self.now + skew_ms,
                    truth: Truth::Ready,
                    lines: quantities,
                    counted: [0; 2],
                    shown: [0; 2],
                    count_by: None,
                    told: None,
                });
            }
            Event::Change {
                order,
                sku,
                quantity,
            } => {
                let mut physical = self.physical;
                let mut given_back = 0;
                if let Some(order) = self.open(order) {
                    let s = *sku;
                    let quantity = if own_only {
                        (*quantity).max(order.counted[s])
                    } else {
                        *quantity
                    };
                    given_back = (order.counted[s] - quantity).max(0);
                    physical[s] += given_back;
                    order.counted[s] -= given_back;
                    order.shown[s] = order.shown[s].min(order.counted[s]);
                    order.lines[s] = quantity;
                }
                self.physical = physical;
                self.slack[*sku] += given_back;
            }
            Event::Process { order } => {
                if let Some(order) = self.open(order) {
                    order.truth = Truth::Processed;
                }
            }
            Event::Cancel { order } => {
                let mut given_back = [0; 2];
                if let Some(order) = self.open(order)
                    && !(own_only && order.counted.iter().any(|c| *c > 0))
                {
                    order.truth = Truth::Cancelled;
                    given_back = order.counted;
                    order.counted = [0; 2];
                    order.shown = [0; 2];
                }
                for (physical, units) in self.physical.iter_mut().zip(given_back) {
                    *physical += units;
                }
                self.add_slack(given_back);
            }
            Event::Ship {
                order,
                count_within_ms,
            } => {
                let mut physical = self.physical;
                let mut unseen = [0; 2];
                let now = self.now;
                if let Some(order) = self.open(order) {
                    order.truth = Truth::Shipped;
                    order.count_by = Some(now + count_within_ms);
                    if *count_within_ms == 0 {
                        order.count_all(&mut physical);
                    }
                    // Units placed (or added) and shipped between two reads of the lists:
                    // the book never saw them open, and their sale is to the book what
                    // another channel's is.
                    let told = order.told.map_or([0; 2], |(_, lines)| lines);
                    unseen = std::array::from_fn(|s| (order.lines[s] - told[s]).max(0));
                }
                self.physical = physical;
                self.add_slack(unseen);
            }
            Event::Count { order, sku } => {
                let mut physical = self.physical;
                if let Some(order) = self.uncounted(order) {
                    order.count(*sku, &mut physical);
                }
                self.physical = physical;
            }
            Event::OtherChannel { sku, quantity } if !own_only => {
                self.physical[*sku] -= quantity;
                self.slack[*sku] += quantity;
            }
            Event::Restock { sku, quantity } if !own_only => self.physical[*sku] += quantity,
            Event::OtherChannel { .. } | Event::Restock { .. } => {}
            Event::Wait { ms } => {
                self.now += ms;
                for order in &mut self.orders {
                    if order.count_by.is_some_and(|by| by <= self.now) {
                        order.count_all(&mut self.physical);
                    }
                }
            }
            Event::Cycle {
                orders_ok,
                lookups_ok,
                sources_ok,
            } => self.cycle(*orders_ok, *lookups_ok, *sources_ok)?,
        }
        Ok(())
    }

    /// Units of drops (or rises) that are no open order's of this channel.
    fn add_slack(&mut self, units: [i64; 2]) {
        for (slack, units) in self.slack.iter_mut().zip(units) {
            *slack += units;
        }
    }

    fn cycle(
        &mut self,
        orders_ok: bool,
        lookups_ok: bool,
        sources_ok: [bool; 2],
    ) -> Result<(), TestCaseError> {
        if orders_ok {
            self.read_orders(lookups_ok)?;
        }
        if sources_ok.contains(&true) {
            self.fetch(sources_ok);
        }
        let summary = self.book.take_changes().summary;
        self.hits.allotted |= summary.allotted > 0;
        self.hits.backfilled |= summary.backfilled > 0;
        self.hits.returned |= summary.returned > 0;
        self.hits.reclaimed |= summary.reclaimed > 0;
        self.hits.settled_unseen |= summary.settled_unseen > 0;
        if orders_ok {
            for s in (0..SKUS.len()).filter(|&s| sources_ok[s]) {
                self.check(s)?;
            }
        }
        Ok(())
    }

    /// The feed's open lists (complete, as the feed client guarantees), then the look-ups of
    /// the orders the book holds that left them.
    fn read_orders(&mut self, lookups_ok: bool) -> Result<(), TestCaseError> {
        let listed: Vec<Order> = self
            .orders
            .iter()
            .filter(|o| o.truth.is_open())
            .map(ModelOrder::as_order)
            .collect();
        let mut read = listed.clone();
        if lookups_ok {
            for id in self.book.to_look_up(FEED, &listed) {
                let order = self.orders.iter().find(|o| o.id == id);
                let order = order.ok_or_else(|| TestCaseError::fail(format!("{id} unknown")))?;
                read.push(order.as_order());
            }
        }
        self.book
            .observe_orders(FEED, self.now, &read)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        for order in &read {
            if let Some(model) = self.orders.iter_mut().find(|o| o.id == order.id) {
                if model.told.is_none()
                    && self.now - model.created_at > BACKFILL_WINDOW_MS - CLOCK_SKEW_MS
                {
                    self.late = true;
                }
                model.told = Some((model.truth, model.lines));
            }
        }
        Ok(())
    }

    /// A complete fetch of each SKU's source that answers.
    fn fetch(&mut self, sources_ok: [bool; 2]) {
        let mut drops = Vec::new();
        for s in (0..SKUS.len()).filter(|&s| sources_ok[s]) {
            let fall = self.fetched[s] - self.physical[s];
            self.fetched[s] = self.physical[s];
            if fall > 0 {
                drops.push(Drop {
                    sku: SKUS[s].to_owned(),
                    quantity: fall,
                });
            }
            for order in &mut self.orders {
                order.shown[s] = order.counted[s];
            }
        }
        let blocked = |sku: &str| {
            SKUS.iter()
                .position(|s| *s == sku)
                .is_none_or(|s| !sources_ok[s])
        };
        self.book.absorb(self.now, &drops, blocked);
    }

    fn check(&mut self, s: usize) -> Result<(), TestCaseError> {
        let reserved = self.book.reserved(SKUS[s]);
        let uncounted: i64 = self
            .orders
            .iter()
            .filter(|o| o.truth != Truth::Cancelled)
            .map(|o| o.lines[s] - o.counted[s])
            .sum();
        let pushed = (self.physical[s] - reserved).max(0);
        let sellable = (self.physical[s] - uncounted).max(0);
        self.hits.checks += 1;
        self.hits.slack_needed |= pushed > sellable;
        prop_assert!(
            pushed <= sellable + self.slack[s],
            "{}: would push {pushed}, sellable {sellable}, slack {}\n{:#?}",
            SKUS[s],
            self.slack[s],
            self.book.reservations_of(SKUS[s])
        );
        if self.own_only && !self.late {
            let unshown: i64 = self
                .orders
                .iter()
                .filter_map(|o| o.told.map(|told| (o, told)))
                .filter(|(_, (truth, _))| *truth != Truth::Cancelled)
                .map(|(o, (_, lines))| (lines[s] - o.shown[s]).max(0))
                .sum();
            self.hits.own_checks += 1;
            prop_assert!(
                reserved <= unshown,
                "{}: reserves {reserved} though only {unshown} are unshown\n{:#?}",
                SKUS[s],
                self.book.reservations_of(SKUS[s])
            );
        }
        Ok(())
    }
}
