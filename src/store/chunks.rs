//! SKU names and quantities on disk, in fixed-size chunks of [`CHUNK`] SKU ids.
//!
//! A million SKUs as a million rows costs a second to read back and a million inserts to write
//! the first time; as chunks they are two thousand BLOBs per column. A cycle writes only
//! what changed, as a delta ([`super::deltas`]); the chunks are rewritten whole only when
//! deltas are folded into them.
//!
//! - `sku_chunks(chunk, names)`: the names of ids `chunk*CHUNK ..`, each a little-endian `u32`
//!   length then the UTF-8 bytes. Ids only grow, so only the last chunks are ever rewritten.
//! - `quantity_chunks(side, endpoint, chunk, quantities)`: `CHUNK` quantities, one per id, in
//!   one of two forms told apart by length (see [`encode_quantities`]): packed, `1` and then each
//!   quantity plus one as a LEB128 varint (`0`: a SKU the source or target has no quantity
//!   for), which is how they are written; or plain, exactly `CHUNK` little-endian `i64`s with
//!   `-1` for none, as every chunk was written before (still read, and still written where the
//!   packed form would not be shorter). Packed, a chunk of everyday quantities is about 600
//!   bytes instead of 4 KiB, and fits in its b-tree page with others: a column of a million
//!   SKUs is read (and, folded, written) as 1 to 2 MB, not 16 MB of pages.
//!
//! A column is its chunks and then its deltas (see [`super::deltas`]): a cycle writes what
//! changed as a delta, and the chunks are rewritten only when the deltas are folded into them.
//!
//! Whatever these blobs hold is checked as it is decoded (a length past the end, a quantity
//! below 0, a quantity for a SKU id no name was written for): the rest of invsync indexes by SKU
//! id without checking, so a damaged file must stop here as [`StoreError::Corrupt`], never
//! panic later.

use super::db::{Connection, OptionalExtension, params};

use super::{Side, StoreError};
use crate::plan::ledger::{Column, SkuId, SkuTable};

/// SKU ids per chunk.
pub const CHUNK: usize = 512;

/// One encoded chunk, ready to write.
pub type Chunk = (u32, Vec<u8>);

pub(super) const ABSENT: i64 = -1;

fn chunk_of(id: SkuId) -> u32 {
    id / CHUNK as u32
}

/// The chunks of `column` that `changes` touch, as they are once `changes` are applied (the
/// column itself is not changed). Only for a column without deltas (the move to chunks, tests):
/// a cycle writes [`super::write_changes`].
pub(super) fn quantity_chunks_after(column: &Column, changes: &[(SkuId, i64)]) -> Vec<Chunk> {
    let mut touched: Vec<u32> = changes.iter().map(|&(id, _)| chunk_of(id)).collect();
    touched.sort_unstable();
    touched.dedup();
    let mut chunks: Vec<(u32, [i64; CHUNK])> = touched
        .into_iter()
        .map(|chunk| {
            let first = chunk * CHUNK as u32;
            let mut values = [ABSENT; CHUNK];
            for (value, id) in values.iter_mut().zip(first..) {
                *value = column.get(id).unwrap_or(ABSENT);
            }
            (chunk, values)
        })
        .collect();
    for &(id, quantity) in changes {
        let Ok(at) = chunks.binary_search_by_key(&chunk_of(id), |(c, _)| *c) else {
            continue;
        };
        chunks[at].1[id as usize % CHUNK] = quantity.max(0);
    }
    chunks
        .iter()
        .map(|(chunk, values)| (*chunk, encode_quantities(values)))
        .collect()
}

/// The length of a plain quantity chunk; a packed one is always shorter.
pub(super) const PLAIN: usize = CHUNK * 8;

/// The tag a packed quantity chunk starts with.
const PACKED: u8 = 1;

/// One chunk's quantities as stored (see the module documentation): packed, or plain when
/// packed would not be shorter (huge quantities) or a value is neither a quantity of at least 0
/// nor [`ABSENT`] (which packed has no room for, and nothing writes).
///
/// LEB128 by hand rather than a crate: it is a dozen lines, and the decoding below must check
/// every byte of a damaged file (an overlong varint, a value past `i64`) as it goes.
pub(super) fn encode_quantities(values: &[i64; CHUNK]) -> Vec<u8> {
    let mut packed = Vec::with_capacity(CHUNK + CHUNK / 2);
    packed.push(PACKED);
    for &value in values {
        if value < ABSENT {
            return plain(values);
        }
        // ABSENT (-1) is 0; a quantity q is q + 1.
        let mut rest = value.wrapping_add(1) as u64;
        while rest >= 0x80 {
            packed.push((rest as u8 & 0x7f) | 0x80);
            rest >>= 7;
        }
        packed.push(rest as u8);
        if packed.len() >= PLAIN {
            return plain(values);
        }
    }
    packed
}

