//! A feed read from where its last read left it gives the book what a full read gives, and the
//! relay's read of `READY` knows the orders a full read shows, whole: the real client against
//! the simulator over loopback, the real book, the relay's real memory.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::mapper::Mapper;
use crate::plan::reservations::{FeedRules, ReleaseMode};
use crate::relay::ready::{Memory, ReadAs as RelayAsk};
use crate::services::hardtofind::OrderFeed;
use crate::services::hardtofind::incremental::How;
use crate::services::hardtofind::sim::{HardtofindSim, NewOrder, OrderChange};
use crate::services::hardtofind::wire::{self as htf, OrderStatus};

const FEED: &str = "hardtofind";

async fn slot(sim: &HardtofindSim) -> FeedSlot {
    FeedSlot {
        name: FEED.into(),
        client: Feed::Hardtofind(OrderFeed::new(sim.session())),
        reserve: vec![OrderState::Ready, OrderState::Processed],
        mapper: Arc::new(Mapper::none().await),
        walks: Default::default(),
    }
}

/// A book whose reservations end when their order leaves the open states, so that it holds
/// exactly what the open orders hold and two books can be compared whole.
fn book() -> tokio::sync::Mutex<Reservations> {
    let rules = FeedRules {
        release: ReleaseMode::Status,
        ..FeedRules::default()
    };
    tokio::sync::Mutex::new(Reservations::new([(FEED.to_owned(), rules)]))
}

/// One cycle's part of the feed, as `orders_step` runs it.
async fn cycle(
    slot: &FeedSlot,
    book: &tokio::sync::Mutex<Reservations>,
    ask: ReadAs,
) -> FeedListing {
    let mapping = Mapping::default();
    let (read, looked_up) = read_feed(slot, &mapping, ask, book).await;
    let mut read = read.expect("the lists read");
    take_in(
        slot,
        &mut *book.lock().await,
        &mut read,
        looked_up,
        store::now_ms(),
    )
    .await;
    read
}

const AS_USUAL: ReadAs = ReadAs {
    full_sync: false,
    mapping: 0,
};

/// What a book holds, order by order.
type Holdings = BTreeSet<(String, String, i64, String, i64, Option<i64>)>;

fn holdings(book: &Reservations) -> Holdings {
    book.iter()
        .map(|r| {
            let r = r.clone();
            (
                r.order_id,
                r.sku,
                r.quantity,
                r.state,
                r.created_at,
                r.dispatch_due_at,
            )
        })
        .collect()
}

fn listed(read: &FeedListing) -> BTreeSet<String> {
    read.listed_ids().into_iter().map(str::to_owned).collect()
}

/// What a fresh reader, reading every list in full, makes of the simulator's orders now.
async fn fresh(sim: &HardtofindSim) -> (Holdings, BTreeSet<String>) {
    let (slot, book) = (slot(sim).await, book());
    let read = cycle(&slot, &book, AS_USUAL).await;
    assert!(read.walks.iter().all(|w| matches!(w.how, How::Full(_))));
    (holdings(&*book.lock().await), listed(&read))
}

fn lines(rng: &mut StdRng) -> Vec<(String, i64)> {
    (0..rng.random_range(1..=3))
        .map(|_| {
            let sku = format!("SKU-{}", rng.random_range(0..8));
            (sku, rng.random_range(0..=3))
        })
        .collect()
}

/// An order as a shop has it: placed some time in the last days, last changed a while ago.
fn old_order(rng: &mut StdRng, status: OrderStatus) -> NewOrder {
    let now = chrono::Utc::now();
    let mut order = NewOrder::new(lines(rng));
    order.status = status;
    order.created_at = Some(now - chrono::Duration::hours(rng.random_range(30..100)));
    order.updated_at = Some(now - chrono::Duration::minutes(rng.random_range(60..1_800)));
    order
}

