//! What `status` shows of each order feed: when its lists were last read completely, its last
//! error, and the orders of its last complete read that could not be read whole.

use super::db::{Connection, params};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// An order of a feed's lists that could not be read whole, as `status` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableOrder {
    /// Its id, when that much could be read.
    pub order_id: Option<String>,
    /// What could not be read.
    pub reason: String,
}

/// One read of a feed's lists, to record.
#[derive(Debug, Clone)]
pub struct FeedRead {
    name: String,
    at: i64,
    outcome: Result<Vec<UnreadableOrder>, String>,
}

impl FeedRead {
    /// Every page of every list was read at `at`; `bad` are the orders not read whole.
    pub fn complete(name: &str, at: i64, bad: Vec<UnreadableOrder>) -> FeedRead {
        FeedRead {
            name: name.to_owned(),
            at,
            outcome: Ok(bad),
        }
    }

    /// The lists could not be read at `at`.
    pub fn failed(name: &str, at: i64, error: &str) -> FeedRead {
        FeedRead {
            name: name.to_owned(),
            at,
            outcome: Err(error.to_owned()),
        }
    }
}

/// A feed as `status` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedRow {
    /// `[orders.NAME]`.
    pub name: String,
    /// When its lists were last read completely.
    pub last_read_at: Option<i64>,
    /// Its last error, unless a complete read came after it.
    pub last_error: Option<String>,
    /// When that error was.
    pub last_error_at: Option<i64>,
    /// The orders of the last complete read that could not be read whole.
    pub unreadable: Vec<UnreadableOrder>,
}

/// Records the feeds' reads of one cycle. A complete read clears the error; a failed one keeps
/// the last complete read (and its unreadable orders) beside the error.
pub fn record_feed_reads(conn: &mut Connection, reads: &[FeedRead]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    for read in reads {
        match &read.outcome {
            Ok(bad) => {
                let bad =
                    serde_json::to_string(bad).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                tx.execute(
                    "INSERT INTO feeds (name, last_read_at, unreadable) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET last_read_at = ?2, unreadable = ?3,
                        last_error = NULL, last_error_at = NULL",
                    params![read.name, read.at, bad],
                )?;
            }
            Err(error) => {
                tx.execute(
                    "INSERT INTO feeds (name, last_error, last_error_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET last_error = ?2, last_error_at = ?3",
                    params![read.name, error, read.at],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Every feed recorded, by name.
pub fn feeds(conn: &Connection) -> Result<Vec<FeedRow>, StoreError> {
    if !conn.has_table("feeds")? {
        // A database `status` opened read-only before this version: no feed was recorded.
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT name, last_read_at, last_error, last_error_at, unreadable FROM feeds ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            FeedRow {
                name: r.get(0)?,
                last_read_at: r.get(1)?,
                last_error: r.get(2)?,
                last_error_at: r.get(3)?,
                unreadable: Vec::new(),
            },
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut feeds = Vec::new();
    for row in rows {
        let (mut feed, unreadable) = row?;
        feed.unreadable = serde_json::from_str(&unreadable).map_err(|e| {
            StoreError::Corrupt(format!("feeds.unreadable of {:?}: {e}", feed.name))
        })?;
        feeds.push(feed);
    }
    Ok(feeds)
}

/// Forgets every order feed no longer configured: its row here and its reservations (the
/// relay's records stay: they are the audit of orders placed). Returns their names, sorted, so
/// that the caller can say which.
///
/// Reservations deleted are a change of the reservations like any other: the world's generation
/// moves on in the same transaction, so a target settled while they were subtracted plans again
/// (else it would go on showing what a removed feed's orders held back).
pub fn prune_feeds(
    conn: &mut Connection,
    configured: &[String],
) -> Result<Vec<String>, StoreError> {
    let tx = conn.transaction()?;
    let mut gone = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT name FROM feeds UNION SELECT feed FROM reservations")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            if !configured.contains(&name) {
                gone.push(name);
            }
        }
    }
    gone.sort();
    let mut released = 0;
    for name in &gone {
        tx.execute("DELETE FROM feeds WHERE name = ?1", [name])?;
        released += tx.execute("DELETE FROM reservations WHERE feed = ?1", [name])?;
    }
    if released > 0 {
        let generation = super::load_generation(&tx)?;
        super::write_generation(&tx, generation + 1)?;
    }
    tx.commit()?;
    Ok(gone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::testing::on_both_engines;

    on_both_engines! {
        fn a_feed_no_longer_configured_loses_its_row_and_reservations_and_the_generation_moves_on(conn) {
            let reads = [
                FeedRead::complete("kept", 10, Vec::new()),
                FeedRead::failed("gone", 10, "authentication refused"),
            ];
            record_feed_reads(&mut conn, &reads).expect("records");
            for (feed, order) in [("kept", "1"), ("gone", "2"), ("removed_long_ago", "3")] {
                conn.execute(
                    "INSERT INTO reservations (feed, order_id, sku, record) VALUES (?1, ?2, 'HK-1', '{}')",
                    [feed, order],
                )
                .expect("reservation");
            }
            let before = crate::store::load_generation(&conn).expect("reads");

            let gone = prune_feeds(&mut conn, &["kept".to_owned()]).expect("prunes");

            assert_eq!(gone, ["gone", "removed_long_ago"]);
            let names: Vec<String> = feeds(&conn)
                .expect("reads")
                .into_iter()
                .map(|f| f.name)
                .collect();
            assert_eq!(names, ["kept"]);
            let left: i64 = conn
                .query_row(
                    "SELECT count(*) FROM reservations WHERE feed = 'kept'",
                    [],
                    |r| r.get(0),
                )
                .expect("counts");
            let all: i64 = conn
                .query_row("SELECT count(*) FROM reservations", [], |r| r.get(0))
                .expect("counts");
            assert_eq!((left, all), (1, 1));
            assert_eq!(
                crate::store::load_generation(&conn).expect("reads"),
                before + 1
            );
            assert!(
                prune_feeds(&mut conn, &["kept".to_owned()])
                    .expect("again")
                    .is_empty()
            );
            assert_eq!(
                crate::store::load_generation(&conn).expect("reads"),
                before + 1,
                "nothing deleted, nothing changed"
            );
        }
    }
}
