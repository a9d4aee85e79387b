//! Changes to a quantity column written as they come (deltas), folded into its chunks now and
//! then, so a cycle writes bytes in proportion to what changed rather than to the chunks it
//! touches.
//!
//! A column (one source's snapshot, one target's acknowledgements, one guard's memory) is its
//! chunks ([`super::chunks`]) and then its deltas: `quantity_deltas(side, endpoint, seq,
//! changes)`, each `changes` a run of `(u32 SKU id, i64 quantity)` pairs, little-endian, 12
//! bytes each, applied in `seq` order (a later one wins). A 1% change of a million SKUs is
//! 10,000 pairs, 120 KB, where rewriting the chunks they fall in was about 8 MB.
//!
//! A column's deltas are folded into its chunks (the chunks they touch rewritten, the deltas
//! deleted, in the caller's transaction) when they would hold more than [`FOLD_AFTER`] pairs
//! per chunk of the catalogue: a fold rewrites at most every chunk (packed, about 600 bytes
//! each for everyday quantities; 4 KiB at most, plain), so what it writes comes to about 10
//! bytes per change (64 at most), and what a load reads on top of the chunks stays below
//! 12 × [`FOLD_AFTER`] (768) bytes a chunk. Changes that alone pass the limit, or that lie close together (a first cycle's
//! batches, in id order), go straight into the chunks of a column that holds no delta.
//!
//! Whatever a delta holds is checked as it is read (a length not a multiple of 12, a quantity
//! below 0, an id without a name): a damaged one is [`StoreError::Corrupt`], never a panic.

use super::db::{Connection, OptionalExtension, params};

use super::chunks::{
    ABSENT, CHUNK, check_named, chunk_quantity_of, corrupt, decode_quantities, encode_quantities,
    load_chunks, side_code, sku_count,
};
use super::{Side, StoreError};
use crate::plan::ledger::{Column, SkuId};

/// Delta pairs a column may hold per chunk of the catalogue before they are folded.
pub const FOLD_AFTER: usize = 64;

/// Changes go straight into their chunks, when a column has no delta, if rewriting those chunks
/// writes at most this many times the bytes of their delta.
const DENSE: usize = 2;

/// Bytes of one `(id, quantity)` pair.
const PAIR: usize = 12;

/// The table, created by its migration (see `migrations.rs`).
pub(super) const DELTA_TABLE: &str = r"
    CREATE TABLE quantity_deltas (
        side     INTEGER NOT NULL,
        endpoint INTEGER NOT NULL,
        seq      INTEGER NOT NULL,
        changes  BLOB NOT NULL,
        PRIMARY KEY (side, endpoint, seq)
    ) WITHOUT ROWID;
";

