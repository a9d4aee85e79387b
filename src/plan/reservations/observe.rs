//! Orders as the feeds answer them: reservations made, resized, dispatched and released.

use std::collections::BTreeSet;

use super::pool::{End, SkuBook, take};
use super::{
    FeedRules, Millis, Order, OrderIndex, Phase, ReleaseMode, Reservation, Reservations, Shown,
    Step, UnknownFeed,
};

/// Units a reservation gained, to match against the unallotted drops.
struct Growth {
    sku: String,
    order_id: String,
    created_at: Millis,
    units: i64,
}

/// What one read of a feed leaves to do once every order is read, so that the reservations
/// this read makes are there to take part.
#[derive(Default)]
struct Pending {
    grown: Vec<Growth>,
    /// Units that turned out not to be their holder's, by SKU.
    handed: Vec<(String, Vec<Shown>)>,
}

/// The parts of the book one order's update works on, borrowed apart.
struct Ledger<'a> {
    rules: &'a FeedRules,
    orders: &'a mut OrderIndex,
    step: &'a mut Step,
    pending: &'a mut Pending,
    now: Millis,
}

impl Reservations {
    /// Reads what `feed` answered at `now`: its open lists and the look-ups of the orders
    /// [`Reservations::to_look_up`] named. A new order in a `reserve` state makes a reservation
    /// per SKU; a known one is resized, dispatched or released by its state. A held order that
    /// `orders` does not contain is left exactly as it was: absence is no evidence.
    pub fn observe_orders(
        &mut self,
        feed: &str,
        now: Millis,
        orders: &[Order],
    ) -> Result<(), UnknownFeed> {
        let rules = self
            .feeds
            .get(feed)
            .cloned()
            .ok_or_else(|| UnknownFeed(feed.to_owned()))?;
        if rules.release == ReleaseMode::None {
            self.release_feed(feed);
            return Ok(());
        }
        // An order listed and looked up in one cycle counts once; oldest first, so that
        // back-fills go to the oldest orders first, as drops do.
        let mut seen = BTreeSet::new();
        let mut orders: Vec<&Order> = orders
            .iter()
            .filter(|o| seen.insert(o.id.as_str()))
            .collect();
        orders.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let mut pending = Pending::default();
        for order in orders {
            self.observe_order(feed, &rules, now, order, &mut pending);
        }
        // First what grew finds among the unallotted drops, which only orders created before
        // them can take; then the units handed back, to whoever is still outstanding.
        if rules.absorbs() {
            for growth in pending.grown {
                if let Some(book) = self.skus.get_mut(&growth.sku)
                    && let Some(i) = book.position(feed, &growth.order_id, growth.created_at)
                {
                    book.backfill(&growth.sku, i, growth.units, now, &mut self.step);
                }
            }
        }
        for (sku, units) in pending.handed {
            let book = self.skus.entry(sku.clone()).or_default();
            book.hand_back(&sku, &self.feeds, units, &mut self.step);
        }
        self.skus.retain(|_, book| !book.is_empty());
        Ok(())
    }

    /// One order: each SKU it holds or now orders.
    fn observe_order(
        &mut self,
        feed: &str,
        rules: &FeedRules,
        now: Millis,
        order: &Order,
        pending: &mut Pending,
    ) {
        let phase = order.phase;
        let wanted = order.quantities();
        let key = (feed.to_owned(), order.id.clone());
        let held = self.orders.get(&key).cloned().unwrap_or_default();
        let mut skus: BTreeSet<String> = held.keys().cloned().collect();
        skus.extend(wanted.keys().map(|sku| (*sku).to_owned()));
        let Reservations {
            skus: books,
            orders,
            step,
            ..
        } = self;
        let mut ledger = Ledger {
            rules,
            orders,
            step,
            pending,
            now,
        };
        for sku in skus {
            let quantity = wanted.get(sku.as_str()).copied().unwrap_or(0);
            let book = books.entry(sku.clone()).or_default();
            let found = held.get(&sku).and_then(|&created_at| {
                Some((created_at, book.position(feed, &order.id, created_at)?))
            });
            let (created_at, units) = match found {
                Some((created_at, i)) => (
                    created_at,
                    ledger.update(book, &sku, i, order, quantity, phase),
                ),
                None if phase == Phase::Holding && quantity > 0 => {
                    ledger.make(book, feed, &sku, order, quantity);
                    (order.created_at, quantity)
                }
                None => continue,
            };
            if units > 0 {
                ledger.pending.grown.push(Growth {
                    sku,
                    order_id: order.id.clone(),
                    created_at,
                    units,
                });
            }
        }
    }

