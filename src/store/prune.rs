//! Keeping the database from growing without end: the cycle history is trimmed, and SKUs that
//! nothing holds any more are forgotten.
//!
//! A SKU's id indexes every chunk column (see [`super::chunks`]), so ids are never renumbered:
//! a forgotten SKU keeps its id with a blank name (no SKU is ever blank: sources drop such
//! records), and every column's entry for it is cleared. Should the SKU come back it is a new
//! SKU, with a new id, and every target is pushed its quantity afresh.

use std::collections::HashSet;

use super::db::{Connection, OptionalExtension, params};

use super::StoreError;
use super::chunks::{self, ABSENT, CHUNK, Chunk, corrupt};
use crate::plan::ledger::SkuId;

/// How much of the cycle history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CycleRetention {
    /// The newest rows are always kept, however old (what `status` shows after a long stop).
    pub newest: usize,
    /// Rows younger than this are kept too (a week of history to look back on)…
    pub younger_than_ms: i64,
    /// …but never more rows than this in all, so a schedule of one second (86,400 rows a day)
    /// cannot fill the disk with history.
    pub at_most: usize,
}

/// The history invsync keeps: the last 1,000 cycles, and up to a week of them within 100,000.
pub const CYCLE_RETENTION: CycleRetention = CycleRetention {
    newest: 1_000,
    younger_than_ms: 7 * 24 * 3_600_000,
    at_most: 100_000,
};

/// Deletes the cycles `keep` does not keep, except the very first cycle (the staleness alarm
/// measures a source that never answered from it). Cheap enough to call after every cycle.
/// Returns how many rows were deleted.
pub fn prune_cycles(
    conn: &Connection,
    now_ms: i64,
    keep: &CycleRetention,
) -> Result<usize, StoreError> {
    // `OFFSET n` finds the id of the (n+1)-th newest row: rows below it are beyond the newest
    // n+1. With fewer rows the subquery is NULL and the comparison deletes nothing.
    let offset = |rows: usize| i64::try_from(rows.max(1) - 1).unwrap_or(i64::MAX);
    let deleted = conn.execute(
        "DELETE FROM cycles
         WHERE id > (SELECT min(id) FROM cycles)
           AND ((id < (SELECT id FROM cycles ORDER BY id DESC LIMIT 1 OFFSET ?1) AND started_at < ?2)
                OR id < (SELECT id FROM cycles ORDER BY id DESC LIMIT 1 OFFSET ?3))",
        params![
            offset(keep.newest),
            now_ms.saturating_sub(keep.younger_than_ms),
            offset(keep.at_most)
        ],
    )?;
    Ok(deleted)
}