/// Changes to a column: `(id, quantity)` pairs, or ids whose new quantities a column holds (a
/// snapshot's changes: a first one of a million SKUs is 4 MB of ids rather than 16 MB of pairs).
#[derive(Clone, Copy)]
enum Changes<'a> {
    Pairs(&'a [(SkuId, i64)]),
    /// Ids the column has a quantity for (one it has none for is written as 0).
    Of(&'a [SkuId], &'a Column),
    /// Ids that no longer have a quantity ([`ABSENT`]): acknowledgements voided.
    Voids(&'a [SkuId]),
    /// Pairs as read back from the deltas, [`ABSENT`] kept (a fold).
    Read(&'a [(SkuId, i64)]),
}

impl Changes<'_> {
    fn len(self) -> usize {
        match self {
            Changes::Pairs(pairs) | Changes::Read(pairs) => pairs.len(),
            Changes::Of(ids, _) | Changes::Voids(ids) => ids.len(),
        }
    }

    /// The `i`-th change, its quantity at least 0, or [`ABSENT`] for a void.
    fn get(self, i: usize) -> (SkuId, i64) {
        match self {
            Changes::Pairs(pairs) => (pairs[i].0, pairs[i].1.max(0)),
            Changes::Of(ids, column) => (ids[i], column.get(ids[i]).unwrap_or(0)),
            Changes::Voids(ids) => (ids[i], ABSENT),
            Changes::Read(pairs) => pairs[i],
        }
    }

    fn iter(self) -> impl Iterator<Item = (SkuId, i64)> {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Whether the changes come chunk by chunk.
    fn by_chunk(self) -> bool {
        self.iter().map(|(id, _)| chunk_of(id)).is_sorted()
    }
}

fn chunk_of(id: SkuId) -> usize {
    id as usize / CHUNK
}

/// What [`write_changes`] did, for tests and debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// Bytes of delta written (0 when it folded).
    pub delta_bytes: usize,
    /// Chunks rewritten by a fold (0 when it wrote a delta).
    pub chunks: usize,
}

/// Writes `changes` (`(id, quantity)`, a negative quantity stored as 0, a later one for the same
/// id winning) to one column: as one delta, after folding the column's deltas into its chunks
/// when they would pass the limit; or, when the column has no delta, into its chunks at once if
/// they are its first, pass the limit alone, or their chunks cost little more than their delta
/// would (see [`DENSE`]). Nothing is written for no changes. Every id
/// must have a name (written before, or in the same transaction). Call it inside the
/// transaction that must hold the changes: a fold is atomic with it.
pub fn write_changes(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    changes: &[(SkuId, i64)],
) -> Result<Written, StoreError> {
    write(conn, side, endpoint, Changes::Pairs(changes))
}

/// [`write_changes`] of `ids`, each with its quantity in `column` (a snapshot and the SKUs that
/// changed in it; an id the column has no quantity for is written as 0).
pub fn write_changed(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    ids: &[SkuId],
    column: &Column,
) -> Result<Written, StoreError> {
    write(conn, side, endpoint, Changes::Of(ids, column))
}

/// Writes that `ids` no longer have a quantity in the column: an acknowledgement voided (a SKU
/// the mapping gives a new key at a target) reads back as none, never as an acknowledged 0, so
/// a restart before the push still pushes the SKU under its new key.
pub fn write_voids(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    ids: &[SkuId],
) -> Result<Written, StoreError> {
    write(conn, side, endpoint, Changes::Voids(ids))
}

fn write(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    changes: Changes,
) -> Result<Written, StoreError> {
    if changes.len() == 0 {
        return Ok(Written::default());
    }
    let (last_seq, held_bytes): (i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce(max(seq), 0), coalesce(sum(length(changes)), 0)
             FROM quantity_deltas WHERE side = ?1 AND endpoint = ?2",
        )?
        .query_row(params![side_code(side), endpoint], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let mut held = usize::try_from(held_bytes).unwrap_or(usize::MAX) / PAIR;
    let limit = fold_limit(conn)?;
    let mut chunks = 0;
    if held > 0 && held.saturating_add(changes.len()) > limit {
        // The deltas held go into their chunks; these changes are written as if there were none.
        chunks = fold(conn, side, endpoint)?;
        held = 0;
    }
    // Into the chunks at once, where there is no delta they could be confused with, when the
    // changes alone pass the limit, or lie so close together that their chunks are hardly
    // more than their delta would be (a first cycle's batches, in the order of their ids), or
    // are the column's first.
    // A plain chunk's size, the most a chunk can take.
    let dense = touched_chunks(changes).saturating_mul(CHUNK * 8)
        <= changes.len().saturating_mul(PAIR * DENSE);
    if held == 0 && (dense || changes.len() > limit || !has_chunks(conn, side, endpoint)?) {
        chunks += fold_with(conn, side, endpoint, changes)?;
        return Ok(Written {
            delta_bytes: 0,
            chunks,
        });
    }
    let mut bytes = Vec::with_capacity(changes.len() * PAIR);
    for (id, quantity) in changes.iter() {
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&quantity.to_le_bytes());
    }
    conn.prepare_cached(
        "INSERT INTO quantity_deltas (side, endpoint, seq, changes) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        side_code(side),
        endpoint,
        last_seq.saturating_add(1),
        bytes
    ])?;
    Ok(Written {
        delta_bytes: bytes.len(),
        chunks,
    })
}

/// Whether the column has a chunk.
fn has_chunks(conn: &Connection, side: Side, endpoint: i64) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM quantity_chunks WHERE side = ?1 AND endpoint = ?2 LIMIT 1")?
        .exists(params![side_code(side), endpoint])
}

/// How many chunks `changes` fall in.
fn touched_chunks(changes: Changes) -> usize {
    if changes.by_chunk() {
        let mut last = None;
        changes
            .iter()
            .filter(|&(id, _)| last.replace(chunk_of(id)) != Some(chunk_of(id)))
            .count()
    } else {
        let mut chunks: Vec<usize> = changes.iter().map(|(id, _)| chunk_of(id)).collect();
        chunks.sort_unstable();
        chunks.dedup();
        chunks.len()
    }
}