fn plain(values: &[i64; CHUNK]) -> Vec<u8> {
    values.iter().flat_map(|q| q.to_le_bytes()).collect()
}

/// A stored quantity chunk's values (each at least 0, or [`ABSENT`]; any other negative
/// value, in a plain chunk, is returned for the caller to refuse). `Err` says what is wrong.
pub(super) fn decode_quantities(bytes: &[u8], out: &mut [i64; CHUNK]) -> Result<(), String> {
    if bytes.len() == PLAIN {
        for (value, stored) in out.iter_mut().zip(bytes.chunks_exact(8)) {
            *value = i64::from_le_bytes(stored.try_into().map_err(|_| "short value")?);
        }
        return Ok(());
    }
    let Some((&PACKED, mut rest)) = bytes.split_first() else {
        return Err(format!(
            "a chunk of {} bytes, neither plain nor packed",
            bytes.len()
        ));
    };
    for (i, value) in out.iter_mut().enumerate() {
        let mut stored: u64 = 0;
        let mut shift = 0;
        loop {
            let (&byte, after) = rest
                .split_first()
                .ok_or_else(|| format!("packed quantities end at value {i} of {CHUNK}"))?;
            rest = after;
            if shift == 63 && byte > 1 {
                return Err(format!("value {i} is past the largest quantity"));
            }
            stored |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        // 0 is ABSENT; anything else is a quantity plus one.
        *value = match stored {
            0 => ABSENT,
            n => i64::try_from(n - 1)
                .map_err(|_| format!("value {i} is past the largest quantity"))?,
        };
    }
    if !rest.is_empty() {
        return Err(format!(
            "{} bytes after the last of {CHUNK} values",
            rest.len()
        ));
    }
    Ok(())
}

/// The name chunks holding ids `from..skus.len()` (new SKUs), whole.
pub fn name_chunks_from(skus: &SkuTable, from: usize) -> Vec<Chunk> {
    if from >= skus.len() {
        return Vec::new();
    }
    let (first, last) = (from / CHUNK, (skus.len() - 1) / CHUNK);
    (first..=last)
        .map(|chunk| {
            let ids = chunk * CHUNK..((chunk + 1) * CHUNK).min(skus.len());
            let mut bytes = Vec::new();
            for id in ids {
                encode_name(&mut bytes, skus.name(id as SkuId));
            }
            (chunk as u32, bytes)
        })
        .collect()
}

/// Writes the name chunks holding ids `from..skus.len()` (new SKUs), whole, encoding one chunk
/// at a time: a first cycle of a million names never holds all of them encoded (15 MB) beside
/// the table.
pub fn write_names_from(conn: &Connection, skus: &SkuTable, from: usize) -> Result<(), StoreError> {
    if from >= skus.len() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "INSERT INTO sku_chunks (chunk, names) VALUES (?1, ?2)
         ON CONFLICT (chunk) DO UPDATE SET names = excluded.names",
    )?;
    let mut bytes = Vec::new();
    for chunk in from / CHUNK..=(skus.len() - 1) / CHUNK {
        bytes.clear();
        for id in chunk * CHUNK..((chunk + 1) * CHUNK).min(skus.len()) {
            encode_name(&mut bytes, skus.name(id as SkuId));
        }
        stmt.execute(params![chunk as u32, bytes])?;
    }
    Ok(())
}

/// Appends one name as a chunk holds it: its length, then its bytes.
pub(super) fn encode_name(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(name.as_bytes());
}

pub(super) fn side_code(side: Side) -> i64 {
    match side {
        Side::Source => 0,
        Side::Target => 1,
        Side::SourceZeroedAt => 2,
        Side::TargetZeroedAt => 3,
    }
}

