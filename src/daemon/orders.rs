//! The order feeds' part of a cycle: read every open order ([`super::feeds`]: in proportion to
//! what changed), look up those that left the lists, and once every source is in, give the
//! sources' drops to the reservations (the pure book in
//! [`crate::plan::reservations`]), record what changed, and publish what is reserved per SKU
//! for the targets to subtract.
//!
//! Targets wait for this step when feeds are configured: a plan made before the reservations
//! are known could push a stale total back over a sale.

use std::sync::{Arc, RwLock};

use futures_util::future::join_all;
use tracing::{error, info, warn};

use super::feeds::{self, FeedListing, FeedSlot, ReadAs};
use super::per_sku::PerSku;
use super::slots::{Book, SourceSlot};
use super::sources::{SourceChanges, SourceDone};
use crate::mapping::Mapping;
use crate::ops::report::OrdersDone;
use crate::ops::rfc3339;
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::plan::reservations::{Changes, Drop, Order, Reservations};
use crate::services::ConnectorError;
use crate::store::{self, Store, StoreError};
use crate::targets::CycleOptions;

/// Runs the step (see the module documentation). A dry run reads nothing and changes nothing:
/// it plans with the reservations as recorded. A full sync reads every list in full.
pub async fn orders_step(
    feeds: Arc<Vec<FeedSlot>>,
    book: Arc<Book>,
    sources: Arc<Vec<Arc<SourceSlot>>>,
    fetches: Vec<impl std::future::Future<Output = Arc<SourceDone>>>,
    per_sku: Arc<PerSku>,
    store: Store,
    options: CycleOptions,
) -> Result<OrdersDone, StoreError> {
    let mut done = OrdersDone::default();
    if options.dry_run {
        join_all(fetches).await;
        return Ok(done);
    }
    let (mapping, ask) = mapping_to_read(&feeds, options).await?;
    let listed =
        join_all((feeds.iter()).map(|feed| feeds::read_feed(feed, &mapping, ask, &book.book)))
            .await;
    let sources_done = join_all(fetches).await;
    let names = per_sku.names();
    let replayed = std::mem::take(&mut *book.unabsorbed.lock().unwrap_or_else(|p| p.into_inner()));
    // The sources' drops are per SKU: a source that changed or failed, or changes a crash kept
    // from the book, need every SKU's name.
    if !replayed.is_empty()
        || sources_done
            .iter()
            .any(|d| !d.ok() || !d.changed.is_empty())
    {
        per_sku.ensure().await?;
    }
    let now = store::now_ms();
    let mut book_guard = book.book.lock().await;
    let reserved_before = reserved_by_sku(&book_guard);
    let mut absorbed = replay(&mut book_guard, &replayed, &names);
    absorbed.extend(sources_done.iter().filter_map(|done| done.unabsorbed));
    let reads = take_in_reads(&feeds, listed, &mut book_guard, now, &mut done).await;
    let (drops, blocked) = drops_of(&sources, &sources_done, &names);
    book_guard.absorb(now, &drops, |sku| blocked.contains(sku));
    let changes = book_guard.take_changes();
    tell_of_book(&book_guard, &changes, now, &mut done);
    // What targets subtract changed: the world moves on (see `Generation`), and the new
    // reservations are published where the names are loaded (else they are computed with
    // them, when a target first needs them).
    let moved = reserved_by_sku(&book_guard) != reserved_before;
    let reserved =
        (per_sku.is_loaded()).then(|| reserved_column(&book_guard, &names, &mut done.unknown_skus));
    drop(book_guard);
    if done.unknown_skus > 0 {
        warn!(
            skus = done.unknown_skus,
            "open orders hold SKUs no source knows; they are listed in status"
        );
    }
    let turn = if moved {
        Some(book.generation.next().await)
    } else {
        None
    };
    let number = turn.as_ref().map(|t| t.number);
    write_changes(&store, changes, absorbed, reads, number).await?;
    if let Some(reserved) = reserved
        && **book.reserved.borrow() != reserved
    {
        book.reserved.send_replace(Arc::new(reserved));
    }
    if let Some(turn) = turn {
        turn.published();
    }
    Ok(done)
}