/// A change an order can go through now: one of the open orders, picked at random, moves on,
/// or a new one comes.
fn any_change(rng: &mut StdRng, sim: &HardtofindSim, ids: &[String]) -> OrderChange {
    let open: Vec<&String> = (ids.iter())
        .filter(|id| {
            matches!(
                sim.order_status(id),
                Some(OrderStatus::Ready | OrderStatus::Processed)
            )
        })
        .collect();
    let Some(id) = (!open.is_empty()).then(|| open[rng.random_range(0..open.len())].clone()) else {
        return OrderChange::Place(Box::new(NewOrder::new(lines(rng))));
    };
    let state = |s| OrderChange::Status(id.clone(), s);
    match rng.random_range(0..10) {
        0 | 1 => OrderChange::Place(Box::new(NewOrder::new(lines(rng)))),
        2 => OrderChange::Lines(id.clone(), lines(rng)),
        3 => OrderChange::Touch(id.clone()),
        4 => state(OrderStatus::Processed),
        5 => state(OrderStatus::Ready),
        6 | 7 => state(OrderStatus::Shipped),
        8 => state(OrderStatus::Cancelled),
        _ => state(OrderStatus::Refunded),
    }
}

fn leaves(change: &OrderChange) -> bool {
    matches!(
        change,
        OrderChange::Status(
            _,
            OrderStatus::Shipped | OrderStatus::Cancelled | OrderStatus::Refunded
        )
    )
}

/// Twenty to ninety orders as a shop has them, most of them open.
fn placed(rng: &mut StdRng, sim: &HardtofindSim) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..rng.random_range(20..90) {
        let status = match rng.random_range(0..10) {
            0..=5 => OrderStatus::Ready,
            6..=7 => OrderStatus::Processed,
            _ => OrderStatus::Shipped,
        };
        ids.push(sim.place_order(old_order(rng, status)));
    }
    ids
}

/// Time passes on the store's clock (`clock`, seconds ahead), some orders change now and some
/// will while the next read pages; whether one of them leaves the open lists.
fn time_passes(rng: &mut StdRng, sim: &HardtofindSim, ids: &[String], clock: &mut i64) -> bool {
    *clock += [0, 1, 30, 300, 900, 7_200][rng.random_range(0..6)];
    sim.set_clock_offset(*clock);
    let mut left = false;
    for _ in 0..rng.random_range(0..4) {
        let change = any_change(rng, sim, ids);
        left |= leaves(&change);
        sim.change(change);
    }
    if rng.random_bool(0.6) {
        for _ in 0..rng.random_range(1..=2) {
            let change = any_change(rng, sim, ids);
            left |= leaves(&change);
            sim.change_after(rng.random_range(1..=3), change);
        }
    }
    left
}

/// What one world's run hit.
#[derive(Debug, Default)]
struct Hits {
    cycles: usize,
    /// Cycles whose every list was read from where the last read left it.
    incremental: usize,
    /// Changes made between two pages of a read that went on from the last one.
    while_paging: usize,
    /// Orders that left the lists before a read that went on from the last one.
    left: usize,
}

impl Hits {
    fn add(&mut self, hits: Hits) {
        self.cycles += hits.cycles;
        self.incremental += hits.incremental;
        self.while_paging += hits.while_paging;
        self.left += hits.left;
    }

    /// The runs must have hit the moments that matter, or they prove nothing.
    fn assert_telling(&self) {
        println!("{self:?}");
        assert!(self.while_paging >= 30, "{self:?}");
        assert!(self.left >= 30, "{self:?}");
        assert!(self.incremental * 3 >= self.cycles, "{self:?}");
    }
}