/// Writes quantity chunks of one endpoint, whole. Only for a column without deltas (the move to
/// chunks, tests): the deltas apply after the chunks, so they would hide what this writes.
pub(super) fn write_quantity_chunks(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    chunks: &[Chunk],
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO quantity_chunks (side, endpoint, chunk, quantities) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (side, endpoint, chunk) DO UPDATE SET quantities = excluded.quantities",
    )?;
    for (chunk, bytes) in chunks {
        stmt.execute(params![side_code(side), endpoint, chunk, bytes])?;
    }
    Ok(())
}

/// Writes name chunks.
pub fn write_name_chunks(conn: &Connection, chunks: &[Chunk]) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO sku_chunks (chunk, names) VALUES (?1, ?2)
         ON CONFLICT (chunk) DO UPDATE SET names = excluded.names",
    )?;
    for (chunk, bytes) in chunks {
        stmt.execute(params![chunk, bytes])?;
    }
    Ok(())
}

/// `Err` when the names looked up so far (see [`SkuTable::duplicate`]) found one name twice:
/// two ids of one SKU, which only a damaged file has.
pub fn names_once(skus: &SkuTable) -> Result<(), StoreError> {
    match skus.duplicate() {
        Some((first, second)) => Err(corrupt(
            "sku_chunks",
            format!(
                "SKU {:?} is named twice (ids {first} and {second})",
                skus.name(first)
            ),
        )),
        None => Ok(()),
    }
}

/// Every SKU name, by id. Names are not checked against each other here (that takes building
/// their index, which a cycle that finds every SKU in place never needs): see [`names_once`].
pub fn load_skus(conn: &Connection) -> Result<SkuTable, StoreError> {
    super::mapped_reads(conn, || load_skus_unmapped(conn))
}

fn load_skus_unmapped(conn: &Connection) -> Result<SkuTable, StoreError> {
    let mut skus = SkuTable::default();
    let (chunks, bytes): (i64, i64) = conn.query_row(
        "SELECT count(*), coalesce(sum(length(names)), 0) FROM sku_chunks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    skus.reserve(chunks as usize * CHUNK, bytes.max(0) as usize);
    let mut stmt = conn.prepare("SELECT chunk, names FROM sku_chunks ORDER BY chunk")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let chunk = row
            .get_ref(0)?
            .as_i64()
            .map_err(|e| corrupt("sku_chunks", e))?;
        if usize::try_from(chunk)
            .ok()
            .and_then(|c| c.checked_mul(CHUNK))
            != Some(skus.len())
        {
            return Err(StoreError::Corrupt(format!(
                "sku_chunks: chunk {chunk} out of sequence"
            )));
        }
        for name in decode_names(
            row.get_ref(1)?
                .as_blob()
                .map_err(|e| corrupt("sku_chunks", e))?,
        )? {
            // A name twice (two ids of one SKU) is found when the names are first looked up
            // (see [`names_once`]); a blank name is a SKU forgotten (see [`super::prune`]).
            skus.push(name);
        }
    }
    Ok(skus)
}

/// How many SKU ids have a name, reading only the last name chunk.
pub fn sku_count(conn: &Connection) -> Result<usize, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT chunk, names FROM sku_chunks ORDER BY chunk DESC LIMIT 1")?;
    let mut rows = stmt.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(0);
    };
    let chunk = row
        .get_ref(0)?
        .as_i64()
        .map_err(|e| corrupt("sku_chunks", e))?;
    let names = decode_names(
        row.get_ref(1)?
            .as_blob()
            .map_err(|e| corrupt("sku_chunks", e))?,
    )?;
    u32::try_from(chunk)
        .ok()
        .and_then(|c| (c as usize).checked_mul(CHUNK))
        .and_then(|first| first.checked_add(names.len()))
        .ok_or_else(|| corrupt("sku_chunks", format!("chunk {chunk} out of range")))
}

/// Checks that `id` has a name: every quantity, refusal or reference by id must.
pub(super) fn check_named(id: i64, skus: usize, table: &str) -> Result<SkuId, StoreError> {
    match SkuId::try_from(id) {
        Ok(sku) if (sku as usize) < skus => Ok(sku),
        _ => Err(corrupt(
            table,
            format!("SKU id {id} has no name (there are {skus} SKUs)"),
        )),
    }
}

