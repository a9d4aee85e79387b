//! One test per rule of the contract's "Orders and reservations", each as an operator would
//! tell it: what drops do (`drops`), what orders do (`orders`), and the book as a whole (`book`).

mod book;
mod drops;
mod orders;

use super::*;
use crate::services::hardtofind::OrderState;
use crate::services::hardtofind::order_state::DEFAULT_RESERVE;

const T: Millis = 1_700_000_000_000;
const FEED: &str = "hardtofind";

fn book() -> Reservations {
    book_with(FeedRules::default())
}

fn book_with(rules: FeedRules) -> Reservations {
    Reservations::new([(FEED.to_owned(), rules)])
}

fn order(id: &str, state: OrderState, created_at: Millis, lines: &[(&str, i64)]) -> Order {
    Order {
        id: id.to_owned(),
        state: state.as_str().to_owned(),
        phase: crate::services::hardtofind::reserving::phase(state, &DEFAULT_RESERVE),
        created_at,
        dispatch_due_at: None,
        lines: lines
            .iter()
            .map(|&(sku, quantity)| OrderLine {
                sku: sku.to_owned(),
                quantity,
            })
            .collect(),
    }
}

fn ready(id: &str, created_at: Millis, lines: &[(&str, i64)]) -> Order {
    order(id, OrderState::Ready, created_at, lines)
}

/// Two open orders for one unit of A each, read at `T`: "old", created at `T`, and "young",
/// a millisecond later.
fn old_and_young() -> Reservations {
    let mut book = book();
    see(
        &mut book,
        T,
        &[
            ready("old", T, &[("A", 1)]),
            ready("young", T + 1, &[("A", 1)]),
        ],
    );
    book
}

fn see(book: &mut Reservations, now: Millis, orders: &[Order]) {
    book.observe_orders(FEED, now, orders)
        .expect("the feed is configured");
}

fn fetch(book: &mut Reservations, at: Millis, drops: &[(&str, i64)]) {
    let drops: Vec<Drop> = drops
        .iter()
        .map(|&(sku, quantity)| Drop {
            sku: sku.to_owned(),
            quantity,
        })
        .collect();
    book.absorb(at, &drops, |_| false);
}
