//! One test per rule of the contract's "Orders and reservations", each as an operator would
//! tell it.

use super::*;

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
        state,
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
fn the_warehouse_counting_an_order_ends_its_reservation_so_it_is_not_subtracted_twice() {
    // 10 on the shelf, an order for 3: targets show 7. The warehouse falls to 7: still 7, not 4.
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 3)])]);
    assert_eq!(10 - book.reserved("A"), 7);

    fetch(&mut book, T + 60_000, &[("A", 3)]);

    assert_eq!(7 - book.reserved("A"), 7);
    let changes = book.take_changes();
    assert_eq!(changes.summary.absorbed, 1);
    assert_eq!(changes.summary.allotted, 3);
}

#[test]
fn a_drop_goes_to_the_oldest_order_first() {
    let mut book = book();
    see(
        &mut book,
        T + 10,
        &[
            ready("young", T + 5, &[("A", 1)]),
            ready("old", T, &[("A", 2)]),
        ],
    );

    fetch(&mut book, T + 60_000, &[("A", 2)]);

    let held = book.reservations_of("A");
    assert_eq!(held[0].order_id, "old");
    assert_eq!(held[0].outstanding(), 0);
    assert_eq!(held[1].outstanding(), 1);
}

#[test]
fn a_drop_is_not_given_to_an_order_created_after_the_fetch_beyond_two_minutes_of_skew() {
    let mut book = book();
    let fetch_at = T;
    see(
        &mut book,
        T + 600_000,
        &[
            ready("within", fetch_at + 90_000, &[("A", 1)]),
            ready("beyond", fetch_at + 180_000, &[("A", 1)]),
        ],
    );

    fetch(&mut book, fetch_at, &[("A", 2)]);

    let outstanding: Vec<i64> = book
        .reservations_of("A")
        .iter()
        .map(Reservation::outstanding)
        .collect();
    assert_eq!(outstanding, vec![0, 1]);
    assert_eq!(book.unallotted("A"), &[PastDrop { at: T, quantity: 1 }]);
}

#[test]
fn rises_never_un_allot() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 2)])]);
    fetch(&mut book, T + 1_000, &[("A", 1)]);

    fetch(&mut book, T + 2_000, &[("A", -5), ("A", 0)]);

    assert_eq!(book.reserved("A"), 1);
    assert!(book.unallotted("A").is_empty());
}

#[test]
fn an_order_the_warehouse_counted_before_invsync_saw_it_is_matched_against_that_drop() {
    let mut book = book();
    fetch(&mut book, T + 60_000, &[("A", 2)]);
    assert_eq!(book.unallotted("A").len(), 1, "no reservation took it");

    see(&mut book, T + 120_000, &[ready("1", T, &[("A", 3)])]);

    assert_eq!(book.reserved("A"), 1);
    assert!(book.unallotted("A").is_empty());
    assert_eq!(book.take_changes().summary.backfilled, 2);
}

#[test]
fn a_drop_from_before_an_order_was_created_is_not_its_sale() {
    let mut book = book();
    fetch(&mut book, T, &[("A", 2)]);

    see(
        &mut book,
        T + 3_600_000,
        &[ready("1", T + 180_000, &[("A", 1)])],
    );

    assert_eq!(book.reserved("A"), 1);
}