/// How many delta pairs a column may hold: [`FOLD_AFTER`] per chunk of the catalogue.
fn fold_limit(conn: &Connection) -> Result<usize, StoreError> {
    let chunks = sku_count(conn)?.div_ceil(CHUNK).max(1);
    Ok(chunks.saturating_mul(FOLD_AFTER))
}

/// Folds a column's deltas into its chunks (see [`fold_with`]); returns the chunks rewritten.
pub fn fold(conn: &Connection, side: Side, endpoint: i64) -> Result<usize, StoreError> {
    fold_with(conn, side, endpoint, Changes::Pairs(&[]))
}

/// Folds every column's deltas into its chunks: before anything that reads the chunks alone.
pub fn fold_all(conn: &Connection) -> Result<usize, StoreError> {
    let columns: Vec<(i64, i64)> = {
        let mut stmt = conn.prepare("SELECT DISTINCT side, endpoint FROM quantity_deltas")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?
    };
    let mut chunks = 0;
    for (side, endpoint) in columns {
        let side = side_from_code(side)
            .ok_or_else(|| corrupt("quantity_deltas", format!("side {side} unknown")))?;
        chunks += fold(conn, side, endpoint)?;
    }
    Ok(chunks)
}

fn side_from_code(code: i64) -> Option<Side> {
    [
        Side::Source,
        Side::Target,
        Side::SourceZeroedAt,
        Side::TargetZeroedAt,
    ]
    .into_iter()
    .find(|&side| side_code(side) == code)
}

/// Rewrites the chunks that the column's deltas and then `more` touch, as they are with all of
/// them applied, and deletes the deltas. Reads the chunks from the database (not from memory),
/// so what it writes is what a load would have read.
fn fold_with(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    more: Changes,
) -> Result<usize, StoreError> {
    let skus = sku_count(conn)?;
    let mut pairs = read_deltas(conn, side, endpoint, skus)?;
    let rewritten = if pairs.is_empty() && more.by_chunk() {
        rewrite_chunks(conn, side, endpoint, more)?
    } else {
        pairs.extend(more.iter());
        // By chunk, a later pair for one id still after an earlier one (the sort is stable).
        pairs.sort_by_key(|&(id, _)| chunk_of(id));
        rewrite_chunks(conn, side, endpoint, Changes::Read(&pairs))?
    };
    conn.prepare_cached("DELETE FROM quantity_deltas WHERE side = ?1 AND endpoint = ?2")?
        .execute(params![side_code(side), endpoint])?;
    Ok(rewritten)
}

/// Rewrites the chunks `changes` (coming chunk by chunk) fall in, as they are with them
/// applied; returns how many.
fn rewrite_chunks(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    changes: Changes,
) -> Result<usize, StoreError> {
    let mut read = conn.prepare_cached(
        "SELECT quantities FROM quantity_chunks WHERE side = ?1 AND endpoint = ?2 AND chunk = ?3",
    )?;
    let mut write = conn.prepare_cached(
        "INSERT INTO quantity_chunks (side, endpoint, chunk, quantities) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (side, endpoint, chunk) DO UPDATE SET quantities = excluded.quantities",
    )?;
    let mut rewritten = 0;
    let mut values = [ABSENT; CHUNK];
    let mut next = 0;
    while next < changes.len() {
        let chunk = chunk_of(changes.get(next).0);
        let end = (next..changes.len())
            .find(|&i| chunk_of(changes.get(i).0) != chunk)
            .unwrap_or(changes.len());
        let chunk = u32::try_from(chunk)
            .map_err(|_| corrupt("quantity_deltas", format!("chunk {chunk} out of range")))?;
        let existing: Option<Vec<u8>> = read
            .query_row(params![side_code(side), endpoint, chunk], |r| r.get(0))
            .optional()?;
        match existing {
            Some(old) => decode_quantities(&old, &mut values)
                .map_err(|e| corrupt("quantity_chunks", format!("chunk {chunk} malformed: {e}")))?,
            None => values.fill(ABSENT),
        }
        for i in next..end {
            let (id, quantity) = changes.get(i);
            values[id as usize % CHUNK] = quantity;
        }
        let bytes = encode_quantities(&values);
        write.execute(params![side_code(side), endpoint, chunk, bytes])?;
        rewritten += 1;
        next = end;
    }
    Ok(rewritten)
}