/// The mapping the feeds' order lines are read under (built only when it may map one), and
/// what this cycle asks of the reads. The version is read first: a mapping rebuilt in between
/// is then read again at the next cycle.
async fn mapping_to_read(
    feeds: &[FeedSlot],
    options: CycleOptions,
) -> Result<(Arc<Mapping>, ReadAs), StoreError> {
    let version = feeds.first().map_or(0, |feed| feed.mapper.version());
    let mapping = match feeds.first() {
        Some(feed) if feeds.iter().any(|f| feed.mapper.may_map(&f.name)) => {
            feed.mapper.mapping().await?
        }
        Some(_) | None => Arc::default(),
    };
    let ask = ReadAs {
        full_sync: options.full,
        mapping: version,
    };
    Ok((mapping, ask))
}

/// Gives the book the changes a crash kept from it, as the cycle that recorded them would
/// have: its drops, as of its fetch (its orders are read again by this cycle, and back-filled
/// from these drops if they are new). Returns their keys, to delete once written.
fn replay(
    book: &mut Reservations,
    replayed: &[store::Unabsorbed],
    names: &RwLock<SkuTable>,
) -> Vec<(i64, i64)> {
    let Some(last) = replayed.last() else {
        return Vec::new();
    };
    book.absorb(last.at, &replayed_drops(replayed, names), |_| false);
    replayed.iter().map(|u| (u.source, u.at)).collect()
}

/// Gives each feed's read to the book, and counts and logs what did not read; returns each
/// feed's read as the database keeps it.
async fn take_in_reads(
    feeds: &[FeedSlot],
    listed: Vec<(Result<FeedListing, ConnectorError>, Vec<Order>)>,
    book: &mut Reservations,
    now: i64,
    done: &mut OrdersDone,
) -> Vec<store::FeedRead> {
    let mut reads = Vec::new();
    let mut any_full: Option<bool> = None;
    for (feed, (read, looked_up)) in feeds.iter().zip(listed) {
        let mut read = match read {
            Ok(read) => read,
            // Stopped by shutdown (or a fleet worker letting the shop go): the feed did not
            // fail, and the next start reads it; its reservations stand as they were.
            Err(e) if e.is_cancelled() => {
                info!(feed = %feed.name, "order feed read stopped by shutdown; its reservations stand as they were");
                done.failed.push(feed.name.clone());
                continue;
            }
            Err(e) => {
                error!(feed = %feed.name, error = %e, "order feed could not be read; its reservations stand as they were and it is read again at the next cycle");
                done.failed.push(feed.name.clone());
                reads.push(store::FeedRead::failed(&feed.name, now, &e.to_string()));
                continue;
            }
        };
        feeds::take_in(feed, book, &mut read, looked_up, now).await;
        done.unreadable += read.bad.len();
        done.pages += read.pages;
        any_full = Some(any_full.unwrap_or(false) || read.full);
        if !read.failed.is_empty() {
            let error = read.failed.join("; ");
            error!(feed = %feed.name, error = %error, "an order list could not be read; the orders of the other lists are used, and orders missing from them are left as they were until it reads again");
            done.failed.push(feed.name.clone());
            reads.push(store::FeedRead::failed(&feed.name, now, &error));
            continue;
        }
        let bad = (read.bad.iter())
            .map(|b| store::UnreadableOrder {
                order_id: b.id.clone(),
                reason: b.reason.clone(),
            })
            .collect();
        reads.push(store::FeedRead::complete(&feed.name, now, bad));
    }
    done.walk = any_full.map(|full| if full { "full" } else { "incremental" });
    reads
}

