//! Recording a source's new answer: the fresh snapshot made against the last one, the
//! mass-zero guard asked, what changed written in one transaction, then published.
//!
//! A dry run makes the snapshot and asks the guard, and writes and publishes nothing.

use std::sync::Arc;
use std::time::Instant;

use super::{NotUsed, SourceChanges, SourceWork, lock};
use crate::ops::report::SourceCounts;
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::plan::{Change, Guard};
use crate::services::{AnswerDigest, Stock};
use crate::store::{self, Side, StoreError};

/// What [`record`] did.
pub(super) struct Recorded {
    pub(super) counts: SourceCounts,
    /// A dry run's snapshot.
    pub(super) fresh: Option<Arc<Column>>,
    /// Every change, where order feeds need them.
    pub(super) changes: SourceChanges,
    /// Their key in `unabsorbed_changes`, when they were written there.
    pub(super) unabsorbed: Option<(i64, i64)>,
}

/// Makes the fresh snapshot, writes what changed in one transaction (with, where order feeds
/// need them, the changes for the reservations: a crash before those are taken in loses no
/// sale), then publishes it (a dry run writes and publishes nothing and returns it instead).
pub(super) async fn record(
    work: &SourceWork,
    records: Stock,
    digest: AnswerDigest,
) -> Result<Recorded, NotUsed> {
    let slot = &work.slot;
    work.per_sku.ensure().await?;
    let recording = Instant::now();
    let mut persisted = work.recorder.lock().await;
    let old = slot.snapshot.borrow().clone();
    let now = store::now_ms();
    let (fresh, named) = fresh_snapshot(work, &old, records)?;
    // The answer is in the snapshot and the names: a first answer of a million SKUs (32 MB)
    // is not held while they are written, nor while its changes are listed.
    let changed = changed_since(&fresh.column, &old);
    let counts = SourceCounts {
        skus: fresh.count_reported,
        changed: changed.len(),
        same: false,
    };
    // Every change, where order feeds need them; a first snapshot's are the snapshot itself.
    let first = old.iter().next().is_none();
    let all_changes = if work.keep_changes && !first {
        every_change(&changed, &old, &fresh.column)
    } else {
        Vec::new()
    };
    let listed_or_first = |column: &Arc<Column>, all_changes: Vec<Change>| {
        if work.keep_changes && first {
            SourceChanges::First(column.clone())
        } else {
            SourceChanges::Listed(all_changes)
        }
    };
    let zeroings = guard(work, &to_zero(&changed, &old, &fresh.column), &old, now)?;
    if work.options.dry_run {
        let column = Arc::new(fresh.column);
        return Ok(Recorded {
            counts,
            changes: listed_or_first(&column, all_changes),
            fresh: Some(column),
            unabsorbed: None,
        });
    }
    let unabsorbed = unabsorbed(slot.id, now, &old, &all_changes);
    let key = unabsorbed.as_ref().map(|u| (u.source, u.at));
    // A change moves the world on; an answer that changed nothing (its records reordered)
    // leaves every target as settled as it was.
    let turn = if changed.is_empty() {
        None
    } else {
        Some(work.generation.next().await)
    };
    let column = Arc::new(fresh.column);
    let write = Write {
        id: slot.id,
        at: now,
        reported: fresh.count_reported,
        generation: turn.as_ref().map(|t| t.number),
        digest: digest.clone(),
        names: work.names.clone(),
        names_from: *persisted,
        changed,
        column: column.clone(),
        zeroings: zeroings.clone(),
        forced: work.options.force,
        unabsorbed,
    };
    let (count, writing) = (write.changed.len(), Instant::now());
    work.store.call(move |c| write.commit(c)).await?;
    *persisted = named;
    // Recorded: memory follows the database; the generation moves on only once the snapshot is
    // published, so a target that saw it has planned from the snapshot too.
    remember(work, &zeroings, digest, counts.skus, now);
    let changes = listed_or_first(&column, all_changes);
    slot.snapshot.send_replace(column);
    if let Some(turn) = turn {
        turn.published();
    }
    tracing::debug!(source = %slot.name, changed = count, ms = recording.elapsed().as_millis() as u64, write_ms = writing.elapsed().as_millis() as u64, "snapshot recorded");
    Ok(Recorded {
        counts,
        fresh: None,
        changes,
        unabsorbed: key,
    })
}

