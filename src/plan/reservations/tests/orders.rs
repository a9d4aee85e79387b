//! Orders: made, resized, cancelled, looked up, stuck, and the three release modes.

use super::*;

#[test]
fn an_order_reserves_its_quantity_of_each_sku_with_its_lines_summed() {
    let mut book = book();

    see(
        &mut book,
        T,
        &[ready("1", T, &[("A", 2), ("B", 1), ("A", 1)])],
    );

    assert_eq!(book.reserved("A"), 3);
    assert_eq!(book.reserved("B"), 1);
    assert_eq!(book.reserved("C"), 0);
    let changes = book.take_changes();
    assert_eq!(changes.summary.made, 2);
    assert_eq!(changes.upserted.len(), 2);
}

#[test]
fn a_cancelled_order_releases_what_is_not_allotted_at_once() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 3)])]);
    book.take_changes();

    see(
        &mut book,
        T + 1,
        &[order("1", OrderState::Cancelled, T, &[("A", 3)])],
    );

    assert_eq!(book.reserved("A"), 0);
    let changes = book.take_changes();
    assert_eq!(changes.summary.released, 1);
    assert_eq!(changes.removed.len(), 1);
    assert_eq!(book.iter().count(), 0);
}

#[test]
fn what_a_cancelled_order_was_given_goes_to_the_orders_that_could_have_sold_it() {
    // The oldest order was given the drop, but it never shipped: the drop was the other one's.
    let mut book = old_and_young();
    fetch(&mut book, T + 60_000, &[("A", 1)]);
    assert_eq!(book.reserved("A"), 1);

    see(
        &mut book,
        T + 120_000,
        &[order("old", OrderState::Refunded, T, &[("A", 1)])],
    );

    assert_eq!(book.reserved("A"), 0, "the young order's sale was shown");
    assert_eq!(book.take_changes().summary.returned, 1);
}

#[test]
fn what_a_cancelled_order_was_given_and_nobody_can_take_waits_for_a_later_order() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 1)])]);
    fetch(&mut book, T + 60_000, &[("A", 1)]);
    see(
        &mut book,
        T + 120_000,
        &[order("1", OrderState::Cancelled, T, &[])],
    );
    assert_eq!(
        book.unallotted("A"),
        &[Shown {
            at: T + 60_000,
            quantity: 1
        }]
    );

    see(
        &mut book,
        T + 180_000,
        &[ready("2", T + 30_000, &[("A", 1)])],
    );

    assert_eq!(book.reserved("A"), 0);
}

#[test]
fn an_order_refunded_after_it_shipped_keeps_what_it_was_given() {
    let mut book = old_and_young();
    fetch(&mut book, T + 60_000, &[("A", 1)]);
    see(
        &mut book,
        T + 120_000,
        &[order("old", OrderState::Shipped, T, &[("A", 1)])],
    );

    see(
        &mut book,
        T + 180_000,
        &[order("old", OrderState::Refunded, T, &[("A", 1)])],
    );

    assert_eq!(book.reserved("A"), 1, "the young order is still unshown");
}

#[test]
fn an_order_that_left_the_lists_is_kept_until_its_look_up_answers() {
    let mut book = book();
    see(
        &mut book,
        T,
        &[ready("1", T, &[("A", 1)]), ready("2", T, &[("A", 1)])],
    );
    let listed = [ready("2", T, &[("A", 1)])];

    assert_eq!(book.to_look_up(FEED, &listed), vec!["1".to_owned()]);
    see(&mut book, T + 1, &listed);
    assert_eq!(book.reserved("A"), 2, "absence is no evidence");

    let looked_up = order("1", OrderState::Processed, T, &[("A", 1)]);
    see(&mut book, T + 2, &[listed[0].clone(), looked_up]);
    assert_eq!(book.reserved("A"), 2, "still open: the walk missed it");

    let looked_up = order("1", OrderState::Cancelled, T, &[("A", 1)]);
    see(&mut book, T + 3, &[listed[0].clone(), looked_up]);
    assert_eq!(book.reserved("A"), 1);
    assert!(book.to_look_up(FEED, &listed).is_empty());
}