/// Every pair of a column's deltas, in the order they apply, each checked.
fn read_deltas(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    skus: usize,
) -> Result<Vec<(SkuId, i64)>, StoreError> {
    let mut pairs = Vec::new();
    each_delta(conn, side, endpoint, skus, |id, quantity| {
        pairs.push((id, quantity))
    })?;
    Ok(pairs)
}

/// Calls `f` with every pair of a column's deltas, in the order they apply, each checked: an id
/// with a name (`skus` of them), a quantity of at least 0 or [`ABSENT`] (voided).
fn each_delta(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    skus: usize,
    mut f: impl FnMut(SkuId, i64),
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, changes FROM quantity_deltas WHERE side = ?1 AND endpoint = ?2 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![side_code(side), endpoint])?;
    while let Some(row) = rows.next()? {
        let seq = row
            .get_ref(0)?
            .as_i64()
            .map_err(|e| corrupt("quantity_deltas", e))?;
        let bytes = row
            .get_ref(1)?
            .as_blob()
            .map_err(|e| corrupt("quantity_deltas", e))?;
        if bytes.len() % PAIR != 0 {
            return Err(corrupt(
                "quantity_deltas",
                format!("delta {seq} malformed ({} bytes)", bytes.len()),
            ));
        }
        for pair in bytes.chunks_exact(PAIR) {
            let (id, quantity) = pair.split_at(4);
            let id = u32::from_le_bytes(id.try_into().map_err(|_| short(seq))?);
            let quantity = i64::from_le_bytes(quantity.try_into().map_err(|_| short(seq))?);
            let id = check_named(i64::from(id), skus, "quantity_deltas")?;
            if quantity < 0 && quantity != ABSENT {
                return Err(corrupt(
                    "quantity_deltas",
                    format!("quantity {quantity} for SKU id {id} is below 0"),
                ));
            }
            f(id, quantity);
        }
    }
    Ok(())
}

fn short(seq: i64) -> StoreError {
    corrupt("quantity_deltas", format!("delta {seq} malformed"))
}

/// Applies a column's deltas to `column` (its chunks loaded into it).
pub(super) fn apply_deltas(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    skus: usize,
    column: &mut Column,
) -> Result<(), StoreError> {
    each_delta(conn, side, endpoint, skus, |id, quantity| {
        if quantity == ABSENT {
            column.clear(id)
        } else {
            column.set(id, quantity)
        }
    })
}

/// The last quantity a column's deltas give `sku`, if any ([`ABSENT`] for a void).
pub(super) fn delta_of(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    sku: SkuId,
) -> Result<Option<i64>, StoreError> {
    let skus = sku_count(conn)?;
    let mut found = None;
    each_delta(conn, side, endpoint, skus, |id, quantity| {
        if id == sku {
            found = Some(quantity);
        }
    })?;
    Ok(found)
}

/// The quantities of one source snapshot or one target's acknowledgements: its chunks, then its
/// deltas in order; each one a quantity of at least 0 for a SKU that has a name, or the file is
/// inconsistent.
pub fn load_column(conn: &Connection, side: Side, endpoint: i64) -> Result<Column, StoreError> {
    super::mapped_reads(conn, || load_column_unmapped(conn, side, endpoint))
}

fn load_column_unmapped(
    conn: &Connection,
    side: Side,
    endpoint: i64,
) -> Result<Column, StoreError> {
    let skus = sku_count(conn)?;
    let mut column = load_chunks(conn, side, endpoint, skus)?;
    apply_deltas(conn, side, endpoint, skus, &mut column)?;
    Ok(column)
}

/// One SKU's quantity in one column, reading only its chunk and the column's deltas.
pub fn quantity_of(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    sku: SkuId,
) -> Result<Option<i64>, StoreError> {
    if let Some(quantity) = delta_of(conn, side, endpoint, sku)? {
        return Ok((quantity != ABSENT).then_some(quantity));
    }
    chunk_quantity_of(conn, side, endpoint, sku)
}