/// The source's memory follows what was recorded: the guard's zeroings (and a forced answer's
/// new start of its window), the answer's digest and how many SKUs it reported.
fn remember(
    work: &SourceWork,
    zeroings: &[(SkuId, i64)],
    digest: AnswerDigest,
    reported: usize,
    at: i64,
) {
    let mut memory = lock(&work.slot.memory);
    memory.guard.remember(zeroings);
    if work.options.force {
        memory.guard_since = Some(at);
    }
    memory.answer = digest;
    memory.reported = reported;
}

/// The fresh snapshot against `old` (the answer used up), and how many names there are once
/// the answer's new ones are added (a dry run never writes names; the recorder's count stays
/// with what the file has). The caller holds the recorder till the new names are written, so
/// no other source adds names meanwhile.
fn fresh_snapshot(
    work: &SourceWork,
    old: &Column,
    records: Stock,
) -> Result<(Fresh, usize), NotUsed> {
    let mut names = work.names.write().unwrap_or_else(|p| p.into_inner());
    let fresh = snapshot_of(&mut names, old, records, &work.slot.name);
    // Looking names up may have found one twice: nothing is recorded from a damaged file.
    store::names_once(&names).map_err(|e| work.per_sku.inconsistent(e))?;
    Ok((fresh, names.len()))
}

/// The changes to 0, which are all the mass-zero guard reads: a first fetch of a million SKUs
/// must not hold a second copy of every change.
fn to_zero(changed: &[SkuId], old: &Column, fresh: &Column) -> Vec<Change> {
    changed
        .iter()
        .filter(|&&sku| fresh.get(sku) == Some(0))
        .map(|&sku| Change {
            sku,
            old: old.get(sku),
            new: 0,
        })
        .collect()
}

/// Every change, for the reservations' drops (only where order feeds need them).
fn every_change(changed: &[SkuId], old: &Column, fresh: &Column) -> Vec<Change> {
    changed
        .iter()
        .map(|&sku| Change {
            sku,
            old: old.get(sku),
            new: fresh.get(sku).unwrap_or(0),
        })
        .collect()
}

/// The source-level guard: an empty answer from a minor input must not wipe its SKUs on a
/// target that sums it with a larger one. Returns the zeroings to remember, or why the answer
/// is held (unless forced, which also starts the guard's window afresh).
fn guard(
    work: &SourceWork,
    to_zero: &[Change],
    old: &Column,
    now: i64,
) -> Result<Vec<(SkuId, i64)>, NotUsed> {
    let forced = work.options.force;
    let mut memory = lock(&work.slot.memory);
    let window = i64::try_from(work.guard_window.as_millis()).unwrap_or(i64::MAX);
    let since = if forced && !work.options.dry_run {
        now
    } else {
        memory.guard_since.unwrap_or(i64::MIN)
    };
    memory.guard.since = now.saturating_sub(window).max(since);
    if let Some(trip) = memory.guard.check(to_zero, old).filter(|_| !forced) {
        return Err(NotUsed::Held {
            zeroed: trip.zeroed,
            positive: trip.positive,
        });
    }
    Ok(if forced {
        Vec::new()
    } else {
        Guard::zeroings(to_zero, now)
    })
}

/// The changes the reservations take in as drops, kept until they have: none for a first
/// snapshot, which drops nothing (every change comes from nothing).
fn unabsorbed(source: i64, at: i64, old: &Column, changes: &[Change]) -> Option<store::Unabsorbed> {
    (old.iter().next().is_some() && !changes.is_empty()).then(|| store::Unabsorbed {
        source,
        at,
        changes: changes
            .iter()
            .map(|c| (c.sku, c.new - c.old.unwrap_or(0)))
            .filter(|&(_, change)| change != 0)
            .collect(),
    })
}

