//! The shoppers: now and then one orders a warehouse SKU on Hardtofind, and the warehouse counts
//! the sale a little later, so the summary line shows the reservation made (`made=1`: Hardtofind
//! shows the warehouse's figure minus the order) and then absorbed (`absorbed=1`: the warehouse
//! shows the sale, which is not subtracted a second time).
//!
//! Under `invsync sim` some shoppers order a dropship item instead: nobody but the relay ships
//! those, so with `[relay]` on, the order is placed at Endless Aisles (in `approve` mode once
//! `invsync relay approve ORDER` said so), and the supplier ships it a little later with a
//! tracking number the relay sends back to Hardtofind ([`Supplier`]).

use std::collections::{HashMap, VecDeque};

use rand::Rng;
use tracing::info;

use super::simulators::{Simulators, WAREHOUSE};
use super::skus::Skus;
use crate::services::hardtofind::sim::NewOrder;
use crate::services::hardtofind::wire::OrderStatus;

/// The last SKUs of the warehouse are the ones shoppers buy (at most this many, half of a small
/// catalogue); the random stock changes leave them alone, so that counting a sale is the
/// warehouse's only change to them.
const ORDERED_SKUS: usize = 10;

/// How many of the last warehouse SKUs shoppers buy, out of `count`.
pub(super) fn ordered_skus(count: usize) -> usize {
    (count / 2).clamp(1, ORDERED_SKUS)
}

/// An order every this many rounds of the changes (about every 12 s).
const ORDER_EVERY: u64 = 3;

/// Under `invsync sim`, the second order and every fourth after it is for a dropship item (the
/// first about 20 s in, then about every 48 s).
const DROPSHIP_EVERY: u64 = 4;

/// Rounds between the supplier seeing an order and shipping it (about 8 s).
const SHIP_AFTER: u64 = 2;

/// An order placed and not yet shipped.
struct Placed {
    id: String,
    sku: String,
    quantity: i64,
    /// The round at which the warehouse counts it (two rounds later: a cycle has reserved it).
    counted_at: u64,
    /// The round at which it ships.
    shipped_at: u64,
    counted: bool,
}

/// The shoppers and the orders they placed.
#[derive(Default)]
pub(super) struct Shoppers {
    placed: VecDeque<Placed>,
    /// Whether some orders are for dropship items, left for the relay (`invsync sim`).
    dropship: bool,
    /// Orders placed so far.
    orders: u64,
    supplier: Supplier,
}

impl Shoppers {
    /// Shoppers who order dropship items too, now and then.
    pub(super) fn with_dropship() -> Shoppers {
        Shoppers {
            dropship: true,
            ..Shoppers::default()
        }
    }

    /// One round: counts and ships what is due, the supplier ships what it has had long
    /// enough, and now and then a shopper places an order.
    pub(super) fn round(&mut self, simulators: &Simulators, round: u64, rng: &mut impl Rng) {
        let skus = simulators.skus;
        for placed in self
            .placed
            .iter_mut()
            .filter(|p| !p.counted && p.counted_at <= round)
        {
            let have = quantity(simulators, &placed.sku);
            simulators
                .hako
                .set_quantity(WAREHOUSE, &placed.sku, (have - placed.quantity).max(0));
            placed.counted = true;
            info!(order = %placed.id, sku = %placed.sku, quantity = placed.quantity, "sim: the warehouse counted the sale; watch the next cycle absorb the reservation (absorbed=1) rather than subtract it twice");
        }
        while let Some(placed) = self.placed.front().filter(|p| p.shipped_at <= round) {
            simulators
                .hardtofind
                .set_order_status(&placed.id, OrderStatus::Shipped);
            self.placed.pop_front();
        }
        self.supplier.round(simulators, round);
        if round % ORDER_EVERY != 2 {
            return;
        }
        let nth = self.orders;
        self.orders += 1;
        if self.dropship && nth % DROPSHIP_EVERY == 1 {
            order_dropship(simulators, rng);
            return;
        }
        let sku =
            skus.warehouse_sku(skus.count() - rng.random_range(0..ordered_skus(skus.count())));
        let mut have = quantity(simulators, &sku);
        if have < 1 {
            have = 20;
            simulators.hako.set_quantity(WAREHOUSE, &sku, have);
        }
        let quantity = rng.random_range(1..=have.min(3));
        let id = simulators
            .hardtofind
            .place_order(NewOrder::new([(sku.clone(), quantity)]));
        info!(order = %id, sku = %sku, quantity, "sim: a shopper ordered on Hardtofind; watch the next cycle reserve it (made=1): every target shows the warehouse's figure minus the order until the warehouse counts the sale");
        self.placed.push_back(Placed {
            id,
            sku,
            quantity,
            counted_at: round + 2,
            shipped_at: round + 3,
            counted: false,
        });
    }
}