/// Forgets every SKU that no source snapshot and no target holds above 0, that no refusal
/// names, that no target may have taken without acknowledging it, that went to 0 nowhere since `zeroed_since` (the mass-zero guard still counts it
/// within its window), and that `keep` does not list (the ids other tables hold by name:
/// reservations): its name is blanked and its zeros are cleared from every column, ids
/// unchanged. Returns how many SKUs were forgotten.
///
/// Call it only while no [`crate::plan::ledger::SkuTable`] is in memory (at start, before
/// [`super::load_skus`]): a table loaded before would still know the old names and write
/// quantities for ids whose names are gone.
pub fn prune_sku_names(
    conn: &mut Connection,
    keep: &HashSet<SkuId>,
    zeroed_since: i64,
) -> Result<usize, StoreError> {
    let tx = conn.transaction()?;
    // What follows reads and rewrites the chunks alone: the deltas go into them first (and stay
    // there should nothing be forgotten: the fold is as good as the deltas).
    super::deltas::fold_all(&tx)?;
    let skus = chunks::sku_count(&tx)?;
    let mut held = vec![false; skus];
    for &id in keep {
        if let Some(slot) = held.get_mut(id as usize) {
            *slot = true;
        }
    }
    {
        let mut stmt = tx.prepare("SELECT sku_id FROM failed_skus")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id = chunks::check_named(row.get(0)?, skus, "failed_skus")?;
            held[id as usize] = true;
        }
        let mut stmt = tx.prepare("SELECT id FROM targets WHERE in_doubt IS NOT NULL")?;
        let targets: Vec<i64> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for target in targets {
            for id in super::load_in_doubt(&tx, target)? {
                held[id as usize] = true;
            }
        }
    }
    let columns = quantity_chunks(&tx)?;
    let memories = [
        chunks::side_code(super::Side::SourceZeroedAt),
        chunks::side_code(super::Side::TargetZeroedAt),
    ];
    for (side, _, chunk, values) in &columns {
        // A guard's memory holds a time, not a quantity: only a zeroing within the window holds.
        let floor = if memories.contains(side) {
            zeroed_since.max(1)
        } else {
            1
        };
        for (i, &quantity) in values.iter().enumerate() {
            if quantity >= floor {
                let id = i64::from(*chunk) * CHUNK as i64 + i as i64;
                held[chunks::check_named(id, skus, "quantity_chunks")? as usize] = true;
            }
        }
    }
    // Reservations and the drops kept for back-fill name their SKUs rather than number them.
    let mut named = HashSet::new();
    {
        let mut stmt =
            tx.prepare("SELECT sku FROM reservations UNION SELECT sku FROM unallotted")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            named.insert(row.get::<_, String>(0)?);
        }
    }
    let forgotten = blank_names(&tx, &held, &named)?;
    if forgotten.is_empty() {
        tx.commit()?;
        return Ok(0);
    }
    let mut clear = tx.prepare_cached(
        "UPDATE quantity_chunks SET quantities = ?4 WHERE side = ?1 AND endpoint = ?2 AND chunk = ?3",
    )?;
    for (side, endpoint, chunk, mut values) in columns {
        let first = chunk as usize * CHUNK;
        let mut changed = false;
        for (i, value) in values.iter_mut().enumerate() {
            if *value != ABSENT && forgotten.contains(&((first + i) as SkuId)) {
                *value = ABSENT;
                changed = true;
            }
        }
        if changed {
            let bytes = chunks::encode_quantities(&values);
            clear.execute(params![side, endpoint, chunk, bytes])?;
        }
    }
    drop(clear);
    tx.commit()?;
    Ok(forgotten.len())
}

/// Forgetting names is rare: at most once in this long (at a start or a reload).
pub const SKU_NAMES_PRUNED_EVERY_MS: i64 = 3_600_000;

/// [`prune_sku_names`] when the last time was [`SKU_NAMES_PRUNED_EVERY_MS`] ago or more (or
/// never), keeping what the mass-zero guard still counts within `guard_window_ms`; `None` when
/// it was not due. Call it where [`prune_sku_names`] may be called.
pub fn prune_sku_names_when_due(
    conn: &mut Connection,
    now_ms: i64,
    guard_window_ms: i64,
) -> Result<Option<usize>, StoreError> {
    // Eight little-endian bytes (the column is a BLOB, PostgreSQL's BYTEA); a SQLite file
    // written before kept a plain integer there.
    let last: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'sku_names_pruned_at'",
            [],
            |r| {
                Ok(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Integer(at) => Some(at),
                    rusqlite::types::ValueRef::Blob(bytes) => {
                        <[u8; 8]>::try_from(bytes).ok().map(i64::from_le_bytes)
                    }
                    _ => None,
                })
            },
        )
        .optional()?
        .flatten();
    if last.is_some_and(|at| now_ms.saturating_sub(at) < SKU_NAMES_PRUNED_EVERY_MS) {
        return Ok(None);
    }
    let forgotten = prune_sku_names(
        conn,
        &HashSet::new(),
        now_ms.saturating_sub(guard_window_ms),
    )?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('sku_names_pruned_at', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [now_ms.to_le_bytes().to_vec()],
    )?;
    Ok(Some(forgotten))
}

/// One quantity chunk, decoded: `(side, endpoint, chunk, quantities)`.
type QuantityChunk = (i64, i64, u32, Box<[i64; CHUNK]>);

