//! The dropship relay's records (`relay_orders`, see `relay`): one row per Hardtofind order,
//! written on every transition, each in its own transaction, so the intent to place (`placing`)
//! is on disk before the request leaves. `approved` is written only by `relay approve` and by
//! `mode = "auto"`, never by a transition, so an approval given beside a running daemon is
//! never overwritten.

use super::db::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use crate::plan::relay::{Record, State};

const COLUMNS: &str = "order_id, feed, custom_order_id, state, reason, approved, \
    supplier_order_id, payload, value, attempts, seen_at, updated_at, placing_at";

fn record(row: &Row) -> Result<Record, StoreError> {
    let word: String = row.get(3)?;
    let state = State::parse(&word).ok_or_else(|| {
        StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("unknown relay state {word:?}").into(),
        ))
    })?;
    let supplier: Option<i64> = row.get(6)?;
    let attempts: i64 = row.get(9)?;
    Ok(Record {
        order_id: row.get(0)?,
        feed: row.get(1)?,
        custom_order_id: row.get(2)?,
        state,
        reason: row.get(4)?,
        approved: row.get::<_, i64>(5)? != 0,
        supplier_order_id: supplier.and_then(|id| u64::try_from(id).ok()),
        payload: row.get(7)?,
        value: row.get(8)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        seen_at: row.get(10)?,
        updated_at: row.get(11)?,
        placing_at: row.get(12)?,
    })
}

/// A row that does not read is a database that contradicts itself.
fn corrupt(e: StoreError) -> StoreError {
    match e {
        StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(_, _, why)) => {
            StoreError::Corrupt(format!("relay_orders: {why}"))
        }
        other => other,
    }
}

/// Every record, oldest first.
pub fn relay_records(conn: &Connection) -> Result<Vec<Record>, StoreError> {
    let mut statement = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM relay_orders ORDER BY seen_at, order_id"
    ))?;
    let rows = statement.query_map([], record)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(corrupt)
}

/// The record of Hardtofind order `order_id`, if the relay has one.
pub fn relay_record(conn: &Connection, order_id: &str) -> Result<Option<Record>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM relay_orders WHERE order_id = ?1"),
        [order_id],
        record,
    )
    .optional()
    .map_err(corrupt)
}