/// Forgets a column's deltas (its endpoint's state is dropped).
pub(super) fn drop_deltas(conn: &Connection, side: Side, endpoint: i64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM quantity_deltas WHERE side = ?1 AND endpoint = ?2",
        params![side_code(side), endpoint],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::plan::ledger::SkuTable;
    use crate::store::chunks::{name_chunks_from, write_name_chunks};
    use crate::store::db::testing::on_both_engines;

    /// A database of `skus` named SKUs, and the chunk and delta tables.
    fn with_skus(skus: usize) -> Connection {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(super::super::migrations::CHUNK_TABLES)
            .expect("chunks");
        conn.execute_batch(DELTA_TABLE).expect("deltas");
        name_skus(&conn, skus);
        conn
    }

    /// Names `skus` SKUs in `conn`.
    fn name_skus(conn: &Connection, skus: usize) {
        let mut table = SkuTable::default();
        for i in 0..skus {
            table.push(&format!("SKU-{i}"));
        }
        write_name_chunks(conn, &name_chunks_from(&table, 0)).expect("names");
    }

    /// The bytes of quantity chunks and deltas in the database.
    fn stored_bytes(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT (SELECT coalesce(sum(length(quantities)), 0) FROM quantity_chunks),
                    (SELECT coalesce(sum(length(changes)), 0) FROM quantity_deltas)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("sizes")
    }

    /// What `conn` writes to the database file for `f`, in pages of 4 KiB: the file's pages
    /// that differ after it.
    fn pages_written(path: &std::path::Path, f: impl FnOnce(&Connection)) -> usize {
        let before = std::fs::read(path).expect("file");
        {
            let conn = Connection::open(path).expect("db");
            f(&conn);
        }
        let after = std::fs::read(path).expect("file");
        after
            .chunks(4096)
            .enumerate()
            .filter(|(i, page)| before.chunks(4096).nth(*i) != Some(*page))
            .count()
    }

    #[test]
    fn k_changes_spread_over_every_chunk_write_about_12_bytes_each_not_a_chunk_each() {
        // 200 chunks; a first write of every SKU goes to the chunks, whole.
        const SKUS: usize = 200 * CHUNK;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("db");
        {
            let conn = with_skus(0);
            conn.execute("VACUUM INTO ?1", [path.to_str().expect("utf-8")])
                .expect("file");
        }
        let conn = Connection::open(&path).expect("db");
        let mut table = SkuTable::default();
        for i in 0..SKUS {
            table.push(&format!("SKU-{i}"));
        }
        write_name_chunks(&conn, &name_chunks_from(&table, 0)).expect("names");
        let all: Vec<(SkuId, i64)> = (0..SKUS as SkuId).map(|id| (id, 5)).collect();
        let first = write_changes(&conn, Side::Target, 1, &all).expect("first");
        assert_eq!((first.chunks, first.delta_bytes), (200, 0), "{first:?}");
        drop(conn);

        for k in [200, 400, 1600] {
            // k SKUs, evenly spread: every chunk holds some.
            let spread: Vec<(SkuId, i64)> = (0..k)
                .map(|i| ((i * SKUS / k) as SkuId, 7 + i as i64))
                .collect();
            let mut written = Written::default();
            let pages = pages_written(&path, |conn| {
                written = write_changes(conn, Side::Target, 1, &spread).expect("written");
            });
            assert_eq!(written.chunks, 0, "k={k}: no chunk rewritten");
            assert_eq!(written.delta_bytes, 12 * k, "k={k}");
            // 12 bytes a change, in pages, and a few for the tree: not 200 chunks of 4 KiB.
            let bound = (12 * k).div_ceil(4096) + 4;
            assert!(
                pages <= bound,
                "k={k}: {pages} pages written, more than {bound}"
            );
        }
        let conn = Connection::open(&path).expect("db");
        let column = load_column(&conn, Side::Target, 1).expect("loads");
        assert_eq!(column.get(0), Some(7), "the last delta wins");
        assert_eq!(
            column.get(1),
            Some(5),
            "the chunk where no delta says otherwise"
        );
        assert_eq!(column.count(), SKUS);
    }

    proptest! {
        #[test]
        fn random_bytes_in_a_delta_are_refused_or_read_never_a_panic(
            bytes in prop_oneof![
                prop::collection::vec(any::<u8>(), 0..64),
                (0..6usize).prop_flat_map(|n| prop::collection::vec(any::<u8>(), n * PAIR)),
            ],
            seq in any::<i64>(),
        ) {
            let conn = with_skus(3);
            conn.execute(
                "INSERT INTO quantity_deltas VALUES (1, 1, ?1, ?2)",
                params![seq, bytes],
            ).expect("delta");
            match load_column(&conn, Side::Target, 1) {
                Ok(column) => for (id, quantity) in column.iter() {
                    prop_assert!(id < 3 && quantity >= 0);
                },
                Err(e) => prop_assert!(matches!(e, StoreError::Corrupt(_)), "{e}"),
            }
            let folded = fold_all(&conn);
            prop_assert!(folded.is_ok() || matches!(folded, Err(StoreError::Corrupt(_))));
            let _ = quantity_of(&conn, Side::Target, 1, 1);
        }
    }

    #[test]
    fn a_delta_of_another_type_or_a_side_unknown_is_an_inconsistent_database() {
        let conn = with_skus(3);
        conn.execute("INSERT INTO quantity_deltas VALUES (1, 1, 1, 'text')", [])
            .expect("delta");
        assert!(matches!(
            load_column(&conn, Side::Target, 1),
            Err(StoreError::Corrupt(_))
        ));
        let conn = with_skus(3);
        conn.execute("INSERT INTO quantity_deltas VALUES (9, 1, 1, x'')", [])
            .expect("delta");
        assert!(matches!(fold_all(&conn), Err(StoreError::Corrupt(_))));
    }

    on_both_engines! {
        fn a_void_reads_back_as_none_from_a_delta_from_the_chunks_and_after_a_fold(conn) {
            name_skus(&conn, 2 * CHUNK);
            let far = CHUNK as SkuId + 7;
            write_changes(&conn, Side::Target, 2, &[(3, 0), (far, 4)]).expect("first");
            // Spread out: kept as a delta.
            write_changes(&conn, Side::Target, 2, &[(1, 9)]).expect("more");
            write_voids(&conn, Side::Target, 2, &[3, far]).expect("voided");
            for when in ["as a delta", "folded"] {
                let column = load_column(&conn, Side::Target, 2).expect("loads");
                assert_eq!(column.iter().collect::<Vec<_>>(), [(1, 9)], "{when}");
                for id in [3, far] {
                    assert_eq!(
                        quantity_of(&conn, Side::Target, 2, id).expect("one"),
                        None,
                        "{when}"
                    );
                }
                fold(&conn, Side::Target, 2).expect("folds");
            }
        }

        fn deltas_past_the_limit_fold_into_the_chunks_in_one_write_and_read_back_the_same(conn) {
            name_skus(&conn, 3 * CHUNK);
            let limit = 3 * FOLD_AFTER;
            let mut expected = Column::default();
            // A column's first changes are its first chunks.
            let first = write_changes(&conn, Side::Source, 4, &[(0, 0)]).expect("first");
            assert_eq!((first.chunks, first.delta_bytes), (1, 0));
            expected.set(0, 0);
            let mut folds = 0;
            for round in 0..40u32 {
                let changes: Vec<(SkuId, i64)> = (0..10u32)
                    .map(|i| {
                        (
                            (round * 37 + i * 151) % (3 * CHUNK as u32),
                            i64::from(round + i),
                        )
                    })
                    .collect();
                for &(id, q) in &changes {
                    expected.set(id, q);
                }
                let written = write_changes(&conn, Side::Source, 4, &changes).expect("written");
                let (_, delta_bytes) = stored_bytes(&conn);
                assert!(delta_bytes as usize <= PAIR * limit, "round {round}");
                if written.chunks > 0 {
                    folds += 1;
                    assert_eq!(
                        delta_bytes as usize,
                        PAIR * changes.len(),
                        "a fold leaves only the changes that came with it, as a delta"
                    );
                }
                assert_eq!(
                    load_column(&conn, Side::Source, 4).expect("loads"),
                    expected,
                    "round {round}"
                );
                for &(id, q) in &changes {
                    assert_eq!(
                        quantity_of(&conn, Side::Source, 4, id).expect("one"),
                        Some(q)
                    );
                }
            }
            assert!(folds >= 1, "400 changes pass a limit of {limit}");
            assert!(load_column(&conn, Side::Source, 5).expect("other").count() == 0);
        }

        fn changes_close_together_go_straight_into_the_chunks_of_a_column_without_deltas(conn) {
            name_skus(&conn, 8 * CHUNK);
            // A first cycle's batches: 1,000 ids in a row fall in 2 or 3 chunks.
            for batch in 0..4u32 {
                let ids = batch * 1000..(batch * 1000 + 1000).min(8 * CHUNK as u32);
                let changes: Vec<(SkuId, i64)> = ids.map(|id| (id, 3)).collect();
                let written = write_changes(&conn, Side::Target, 1, &changes).expect("written");
                assert_eq!(written.delta_bytes, 0, "batch {batch}: {written:?}");
            }
            // Eight chunks, every quantity 3 (packed, a byte each).
            assert_eq!(stored_bytes(&conn), (8 * (1 + CHUNK as i64), 0));
            // Spread out, they are a delta; and close together again, with a delta held, too.
            let spread = write_changes(&conn, Side::Target, 1, &[(0, 1), (4000, 1)]).expect("one");
            let close: Vec<(SkuId, i64)> = (0..300).map(|id| (id, 2)).collect();
            let after = write_changes(&conn, Side::Target, 1, &close).expect("two");
            assert_eq!((spread.delta_bytes, after.delta_bytes), (24, 300 * PAIR));
            let column = load_column(&conn, Side::Target, 1).expect("loads");
            assert_eq!(
                (column.get(0), column.get(4000), column.get(400)),
                (Some(2), Some(1), Some(3))
            );
        }

        fn a_column_of_plain_chunks_written_before_reads_the_same_and_is_packed_as_it_is_folded(conn) {
            name_skus(&conn, 3 * CHUNK);
            // Three chunks as every chunk was written before: CHUNK little-endian i64s.
            let mut expected = Column::default();
            for chunk in 0..3u32 {
                let mut bytes = Vec::new();
                for i in 0..CHUNK as u32 {
                    let id = chunk * CHUNK as u32 + i;
                    let quantity = if id.is_multiple_of(5) { ABSENT } else { i64::from(id % 300) };
                    if quantity != ABSENT {
                        expected.set(id, quantity);
                    }
                    bytes.extend_from_slice(&quantity.to_le_bytes());
                }
                conn.execute(
                    "INSERT INTO quantity_chunks (side, endpoint, chunk, quantities) VALUES (1, 2, ?1, ?2)",
                    params![chunk, bytes],
                )
                .expect("a plain chunk");
            }
            assert_eq!(load_column(&conn, Side::Target, 2).expect("loads"), expected);
            assert_eq!(quantity_of(&conn, Side::Target, 2, 7).expect("one"), Some(7));
            // A change in the middle chunk, folded: that chunk is packed, the others stay plain.
            write_changes(&conn, Side::Target, 2, &[(CHUNK as SkuId + 1, 4000)]).expect("a delta");
            expected.set(CHUNK as SkuId + 1, 4000);
            fold(&conn, Side::Target, 2).expect("folded");
            assert_eq!(load_column(&conn, Side::Target, 2).expect("loads"), expected);
            let sizes: Vec<i64> = conn
                .prepare("SELECT length(quantities) FROM quantity_chunks WHERE endpoint = 2 ORDER BY chunk")
                .expect("sizes")
                .query_map([], |r| r.get(0))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("sizes");
            assert_eq!(sizes[0], 8 * CHUNK as i64);
            assert_eq!(sizes[2], 8 * CHUNK as i64);
            assert!(sizes[1] < 2 * CHUNK as i64, "packed: {sizes:?}");
            assert_eq!(stored_bytes(&conn).1, 0, "the delta went into its chunk");
        }

        fn a_fold_interrupted_before_its_commit_leaves_the_column_as_it_was(conn) {
            name_skus(&conn, 2 * CHUNK);
            write_changes(&conn, Side::Target, 1, &[(0, 9)]).expect("first chunk");
            write_changes(&conn, Side::Target, 1, &[(3, 1), (600, 2)]).expect("delta");
            let before = load_column(&conn, Side::Target, 1).expect("loads");
            // The transaction a fold runs in dies before it commits (a kill -9 there).
            conn.execute_batch("BEGIN").expect("begin");
            assert_eq!(fold(&conn, Side::Target, 1).expect("fold"), 2);
            conn.execute_batch("ROLLBACK").expect("rollback");
            assert_eq!(load_column(&conn, Side::Target, 1).expect("loads"), before);
            // One chunk, packed: a byte for each id (none, or 9).
            assert_eq!(
                stored_bytes(&conn),
                (1 + CHUNK as i64, 24),
                "the delta is still there"
            );
            // Committed, it reads back the same.
            assert_eq!(fold_all(&conn).expect("fold"), 2);
            assert_eq!(load_column(&conn, Side::Target, 1).expect("loads"), before);
            assert_eq!(stored_bytes(&conn), (2 * (1 + CHUNK as i64), 0));
        }
    }
}