/// Runs one world for `steps` cycles, checking after each that the book holds what a fresh full
/// read gives (after a change made while paging, once the next quiet cycle has read it: a full
/// read misses such a change too).
async fn world(seed: u64, steps: usize) -> Hits {
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = HardtofindSim::start(Default::default())
        .await
        .expect("a simulator");
    let mut ids = placed(&mut rng, &sim);
    let (slot, book) = (slot(&sim).await, book());
    let mut hits = Hits::default();
    let mut clock = 0;
    cycle(&slot, &book, AS_USUAL).await;
    for step in 0..steps {
        let left = time_passes(&mut rng, &sim, &ids, &mut clock);
        let (fired_before, _) = sim.changes_made();
        let ask = ReadAs {
            full_sync: rng.random_bool(0.05),
            ..AS_USUAL
        };
        let read = cycle(&slot, &book, ask).await;
        sim.cancel_changes();
        let (fired, answered) = sim.changes_made();
        let fired_now = &fired[fired_before.len()..];
        let went_on = !ask.full_sync && read.walks.iter().any(|w| w.how == How::Incremental);
        hits.cycles += 1;
        hits.incremental += usize::from(!read.full);
        hits.left += usize::from(went_on && left);
        let moved_while_paging = fired_now.iter().filter(|&&at| at < answered).count();
        if went_on {
            hits.while_paging += moved_while_paging;
        }
        ids = sim_ids(&sim, ids);
        // A change made after its page was read is for the next read to see (a full read
        // misses it as well).
        let compared = if fired_now.is_empty() {
            read
        } else {
            cycle(&slot, &book, AS_USUAL).await
        };
        let (want, want_listed) = fresh(&sim).await;
        assert_eq!(
            holdings(&*book.lock().await),
            want,
            "seed {seed}, step {step}: the book differs from a fresh full read's; walks {:?}",
            compared.walks
        );
        assert_eq!(
            listed(&compared),
            want_listed,
            "seed {seed}, step {step}: the lists as read differ from a full read's; walks {:?}",
            compared.walks
        );
    }
    hits
}

