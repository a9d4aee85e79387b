//! The lists read from where the last read left them, against the simulator over loopback.
use super::*;
use crate::http::Meter;
use crate::services::hardtofind::OrderFeed;
use crate::services::hardtofind::sim::{HardtofindSim, NewOrder, OrderChange};

const READY: OrderStatus = OrderStatus::Ready;

async fn sim() -> HardtofindSim {
    HardtofindSim::start(Default::default())
        .await
        .expect("a simulator")
}

/// `n` orders in `status` that nobody has changed for `age` seconds, and two minutes more for
/// each older one, newest first (a busy shop's orders, spread out as they come).
fn orders_aged(sim: &HardtofindSim, n: usize, status: OrderStatus, age: i64) -> Vec<String> {
    let now = chrono::Utc::now();
    let orders = (0..n).map(|i| {
        let mut order = NewOrder::new([(format!("SKU-{i}"), 1)]);
        order.status = status.clone();
        order.updated_at = Some(now - chrono::Duration::seconds(age + 120 * i as i64));
        order
    });
    sim.place_orders(orders)
}

/// `n` `READY` orders nobody has changed for an hour.
fn old_orders(sim: &HardtofindSim, n: usize) -> Vec<String> {
    orders_aged(sim, n, READY, 3_600)
}

/// One read of the `READY` list at `now`, its memory kept for the next.
async fn read_at(feed: &OrderFeed, memory: &mut FeedMemory, now: Instant) -> OpenOrders {
    let mut open = feed
        .read_open_orders_at(&Meter::default(), &[READY], memory, None, now)
        .await
        .expect("the list");
    *memory = std::mem::take(&mut open.next);
    open
}

async fn read(feed: &OrderFeed, memory: &mut FeedMemory) -> OpenOrders {
    read_at(feed, memory, Instant::now()).await
}

fn walks(open: &OpenOrders) -> Vec<String> {
    open.walks.iter().map(Walked::to_string).collect()
}

fn read_ids(open: &OpenOrders) -> Vec<&str> {
    open.listing.orders.iter().map(|o| o.id.as_str()).collect()
}

/// Every id listed, read again or not, sorted.
fn listed(open: &OpenOrders) -> Vec<String> {
    let mut ids: Vec<String> = read_ids(open).into_iter().map(str::to_owned).collect();
    ids.extend(open.unchanged.iter().cloned());
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

const PEEKS: [&str; 5] = [
    "PROCESSED:peek:1",
    "SHIPPED:peek:1",
    "RETURNED:peek:1",
    "REFUNDED:peek:1",
    "CANCELLED:peek:1",
];

#[tokio::test]
async fn an_unchanged_list_is_read_again_from_page_1_only() {
    let sim = sim().await;
    let placed = old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());

    let first = read(&feed, &mut memory).await;
    let second = read(&feed, &mut memory).await;

    assert_eq!(walks(&first), ["READY:full(no earlier read):3"]);
    assert_eq!(first.listing.orders.len(), 25);
    assert_eq!(walks(&second), ["READY:incremental:1"]);
    assert_eq!(read_ids(&second), placed[..10], "page 1, read again");
    assert_eq!(second.unchanged, placed[10..], "the rest, as they were");
}

#[tokio::test]
async fn orders_changed_since_the_last_read_are_read_again_and_only_they() {
    let sim = sim().await;
    let placed = old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    read(&feed, &mut memory).await;
    sim.set_order_lines(&placed[20], [("SKU-X", 2)]);
    let new = sim.place_order(NewOrder::new([("SKU-Y", 1)]));

    let second = read(&feed, &mut memory).await;

    assert_eq!(walks(&second), ["READY:incremental:1"]);
    let changed = (second.listing.orders.iter()).find(|o| o.id == placed[20]);
    assert_eq!(changed.map(|o| o.lines[0].sku.as_str()), Some("SKU-X"));
    assert!(read_ids(&second).contains(&new.as_str()));
    let mut all = placed.clone();
    all.push(new);
    assert_eq!(listed(&second), sorted(all));
    assert_eq!(
        second.unchanged.len(),
        16,
        "page 1 read again, the rest as it was"
    );
}

#[tokio::test]
async fn an_order_that_left_is_found_at_the_top_of_the_list_it_went_to_and_is_no_longer_listed() {
    let sim = sim().await;
    let mut placed = old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    read(&feed, &mut memory).await;
    let shipped = placed.remove(17);
    sim.set_order_status(&shipped, OrderStatus::Shipped);

    let second = read(&feed, &mut memory).await;
    let third = read(&feed, &mut memory).await;

    let mut expected = vec!["READY:incremental:1"];
    expected.extend(PEEKS);
    assert_eq!(walks(&second), expected);
    assert_eq!(listed(&second), sorted(placed));
    assert_eq!(walks(&third), ["READY:incremental:1"], "it adds up again");
}

#[tokio::test]
async fn an_order_gone_without_a_trace_makes_the_list_read_in_full_in_the_same_read() {
    let sim = sim().await;
    let mut placed = old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    read(&feed, &mut memory).await;
    sim.remove_order(&placed.remove(3));

    let second = read(&feed, &mut memory).await;

    let mut expected = vec!["READY:incremental:1"];
    expected.extend(PEEKS);
    expected.push("READY:full(did not add up):3");
    assert_eq!(walks(&second), expected);
    assert_eq!(listed(&second), sorted(placed));
}