/// Every quantity chunk.
fn quantity_chunks(conn: &Connection) -> Result<Vec<QuantityChunk>, StoreError> {
    let mut stmt = conn.prepare("SELECT side, endpoint, chunk, quantities FROM quantity_chunks")?;
    let mut rows = stmt.query([])?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        let chunk =
            u32::try_from(row.get::<_, i64>(2)?).map_err(|e| corrupt("quantity_chunks", e))?;
        let bytes = row
            .get_ref(3)?
            .as_blob()
            .map_err(|e| corrupt("quantity_chunks", e))?;
        let mut values = Box::new([ABSENT; CHUNK]);
        chunks::decode_quantities(bytes, &mut values)
            .map_err(|e| corrupt("quantity_chunks", format!("chunk {chunk} malformed: {e}")))?;
        all.push((row.get(0)?, row.get(1)?, chunk, values));
    }
    Ok(all)
}

/// Blanks the name of every SKU not `held` (and not blank already); returns their ids.
fn blank_names(
    conn: &Connection,
    held: &[bool],
    named: &HashSet<String>,
) -> Result<HashSet<SkuId>, StoreError> {
    let mut forgotten = HashSet::new();
    let mut rewritten: Vec<Chunk> = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT chunk, names FROM sku_chunks ORDER BY chunk")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let chunk =
                u32::try_from(row.get::<_, i64>(0)?).map_err(|e| corrupt("sku_chunks", e))?;
            let bytes = row
                .get_ref(1)?
                .as_blob()
                .map_err(|e| corrupt("sku_chunks", e))?;
            let names = chunks::decode_names(bytes)?;
            let first = chunk as usize * CHUNK;
            let mut blanked = false;
            let mut encoded = Vec::with_capacity(bytes.len());
            for (i, name) in names.iter().enumerate() {
                let id = first + i;
                let keep = name.is_empty()
                    || held.get(id).copied().unwrap_or(true)
                    || named.contains(*name);
                let name = if keep {
                    *name
                } else {
                    forgotten.insert(id as SkuId);
                    blanked = true;
                    ""
                };
                chunks::encode_name(&mut encoded, name);
            }
            if blanked {
                rewritten.push((chunk, encoded));
            }
        }
    }
    chunks::write_name_chunks(conn, &rewritten)?;
    Ok(forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ledger::{Column, SkuTable};
    use crate::store::Side;
    use crate::store::db::testing::on_both_engines;
    use crate::store::{load_column, load_skus, name_chunks_from};
    use chunks::quantity_chunks_after;

    on_both_engines! {
        fn cycles_beyond_the_newest_and_older_than_a_week_are_pruned_but_never_the_first(conn) {
            let day = 24 * 3_600_000;
            let now = 100 * day;
            // 40 cycles a day apart (the oldest 39 days ago), then 30 in the last minute.
            for i in 0..40 {
                conn.execute(
                    "INSERT INTO cycles (started_at) VALUES (?1)",
                    [now - (39 - i) * day],
                )
                .expect("row");
            }
            for i in 0..30 {
                conn.execute(
                    "INSERT INTO cycles (started_at) VALUES (?1)",
                    [now - 60_000 + i],
                )
                .expect("row");
            }
            let keep = CycleRetention {
                newest: 10,
                younger_than_ms: 7 * day,
                at_most: 50,
            };

            let deleted = prune_cycles(&conn, now, &keep).expect("prunes");

            let ids: Vec<i64> = conn
                .prepare("SELECT id FROM cycles ORDER BY id")
                .expect("query")
                .query_map([], |r| r.get(0))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("ids");
            // Kept: the first; the last 8 days' eight (ids 33..=40) and the 30 recent (41..=70):
            // 38 rows, under the 50 at most.
            assert_eq!(ids.first(), Some(&1), "the first cycle stays");
            assert_eq!(ids[1], 33);
            assert_eq!(ids.len(), 1 + 38);
            assert_eq!(deleted, 70 - 39);
            let tight = CycleRetention {
                at_most: 20,
                ..keep
            };
            prune_cycles(&conn, now, &tight).expect("prunes");
            let count: i64 = conn
                .query_row("SELECT count(*) FROM cycles", [], |r| r.get(0))
                .expect("count");
            assert_eq!(count, 1 + 20, "at most 20 besides the first, however young");
            assert_eq!(prune_cycles(&conn, now, &tight).expect("again"), 0);

        }

        fn skus_nobody_holds_lose_their_names_but_keep_their_ids_so_every_column_still_lines_up(conn) {
            let mut skus = SkuTable::default();
            for name in [
                "GONE",
                "STOCKED",
                "REFUSED",
                "ZERO-AT-TARGET",
                "KEPT",
                "GONE-TOO",
            ] {
                skus.intern(name);
            }
            chunks::write_name_chunks(&conn, &name_chunks_from(&skus, 0)).expect("names");
            let source = quantity_chunks_after(&Column::default(), &[(0, 0), (1, 4), (3, 0), (5, 0)]);
            let target = quantity_chunks_after(&Column::default(), &[(0, 0), (1, 4), (3, 0)]);
            chunks::write_quantity_chunks(&conn, Side::Source, 1, &source).expect("snapshot");
            chunks::write_quantity_chunks(&conn, Side::Target, 1, &target).expect("acks");
            conn.execute(
                "INSERT INTO targets (id, name) VALUES (1, 'hardtofind')",
                [],
            )
            .expect("target");
            conn.execute(
                "INSERT INTO failed_skus (target_id, sku_id, quantity, message, first_failed_at, last_failed_at)
                 VALUES (1, 2, 5, 'refused', 10, 20)",
                [],
            )
            .expect("refusal");

            let forgotten = prune_sku_names(&mut conn, &HashSet::from([4]), 0).expect("prunes");

            assert_eq!(forgotten, 3, "GONE, ZERO-AT-TARGET and GONE-TOO");
            let names = load_skus(&conn).expect("loads");
            let all: Vec<&str> = (0..6).map(|id| names.name(id)).collect();
            assert_eq!(all, ["", "STOCKED", "REFUSED", "", "KEPT", ""]);
            assert_eq!(names.get("STOCKED"), Some(1), "ids unchanged");
            let snapshot = load_column(&conn, Side::Source, 1).expect("loads");
            assert_eq!(snapshot.iter().collect::<Vec<_>>(), vec![(1, 4)]);
            let acks = load_column(&conn, Side::Target, 1).expect("loads");
            assert_eq!(acks.iter().collect::<Vec<_>>(), vec![(1, 4)]);
            assert_eq!(
                prune_sku_names(&mut conn, &HashSet::new(), 0).expect("again"),
                1,
                "KEPT"
            );
            assert_eq!(
                prune_sku_names(&mut conn, &HashSet::new(), 0).expect("again"),
                0,
                "a blank name is forgotten once"
            );

        }

        fn a_zeroing_the_guard_still_counts_or_a_reservation_keeps_a_name_and_pruning_waits_an_hour(conn) {
            let mut skus = SkuTable::default();
            for name in ["ZEROED-LONG-AGO", "ZEROED-RECENTLY", "RESERVED"] {
                skus.intern(name);
            }
            chunks::write_name_chunks(&conn, &name_chunks_from(&skus, 0)).expect("names");
            let memory = quantity_chunks_after(&Column::default(), &[(0, 1_000), (1, 9_000)]);
            chunks::write_quantity_chunks(&conn, Side::TargetZeroedAt, 1, &memory).expect("memory");
            conn.execute(
                "INSERT INTO reservations (feed, order_id, sku, record) VALUES ('htf', '1', 'RESERVED', '{}')",
                [],
            )
            .expect("reservation");

            let window = 2_000;
            let first = prune_sku_names_when_due(&mut conn, 10_000, window).expect("prunes");
            let again = prune_sku_names_when_due(&mut conn, 10_000 + 3_599_999, window).expect("waits");

            assert_eq!(
                first,
                Some(1),
                "only the zeroing outside the window is forgotten"
            );
            let names = load_skus(&conn).expect("loads");
            let all: Vec<&str> = (0..3).map(|id| names.name(id)).collect();
            assert_eq!(all, ["", "ZEROED-RECENTLY", "RESERVED"]);
            let memory = load_column(&conn, Side::TargetZeroedAt, 1).expect("loads");
            assert_eq!(memory.iter().collect::<Vec<_>>(), vec![(1, 9_000)]);
            assert_eq!(again, None, "not due again within the hour");
            assert_eq!(
                prune_sku_names_when_due(&mut conn, 10_000 + 3_600_000, window).expect("due"),
                Some(1),
                "an hour later the window has passed for ZEROED-RECENTLY too"
            );

        }
    }
}