/// Everything one new answer writes, in one transaction.
struct Write {
    id: i64,
    at: i64,
    reported: usize,
    /// The world's generation, when the answer changed something.
    generation: Option<u64>,
    digest: AnswerDigest,
    names: super::Names,
    /// The names from this one on are new.
    names_from: usize,
    changed: Vec<SkuId>,
    column: Arc<Column>,
    zeroings: Vec<(SkuId, i64)>,
    forced: bool,
    unabsorbed: Option<store::Unabsorbed>,
}

impl Write {
    /// The answer's digest, the generation, the new names (encoded as they are written), the
    /// changed quantities, the guard's memory, the fetch, and the changes for the reservations.
    fn commit(self, c: &mut crate::store::db::Connection) -> Result<(), StoreError> {
        let tx = c.transaction()?;
        store::write_answer(&tx, self.id, self.digest.as_bytes())?;
        if let Some(generation) = self.generation {
            store::write_generation(&tx, generation)?;
        }
        {
            let names = self.names.read().unwrap_or_else(|p| p.into_inner());
            store::write_names_from(&tx, &names, self.names_from)?;
        }
        store::write_changed(&tx, Side::Source, self.id, &self.changed, &self.column)?;
        store::write_zeroings(&tx, Side::Source, self.id, &self.zeroings)?;
        if self.forced {
            store::restart_guard(&tx, Side::Source, self.id, self.at)?;
        }
        store::source_fetched(&tx, self.id, self.reported, self.at)?;
        if let Some(changes) = &self.unabsorbed {
            store::write_unabsorbed(&tx, changes)?;
        }
        tx.commit()?;
        Ok(())
    }
}
/// A fresh snapshot, and how many SKUs the answer reported (before those it left out count as 0).
struct Fresh {
    column: Column,
    count_reported: usize,
}

/// The new snapshot from a complete fetch (a SKU reported before but absent now is 0).
/// Connectors report each SKU once; one reported twice counts once, at the smaller quantity,
/// with a WARN: doubt must never oversell.
/// The answer is used up: a first one becomes the SKU table and the column where it lies.
fn snapshot_of(skus: &mut SkuTable, old: &Column, records: Stock, source: &str) -> Fresh {
    let (mut column, held_skus) = if skus.is_empty() {
        match records.into_first() {
            Ok((table, column, held)) => {
                *skus = table;
                (column, held)
            }
            Err(records) => interned(skus, old, records, source),
        }
    } else {
        interned(skus, old, records, source)
    };
    // A record whose quantity could not be read holds its SKU at the last snapshot quantity
    // (absent if it has none): the rest of the answer is used, and doubt changes nothing.
    let mut held = std::collections::HashSet::new();
    for sku in &held_skus {
        let id = skus.intern(sku);
        held.insert(id);
        match old.get(id) {
            Some(quantity) => column.set(id, quantity),
            None => column.clear(id),
        }
    }
    let count_reported = column.count();
    for (sku, _) in old.iter() {
        if column.get(sku).is_none() && !held.contains(&sku) {
            column.set(sku, 0);
        }
    }
    Fresh {
        column,
        count_reported,
    }
}

/// The column of `records`, each name interned one by one, and the SKUs to hold.
fn interned(
    skus: &mut SkuTable,
    old: &Column,
    records: Stock,
    source: &str,
) -> (Column, Vec<String>) {
    let mut column = Column::with_width(skus.len().max(old.width()));
    skus.expect_new(records.len().saturating_sub(skus.len()));
    let mut near = 0;
    for (sku, quantity) in records.iter() {
        let id = skus.intern_near(sku, &mut near);
        match column.get(id) {
            None => column.set(id, quantity),
            Some(first) => {
                let kept = first.min(quantity);
                tracing::warn!(source, sku = %sku, kept, "the source reported this SKU twice; the smaller quantity counts");
                column.set(id, kept);
            }
        }
    }
    (column, records.into_held())
}

/// The SKUs whose quantity in `column` is not the one in `old`.
fn changed_since(column: &Column, old: &Column) -> Vec<SkuId> {
    column
        .iter()
        .filter(|&(sku, q)| old.get(sku) != Some(q))
        .map(|(sku, _)| sku)
        .collect()
}
