//! The reservations of open orders, as the pure book in `plan::reservations` keeps them: each
//! reservation a JSON record, each SKU's unallotted drops a JSON list. Only what changed is
//! written, in one transaction per cycle.

use rusqlite::{Connection, params};

use super::StoreError;
use crate::plan::reservations::{Changes, Reservation, Shown};

/// The reservations and each SKU's unallotted drops, as stored.
pub type Stored = (Vec<Reservation>, Vec<(String, Shown)>);

/// Every stored reservation of the feeds in `feeds` (those of other feeds are deleted: no
/// longer configured), and every SKU's unallotted drops.
pub fn load_reservations(
    conn: &mut Connection,
    feeds: &[String],
    read_only: bool,
) -> Result<Stored, StoreError> {
    let mut reservations = Vec::new();
    let mut gone = Vec::new();
    {
        let mut stmt = conn.prepare("SELECT feed, order_id, sku, record FROM reservations")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let feed: String = row.get(0)?;
            if !feeds.contains(&feed) {
                gone.push(feed);
                continue;
            }
            let text: String = row.get(3)?;
            let record: Reservation = serde_json::from_str(&text).map_err(|e| {
                StoreError::Corrupt(format!("reservations: a record does not read: {e}"))
            })?;
            reservations.push(record);
        }
    }
    if !read_only && !gone.is_empty() {
        gone.sort();
        gone.dedup();
        let tx = conn.transaction()?;
        for feed in &gone {
            tx.execute("DELETE FROM reservations WHERE feed = ?1", [feed])?;
            tracing::info!(feed = %feed, "order feed no longer configured: its reservations are deleted");
        }
        tx.commit()?;
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

/// Writes what the book changed, in one transaction.
pub fn write_reservation_changes(
    conn: &mut Connection,
    changes: &Changes,
    generation: Option<u64>,
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    if let Some(generation) = generation {
        super::write_generation(&tx, generation)?;
    }
    {
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
    let mut stmt =
        conn.prepare("SELECT record FROM reservations WHERE sku = ?1 ORDER BY order_id")?;
    let rows = stmt.query_map([sku], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for text in rows {
        out.push(serde_json::from_str(&text?).map_err(|e| {
            StoreError::Corrupt(format!("reservations: a record does not read: {e}"))
        })?);
    }
    Ok(out)
}
