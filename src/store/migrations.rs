//! The schema's history. `PRAGMA user_version` counts the migrations applied; each runs in its
//! own transaction, so a crash mid-upgrade leaves the previous version intact.

use std::collections::BTreeMap;

use super::db::{Connection, Transaction};

use super::chunks::{
    name_chunks_from, quantity_chunks_after, write_name_chunks, write_quantity_chunks,
};
use super::{Side, StoreError, Trouble};
use crate::plan::ledger::{Column, SkuId, SkuTable};

/// One step of the schema.
enum Migration {
    /// Plain DDL.
    Sql(&'static str),
    /// A step that moves data.
    Code(fn(&Transaction) -> Result<(), StoreError>),
}

/// Every migration, in order.
const MIGRATIONS: &[Migration] = &[
    Migration::Sql(V1),
    Migration::Sql(V2),
    Migration::Code(rows_to_chunks),
    Migration::Sql(V4),
    Migration::Sql(V5),
    Migration::Sql(V6),
    Migration::Sql(V7),
    Migration::Sql(V8),
    Migration::Sql(V9_UNABSORBED),
    Migration::Sql(V10_RELAY),
    Migration::Sql(V11),
    Migration::Sql(V12_MAPPING),
    Migration::Sql(V13_IN_DOUBT),
    Migration::Sql(V14_FEEDS),
    Migration::Sql(V15_UNCHANGEABLE),
    Migration::Sql(V16_MAPPING_FILE),
    // 17: a column's changes as deltas, folded into its chunks now and then (`store::deltas`).
    Migration::Sql(super::deltas::DELTA_TABLE),
    Migration::Sql(V18_PACKED_CHUNKS),
];

/// 18: quantity chunks may be packed (see `store::chunks`). No table changes, and plain chunks
/// are still read; the version says that an invsync from before must not read this file, which
/// it would take for damaged, and refuses it as a newer one's instead.
pub(super) const V18_PACKED_CHUNKS: &str = "SELECT 1;";

/// 1: SKUs, snapshots and acknowledgements as rows; endpoints' state; cycle history.
const V1: &str = r"
    CREATE TABLE skus (
        id   INTEGER PRIMARY KEY,
        sku  TEXT NOT NULL UNIQUE
    );
    CREATE TABLE sources (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        last_fetch_at INTEGER,
        skus          INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT,
        last_error_at INTEGER
    );
    CREATE TABLE source_stock (
        source_id INTEGER NOT NULL REFERENCES sources(id),
        sku_id    INTEGER NOT NULL REFERENCES skus(id),
        quantity  INTEGER NOT NULL,
        PRIMARY KEY (source_id, sku_id)
    ) WITHOUT ROWID;
    CREATE TABLE targets (
        id              INTEGER PRIMARY KEY,
        name            TEXT NOT NULL UNIQUE,
        last_success_at INTEGER,
        pending         INTEGER NOT NULL DEFAULT 0,
        held            INTEGER NOT NULL DEFAULT 0,
        held_reason     TEXT,
        last_error      TEXT,
        last_error_at   INTEGER
    );
    CREATE TABLE acknowledged (
        target_id INTEGER NOT NULL REFERENCES targets(id),
        sku_id    INTEGER NOT NULL REFERENCES skus(id),
        quantity  INTEGER NOT NULL,
        PRIMARY KEY (target_id, sku_id)
    ) WITHOUT ROWID;
    CREATE TABLE cycles (
        id          INTEGER PRIMARY KEY,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        duration_ms INTEGER,
        full        INTEGER NOT NULL DEFAULT 0,
        outcome     TEXT,
        summary     TEXT
    );
";

/// 2: SKUs a target refused.
const V2: &str = r"
    CREATE TABLE failed_skus (
        target_id       INTEGER NOT NULL REFERENCES targets(id),
        sku_id          INTEGER NOT NULL REFERENCES skus(id),
        quantity        INTEGER NOT NULL,
        message         TEXT NOT NULL,
        first_failed_at INTEGER NOT NULL,
        last_failed_at  INTEGER NOT NULL,
        PRIMARY KEY (target_id, sku_id)
    ) WITHOUT ROWID;
";

/// 4: each endpoint remembers the place it reads or writes (its identity, secrets only as keyed
/// fingerprints), and the database keeps the key of those fingerprints. Existing rows start
/// with no identity and adopt the configured one at the next start: nothing is pushed again
/// for an upgrade alone.
const V4: &str = r"
    ALTER TABLE sources ADD COLUMN identity TEXT;
    ALTER TABLE targets ADD COLUMN identity TEXT;
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
";

/// 5: what invsync must not believe at once, remembered across cycles and restarts: when the
/// mass-zero guard's window was last restarted (`--force`), when a refused SKU is tried again,
/// and when a refused login is.
const V5: &str = r"
    ALTER TABLE sources ADD COLUMN guard_since INTEGER;
    ALTER TABLE targets ADD COLUMN guard_since INTEGER;
    ALTER TABLE failed_skus ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE failed_skus ADD COLUMN next_attempt_at INTEGER;
    ALTER TABLE sources ADD COLUMN auth_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sources ADD COLUMN auth_retry_at INTEGER;
    ALTER TABLE targets ADD COLUMN auth_failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE targets ADD COLUMN auth_retry_at INTEGER;
    ALTER TABLE sources ADD COLUMN auth_credential TEXT;
    ALTER TABLE targets ADD COLUMN auth_credential TEXT;
";

/// 6: open orders' reservations (each a JSON record of the pure book, keyed by feed, order
/// and SKU) and each SKU's recent unallotted drops.
const V6: &str = r"
    CREATE TABLE reservations (
        feed     TEXT NOT NULL,
        order_id TEXT NOT NULL,
        sku      TEXT NOT NULL,
        record   TEXT NOT NULL,
        PRIMARY KEY (feed, order_id, sku)
    ) WITHOUT ROWID;
    CREATE INDEX reservations_by_sku ON reservations (sku);
    CREATE TABLE unallotted (
        sku   TEXT PRIMARY KEY,
        drops TEXT NOT NULL
    ) WITHOUT ROWID;
";

/// 7: what invsync knows of each catalogue product's flag (see `targets::flag`), by product uuid
/// rather than SKU: the flag belongs to the product, and a SKU may move to another product when
/// the list is read again. `acked` is NULL until the shop acknowledged a write from invsync.
const V7: &str = r"
    CREATE TABLE flags (
        target_id    INTEGER NOT NULL REFERENCES targets(id),
        product      TEXT NOT NULL,
        foreign_flag INTEGER NOT NULL,
        ours         INTEGER NOT NULL,
        acked        INTEGER,
        allow_streak INTEGER NOT NULL,
        PRIMARY KEY (target_id, product)
    ) WITHOUT ROWID;
";

/// 8: what `status` needs to tell a target's state: how far the push in flight got
/// (`progress_*`, cleared when the target's cycle ends) and when its last cycle ended
/// (`synced_at`; a target without one was never synced). Existing rows count as synced when
/// they ever pushed or failed.
const V8: &str = r"
    ALTER TABLE targets ADD COLUMN progress_pushed INTEGER;
    ALTER TABLE targets ADD COLUMN progress_total INTEGER;
    ALTER TABLE targets ADD COLUMN progress_at INTEGER;
    ALTER TABLE targets ADD COLUMN synced_at INTEGER;
    UPDATE targets SET synced_at = coalesce(last_success_at, last_error_at);
";

/// 9 (the lead renumbers): a source's changes that the reservations have not taken in yet,
/// written with the snapshot that made them and deleted with the reservations that took them
/// in, so that a crash between the two writes loses no sale (`changes`: per SKU id, a `u32`
/// and the `i64` change, little-endian).
const V9_UNABSORBED: &str = r"
    CREATE TABLE unabsorbed_changes (
        source_id INTEGER NOT NULL,
        at        INTEGER NOT NULL,
        changes   BLOB NOT NULL,
        PRIMARY KEY (source_id, at)
    ) WITHOUT ROWID;
";

/// 10: the dropship relay's record of each Hardtofind order (see `relay`): its state, the
/// reason beside it, and once placing, the order exactly as sent. Keyed by the Hardtofind order
/// id alone, so renaming the feed cannot make an order look new; never deleted (the audit of
/// orders placed).
const V10_RELAY: &str = r"
    CREATE TABLE relay_orders (
        order_id          TEXT PRIMARY KEY,
        feed              TEXT NOT NULL,
        custom_order_id   TEXT NOT NULL UNIQUE,
        state             TEXT NOT NULL,
        reason            TEXT,
        approved          INTEGER NOT NULL DEFAULT 0,
        supplier_order_id INTEGER,
        payload           TEXT,
        value             REAL,
        attempts          INTEGER NOT NULL DEFAULT 0,
        seen_at           INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        placing_at        INTEGER
    );
";

/// 11: what makes an unchanged world cost nothing. `answer_digest`: the digests of the pages of a
/// source's last recorded answer (an answer that is the same is not parsed again); `settled`:
/// the inputs and rules a target was last brought wholly in sync with (see `targets::settled`).
const V11: &str = r"
    ALTER TABLE sources ADD COLUMN answer_digest BLOB;
    ALTER TABLE targets ADD COLUMN settled TEXT;
";

/// 12: Endless Aisles sizes as last read (`GET /api/products`: a restart need not read
/// them again at once), when they were read, each catalogue's barcodes (`ean` → the `match`
/// field's value, for `by_barcode`), and what `status` shows of the mapping: conflicts, SKUs a
/// target cannot map, sizes that cannot be sold, and the keys that are not the SKU itself.
const V12_MAPPING: &str = r"
    CREATE TABLE ea_sizes (
        source_id    INTEGER NOT NULL REFERENCES sources(id),
        option_id    INTEGER NOT NULL,
        upc          TEXT,
        title        TEXT NOT NULL,
        purchasable  INTEGER,
        discontinued INTEGER,
        PRIMARY KEY (source_id, option_id)
    ) WITHOUT ROWID;
    CREATE TABLE ea_products_read (
        source_id INTEGER PRIMARY KEY REFERENCES sources(id),
        read_at   INTEGER NOT NULL
    );
    CREATE TABLE barcodes (
        target_id INTEGER NOT NULL REFERENCES targets(id),
        ean       TEXT NOT NULL,
        sku       TEXT NOT NULL
    );
    CREATE TABLE mapping_notes (
        kind     TEXT NOT NULL,
        sku      TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        detail   TEXT NOT NULL
    );
    CREATE INDEX mapping_notes_by_sku ON mapping_notes (sku);
";

/// 13: the SKUs a target may or may not have taken (see `store::doubt`): those of a request
/// sent and not answered with their acknowledgement.
const V13_IN_DOUBT: &str = r"
    ALTER TABLE targets ADD COLUMN in_doubt BLOB;
";

/// 15: catalogue products the API cannot change (a variant or main variant: a `PATCH` refused
/// with a 400 that carries no `errors`), per product uuid, with the SKU they were matched to,
/// the shop's words, the product's digest then and when: tried again when the digest changes
/// or a week later (see `services::shopsys::flag::Unchangeable`).
const V15_UNCHANGEABLE: &str = r"
    CREATE TABLE unchangeable_products (
        target_id  INTEGER NOT NULL REFERENCES targets(id),
        product    TEXT NOT NULL,
        sku        TEXT NOT NULL,
        message    TEXT NOT NULL,
        digest     TEXT NOT NULL,
        refused_at INTEGER NOT NULL,
        PRIMARY KEY (target_id, product)
    ) WITHOUT ROWID;
    CREATE INDEX unchangeable_products_by_sku ON unchangeable_products (sku);
";

/// The chunk tables of version 3 (see [`super::chunks`]).
pub(super) const CHUNK_TABLES: &str = r"
    CREATE TABLE sku_chunks (
        chunk INTEGER PRIMARY KEY,
        names BLOB NOT NULL
    );
    CREATE TABLE quantity_chunks (
        side       INTEGER NOT NULL,
        endpoint   INTEGER NOT NULL,
        chunk      INTEGER NOT NULL,
        quantities BLOB NOT NULL,
        PRIMARY KEY (side, endpoint, chunk)
    ) WITHOUT ROWID;
";

/// 3: names and quantities move from one row per SKU to chunks (loading a million rows took
/// half a second per table); `failed_skus` loses its foreign key to the old `skus` table.
fn rows_to_chunks(tx: &Transaction) -> Result<(), StoreError> {
    tx.execute_batch(CHUNK_TABLES)?;
    let mut skus = SkuTable::default();
    {
        let mut stmt = tx.prepare("SELECT id, sku FROM skus ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            if id != skus.len() as i64 {
                return Err(StoreError::Corrupt(format!("skus.id {id} out of sequence")));
            }
            skus.push(&row.get::<_, String>(1)?);
        }
    }
    write_name_chunks(tx, &name_chunks_from(&skus, 0))?;
    for (side, table, key) in [
        (Side::Source, "source_stock", "source_id"),
        (Side::Target, "acknowledged", "target_id"),
    ] {
        let mut columns: BTreeMap<i64, Vec<(SkuId, i64)>> = BTreeMap::new();
        let mut stmt = tx.prepare(&format!("SELECT {key}, sku_id, quantity FROM {table}"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let sku = SkuId::try_from(row.get::<_, i64>(1)?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            columns
                .entry(row.get(0)?)
                .or_default()
                .push((sku, row.get(2)?));
        }
        for (endpoint, rows) in columns {
            write_quantity_chunks(
                tx,
                side,
                endpoint,
                &quantity_chunks_after(&Column::default(), &rows),
            )?;
        }
    }
    tx.execute_batch(
        r"
        CREATE TABLE failed_skus_v3 (
            target_id       INTEGER NOT NULL REFERENCES targets(id),
            sku_id          INTEGER NOT NULL,
            quantity        INTEGER NOT NULL,
            message         TEXT NOT NULL,
            first_failed_at INTEGER NOT NULL,
            last_failed_at  INTEGER NOT NULL,
            PRIMARY KEY (target_id, sku_id)
        ) WITHOUT ROWID;
        INSERT INTO failed_skus_v3 SELECT * FROM failed_skus;
        DROP TABLE failed_skus;
        ALTER TABLE failed_skus_v3 RENAME TO failed_skus;
        DROP TABLE source_stock;
        DROP TABLE acknowledged;
        DROP TABLE skus;
    ",
    )?;
    Ok(())
}

/// 14: each order feed's last complete read, its last error, and the orders of that read that
/// could not be read whole (a JSON list), for `status`.
const V14_FEEDS: &str = r"
    CREATE TABLE feeds (
        name          TEXT PRIMARY KEY,
        last_read_at  INTEGER,
        last_error    TEXT,
        last_error_at INTEGER,
        unreadable    TEXT NOT NULL DEFAULT '[]'
    ) WITHOUT ROWID;
";

/// 16: the mapping file in force: what the file system said of it, the digest of its bytes,
/// the endpoint names it was checked against and those it has lines for, and its lines (`mapping::Aliases::to_bytes`).
/// A start that finds the same stamp, or the same digest, need not read or check it again,
/// and a cycle that needs its lines reads them here, as they were when checked (see
/// `mapper::file`). One row at most.
const V16_MAPPING_FILE: &str = r"
    CREATE TABLE mapping_file (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        stamp       TEXT NOT NULL,
        digest      BLOB NOT NULL,
        checked_for TEXT NOT NULL,
        named       TEXT NOT NULL
    );
    -- Apart: a new stamp rewrites a small row, not the lines (31 MB for a million lines),
    -- which are kept in parts of 1 MiB, in order, written and read one at a time.
    CREATE TABLE mapping_lines (
        part  INTEGER PRIMARY KEY,
        bytes BLOB NOT NULL
    );
";

/// Brings the database to the newest version.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let Some(sqlite) = conn.sqlite() else {
        return Err(StoreError::Corrupt(
            "SQLite's migrations asked of another engine".to_owned(),
        ));
    };
    let version: i64 = sqlite.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        let applied = match migration {
            Migration::Sql(sql) => tx.execute_batch(sql),
            Migration::Code(step) => step(&tx),
        };
        // A step that fails on a database whose tables say otherwise (a version number that
        // was lowered, tables altered by hand) is an inconsistent database, said in one line;
        // a full disk or a busy file stays what it is.
        if let Err(e) = applied {
            return Err(match e.trouble() {
                Trouble::Temporary | Trouble::Inconsistent => e,
                Trouble::Unusable | Trouble::Other => StoreError::Corrupt(format!(
                    "its schema version ({version}) does not match the tables it holds: upgrading to version {} failed: {e}",
                    index + 1
                )),
            });
        }
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        tx.commit()?;
    }
    Ok(())
}