/// What the book now says for the summary line and the log: what changed, the open orders,
/// and each STUCK order (an ERROR each cycle).
fn tell_of_book(book: &Reservations, changes: &Changes, now: i64, done: &mut OrdersDone) {
    done.summary = changes.summary;
    if changes.summary.settled_unseen > 0 {
        warn!(
            units = changes.summary.settled_unseen,
            "shipped orders were released after settle_after although no source showed their sale; if this keeps happening the source never shows these sales and release = \"status\" fits"
        );
    }
    done.open = book.iter().filter(|r| r.outstanding() > 0).count();
    for r in book.stuck(now) {
        done.stuck += 1;
        error!(feed = %r.feed, order = %r.order_id, sku = %r.sku, due = %r.dispatch_due_at.map(rfc3339).unwrap_or_default(), "order STUCK: open a week past its dispatch date; its reservation is kept until someone looks at it");
    }
}

/// What the book reserves, by SKU id: what the targets subtract. A SKU no source knows has no
/// id: it is counted in `unknown`.
fn reserved_column(book: &Reservations, names: &RwLock<SkuTable>, unknown: &mut usize) -> Column {
    let names = names.read().unwrap_or_else(|p| p.into_inner());
    let mut column = Column::default();
    for (sku, quantity) in book.reserved_by_sku() {
        match names.get(sku) {
            Some(id) => column.set(id, quantity),
            None => *unknown += 1,
        }
    }
    column
}

/// Writes what changed in the book (with the world's new generation, if it moved) and the
/// changes it took in, then each feed's read.
async fn write_changes(
    store: &Store,
    changes: Changes,
    absorbed: Vec<(i64, i64)>,
    reads: Vec<store::FeedRead>,
    generation: Option<u64>,
) -> Result<(), StoreError> {
    if !changes.upserted.is_empty()
        || !changes.removed.is_empty()
        || !changes.unallotted.is_empty()
        || !absorbed.is_empty()
    {
        store
            .call(move |c| store::write_reservation_changes(c, &changes, &absorbed, generation))
            .await?;
    }
    store
        .call(move |c| store::record_feed_reads(c, &reads))
        .await
}

/// What the book reserves per SKU, in SKU order: what the targets subtract.
fn reserved_by_sku(book: &Reservations) -> Vec<(String, i64)> {
    let mut reserved: Vec<(String, i64)> = book
        .reserved_by_sku()
        .map(|(sku, q)| (sku.to_owned(), q))
        .collect();
    reserved.sort_unstable();
    reserved
}

/// The drops in changes a crash kept from the book, summed per SKU over sources and cycles
/// (a SKU that moved from one source to another did not drop).
fn replayed_drops(replayed: &[store::Unabsorbed], names: &RwLock<SkuTable>) -> Vec<Drop> {
    let names = names.read().unwrap_or_else(|p| p.into_inner());
    let mut delta: std::collections::BTreeMap<u32, i64> = Default::default();
    for u in replayed {
        for &(sku, change) in &u.changes {
            *delta.entry(sku).or_default() += change;
        }
    }
    delta
        .into_iter()
        .filter(|&(sku, d)| d < 0 && (sku as usize) < names.len() && !names.name(sku).is_empty())
        .map(|(sku, d)| Drop {
            sku: names.name(sku).to_owned(),
            quantity: -d,
        })
        .collect()
}

/// Each SKU's fall in its total over the sources this cycle, and the SKUs a failed source holds
/// (nothing is allotted for them while it fails).
fn drops_of(
    sources: &[Arc<SourceSlot>],
    done: &[Arc<SourceDone>],
    names: &RwLock<SkuTable>,
) -> (Vec<Drop>, std::collections::HashSet<String>) {
    let names = names.read().unwrap_or_else(|p| p.into_inner());
    let mut blocked = std::collections::HashSet::new();
    for (slot, done) in sources.iter().zip(done) {
        if !done.ok() {
            for (sku, _) in slot.snapshot.borrow().iter() {
                blocked.insert(names.name(sku).to_owned());
            }
        }
    }
    let changed: Vec<&SourceChanges> = (done.iter().filter(|d| d.ok()))
        .map(|d| &d.changed)
        .collect();
    let drops = net_falls(&changed)
        .into_iter()
        .map(|(sku, fall)| Drop {
            sku: names.name(sku).to_owned(),
            quantity: fall,
        })
        .collect();
    (drops, blocked)
}