#[test]
fn drops_older_than_48_hours_are_never_matched_and_are_forgotten() {
    let mut book = book();
    fetch(&mut book, T, &[("A", 1), ("B", 1)]);

    // Not yet pruned, but out of the window for an order first seen 49 hours later.
    see(
        &mut book,
        T + 49 * HOUR,
        &[ready("1", T - HOUR, &[("A", 1)])],
    );
    assert_eq!(book.reserved("A"), 1);

    fetch(&mut book, T + 49 * HOUR, &[]);
    assert!(book.unallotted("B").is_empty());
    let changes = book.take_changes();
    assert!(changes.unallotted.contains(&("B".to_owned(), Vec::new())));
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
    let mut book = book();
    see(
        &mut book,
        T,
        &[
            ready("old", T, &[("A", 1)]),
            ready("young", T + 1, &[("A", 1)]),
        ],
    );
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
        &[PastDrop {
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
    let mut book = book();
    see(
        &mut book,
        T,
        &[
            ready("old", T, &[("A", 1)]),
            ready("young", T + 1, &[("A", 1)]),
        ],
    );
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
fn a_shipped_remainder_is_released_only_after_settle_after_and_a_fetch_made_after_that() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 2)])]);
    let shipped_seen = T + HOUR;
    see(
        &mut book,
        shipped_seen,
        &[order("1", OrderState::Shipped, T, &[("A", 2)])],
    );

    fetch(&mut book, shipped_seen + 29 * MINUTE, &[]);
    assert_eq!(book.reserved("A"), 2, "settle_after has not passed");
    see(&mut book, shipped_seen + 40 * MINUTE, &[]);
    assert_eq!(
        book.reserved("A"),
        2,
        "no fetch made after it has been read"
    );

    fetch(&mut book, shipped_seen + 30 * MINUTE, &[]);

    assert_eq!(book.reserved("A"), 0);
    let summary = book.take_changes().summary;
    assert_eq!(summary.settled_unseen, 2, "counted for the WARN");
    assert_eq!(summary.released, 1);
}

#[test]
fn a_shipped_order_shown_by_the_source_before_settling_releases_nothing_unseen() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 2)])]);
    see(
        &mut book,
        T + HOUR,
        &[order("1", OrderState::Shipped, T, &[("A", 2)])],
    );

    fetch(&mut book, T + 2 * HOUR, &[("A", 2)]);

    assert_eq!(book.reserved("A"), 0);
    assert_eq!(book.take_changes().summary.settled_unseen, 0);
    assert_eq!(book.iter().count(), 0, "settled and gone");
}

#[test]
fn a_settled_order_takes_back_the_units_an_older_order_was_given_for_it() {
    // Orders ship out of order: the young one's sale was given to the old one, which has not
    // left the warehouse. Releasing the young one's remainder would oversell by one.
    let mut book = book();
    see(
        &mut book,
        T,
        &[
            ready("old", T, &[("A", 1)]),
            ready("young", T + 1, &[("A", 1)]),
        ],
    );
    fetch(&mut book, T + MINUTE, &[("A", 1)]);
    see(
        &mut book,
        T + 2 * MINUTE,
        &[
            ready("old", T, &[("A", 1)]),
            order("young", OrderState::Shipped, T + 1, &[("A", 1)]),
        ],
    );

    fetch(&mut book, T + HOUR, &[]);

    assert_eq!(book.reserved("A"), 1, "the old order holds its unit again");
    assert_eq!(book.reservations_of("A")[0].order_id, "old");
    let summary = book.take_changes().summary;
    assert_eq!((summary.reclaimed, summary.settled_unseen), (1, 0));
}

#[test]
fn nothing_is_allotted_or_settled_while_a_source_of_the_sku_is_failing() {
    let mut book = book();
    see(
        &mut book,
        T,
        &[ready("1", T, &[("A", 1)]), ready("2", T, &[("B", 1)])],
    );
    see(
        &mut book,
        T + 1,
        &[
            order("1", OrderState::Shipped, T, &[("A", 1)]),
            ready("2", T, &[("B", 1)]),
        ],
    );
    let drops = [
        Drop {
            sku: "A".to_owned(),
            quantity: 1,
        },
        Drop {
            sku: "B".to_owned(),
            quantity: 1,
        },
    ];

    book.absorb(T + HOUR, &drops[1..], |sku| sku == "A");
    book.absorb(T + HOUR, &drops[..1], |sku| sku == "A");

    assert_eq!(book.reserved("A"), 1, "neither allotted nor settled");
    assert!(book.unallotted("A").is_empty());
    assert_eq!(book.reserved("B"), 0, "a healthy SKU goes on");
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
fn a_line_grown_after_the_warehouse_counted_it_is_matched_against_that_drop() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 1)])]);
    fetch(&mut book, T + MINUTE, &[("A", 2)]);
    assert_eq!(book.reserved("A"), 0);

    see(&mut book, T + 2 * MINUTE, &[ready("1", T, &[("A", 2)])]);

    assert_eq!(book.reserved("A"), 0);
    assert_eq!(book.reservations_of("A")[0].allotted(), 2);
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
fn a_shipped_order_still_absorbs_the_drop_that_shows_it() {
    let mut book = book();
    see(&mut book, T, &[ready("1", T, &[("A", 1)])]);
    see(
        &mut book,
        T + MINUTE,
        &[order("1", OrderState::Shipped, T, &[("A", 1)])],
    );

    fetch(&mut book, T + 2 * MINUTE, &[("A", 1)]);

    assert_eq!(book.reserved("A"), 0);
    assert!(book.unallotted("A").is_empty());
}