/// The names in one chunk's bytes.
pub(super) fn decode_names(chunk: &[u8]) -> Result<Vec<&str>, StoreError> {
    // The chunk is checked as UTF-8 once, as a whole (its lengths are ASCII while names are
    // shorter than 128 bytes): a name in it is then UTF-8 if it begins and ends on character
    // boundaries. A million short names checked one by one cost a tenth of loading them. Any
    // name not known good so is checked alone, which says why it is not.
    let text = std::str::from_utf8(chunk).ok();
    let mut names = Vec::new();
    let mut bytes = chunk;
    while !bytes.is_empty() {
        let (len, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("sku_chunks", "truncated length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        let (name, after) = rest
            .split_at_checked(len)
            .ok_or_else(|| corrupt("sku_chunks", "truncated name"))?;
        let start = chunk.len() - rest.len();
        let known = text.and_then(|text| text.get(start..start + len));
        names.push(match known {
            Some(name) => name,
            None => std::str::from_utf8(name).map_err(|e| corrupt("sku_chunks", e))?,
        });
        if names.len() > CHUNK {
            return Err(corrupt("sku_chunks", "too many names in a chunk"));
        }
        bytes = after;
    }
    Ok(names)
}

/// The names of a few SKU ids (reading only their chunks).
pub fn sku_names(conn: &Connection, ids: &[SkuId]) -> Result<Vec<(SkuId, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT names FROM sku_chunks WHERE chunk = ?1")?;
    let mut found = Vec::new();
    for &id in ids {
        let bytes: Vec<u8> = stmt.query_row([chunk_of(id)], |r| r.get(0))?;
        let names = decode_names(&bytes)?;
        if let Some(name) = names.get(id as usize % CHUNK) {
            found.push((id, (*name).to_owned()));
        }
    }
    Ok(found)
}

/// One SKU's quantity in one column's chunks, reading only its chunk (the column's deltas
/// apart: see `deltas::quantity_of`).
pub(super) fn chunk_quantity_of(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    sku: SkuId,
) -> Result<Option<i64>, StoreError> {
    let bytes: Option<Vec<u8>> = conn
        .query_row(
            "SELECT quantities FROM quantity_chunks WHERE side = ?1 AND endpoint = ?2 AND chunk = ?3",
            params![side_code(side), endpoint, chunk_of(sku)],
            |r| r.get(0),
        )
        .optional()?;
    let Some(bytes) = bytes else { return Ok(None) };
    let mut values = [ABSENT; CHUNK];
    decode_quantities(&bytes, &mut values).map_err(|e| corrupt("quantity_chunks", e))?;
    let quantity = values[sku as usize % CHUNK];
    Ok((quantity != ABSENT).then_some(quantity))
}

/// The quantities of one column's chunks (its deltas apart: see `deltas::load_column`), of
/// `skus` named SKUs: each one a quantity of at least 0 for a SKU that has a name, or the file
/// is inconsistent.
pub(super) fn load_chunks(
    conn: &Connection,
    side: Side,
    endpoint: i64,
    skus: usize,
) -> Result<Column, StoreError> {
    // Every id it can hold is below `skus`: room for them at once, not grown (and copied, and
    // its pages touched again) a doubling at a time.
    let mut column = Column::with_width(skus);
    let mut stmt = conn.prepare_cached(
        "SELECT chunk, quantities FROM quantity_chunks WHERE side = ?1 AND endpoint = ?2 ORDER BY chunk",
    )?;
    let mut rows = stmt.query(params![side_code(side), endpoint])?;
    let mut values = [ABSENT; CHUNK];
    while let Some(row) = rows.next()? {
        let chunk = row
            .get_ref(0)?
            .as_i64()
            .map_err(|e| corrupt("quantity_chunks", e))?;
        let bytes = row
            .get_ref(1)?
            .as_blob()
            .map_err(|e| corrupt("quantity_chunks", e))?;
        if !(0..=i64::from(u32::MAX) / CHUNK as i64).contains(&chunk) {
            return Err(corrupt(
                "quantity_chunks",
                format!("chunk {chunk} malformed"),
            ));
        }
        decode_quantities(bytes, &mut values)
            .map_err(|e| corrupt("quantity_chunks", format!("chunk {chunk} malformed: {e}")))?;
        let first = chunk * CHUNK as i64;
        for (i, &quantity) in values.iter().enumerate() {
            if quantity == ABSENT {
                continue;
            }
            let id = first + i as i64;
            let sku = check_named(id, skus, "quantity_chunks")?;
            if quantity < 0 {
                return Err(corrupt(
                    "quantity_chunks",
                    format!("quantity {quantity} for SKU id {id} is below 0"),
                ));
            }
            column.set(sku, quantity);
        }
    }
    Ok(column)
}

pub(super) fn corrupt(table: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{table}: {what}"))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::store::db::testing::on_both_engines;

    fn tables() -> Connection {
        let conn = Connection::open_in_memory().expect("db");
        conn.execute_batch(super::super::migrations::CHUNK_TABLES)
            .expect("schema");
        conn.execute_batch(super::super::deltas::DELTA_TABLE)
            .expect("deltas");
        conn
    }

    /// The chunks alone: these tests write no deltas.
    fn load_column(conn: &Connection, side: Side, endpoint: i64) -> Result<Column, StoreError> {
        load_chunks(conn, side, endpoint, sku_count(conn)?)
    }

    /// Three named SKUs, and one chunk of `quantities` as its column (in place of what `conn`
    /// held).
    fn with_quantities(conn: &Connection, chunk: i64, quantities: &[u8]) {
        conn.execute_batch("DELETE FROM sku_chunks; DELETE FROM quantity_chunks;")
            .expect("emptied");
        let mut skus = SkuTable::default();
        for name in ["A", "B", "C"] {
            skus.intern(name);
        }
        write_name_chunks(conn, &name_chunks_from(&skus, 0)).expect("names");
        conn.execute(
            "INSERT INTO quantity_chunks VALUES (1, 1, ?1, ?2)",
            params![chunk, quantities],
        )
        .expect("chunk");
    }

    /// Each name checked alone, as chunks were read before the chunk was checked whole.
    fn decode_one_by_one(mut bytes: &[u8]) -> Result<Vec<&str>, String> {
        let mut names = Vec::new();
        while !bytes.is_empty() {
            let (len, rest) = bytes.split_first_chunk::<4>().ok_or("truncated length")?;
            let (name, after) = rest
                .split_at_checked(u32::from_le_bytes(*len) as usize)
                .ok_or("truncated name")?;
            names.push(std::str::from_utf8(name).map_err(|e| e.to_string())?);
            if names.len() > CHUNK {
                return Err("too many names in a chunk".to_owned());
            }
            bytes = after;
        }
        Ok(names)
    }

    /// A name chunk's bytes: names short and long (lengths of 128 and more are not ASCII),
    /// of several scripts or of bytes that are not UTF-8, cut short or not.
    fn name_chunk() -> impl Strategy<Value = Vec<u8>> {
        let name = prop_oneof![
            "[A-Z0-9-]{0,12}".prop_map(String::into_bytes),
            ".{0,6}".prop_map(String::into_bytes),
            "[a-zé]{120,140}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..8),
        ];
        (
            prop::collection::vec(name, 0..12),
            any::<Option<prop::sample::Index>>(),
        )
            .prop_map(|(names, cut)| {
                let mut bytes = Vec::new();
                for name in names {
                    bytes.extend_from_slice(&(name.len() as u32).to_le_bytes());
                    bytes.extend_from_slice(&name);
                }
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                bytes
            })
    }

    /// A chunk's quantities: mostly everyday ones, with none, zero, huge and (rarely) negative
    /// values that only a damaged or older file could hold.
    fn chunk_values() -> impl Strategy<Value = Vec<i64>> {
        let value = prop_oneof![
            8 => 0i64..1000,
            4 => Just(ABSENT),
            2 => Just(0i64),
            1 => any::<i64>(),
            1 => Just(i64::MAX),
            1 => (1u32..63).prop_map(|bits| 1i64 << bits),
        ];
        prop::collection::vec(value, CHUNK)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn a_quantity_chunk_reads_back_as_written_and_packed_is_never_as_long_as_plain(values in chunk_values()) {
            let values: [i64; CHUNK] = values.try_into().expect("a chunk");
            let bytes = encode_quantities(&values);
            let mut read = [0; CHUNK];
            decode_quantities(&bytes, &mut read).expect("reads back");
            prop_assert_eq!(read, values);
            if bytes.len() != PLAIN {
                prop_assert!(bytes.len() < PLAIN);
                prop_assert_eq!(bytes[0], PACKED);
            } else {
                // Plain only where packed would not do: a value it cannot hold, or no shorter.
                let varint = |v: i64| (64 - ((v as u64).wrapping_add(1) | 1).leading_zeros()).div_ceil(7) as usize;
                let packed: usize = 1 + values.iter().map(|&v| varint(v)).sum::<usize>();
                prop_assert!(values.iter().any(|&v| v < ABSENT) || packed >= PLAIN);
            }
            // The form every chunk had before still reads the same.
            decode_quantities(&plain(&values), &mut read).expect("plain reads");
            prop_assert_eq!(read, values);
        }

        #[test]
        fn a_damaged_packed_chunk_is_refused_or_read_never_a_panic(
            values in chunk_values(),
            cut in any::<prop::sample::Index>(),
            flip in any::<(prop::sample::Index, u8)>(),
            tail in prop::collection::vec(any::<u8>(), 0..3),
        ) {
            let values: [i64; CHUNK] = values.try_into().expect("a chunk");
            let whole = encode_quantities(&values);
            let mut read = [0; CHUNK];
            // Cut short, or with bytes after its last value: refused.
            let short = &whole[..cut.index(whole.len())];
            if short.len() != PLAIN {
                prop_assert!(decode_quantities(short, &mut read).is_err());
            }
            let mut long = whole.clone();
            long.extend_from_slice(&tail);
            if !tail.is_empty() && long.len() != PLAIN && whole.len() != PLAIN {
                prop_assert!(decode_quantities(&long, &mut read).is_err());
            }
            // A byte changed: refused, or read as quantities of at least 0 or none.
            let mut changed = whole;
            let at = flip.0.index(changed.len());
            changed[at] ^= flip.1 | 1;
            if changed.len() != PLAIN && decode_quantities(&changed, &mut read).is_ok() {
                prop_assert!(read.iter().all(|&v| v >= ABSENT));
            }
        }

        #[test]
        fn a_name_chunk_reads_as_its_names_checked_one_by_one(chunk in name_chunk()) {
            match (decode_names(&chunk), decode_one_by_one(&chunk)) {
                (Ok(names), Ok(expected)) => prop_assert_eq!(names, expected),
                (Err(e), Err(expected)) => prop_assert!(e.to_string().ends_with(&expected), "{} / {}", e, expected),
                (got, expected) => prop_assert!(false, "{:?} / {:?}", got.map_err(|e| e.to_string()), expected),
            }
        }

        #[test]
        fn random_bytes_in_the_chunks_are_refused_or_read_never_a_panic(
            names in prop::collection::vec(any::<u8>(), 0..600),
            quantities in prop_oneof![
                prop::collection::vec(any::<u8>(), CHUNK * 8),
                prop::collection::vec(any::<u8>(), 0..64),
                // Packed, of values random and everyday.
                prop::collection::vec(any::<u8>(), CHUNK..CHUNK * 3).prop_map(|mut b| { b[0] = PACKED; b }),
                prop::collection::vec(0u8..0x80, CHUNK + 1).prop_map(|mut b| { b[0] = PACKED; b }),
            ],
            chunk in -2i64..3,
        ) {
            let conn = tables();
            conn.execute("INSERT INTO sku_chunks VALUES (0, ?1)", [&names]).expect("names");
            conn.execute("INSERT INTO quantity_chunks VALUES (1, 1, ?1, ?2)", params![chunk, quantities])
                .expect("chunk");
            let skus = load_skus(&conn);
            let column = load_column(&conn, Side::Target, 1);
            if let (Ok(skus), Ok(column)) = (skus, column) {
                // What loads is safe to index: every id with a quantity has a name.
                for (id, quantity) in column.iter() {
                    prop_assert!((id as usize) < skus.len());
                    prop_assert!(quantity >= 0);
                    let _ = skus.name(id);
                }
            }
        }
    }

    #[test]
    fn changed_chunks_carry_the_changes_and_leave_the_column_alone() {
        let mut column = Column::default();
        column.set(3, 7);
        column.set(CHUNK as SkuId + 1, 9);
        let chunks = quantity_chunks_after(&column, &[(4, 2), (3, 8)]);
        assert_eq!(chunks.len(), 1, "only chunk 0 is touched");
        let mut values = [0; CHUNK];
        decode_quantities(&chunks[0].1, &mut values).expect("decodes");
        assert_eq!((values[3], values[4], values[5]), (8, 2, ABSENT));
        assert!(
            chunks[0].1.len() < 600,
            "packed: {} bytes",
            chunks[0].1.len()
        );
        assert_eq!(
            column.get(3),
            Some(7),
            "memory is updated after the database"
        );
    }

    on_both_engines! {
        fn a_quantity_for_a_sku_without_a_name_or_below_zero_is_an_inconsistent_database(conn) {
            let mut beyond = vec![0xff; CHUNK * 8];
            beyond[3 * 8..4 * 8].copy_from_slice(&5i64.to_le_bytes());
            let mut negative = vec![0xff; CHUNK * 8];
            negative[..8].copy_from_slice(&(-7i64).to_le_bytes());
            let mut fine = vec![0xff; CHUNK * 8];
            fine[2 * 8..3 * 8].copy_from_slice(&9i64.to_le_bytes());
            // The same, packed as chunks are written now.
            let packed = |at: usize, quantity: i64| {
                let mut values = [ABSENT; CHUNK];
                values[at] = quantity;
                encode_quantities(&values)
            };
            let (packed_beyond, packed_fine) = (packed(3, 5), packed(2, 9));
            let mut overlong = packed_fine.clone();
            overlong.push(0);
            for (chunk, bytes, expected) in [
                (0, &beyond, Some("SKU id 3 has no name")),
                (1, &fine, Some("SKU id 514 has no name")),
                (0, &negative, Some("below 0")),
                (0, &fine, None),
                (0, &packed_beyond, Some("SKU id 3 has no name")),
                (1, &packed_fine, Some("SKU id 514 has no name")),
                (0, &overlong, Some("1 bytes after the last")),
                (0, &packed_fine, None),
            ] {
                with_quantities(&conn, chunk, bytes);
                match (load_column(&conn, Side::Target, 1), expected) {
                    (Err(StoreError::Corrupt(message)), Some(expected)) => {
                        assert!(message.contains(expected), "{message}")
                    }
                    (Ok(column), None) => {
                        assert_eq!(column.iter().collect::<Vec<_>>(), [(2, 9)])
                    }
                    (other, _) => panic!("{chunk}: {other:?}"),
                }
            }
        }

        fn a_name_written_twice_is_an_inconsistent_database_but_blank_names_may_repeat(conn) {
            let mut skus = SkuTable::default();
            skus.push("A");
            skus.push("");
            skus.push("");
            skus.push("B");
            write_name_chunks(&conn, &name_chunks_from(&skus, 0)).expect("names");
            let loaded = load_skus(&conn).expect("loads");
            assert_eq!(loaded.len(), 4);
            assert_eq!(loaded.find_duplicate(), None, "blank names repeat");
            skus.push("A");
            write_name_chunks(&conn, &name_chunks_from(&skus, 0)).expect("names");
            let loaded = load_skus(&conn).expect("loads");
            assert!(names_once(&loaded).is_ok(), "not known until looked up");
            assert_eq!(loaded.get("A"), Some(0));
            let error = names_once(&loaded).expect_err("A twice");
            assert!(error.to_string().contains("named twice"), "{error}");
        }

        fn names_and_quantities_survive_a_round_trip_through_the_database(conn) {
            let mut skus = SkuTable::default();
            let mut column = Column::default();
            for i in 0..(CHUNK * 2 + 5) as SkuId {
                skus.intern(&format!("SKU-{i}"));
                if i % 3 == 0 {
                    column.set(i, i64::from(i));
                }
            }
            write_name_chunks(&conn, &name_chunks_from(&skus, 0)).expect("names");
            let all: Vec<(SkuId, i64)> = column.iter().collect();
            write_quantity_chunks(
                &conn,
                Side::Target,
                1,
                &quantity_chunks_after(&column, &all),
            )
            .expect("quantities");

            let names = load_skus(&conn).expect("loads");
            let loaded = load_column(&conn, Side::Target, 1).expect("loads");

            assert_eq!(names.len(), skus.len());
            assert_eq!(names.name(CHUNK as SkuId + 3), "SKU-515");
            assert_eq!(loaded.iter().collect::<Vec<_>>(), all);
            assert_eq!(
                sku_names(&conn, &[1028])
                    .expect("one")
                    .first()
                    .map(|(_, n)| n.as_str()),
                Some("SKU-1028")
            );
        }
    }
}
