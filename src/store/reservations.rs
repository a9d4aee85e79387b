//! The reservations of open orders, as the pure book in `plan::reservations` keeps them: each
//! reservation a JSON record, each SKU's unallotted drops a JSON list. Only what changed is
//! written, in one transaction per cycle.

use super::db::{Connection, params};

use super::StoreError;
use crate::plan::ledger::SkuId;
use crate::plan::reservations::{Changes, Reservation, Shown};

/// The reservations and each SKU's unallotted drops, as stored.
pub type Stored = (Vec<Reservation>, Vec<(String, Shown)>);

/// Every stored reservation of the feeds in `feeds` (those of other feeds are skipped: they are
/// no longer configured, and [`super::prune_feeds`] deletes them at start), and every SKU's
/// unallotted drops.
pub fn load_reservations(conn: &Connection, feeds: &[String]) -> Result<Stored, StoreError> {
    let mut reservations = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT feed, order_id, sku, record FROM reservations")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let feed: String = row.get(0)?;
            if !feeds.contains(&feed) {
                continue;
            }
            let text: String = row.get(3)?;
            let record: Reservation = serde_json::from_str(&text).map_err(|e| {
                StoreError::Corrupt(format!("reservations: a record does not read: {e}"))
            })?;
            reservations.push(record);
        }
    }
    let mut unallotted = Vec::new();
    let mut stmt = conn.prepare("SELECT sku, drops FROM unallotted")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let sku: String = row.get(0)?;
        let text: String = row.get(1)?;
        let drops: Vec<Shown> = serde_json::from_str(&text).map_err(|e| {
            StoreError::Corrupt(format!("unallotted: drops of {sku:?} do not read: {e}"))
        })?;
        unallotted.extend(drops.into_iter().map(|d| (sku.clone(), d)));
    }
    Ok((reservations, unallotted))
}

/// One source's changes that the reservations have not taken in yet (see
/// `unabsorbed_changes` in the migrations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unabsorbed {
    /// The source's row.
    pub source: i64,
    /// When its snapshot was recorded.
    pub at: i64,
    /// Per SKU, how much its quantity changed (never 0).
    pub changes: Vec<(SkuId, i64)>,
}

/// Writes a source's changes for the reservations, in the transaction that records its
/// snapshot.
pub fn write_unabsorbed(conn: &Connection, changes: &Unabsorbed) -> Result<(), StoreError> {
    let mut bytes = Vec::with_capacity(changes.changes.len() * 12);
    for &(sku, change) in &changes.changes {
        bytes.extend_from_slice(&sku.to_le_bytes());
        bytes.extend_from_slice(&change.to_le_bytes());
    }
    conn.execute(
        "INSERT INTO unabsorbed_changes (source_id, at, changes) VALUES (?1, ?2, ?3)
         ON CONFLICT (source_id, at) DO UPDATE SET changes = excluded.changes",
        params![changes.source, changes.at, bytes],
    )?;
    Ok(())
}

/// Every source's changes the reservations have not taken in (a crash came between), oldest
/// first.
pub fn load_unabsorbed(conn: &Connection) -> Result<Vec<Unabsorbed>, StoreError> {
    let mut stmt =
        conn.prepare("SELECT source_id, at, changes FROM unabsorbed_changes ORDER BY at")?;
    let mut rows = stmt.query([])?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(2)?;
        if !bytes.len().is_multiple_of(12) {
            return Err(StoreError::Corrupt(
                "unabsorbed_changes: a row is malformed".to_owned(),
            ));
        }
        let changes = bytes
            .chunks_exact(12)
            .map(|c| {
                let (sku, change) = c.split_at(4);
                (
                    SkuId::from_le_bytes(sku.try_into().unwrap_or_default()),
                    i64::from_le_bytes(change.try_into().unwrap_or_default()),
                )
            })
            .collect();
        all.push(Unabsorbed {
            source: row.get(0)?,
            at: row.get(1)?,
            changes,
        });
    }
    Ok(all)
}