#[test]
fn changes_name_only_what_changed_since_they_were_last_taken() {
    let mut book = book();
    see(
        &mut book,
        T,
        &[ready("1", T, &[("A", 1)]), ready("2", T, &[("B", 1)])],
    );
    assert_eq!(book.take_changes().upserted.len(), 2);

    see(
        &mut book,
        T + 1,
        &[ready("1", T, &[("A", 1)]), ready("2", T, &[("B", 1)])],
    );
    assert_eq!(book.take_changes(), Changes::default(), "nothing changed");

    see(
        &mut book,
        T + 2,
        &[order("1", OrderState::Cancelled, T, &[("A", 1)])],
    );
    let changes = book.take_changes();
    assert!(changes.upserted.is_empty());
    assert_eq!(
        changes.removed,
        vec![ReservationKey {
            feed: FEED.to_owned(),
            order_id: "1".to_owned(),
            sku: "A".to_owned()
        }]
    );
}

#[test]
fn a_restored_book_subtracts_and_matches_exactly_as_the_saved_one() {
    let mut book = book();
    see(
        &mut book,
        T,
        &[ready("1", T, &[("A", 3)]), ready("2", T, &[("B", 1)])],
    );
    fetch(&mut book, T + MINUTE, &[("A", 1), ("C", 4)]);
    let saved: Vec<Reservation> = book.iter().cloned().collect();
    let drops = [("C".to_owned(), book.unallotted("C")[0])];

    let mut restored =
        Reservations::restore([(FEED.to_owned(), FeedRules::default())], saved, drops);

    for sku in ["A", "B", "C"] {
        assert_eq!(restored.reserved(sku), book.reserved(sku), "{sku}");
        assert_eq!(restored.unallotted(sku), book.unallotted(sku), "{sku}");
    }
    assert_eq!(restored.to_look_up(FEED, &[]).len(), 2);
    assert_eq!(restored.take_changes(), Changes::default());
}

#[test]
fn unallotted_drops_beyond_the_cap_merge_at_the_older_time() {
    let mut book = book();
    for i in 0..=MAX_UNALLOTTED_PER_SKU as i64 {
        fetch(&mut book, T + i * MINUTE, &[("A", 1)]);
    }

    let kept = book.unallotted("A");
    assert_eq!(kept.len(), MAX_UNALLOTTED_PER_SKU);
    assert_eq!(kept[0], PastDrop { at: T, quantity: 2 });
}

#[test]
fn order_states_parse_in_any_case_and_unknown_names_are_no_answer() {
    assert_eq!(OrderState::parse("READY"), Some(OrderState::Ready));
    assert_eq!(
        OrderState::parse(" processed "),
        Some(OrderState::Processed)
    );
    assert_eq!(OrderState::parse("ON_HOLD"), None);
    for state in OrderState::ALL {
        assert_eq!(OrderState::parse(state.as_str()), Some(state));
    }
}

#[test]
fn orders_of_a_feed_that_is_not_configured_are_an_error_not_a_panic() {
    let mut book = book();

    let answer = book.observe_orders("ebay", T, &[ready("1", T, &[("A", 1)])]);

    assert_eq!(answer, Err(UnknownFeed("ebay".to_owned())));
    assert_eq!(book.reserved("A"), 0);
}

#[test]
fn absurd_quantities_saturate_instead_of_overflowing() {
    let mut book = book();
    see(
        &mut book,
        T,
        &[ready(
            "1",
            T,
            &[("A", i64::MAX), ("A", i64::MAX), ("A", -3)],
        )],
    );
    fetch(&mut book, T + 1, &[("A", i64::MAX), ("A", i64::MAX)]);

    assert_eq!(book.reserved("A"), 0);
}