/// Records orders seen for the first time; one already known is left as it is.
pub fn relay_insert_seen(conn: &mut Connection, records: &[Record]) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO relay_orders (order_id, feed, custom_order_id, state, seen_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
        )?;
        for r in records {
            insert.execute(params![
                r.order_id,
                r.feed,
                r.custom_order_id,
                r.state.word(),
                r.seen_at
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Writes a transition: everything of `record` but `approved` (see the module's doc).
pub fn relay_write(conn: &Connection, record: &Record) -> Result<(), StoreError> {
    let supplier = record
        .supplier_order_id
        .map(|id| i64::try_from(id).unwrap_or(i64::MAX));
    conn.execute(
        "UPDATE relay_orders SET state = ?2, reason = ?3, supplier_order_id = ?4, payload = ?5,
             value = ?6, attempts = ?7, updated_at = ?8, placing_at = ?9
         WHERE order_id = ?1",
        params![
            record.order_id,
            record.state.word(),
            record.reason,
            supplier,
            record.payload,
            record.value,
            i64::from(record.attempts),
            record.updated_at,
            record.placing_at,
        ],
    )?;
    Ok(())
}

/// What `relay approve` came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Approval {
    /// Approved now; it is placed at the next cycle that finds it still eligible.
    Approved(Record),
    /// Approved before.
    Already(Record),
    /// In a state approval means nothing to (placing, placed, cancelled, MANUAL, …).
    NotApprovable(Record),
    /// The relay has no such order.
    Unknown,
}

/// Approves Hardtofind order `order_id`. A rejected order goes back to `seen` to be checked
/// again. One transaction, so it is safe beside a running daemon.
pub fn relay_approve(
    conn: &mut Connection,
    order_id: &str,
    now: i64,
) -> Result<Approval, StoreError> {
    // Immediate: the write lock is taken (waiting out the daemon's writes) before the record is
    // read. A deferred transaction read first, and a daemon's commit between its read and its
    // write made SQLite refuse the write at once ("database is locked"), whatever the timeout.
    let tx = conn.transaction_immediate()?;
    let Some(mut current) = relay_record(&tx, order_id)? else {
        return Ok(Approval::Unknown);
    };
    if !current.state.approvable() {
        return Ok(Approval::NotApprovable(current));
    }
    if current.approved && current.state != State::Rejected {
        return Ok(Approval::Already(current));
    }
    tx.execute(
        "UPDATE relay_orders SET approved = 1, updated_at = ?2,
             state = CASE state WHEN 'rejected' THEN 'seen' ELSE state END,
             reason = 'approved: placed at the next cycle'
         WHERE order_id = ?1",
        params![order_id, now],
    )?;
    if current.state == State::Rejected {
        current.state = State::Seen;
    }
    current.reason = Some("approved: placed at the next cycle".to_owned());
    current.approved = true;
    current.updated_at = now;
    tx.commit()?;
    Ok(Approval::Approved(current))
}

/// Marks `order_id` approved by the daemon itself (`mode = "auto"`).
pub fn relay_auto_approve(conn: &Connection, order_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE relay_orders SET approved = 1 WHERE order_id = ?1",
        [order_id],
    )?;
    Ok(())
}

/// Opens an existing database to approve an order beside a running daemon: read-write, never
/// created and never migrated (the daemon's `flock` is for daemons; one SQLite transaction is
/// safe beside one, and waits up to 5 s for its writes). A database of another version is
/// refused as `status` refuses it.
pub fn open_for_approval(path: &std::path::Path) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = super::migrations::VERSION;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    if found < known {
        return Err(StoreError::Outdated { found, known });
    }
    Ok(conn.into())
}

/// How many records are in each state.
pub fn relay_counts(conn: &Connection) -> Result<Vec<(State, i64)>, StoreError> {
    let mut statement =
        conn.prepare("SELECT state, count(*) FROM relay_orders GROUP BY state ORDER BY state")?;
    let rows = statement.query_map([], |row| {
        let word: String = row.get(0)?;
        Ok((word, row.get::<_, i64>(1)?))
    })?;
    let mut counts = Vec::new();
    for row in rows {
        let (word, count) = row?;
        let state = State::parse(&word)
            .ok_or_else(|| StoreError::Corrupt(format!("relay_orders: unknown state {word:?}")))?;
        counts.push((state, count));
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::testing::on_both_engines;

    #[test]
    fn an_approval_waits_out_a_daemon_writing_beside_it_instead_of_failing() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("invsync.db");
        let mut daemon = Connection::open(&path).expect("db");
        daemon
            .sqlite()
            .expect("sqlite")
            .pragma_update(None, "journal_mode", "wal")
            .expect("wal");
        super::super::migrations::migrate(&mut daemon).expect("migrated");
        relay_insert_seen(&mut daemon, &[Record::seen("7", "hardtofind", 1)]).expect("seen");
        // The daemon is in the middle of a write, which it commits a moment later.
        daemon
            .execute_batch("BEGIN IMMEDIATE; UPDATE relay_orders SET updated_at = 5;")
            .expect("writing");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            daemon.execute_batch("COMMIT").expect("commit");
        });

        let mut approver = open_for_approval(&path).expect("open");
        let approval = relay_approve(&mut approver, "7", 9);

        writer.join().expect("the daemon's write");
        assert!(
            matches!(approval, Ok(Approval::Approved(_))),
            "{approval:?}"
        );
    }

    on_both_engines! {
        fn a_transition_never_undoes_an_approval_given_beside_it(conn) {
            let seen = Record::seen("7", "hardtofind", 1);
            relay_insert_seen(&mut conn, std::slice::from_ref(&seen)).expect("insert");
            relay_insert_seen(&mut conn, std::slice::from_ref(&seen)).expect("twice is once");
            let approval = relay_approve(&mut conn, "7", 2).expect("approve");
            assert!(matches!(approval, Approval::Approved(_)));
            let mut later = seen.clone();
            later.state = State::Waiting;
            later.reason = Some("over max_order_value".into());
            relay_write(&conn, &later).expect("write");
            let read = relay_record(&conn, "7").expect("read").expect("there");
            assert!(read.approved);
            assert_eq!(read.state, State::Waiting);
            assert_eq!(
                relay_counts(&conn).expect("counts"),
                vec![(State::Waiting, 1)]
            );
            assert_eq!(
                relay_approve(&mut conn, "8", 3).expect("approve"),
                Approval::Unknown
            );
        }

        fn an_intent_reads_back_exactly_as_committed(conn) {
            let seen = Record::seen("1001", "hardtofind", 10);
            relay_insert_seen(&mut conn, std::slice::from_ref(&seen)).expect("insert");
            relay_auto_approve(&conn, "1001").expect("auto");
            let placing = Record {
                state: State::Placing,
                reason: Some("résumé: «unknown» outcome, 2nd attempt".into()),
                payload: Some(
                    r#"{"custom_order_id":"htf-1001","line_items":[{"id":100001,"quantity":2}]}"#
                        .into(),
                ),
                value: Some(39.98),
                attempts: 2,
                updated_at: 20,
                placing_at: Some(1_765_000_000_123),
                supplier_order_id: Some(u64::try_from(i64::MAX).expect("fits")),
                ..seen.clone()
            };

            relay_write(&conn, &placing).expect("the intent");

            let read = relay_record(&conn, "1001").expect("read").expect("there");
            assert_eq!(read, Record { approved: true, ..placing });
            assert_eq!(read.custom_order_id, "htf-1001");
            assert_eq!(relay_record(&conn, "1002").expect("read"), None);
        }

        fn records_come_oldest_first_and_are_counted_by_state(conn) {
            let records = [
                Record::seen("b", "hardtofind", 5),
                Record::seen("a", "hardtofind", 5),
                Record::seen("c", "other", 1),
            ];
            relay_insert_seen(&mut conn, &records).expect("insert");
            let mut placed = records[2].clone();
            placed.state = State::Placed;
            placed.supplier_order_id = Some(7);
            relay_write(&conn, &placed).expect("placed");
            let mut manual = records[0].clone();
            manual.state = State::Manual;
            manual.reason = Some("cannot tell whether it was placed".into());
            relay_write(&conn, &manual).expect("manual");

            let order: Vec<String> = (relay_records(&conn).expect("records").into_iter())
                .map(|r| r.order_id)
                .collect();

            assert_eq!(order, ["c", "a", "b"], "by seen_at, then order id");
            assert_eq!(
                relay_counts(&conn).expect("counts"),
                vec![(State::Manual, 1), (State::Placed, 1), (State::Seen, 1)],
                "in the order of the states' words"
            );
        }

        fn a_rejected_order_approved_goes_back_to_be_checked_and_a_placing_one_cannot_be(conn) {
            let records = [Record::seen("r", "hardtofind", 1), Record::seen("p", "hardtofind", 1)];
            relay_insert_seen(&mut conn, &records).expect("insert");
            let mut rejected = records[0].clone();
            rejected.state = State::Rejected;
            rejected.reason = Some("Endless Aisles refused it".into());
            relay_write(&conn, &rejected).expect("rejected");
            let mut placing = records[1].clone();
            placing.state = State::Placing;
            placing.payload = Some("{}".into());
            relay_write(&conn, &placing).expect("placing");

            let approved = relay_approve(&mut conn, "r", 5).expect("approve");
            let refused = relay_approve(&mut conn, "p", 5).expect("approve");

            assert!(matches!(approved, Approval::Approved(ref r) if r.state == State::Seen));
            let read = relay_record(&conn, "r").expect("read").expect("there");
            assert_eq!((read.state, read.approved, read.updated_at), (State::Seen, true, 5));
            assert!(matches!(refused, Approval::NotApprovable(ref r) if r.state == State::Placing));
            assert!(!relay_record(&conn, "p").expect("read").expect("there").approved);
            assert!(matches!(
                relay_approve(&mut conn, "r", 6).expect("again"),
                Approval::Already(_)
            ));
        }
    }
}
