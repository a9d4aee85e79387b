//! Drops: who is given them, when they are matched later, and when shipped orders settle.

use super::*;

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
    assert_eq!(book.unallotted("A"), &[Shown { at: T, quantity: 1 }]);
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
    let mut book = old_and_young();
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
fn unallotted_drops_beyond_the_cap_merge_at_the_older_time() {
    let mut book = book();
    for i in 0..=MAX_UNALLOTTED_PER_SKU as i64 {
        fetch(&mut book, T + i * MINUTE, &[("A", 1)]);
    }

    let kept = book.unallotted("A");
    assert_eq!(kept.len(), MAX_UNALLOTTED_PER_SKU);
    assert_eq!(kept[0], Shown { at: T, quantity: 2 });
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
