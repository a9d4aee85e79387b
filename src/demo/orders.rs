//! The demo's shoppers: now and then one orders a warehouse SKU on Hardtofind, and the warehouse
//! counts the sale a little later, so the summary line shows the reservation made (`made=1`:
//! Hardtofind shows the warehouse's figure minus the order) and then absorbed (`absorbed=1`:
//! the warehouse shows the sale, which is not subtracted a second time).

use std::collections::VecDeque;

use rand::Rng;
use tracing::info;

use super::simulators::{Simulators, WAREHOUSE, WAREHOUSE_SKUS, warehouse_sku};
use crate::services::hardtofind::sim::NewOrder;
use crate::services::hardtofind::wire::OrderStatus;

/// The last SKUs of the warehouse are the ones shoppers buy; the demo's random stock changes
/// leave them alone, so that counting a sale is the warehouse's only change to them.
pub(super) const ORDERED_SKUS: usize = 10;

/// An order every this many rounds of the demo's changes (about every 12 s).
const ORDER_EVERY: u64 = 3;

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
}

impl Shoppers {
    /// One round: counts and ships what is due, and now and then places an order.
    pub(super) fn round(&mut self, simulators: &Simulators, round: u64, rng: &mut impl Rng) {
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
            info!(order = %placed.id, sku = %placed.sku, quantity = placed.quantity, "demo: the warehouse counted the sale; watch the next cycle absorb the reservation (absorbed=1) rather than subtract it twice");
        }
        while let Some(placed) = self.placed.front().filter(|p| p.shipped_at <= round) {
            simulators
                .hardtofind
                .set_order_status(&placed.id, OrderStatus::Shipped);
            self.placed.pop_front();
        }
        if round % ORDER_EVERY != 2 {
            return;
        }
        let sku = warehouse_sku(WAREHOUSE_SKUS - rng.random_range(0..ORDERED_SKUS));
        let mut have = quantity(simulators, &sku);
        if have < 1 {
            have = 20;
            simulators.hako.set_quantity(WAREHOUSE, &sku, have);
        }
        let quantity = rng.random_range(1..=have.min(3));
        let id = simulators
            .hardtofind
            .place_order(NewOrder::new([(sku.clone(), quantity)]));
        info!(order = %id, sku = %sku, quantity, "demo: a shopper ordered on Hardtofind; watch the next cycle reserve it (made=1): every target shows the warehouse's figure minus the order until the warehouse counts the sale");
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

fn quantity(simulators: &Simulators, sku: &str) -> i64 {
    simulators
        .hako
        .inventory(WAREHOUSE)
        .get(sku)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shopper_orders_the_warehouse_counts_it_two_rounds_later_and_it_ships_after() {
        let simulators = Simulators::start(0, Default::default())
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
