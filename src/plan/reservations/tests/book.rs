//! The book as a whole: changes to persist, restoring, and answers that are not what we expect.

use super::*;

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
fn orders_of_a_feed_that_is_not_configured_are_an_error_not_a_panic() {
    let mut book = book();

    let answer = book.observe_orders("ebay", T, &[ready("1", T, &[("A", 1)])]);

    assert_eq!(answer, Err(UnknownFeed("ebay".to_owned())));
    assert_eq!(book.reserved("A"), 0);
}