#[tokio::test]
async fn an_order_placed_while_paging_is_read_by_a_second_pass() {
    let sim = sim().await;
    let placed = old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    read(&feed, &mut memory).await;
    // Twelve changed since: the read goes to page 2; an order comes in once page 1 is read.
    for id in &placed[..12] {
        sim.touch_order(id);
    }
    sim.change_after(
        1,
        OrderChange::Place(Box::new(NewOrder::new([("SKU-N", 1)]))),
    );

    let second = read(&feed, &mut memory).await;

    assert_eq!(
        walks(&second),
        ["READY:incremental:2", "READY:incremental:2"]
    );
    assert_eq!(listed(&second).len(), 26);
    let new = (second.listing.orders.iter()).find(|o| o.lines[0].sku == "SKU-N");
    assert!(new.is_some(), "the order placed while paging");
}

#[tokio::test]
async fn an_order_without_a_date_makes_the_list_read_in_full_until_it_has_one() {
    let sim = sim().await;
    let placed = old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    read(&feed, &mut memory).await;
    sim.rewrite_order(&placed[5], |order| {
        order["dates"]["updated_at"] = "0000-00-00 00:00:00".into()
    });

    let second = read(&feed, &mut memory).await;
    let third = read(&feed, &mut memory).await;

    assert_eq!(
        walks(&second),
        ["READY:incremental:1", "READY:full(not in order):3"]
    );
    assert_eq!(listed(&second), sorted(placed));
    assert_eq!(walks(&third), ["READY:full(no earlier read):3"]);
}

#[tokio::test]
async fn a_list_is_read_in_full_an_hour_after_its_last_full_read() {
    let sim = sim().await;
    old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    let start = Instant::now();
    read_at(&feed, &mut memory, start).await;

    let before = read_at(&feed, &mut memory, start + FULL_WALK_EVERY / 2).await;
    let after = read_at(&feed, &mut memory, start + FULL_WALK_EVERY).await;
    let next = read_at(&feed, &mut memory, start + FULL_WALK_EVERY).await;

    assert_eq!(walks(&before), ["READY:incremental:1"]);
    assert_eq!(walks(&after), ["READY:full(hourly):3"]);
    assert_eq!(walks(&next), ["READY:incremental:1"]);
}

/// The other reading of the document: a change of state leaves the order's date, and so its
/// place, as it was. The count still sees it leave, and its look-up shows what the service does.
#[tokio::test]
async fn where_a_change_of_state_is_not_dated_the_count_catches_an_order_that_left() {
    let sim = sim().await;
    sim.set_state_changes_move_orders(false);
    let mut placed = old_orders(&sim, 25);
    // Shipped orders dated since the READY ones' last read (70 minutes back, with the margin),
    // and ten more before it, so that the one about to ship (108 minutes old) is not on the
    // pages a look at the top of SHIPPED reads.
    orders_aged(&sim, 30, OrderStatus::Shipped, 600);
    orders_aged(&sim, 10, OrderStatus::Shipped, 4_300);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    read(&feed, &mut memory).await;
    let shipped = placed.remove(24);
    sim.set_order_status(&shipped, OrderStatus::Shipped);

    let second = read(&feed, &mut memory).await;
    let looked_up = sim.order_json(&shipped).expect("the order");
    let date = serde_json::from_value(looked_up["dates"]["updated_at"].clone()).ok();
    let seen = memory.looked_up(&shipped, &OrderStatus::Shipped, date);
    let third = read(&feed, &mut memory).await;

    assert!(
        walks(&second).contains(&"SHIPPED:peek:4".to_owned()),
        "{:?}",
        walks(&second)
    );
    assert_eq!(
        walks(&second).last().map(String::as_str),
        Some("READY:full(did not add up):3")
    );
    assert_eq!(listed(&second), sorted(placed));
    assert!(seen.is_some_and(|s| s.contains(&shipped)));
    assert_eq!(
        walks(&third),
        ["READY:full(state changes do not move orders):3"]
    );
}

#[tokio::test]
async fn an_order_that_moved_to_another_open_list_is_listed_once_there() {
    let sim = sim().await;
    let placed = old_orders(&sim, 25);
    let (feed, mut memory) = (OrderFeed::new(sim.session()), FeedMemory::default());
    let (states, meter) = ([READY, OrderStatus::Processed], Meter::default());
    let first = feed.read_open_orders(&meter, &states, &memory, None).await;
    memory = first.expect("the lists").next;
    sim.set_order_status(&placed[9], OrderStatus::Processed);

    let second = feed.read_open_orders(&meter, &states, &memory, None).await;

    let second = second.expect("the lists");
    assert_eq!(
        walks(&second),
        ["READY:incremental:1", "PROCESSED:incremental:1"],
        "no look at other lists: the order that left READY is in PROCESSED"
    );
    let moved: Vec<&OrderSummary> = (second.listing.orders.iter())
        .filter(|o| o.id == placed[9])
        .collect();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].status, OrderStatus::Processed);
    let mut ready = listed(&second);
    ready.retain(|id| *id != placed[9]);
    let mut expected = placed.clone();
    expected.remove(9);
    assert_eq!(ready, sorted(expected));
}