#[test]
fn an_order_open_a_week_past_its_dispatch_date_is_stuck_and_stays_reserved() {
    let mut book = book();
    let due = T + 24 * HOUR;
    let mut late = ready("1", T, &[("A", 2)]);
    late.dispatch_due_at = Some(due);
    see(&mut book, T, &[late.clone()]);

    assert_eq!(book.stuck(due + STUCK_AFTER_DUE_MS).count(), 0);
    see(&mut book, due + STUCK_AFTER_DUE_MS + 1, &[late]);
    fetch(&mut book, due + STUCK_AFTER_DUE_MS + 1, &[]);

    let stuck: Vec<&str> = book
        .stuck(due + STUCK_AFTER_DUE_MS + 1)
        .map(|r| r.order_id.as_str())
        .collect();
    assert_eq!(stuck, vec!["1"]);
    assert_eq!(book.reserved("A"), 2, "never released automatically");
}

#[test]
fn release_status_holds_the_whole_order_until_it_ships_whatever_the_source_shows() {
    let mut book = book_with(FeedRules {
        release: ReleaseMode::Status,
        ..FeedRules::default()
    });
    see(
        &mut book,
        T,
        &[ready("1", T, &[("A", 2)]), ready("2", T, &[("A", 1)])],
    );

    fetch(&mut book, T + MINUTE, &[("A", 3)]);
    assert_eq!(book.reserved("A"), 3);
    assert_eq!(book.unallotted("A").len(), 1);

    see(
        &mut book,
        T + 2 * MINUTE,
        &[
            order("1", OrderState::Shipped, T, &[("A", 2)]),
            order("2", OrderState::Returned, T, &[("A", 1)]),
        ],
    );
    assert_eq!(book.reserved("A"), 0, "released at once, no settle");
}

#[test]
fn release_none_reserves_nothing() {
    let mut book = book_with(FeedRules {
        release: ReleaseMode::None,
        ..FeedRules::default()
    });

    see(&mut book, T, &[ready("1", T, &[("A", 2)])]);

    assert_eq!(book.reserved("A"), 0);
    assert_eq!(book.iter().count(), 0);
}

#[test]
fn a_line_cut_below_what_it_was_given_hands_the_excess_to_other_orders() {
    let mut book = book();
    see(
        &mut book,
        T,
        &[
            ready("old", T, &[("A", 2)]),
            ready("young", T + 1, &[("A", 1)]),
        ],
    );
    fetch(&mut book, T + MINUTE, &[("A", 2)]);

    see(
        &mut book,
        T + 2 * MINUTE,
        &[
            ready("old", T, &[("A", 1)]),
            ready("young", T + 1, &[("A", 1)]),
        ],
    );

    assert_eq!(book.reserved("A"), 0);
}

#[test]
fn a_line_removed_from_its_order_ends_its_reservation() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 1), ("B", 1)])]);

    see(&mut book, T + 1, &[ready("1", T, &[("B", 1)])]);

    assert_eq!(book.reserved("A"), 0);
    assert_eq!(book.reserved("B"), 1);
}

#[test]
fn units_handed_back_reach_an_order_first_seen_in_the_same_read() {
    // The drop at T was the young order's sale, given to the old one; the newest order's sale
    // was then given to the young one. When the old one's line is cut, both units must find
    // their way to an order still outstanding, the newest included, though it is seen only now.
    let mut book = book();
    see(
        &mut book,
        T,
        &[ready("old", T, &[("A", 2)]), ready("young", T, &[("A", 2)])],
    );
    fetch(&mut book, T, &[("A", 2)]);
    fetch(&mut book, T + 10 * MINUTE, &[("A", 1)]);

    see(
        &mut book,
        T + 11 * MINUTE,
        &[
            ready("old", T, &[("B", 1)]),
            ready("young", T, &[("A", 2)]),
            ready("newest", T + 9 * MINUTE, &[("A", 1)]),
        ],
    );

    assert_eq!(book.reserved("A"), 0);
    assert!(book.unallotted("A").is_empty());
}

#[test]
fn an_order_seen_shipped_is_not_looked_up_again_while_it_settles() {
    let mut book = book();
    see(
        &mut book,
        T,
        &[ready("1", T, &[("A", 1)]), ready("2", T, &[("A", 1)])],
    );
    let shipped = order("1", OrderState::Shipped, T, &[("A", 1)]);
    see(&mut book, T + MINUTE, &[shipped]);

    assert_eq!(book.to_look_up(FEED, &[]), vec!["2".to_owned()]);
    assert_eq!(book.reserved("A"), 2, "still settling");
}