    /// Ends every reservation of `feed` (it is configured with `release = "none"`).
    fn release_feed(&mut self, feed: &str) {
        let held: Vec<(String, Vec<(String, Millis)>)> = self
            .orders
            .range((feed.to_owned(), String::new())..)
            .take_while(|((f, _), _)| f == feed)
            .map(|((_, id), skus)| (id.clone(), skus.clone().into_iter().collect()))
            .collect();
        for (order_id, skus) in held {
            for (sku, created_at) in skus {
                if let Some(book) = self.skus.get_mut(&sku)
                    && let Some(i) = book.position(feed, &order_id, created_at)
                    && book.remove(i, &mut self.orders, &mut self.step).is_some()
                {
                    self.step.summary.released += 1;
                }
            }
        }
        self.skus.retain(|_, book| !book.is_empty());
    }
}

impl Ledger<'_> {
    /// A reservation seen for the first time.
    fn make(&mut self, book: &mut SkuBook, feed: &str, sku: &str, order: &Order, quantity: i64) {
        let reservation = Reservation {
            feed: feed.to_owned(),
            order_id: order.id.clone(),
            sku: sku.to_owned(),
            quantity,
            allotments: Vec::new(),
            state: order.state.clone(),
            created_at: order.created_at,
            dispatch_due_at: order.dispatch_due_at,
            first_seen_at: self.now,
            dispatched_seen_at: None,
        };
        book.insert(reservation, self.orders, self.step);
        self.step.summary.made += 1;
    }

    /// A reservation seen again, its order now in `phase` and ordering `quantity`. Returns the
    /// units it grew by.
    fn update(
        &mut self,
        book: &mut SkuBook,
        sku: &str,
        i: usize,
        order: &Order,
        quantity: i64,
        phase: Phase,
    ) -> i64 {
        let absorbs = self.rules.absorbs();
        let Some(r) = book.held.get_mut(i) else {
            return 0;
        };
        let before = r.clone();
        r.state.clone_from(&order.state);
        r.dispatch_due_at = order.dispatch_due_at;
        match phase {
            // Cancelled before it shipped, nothing of it left the warehouse: what it was given
            // was other orders'. Cancelled (refunded) after it shipped, its goods did leave.
            Phase::Cancelled => {
                let shipped = r.dispatched_seen_at.is_some();
                self.end(book, sku, i, absorbs && !shipped);
                return 0;
            }
            Phase::Dispatched if !absorbs => {
                self.end(book, sku, i, false);
                return 0;
            }
            Phase::Dispatched => {
                r.dispatched_seen_at.get_or_insert(self.now);
            }
            Phase::Holding => r.dispatched_seen_at = None,
        }
        if quantity == 0 {
            // The line left its order: nothing of it will leave the warehouse.
            self.end(book, sku, i, absorbs);
            return 0;
        }
        let grew = quantity.saturating_sub(r.quantity).max(0);
        r.quantity = quantity;
        let excess = r.allotted().saturating_sub(quantity);
        let handed = if absorbs && excess > 0 {
            take(&mut r.allotments, excess, End::Latest, Millis::MIN)
        } else {
            Vec::new()
        };
        if *r != before {
            self.step.touch(r);
        }
        self.hand_back(sku, handed);
        grew
    }

    /// Ends reservation `i`; with `hand_back`, what it was given goes to the others.
    fn end(&mut self, book: &mut SkuBook, sku: &str, i: usize, hand_back: bool) {
        let Some(r) = book.remove(i, self.orders, self.step) else {
            return;
        };
        self.step.summary.released += 1;
        if hand_back {
            self.hand_back(sku, r.allotments);
        }
    }

    /// Leaves `units` to be given to the others once every order is read.
    fn hand_back(&mut self, sku: &str, units: Vec<Shown>) {
        if !units.is_empty() {
            self.pending.handed.push((sku.to_owned(), units));
        }
    }
}
