//! What the mapping keeps: Endless Aisles sizes as last read and when, each catalogue's barcodes,
//! and the notes `status` shows (conflicts, unmapped SKUs, sizes that cannot be sold, keys).
//! Each is replaced whole when it changes; nothing here is per cycle.

use std::io::Write as _;

use super::db::{Connection, OptionalExtension, Statement, Transaction, params};

use super::StoreError;
use crate::mapping::{Aliases, Origin};
use crate::services::endless_aisles::SizeInfo;

/// Every size of `source` as last read, and when (ms), or `None` when never read.
pub fn load_sizes(
    conn: &Connection,
    source: i64,
) -> Result<Option<(Vec<SizeInfo>, i64)>, StoreError> {
    let read_at: Option<i64> = conn
        .query_row(
            "SELECT read_at FROM ea_products_read WHERE source_id = ?1",
            [source],
            |r| r.get(0),
        )
        .optional()?;
    let Some(read_at) = read_at else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT option_id, upc, title, purchasable, discontinued FROM ea_sizes
         WHERE source_id = ?1 ORDER BY option_id",
    )?;
    let sizes = stmt
        .query_map([source], |r| {
            Ok(SizeInfo {
                option_id: r.get::<_, i64>(0)?.try_into().unwrap_or_default(),
                product_id: 0,
                upc: r.get(1)?,
                title: r.get(2)?,
                purchasability: r.get(3)?,
                discontinued: r.get(4)?,
                wholesale: None,
                price: None,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((sizes, read_at)))
}

/// Replaces the sizes of `source`, read at `at`, in one transaction.
pub fn write_sizes(
    conn: &mut Connection,
    source: i64,
    sizes: &[SizeInfo],
    at: i64,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM ea_sizes WHERE source_id = ?1", [source])?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO ea_sizes (source_id, option_id, upc, title, purchasable, discontinued)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (source_id, option_id) DO UPDATE SET upc = excluded.upc,
                 title = excluded.title, purchasable = excluded.purchasable,
                 discontinued = excluded.discontinued",
        )?;
        for s in sizes {
            let id = i64::try_from(s.option_id).unwrap_or(i64::MAX);
            insert.execute(params![
                source,
                id,
                s.upc,
                s.title,
                s.purchasability,
                s.discontinued
            ])?;
        }
    }
    tx.execute(
        "INSERT INTO ea_products_read (source_id, read_at) VALUES (?1, ?2)
         ON CONFLICT (source_id) DO UPDATE SET read_at = excluded.read_at",
        params![source, at],
    )?;
    tx.commit()?;
    Ok(())
}

/// Each product's `ean` and `match` value of catalogue `target`, as last read; `None` when
/// never read.
pub fn load_barcodes(
    conn: &Connection,
    target: i64,
) -> Result<Option<Vec<(String, String)>>, StoreError> {
    let read: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM barcodes WHERE target_id = ?1)",
        [target],
        |r| r.get(0),
    )?;
    if !read {
        return Ok(None);
    }
    let mut stmt =
        conn.prepare("SELECT ean, sku FROM barcodes WHERE target_id = ?1 AND ean <> ''")?;
    let pairs = stmt
        .query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(pairs))
}