/// How many migrations there are: the schema version of a new database.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_2_database_keeps_its_names_quantities_and_refusals_in_chunks() {
        let mut conn = Connection::open_in_memory().expect("db");
        for sql in [V1, V2] {
            conn.execute_batch(sql).expect("old schema");
        }
        conn.sqlite()
            .expect("sqlite")
            .pragma_update(None, "user_version", 2)
            .expect("version 2");
        conn.execute_batch(
            r"
            INSERT INTO skus (id, sku) VALUES (0, 'A'), (1, 'B');
            INSERT INTO sources (id, name) VALUES (1, 'warehouse');
            INSERT INTO targets (id, name) VALUES (1, 'hardtofind');
            INSERT INTO source_stock VALUES (1, 0, 5), (1, 1, 0);
            INSERT INTO acknowledged VALUES (1, 1, 3);
            INSERT INTO failed_skus VALUES (1, 0, 5, 'refused', 10, 20);
        ",
        )
        .expect("old rows");

        migrate(&mut conn).expect("migrates");

        let version: i64 = conn
            .sqlite()
            .expect("sqlite")
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, VERSION);
        let skus = super::super::load_skus(&conn).expect("names");
        assert_eq!((skus.name(0), skus.name(1)), ("A", "B"));
        let stock = super::super::load_column(&conn, Side::Source, 1).expect("snapshot");
        assert_eq!(stock.iter().collect::<Vec<_>>(), vec![(0, 5), (1, 0)]);
        let acked = super::super::load_column(&conn, Side::Target, 1).expect("acks");
        assert_eq!(acked.iter().collect::<Vec<_>>(), vec![(1, 3)]);
        let refused: i64 = conn
            .query_row("SELECT count(*) FROM failed_skus", [], |r| r.get(0))
            .expect("kept");
        assert_eq!(refused, 1);
    }
}