/// Every order the simulator knows, for the next changes to pick from.
fn sim_ids(sim: &HardtofindSim, mut ids: Vec<String>) -> Vec<String> {
    let mut next: u64 = ids
        .iter()
        .filter_map(|id| id.parse().ok())
        .max()
        .unwrap_or(100_000);
    loop {
        next += 1;
        let id = next.to_string();
        if sim.order_status(&id).is_none() {
            return ids;
        }
        ids.push(id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_changes_while_paging_leave_the_book_as_a_full_read_would() {
    let mut total = Hits::default();
    for seed in 0..12 {
        total.add(world(seed, 20).await);
    }
    total.assert_telling();
}

/// What the relay's read of `READY` knows: every id listed, and each whole order (as its
/// `Debug` text, the order has no `PartialEq`) by id.
#[derive(Debug, PartialEq)]
struct RelayKnows {
    listed: BTreeSet<String>,
    orders: BTreeMap<String, String>,
}

/// One relay step's read, as the step runs it; every whole order listed is taken to be an
/// open record's, so that memory serves every one the walk does not read again.
async fn relay_read(
    feed: &OrderFeed,
    memory: &mut Memory,
    ask: RelayAsk,
) -> (RelayKnows, Vec<How>) {
    let ready = memory.read(feed, &Meter::default(), ask).await;
    let ready = ready.expect("the list read");
    let knows = RelayKnows {
        listed: ready.next.listed().iter().cloned().collect(),
        orders: (ready.orders.iter())
            .map(|(id, o)| (id.clone(), format!("{o:?}")))
            .collect(),
    };
    let hows = ready.walks.iter().map(|w| w.how).collect();
    memory.keep(ready.next, &ready.orders, |_| true);
    (knows, hows)
}

/// What a full read of `READY` shows, whole.
async fn ready_in_full(feed: &OrderFeed) -> RelayKnows {
    let listing = feed
        .open_orders(&Meter::default(), &[OrderStatus::Ready])
        .await;
    let orders: Vec<htf::Order> = listing.expect("the list").orders;
    RelayKnows {
        listed: orders.iter().map(|o| o.id.clone()).collect(),
        orders: (orders.iter())
            .map(|o| (o.id.clone(), format!("{o:?}")))
            .collect(),
    }
}

/// Runs one world for `steps` relay reads, checking after each that the relay knows what a
/// full read of `READY` shows (after a change made while paging, once the next quiet read has
/// read it: a full read misses such a change too).
async fn relay_world(seed: u64, steps: usize) -> Hits {
    let mut rng = StdRng::seed_from_u64(seed);
    let sim = HardtofindSim::start(Default::default())
        .await
        .expect("a simulator");
    let mut ids = placed(&mut rng, &sim);
    let feed = OrderFeed::new(sim.session());
    let mut memory = Memory::default();
    let as_usual = RelayAsk::default();
    let mut hits = Hits::default();
    let mut clock = 0;
    relay_read(&feed, &mut memory, as_usual).await;
    for step in 0..steps {
        let left = time_passes(&mut rng, &sim, &ids, &mut clock);
        let (fired_before, _) = sim.changes_made();
        let ask = RelayAsk {
            full_sync: rng.random_bool(0.05),
            ..as_usual
        };
        let (knows, hows) = relay_read(&feed, &mut memory, ask).await;
        sim.cancel_changes();
        let (fired, answered) = sim.changes_made();
        let fired_now = &fired[fired_before.len()..];
        let went_on = hows.contains(&How::Incremental);
        hits.cycles += 1;
        hits.incremental += usize::from(!hows.iter().any(|h| matches!(h, How::Full(_))));
        hits.left += usize::from(went_on && left);
        if went_on {
            hits.while_paging += fired_now.iter().filter(|&&at| at < answered).count();
        }
        ids = sim_ids(&sim, ids);
        let (compared, hows) = if fired_now.is_empty() {
            (knows, hows)
        } else {
            relay_read(&feed, &mut memory, as_usual).await
        };
        assert_eq!(
            compared,
            ready_in_full(&feed).await,
            "seed {seed}, step {step}: the relay knows other READY orders than a full read shows; walks {hows:?}",
        );
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_changes_while_paging_leave_the_relay_knowing_the_ready_orders_a_full_read_shows() {
    let mut total = Hits::default();
    for seed in 0..12 {
        total.add(relay_world(seed, 20).await);
    }
    total.assert_telling();
}

fn hows(read: &FeedListing) -> Vec<How> {
    read.walks.iter().map(|w| w.how).collect()
}

#[tokio::test]
async fn a_full_sync_or_a_new_mapping_reads_every_list_in_full() {
    let sim = HardtofindSim::start(Default::default())
        .await
        .expect("a simulator");
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..25 {
        sim.place_order(old_order(&mut rng, OrderStatus::Ready));
    }
    let (slot, book) = (slot(&sim).await, book());
    cycle(&slot, &book, AS_USUAL).await;

    let usual = cycle(&slot, &book, AS_USUAL).await;
    let full_sync = ReadAs {
        full_sync: true,
        ..AS_USUAL
    };
    let full = cycle(&slot, &book, full_sync).await;
    let remapped = ReadAs {
        mapping: 1,
        ..AS_USUAL
    };
    let mapped = cycle(&slot, &book, remapped).await;
    let after = cycle(&slot, &book, remapped).await;

    assert_eq!(hows(&usual), [How::Incremental; 2]);
    assert_eq!(hows(&full), [How::Full("full sync"); 2]);
    assert_eq!(hows(&mapped), [How::Full("new mapping"); 2]);
    assert_eq!(hows(&after), [How::Incremental; 2]);
}

/// Where the store leaves an order's date alone when its state changes, an order that ships
/// is caught by the count; its look-up shows what the store does, and from then on the lists
/// are read in full.
#[tokio::test]
async fn an_order_whose_shipping_was_not_dated_is_released_and_the_lists_are_read_in_full() {
    let sim = HardtofindSim::start(Default::default())
        .await
        .expect("a simulator");
    sim.set_state_changes_move_orders(false);
    let mut rng = StdRng::seed_from_u64(8);
    let ids: Vec<String> = (0..25)
        .map(|_| sim.place_order(old_order(&mut rng, OrderStatus::Ready)))
        .collect();
    let (slot, book) = (slot(&sim).await, book());
    cycle(&slot, &book, AS_USUAL).await;
    sim.set_order_status(&ids[3], OrderStatus::Shipped);

    let shipped = cycle(&slot, &book, AS_USUAL).await;
    let next = cycle(&slot, &book, AS_USUAL).await;

    assert_eq!(holdings(&*book.lock().await), fresh(&sim).await.0);
    assert!(
        !holdings(&*book.lock().await)
            .iter()
            .any(|held| held.0 == ids[3]),
        "released"
    );
    assert_eq!(
        shipped.walks[0].how,
        How::Incremental,
        "{:?}",
        shipped.walks
    );
    assert_eq!(
        hows(&next),
        [How::Full("state changes do not move orders"); 2]
    );
}