/// A shopper orders a dropship item that can be ordered at Endless Aisles, to an address it
/// takes (a US one: its `state` has two letters). Nothing here ships it: that is the relay's
/// part.
fn order_dropship(simulators: &Simulators, rng: &mut impl Rng) {
    let skus = simulators.skus;
    let mut i = rng.random_range(1..=skus.count());
    if !Skus::dropship_sellable(i) {
        // Never two unsellable items in a row (every 25th and every 40th), and never item 0.
        i -= 1;
    }
    let ea = &simulators.endless_aisles;
    let option = skus.dropship_id(i);
    if ea.stock_of(&option).unwrap_or(0) < 1 {
        ea.set_stock(&option, 20);
    }
    let sku = skus.dropship_sku(i);
    let quantity = rng.random_range(1..=2);
    let mut order = NewOrder::new([(sku.clone(), quantity)]);
    order.address.state = Some("NC".into());
    order.address.suburb = Some("Cary".into());
    order.address.postcode = Some("27511".into());
    order.address.country = Some("United States".into());
    let id = simulators.hardtofind.place_order(order);
    info!(order = %id, sku = %sku, quantity, "sim: a shopper ordered a dropship item on Hardtofind; with [relay] on, the relay places it at Endless Aisles (mode = \"approve\": once `invsync relay approve {id}` says so)");
}

/// Endless Aisles' warehouse: an order placed there ships [`SHIP_AFTER`] rounds after it is first
/// seen, whole, with a FedEx tracking number (a carrier Hardtofind's `GET /shipping-providers`
/// lists), and its items leave the supplier's stock (production deducts at fulfilment).
#[derive(Default)]
struct Supplier {
    /// Orders not yet shipped, with the round each was first seen.
    seen: HashMap<u64, u64>,
}

impl Supplier {
    fn round(&mut self, simulators: &Simulators, round: u64) {
        let ea = &simulators.endless_aisles;
        let open: Vec<_> = ea
            .orders()
            .into_iter()
            .filter(|o| o.status == "Scheduled")
            .collect();
        self.seen.retain(|id, _| open.iter().any(|o| o.id == *id));
        for order in open {
            let seen = *self.seen.entry(order.id).or_insert(round);
            if round < seen + SHIP_AFTER {
                continue;
            }
            let number = format!("7946{:08}", order.id);
            let url = format!("https://www.fedex.com/fedextrack/?trknbr={number}");
            for line in &order.lines {
                let left = line.quantity.saturating_sub(line.quantity_shipped);
                ea.ship_line(order.id, line.option_id, left, &url, &number);
                let option = line.option_id.to_string();
                if let Some(have) = ea.stock_of(&option) {
                    let left = i64::try_from(left).unwrap_or(i64::MAX);
                    ea.set_stock(&option, have.saturating_sub(left).max(0));
                }
            }
            self.seen.remove(&order.id);
            info!(supplier_order = order.id, tracking = %number, "sim: Endless Aisles shipped an order by FedEx; watch the next cycle send its tracking to Hardtofind (relay: order moved … state=\"shipped\"), and the one after see it done");
        }
    }
}

fn quantity(simulators: &Simulators, sku: &str) -> i64 {
    simulators.hako.quantity(WAREHOUSE, sku).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shopper_orders_the_warehouse_counts_it_two_rounds_later_and_it_ships_after() {
        let simulators = Simulators::start(0, Default::default(), Skus::default())
            .await
            .expect("simulators");
        let mut shoppers = Shoppers::default();
        let mut rng = rand::rng();
        let before = simulators.hako.inventory(WAREHOUSE);

        for round in 1..=2 {
            shoppers.round(&simulators, round, &mut rng);
        }
        let placed = shoppers
            .placed
            .front()
            .map(|p| (p.id.clone(), p.sku.clone(), p.quantity));
        let (id, sku, ordered) = placed.expect("an order at round 2");
        let had = before.get(&sku).copied().filter(|&q| q > 0).unwrap_or(20);
        assert_eq!(
            simulators.hardtofind.order_status(&id),
            Some(OrderStatus::Ready)
        );
        shoppers.round(&simulators, 3, &mut rng);
        assert_eq!(quantity(&simulators, &sku), had, "not counted yet");
        shoppers.round(&simulators, 4, &mut rng);
        assert_eq!(quantity(&simulators, &sku), had - ordered, "counted");
        assert_eq!(
            simulators.hardtofind.order_status(&id),
            Some(OrderStatus::Ready)
        );
        shoppers.round(&simulators, 5, &mut rng);
        assert_eq!(
            simulators.hardtofind.order_status(&id),
            Some(OrderStatus::Shipped)
        );
    }
}