/// Replaces the barcodes of `target`. A catalogue read without one barcode is kept as one empty
/// row, so that "read, none" is not taken for "never read".
pub fn write_barcodes(
    conn: &mut Connection,
    target: i64,
    pairs: &[(String, String)],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    tx.execute("DELETE FROM barcodes WHERE target_id = ?1", [target])?;
    {
        let mut insert =
            tx.prepare("INSERT INTO barcodes (target_id, ean, sku) VALUES (?1, ?2, ?3)")?;
        if pairs.is_empty() {
            insert.execute(params![target, "", ""])?;
        }
        for (ean, sku) in pairs {
            insert.execute(params![target, ean, sku])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// One thing `status` says about the mapping of a SKU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `conflict`, `unmapped`, `unsellable` or `key` (a barcode's: the file's lines are in
    /// `mapping_file`).
    pub kind: String,
    /// The canonical SKU.
    pub sku: String,
    /// The endpoint it concerns (empty: every endpoint).
    pub endpoint: String,
    /// What to say.
    pub detail: String,
}

/// Replaces the notes of `kind` (of `endpoint` only, when given) with `notes`.
pub fn replace_notes(
    conn: &mut Connection,
    kind: &str,
    endpoint: Option<&str>,
    notes: &[Note],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    match endpoint {
        Some(endpoint) => tx.execute(
            "DELETE FROM mapping_notes WHERE kind = ?1 AND endpoint = ?2",
            params![kind, endpoint],
        )?,
        None => tx.execute("DELETE FROM mapping_notes WHERE kind = ?1", [kind])?,
    };
    {
        let mut insert = tx.prepare(
            "INSERT INTO mapping_notes (kind, sku, endpoint, detail) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for n in notes {
            insert.execute(params![n.kind, n.sku, n.endpoint, n.detail])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Every note about `sku`.
pub fn notes_of_sku(conn: &Connection, sku: &str) -> Result<Vec<Note>, StoreError> {
    notes_where(conn, "sku = ?1", sku, usize::MAX).map(|(_, notes)| notes)
}

/// How many notes of `kind` there are, and the first `limit` (by SKU).
pub fn notes_of_kind(
    conn: &Connection,
    kind: &str,
    limit: usize,
) -> Result<(usize, Vec<Note>), StoreError> {
    notes_where(conn, "kind = ?1", kind, limit)
}

fn notes_where(
    conn: &Connection,
    filter: &str,
    value: &str,
    limit: usize,
) -> Result<(usize, Vec<Note>), StoreError> {
    // `status` reads a database as it is, never migrated: one from before the mapping has none.
    let exists = conn.has_table("mapping_notes")?;
    if !exists {
        return Ok((0, Vec::new()));
    }
    let count: i64 = conn.query_row(
        &format!("SELECT count(*) FROM mapping_notes WHERE {filter}"),
        [value],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT kind, sku, endpoint, detail FROM mapping_notes WHERE {filter}
         ORDER BY kind, sku, endpoint LIMIT ?2"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let notes = stmt
        .query_map(params![value, limit], |r| {
            Ok(Note {
                kind: r.get(0)?,
                sku: r.get(1)?,
                endpoint: r.get(2)?,
                detail: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((usize::try_from(count).unwrap_or_default(), notes))
}

/// What the database keeps of the mapping file in force (see `mapper::file`), its
/// lines aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// What the file system said of it (`config::mapping::FileStamp`), or empty when that was
    /// too recent to be trusted.
    pub stamp: String,
    /// The SHA-256 of its bytes.
    pub digest: Vec<u8>,
    /// The endpoint names its lines were checked against, one per line.
    pub checked_for: String,
    /// The endpoints it has lines for, one per line.
    pub named: String,
}

/// Whether the table exists: `status` and a dry run read a database as it is, never migrated.
fn has_table(conn: &Connection, name: &str) -> Result<bool, StoreError> {
    conn.has_table(name)
}

/// The mapping file recorded, if any.
pub fn load_file_record(conn: &Connection) -> Result<Option<FileRecord>, StoreError> {
    if !has_table(conn, "mapping_file")? {
        return Ok(None);
    }
    conn.query_row(
        "SELECT stamp, digest, checked_for, named FROM mapping_file WHERE id = 1",
        [],
        |r| {
            Ok(FileRecord {
                stamp: r.get(0)?,
                digest: r.get(1)?,
                checked_for: r.get(2)?,
                named: r.get(3)?,
            })
        },
    )
    .optional()
}

/// The lines of the mapping file recorded, with its digest; read from the database a part at
/// a time, never whole into memory besides the lines themselves.
pub fn load_file_lines(conn: &Connection) -> Result<Option<(Vec<u8>, Aliases)>, StoreError> {
    if !has_table(conn, "mapping_lines")? {
        return Ok(None);
    }
    let Some(record) = load_file_record(conn)? else {
        return Ok(None);
    };
    let len: i64 = conn.query_row(
        "SELECT coalesce(sum(length(bytes)), 0) FROM mapping_lines",
        [],
        |r| r.get(0),
    )?;
    let mut parts = Parts {
        select: conn.prepare("SELECT bytes FROM mapping_lines WHERE part = ?1")?,
        part: 0,
        bytes: Vec::new(),
        at: 0,
        failed: None,
    };
    let read = Aliases::read_from(&mut parts, usize::try_from(len).unwrap_or(usize::MAX));
    if let Some(e) = parts.failed {
        return Err(e);
    }
    let aliases = read.ok_or_else(|| {
        StoreError::Corrupt("the mapping file's lines recorded are damaged".to_owned())
    })?;
    Ok(Some((record.digest, aliases)))
}

/// How large a part of the lines one row holds.
const PART: usize = 1 << 20;

/// The lines' rows read in order, as one stream.
struct Parts<'c> {
    select: Statement<'c>,
    part: i64,
    bytes: Vec<u8>,
    at: usize,
    /// What the database said, when it failed.
    failed: Option<StoreError>,
}

impl std::io::Read for Parts<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.bytes.len() {
            let next = self
                .select
                .query_row([self.part], |r| r.get::<_, Vec<u8>>(0))
                .optional();
            match next {
                Ok(Some(bytes)) => {
                    self.bytes = bytes;
                    self.at = 0;
                    self.part += 1;
                }
                Ok(None) => return Ok(0),
                Err(e) => {
                    self.failed = Some(e);
                    return Err(std::io::Error::other("the database failed"));
                }
            }
        }
        let n = buf.len().min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The lines written as rows of [`PART`] bytes.
struct PartsOut<'c> {
    insert: Statement<'c>,
    part: i64,
    bytes: Vec<u8>,
    failed: Option<StoreError>,
}

impl PartsOut<'_> {
    fn write_part(&mut self) -> std::io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.insert.execute(params![self.part, self.bytes]) {
            self.failed = Some(e);
            return Err(std::io::Error::other("the database failed"));
        }
        self.part += 1;
        self.bytes.clear();
        Ok(())
    }
}

impl std::io::Write for PartsOut<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(PART - self.bytes.len());
        self.bytes.extend_from_slice(&buf[..n]);
        if self.bytes.len() == PART {
            self.write_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.write_part()
    }
}

/// Records the mapping file in force and its lines, in place of any other; the key notes an
/// earlier version wrote for each line go (`status --sku` reads the lines here now). Within
/// the caller's transaction, which commits it with what the new file voids.
pub fn record_file(
    tx: &Transaction<'_>,
    record: &FileRecord,
    lines: &Aliases,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO mapping_file (id, stamp, digest, checked_for, named)
         VALUES (1, ?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET stamp = excluded.stamp, digest = excluded.digest,
             checked_for = excluded.checked_for, named = excluded.named",
        params![
            record.stamp,
            record.digest,
            record.checked_for,
            record.named
        ],
    )?;
    // A part at a time: binding the lines whole would hold them three times over (the bytes,
    // and SQLite's two copies of them).
    tx.execute("DELETE FROM mapping_lines", [])?;
    {
        let mut out = PartsOut {
            insert: tx.prepare("INSERT INTO mapping_lines (part, bytes) VALUES (?1, ?2)")?,
            part: 0,
            bytes: Vec::with_capacity(PART),
            failed: None,
        };
        let written = lines.write_to(&mut out).and_then(|()| out.flush());
        if let Some(e) = out.failed {
            return Err(e);
        }
        written.map_err(|e| {
            StoreError::Corrupt(format!(
                "the mapping file's lines could not be recorded: {e}"
            ))
        })?;
    }
    tx.execute(
        "DELETE FROM mapping_notes WHERE kind = 'key' AND detail LIKE '% (mapping file line %)'",
        [],
    )?;
    Ok(())
}

/// Notes a new stamp for the mapping file recorded (the same bytes, touched or copied).
pub fn restamp_file(conn: &Connection, stamp: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE mapping_file SET stamp = ?1 WHERE id = 1", [stamp])?;
    Ok(())
}

/// Forgets the mapping file: the configuration has none any more.
pub fn forget_file(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM mapping_file", [])?;
    conn.execute("DELETE FROM mapping_lines", [])?;
    Ok(())
}

/// The key notes of `sku` from the mapping file recorded: one per line that names it, as
/// `status --sku` shows them.
pub fn file_keys_of_sku(conn: &Connection, sku: &str) -> Result<Vec<Note>, StoreError> {
    let Some((_, aliases)) = load_file_lines(conn)? else {
        return Ok(Vec::new());
    };
    Ok(aliases
        .iter()
        .filter(|a| a.sku == sku)
        .map(|a| Note {
            kind: "key".into(),
            sku: sku.to_owned(),
            endpoint: a.endpoint.to_owned(),
            detail: format!("{} ({})", a.key, Origin::Csv(a.line)),
        })
        .collect())
}