/// Forgets every source's changes kept for the reservations (no order feed is configured).
pub fn forget_unabsorbed(conn: &Connection) -> Result<(), StoreError> {
    conn.execute("DELETE FROM unabsorbed_changes", [])?;
    Ok(())
}

/// Writes what the book changed and forgets the sources' changes it took in (`absorbed`:
/// `(source, at)` keys), in one transaction.
pub fn write_reservation_changes(
    conn: &mut Connection,
    changes: &Changes,
    absorbed: &[(i64, i64)],
    generation: Option<u64>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    if let Some(generation) = generation {
        super::write_generation(&tx, generation)?;
    }
    {
        let mut forget =
            tx.prepare_cached("DELETE FROM unabsorbed_changes WHERE source_id = ?1 AND at = ?2")?;
        for (source, at) in absorbed {
            forget.execute(params![source, at])?;
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO reservations (feed, order_id, sku, record) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (feed, order_id, sku) DO UPDATE SET record = excluded.record",
        )?;
        for r in &changes.upserted {
            let record = serde_json::to_string(r)
                .map_err(|e| StoreError::Corrupt(format!("a reservation does not write: {e}")))?;
            upsert.execute(params![r.feed, r.order_id, r.sku, record])?;
        }
        let mut delete = tx.prepare_cached(
            "DELETE FROM reservations WHERE feed = ?1 AND order_id = ?2 AND sku = ?3",
        )?;
        for key in &changes.removed {
            delete.execute(params![key.feed, key.order_id, key.sku])?;
        }
        let mut put = tx.prepare_cached(
            "INSERT INTO unallotted (sku, drops) VALUES (?1, ?2)
             ON CONFLICT (sku) DO UPDATE SET drops = excluded.drops",
        )?;
        let mut clear = tx.prepare_cached("DELETE FROM unallotted WHERE sku = ?1")?;
        for (sku, drops) in &changes.unallotted {
            if drops.is_empty() {
                clear.execute([sku])?;
            } else {
                let text = serde_json::to_string(drops)
                    .map_err(|e| StoreError::Corrupt(format!("drops do not write: {e}")))?;
                put.execute(params![sku, text])?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// The reservations of one SKU, for `status --sku`.
pub fn reservations_of(conn: &Connection, sku: &str) -> Result<Vec<Reservation>, StoreError> {
    records(
        conn,
        "SELECT record FROM reservations WHERE sku = ?1 ORDER BY order_id",
        [sku],
    )
}

/// Every reservation, for `status`.
pub fn all_reservations(conn: &Connection) -> Result<Vec<Reservation>, StoreError> {
    records(
        conn,
        "SELECT record FROM reservations ORDER BY feed, order_id, sku",
        [],
    )
}

fn records(
    conn: &Connection,
    sql: &str,
    params: impl super::db::Params,
) -> Result<Vec<Reservation>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for text in rows {
        out.push(serde_json::from_str(&text?).map_err(|e| {
            StoreError::Corrupt(format!("reservations: a record does not read: {e}"))
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::testing::on_both_engines;

    on_both_engines! {
        fn changes_kept_for_the_reservations_read_back_and_go_with_the_write_that_took_them_in(conn) {
            conn.execute("INSERT INTO sources (id, name) VALUES (1, 'a'), (2, 'b')", [])
                .expect("sources");
            let first = Unabsorbed {
                source: 1,
                at: 10,
                changes: vec![(0, -3), (7, 12)],
            };
            let second = Unabsorbed {
                source: 2,
                at: 11,
                changes: vec![(7, -12)],
            };
            write_unabsorbed(&conn, &second).expect("writes");
            write_unabsorbed(&conn, &first).expect("writes");

            let kept = load_unabsorbed(&conn).expect("reads");
            write_reservation_changes(&mut conn, &Changes::default(), &[(1, 10)], None)
                .expect("writes");

            assert_eq!(kept, vec![first, second.clone()], "oldest first");
            assert_eq!(load_unabsorbed(&conn).expect("reads"), vec![second]);
            forget_unabsorbed(&conn).expect("forgets");
            assert!(load_unabsorbed(&conn).expect("reads").is_empty());
        }
    }
}