/// Each SKU's fall in its total over the sources' changes (a SKU that moved from one source to
/// another did not fall), by how much. Only a SKU that fell somewhere can have fallen in all,
/// so the falls are gathered first and the rises added to those alone: a first answer of
/// millions of SKUs, every one a rise, is not summed SKU by SKU.
fn net_falls(changed: &[&SourceChanges]) -> Vec<(SkuId, i64)> {
    let deltas = || changed.iter().flat_map(|c| c.deltas());
    let mut sum: std::collections::BTreeMap<SkuId, i64> = Default::default();
    for (sku, change) in deltas().filter(|&(_, change)| change < 0) {
        *sum.entry(sku).or_default() += change;
    }
    if !sum.is_empty() {
        for (sku, change) in deltas().filter(|&(_, change)| change > 0) {
            if let Some(total) = sum.get_mut(&sku) {
                *total += change;
            }
        }
    }
    sum.into_iter()
        .filter(|&(_, total)| total < 0)
        .map(|(sku, total)| (sku, -total))
        .collect()
}

#[cfg(test)]
mod net_falls_tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::plan::Change;

    fn first(quantities: &[(SkuId, i64)]) -> SourceChanges {
        let mut column = Column::default();
        for &(sku, q) in quantities {
            column.set(sku, q);
        }
        SourceChanges::First(Arc::new(column))
    }

    fn listed(changes: &[(SkuId, Option<i64>, i64)]) -> SourceChanges {
        SourceChanges::Listed(
            (changes.iter())
                .map(|&(sku, old, new)| Change { sku, old, new })
                .collect(),
        )
    }

    #[test]
    fn a_sku_that_moved_to_a_source_read_for_the_first_time_did_not_fall() {
        // The warehouse stops listing SKU 7 (5 to 0) as the new dropship source starts with it.
        let warehouse = listed(&[(7, Some(5), 0), (9, Some(3), 1)]);
        let dropship = first(&[(7, 5), (8, 2)]);
        assert_eq!(net_falls(&[&warehouse, &dropship]), vec![(9, 2)]);
        // Without the new source's first answer, 7 fell by 5.
        assert_eq!(net_falls(&[&warehouse]), vec![(7, 5), (9, 2)]);
        // A first answer alone rises everywhere.
        assert_eq!(net_falls(&[&dropship]), vec![]);
    }

    proptest! {
        #[test]
        fn the_falls_are_the_sums_over_every_change_that_are_below_zero(
            sources in prop::collection::vec(
                (any::<bool>(), prop::collection::btree_map(0u32..40, (prop::option::of(0i64..20), 0i64..20), 0..30)),
                1..4,
            ),
        ) {
            let changes: Vec<SourceChanges> = (sources.iter())
                .map(|(is_first, map)| {
                    if *is_first {
                        let q: Vec<(SkuId, i64)> = map.iter().map(|(&s, &(_, n))| (s, n)).collect();
                        first(&q)
                    } else {
                        let c: Vec<(SkuId, Option<i64>, i64)> =
                            map.iter().map(|(&s, &(o, n))| (s, o, n)).collect();
                        listed(&c)
                    }
                })
                .collect();
            let mut naive: std::collections::BTreeMap<SkuId, i64> = Default::default();
            for c in &changes {
                for (sku, d) in c.deltas() {
                    *naive.entry(sku).or_default() += d;
                }
            }
            let expected: Vec<(SkuId, i64)> =
                naive.into_iter().filter(|&(_, d)| d < 0).map(|(s, d)| (s, -d)).collect();
            let refs: Vec<&SourceChanges> = changes.iter().collect();
            prop_assert_eq!(net_falls(&refs), expected);
        }
    }
}
