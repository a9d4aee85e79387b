//! The catalogue target's flags: one [`FlagState`] per (target, product uuid).
//!
//! A state is written *before* the `PATCH` that it asks for (so a write whose outcome is unknown
//! is still owned by invsync after a crash, and cleared when stock returns) and again, with
//! `acked`, only after the shop answered it. Writes are of changed states only.

use std::collections::HashMap;

use super::db::{Connection, params};

use super::StoreError;
use crate::services::shopsys::flag::FlagState;

/// Every product state of `target`, by uuid.
pub fn load_flags(
    conn: &Connection,
    target: i64,
) -> Result<HashMap<String, FlagState>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT product, foreign_flag, ours, acked, allow_streak FROM flags WHERE target_id = ?1",
    )?;
    let rows = stmt.query_map([target], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, bool>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, Option<bool>>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut states = HashMap::new();
    for row in rows {
        let (product, foreign, ours, acked, streak) = row?;
        let allow_streak = u8::try_from(streak).map_err(|_| {
            StoreError::Corrupt(format!(
                "flags.allow_streak {streak} of product {product} is out of range"
            ))
        })?;
        let state = FlagState {
            foreign,
            ours,
            acked,
            allow_streak,
        };
        states.insert(product, state);
    }
    Ok(states)
}

/// Stores the states of `target`'s products given, in one transaction.
pub fn write_flags(
    conn: &mut Connection,
    target: i64,
    states: &[(String, FlagState)],
) -> Result<(), StoreError> {
    if states.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO flags (target_id, product, foreign_flag, ours, acked, allow_streak)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (target_id, product) DO UPDATE SET
                 foreign_flag = excluded.foreign_flag, ours = excluded.ours,
                 acked = excluded.acked, allow_streak = excluded.allow_streak",
        )?;
        for (product, s) in states {
            upsert.execute(params![
                target,
                product,
                s.foreign,
                s.ours,
                s.acked,
                i64::from(s.allow_streak)
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::testing::on_both_engines;

    fn with_targets(conn: &Connection) {
        conn.execute(
            "INSERT INTO targets (id, name) VALUES (1, 'shop'), (2, 'other')",
            [],
        )
        .expect("targets");
    }

    on_both_engines! {
        fn flag_states_come_back_as_written_and_per_target(conn) {
            with_targets(&conn);
            let ours = FlagState {
                foreign: false,
                ours: true,
                acked: None,
                allow_streak: 1,
            };
            write_flags(
                &mut conn,
                1,
                &[
                    ("a".to_owned(), ours),
                    ("b".to_owned(), FlagState::first_seen(true)),
                ],
            )
            .expect("written");
            write_flags(&mut conn, 1, &[("a".to_owned(), ours.acknowledged(true))]).expect("again");
            let loaded = load_flags(&conn, 1).expect("loaded");
            assert_eq!(loaded.len(), 2);
            assert_eq!(loaded["a"], ours.acknowledged(true));
            assert_eq!(loaded["b"], FlagState::first_seen(true));
            assert!(load_flags(&conn, 2).expect("other").is_empty());
        }

        fn a_streak_out_of_range_is_an_inconsistent_database(conn) {
            with_targets(&conn);
            conn.execute("INSERT INTO flags VALUES (1, 'a', 0, 1, NULL, 9999)", [])
                .expect("row");
            assert!(matches!(load_flags(&conn, 1), Err(StoreError::Corrupt(_))));
        }
    }
}
