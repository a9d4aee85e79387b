//! What lets an unchanged world cost nothing: each source's last recorded answer (the digests of
//! its pages), each target's `settled` mark, and the world's generation, which every recorded
//! change moves on (see `targets::settled`).

use super::db::{Connection, OptionalExtension, params};

use super::StoreError;

/// A source's last recorded answer (its page digests, empty when none) and how many SKUs it
/// reported.
pub fn load_answer(conn: &Connection, source: i64) -> Result<(Vec<u8>, usize), StoreError> {
    let (digest, skus): (Option<Vec<u8>>, i64) = conn.query_row(
        "SELECT answer_digest, skus FROM sources WHERE id = ?1",
        [source],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok((
        digest.unwrap_or_default(),
        usize::try_from(skus).unwrap_or(0),
    ))
}

/// The digests of the answer just recorded (in the transaction that records its snapshot).
pub fn write_answer(conn: &Connection, source: i64, digest: &[u8]) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sources SET answer_digest = ?2 WHERE id = ?1",
        params![source, digest],
    )?;
    Ok(())
}

/// A source answered what it answered last time: a complete fetch, with nothing to record.
pub fn source_answered_same(conn: &Connection, source: i64, at: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE sources SET last_fetch_at = ?2, last_error = NULL, last_error_at = NULL WHERE id = ?1",
        params![source, at],
    )?;
    Ok(())
}

/// The world's generation: how many times a snapshot or the reservations changed.
pub fn load_generation(conn: &Connection) -> Result<u64, StoreError> {
    let value: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(value
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_le_bytes))
}

/// Moves the world's generation on to `generation` (in the transaction that records a change).
pub fn write_generation(conn: &Connection, generation: u64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [generation.to_le_bytes().to_vec()],
    )?;
    Ok(())
}

/// A target's `settled` mark (`None`: not known to be in sync).
pub fn load_settled(conn: &Connection, target: i64) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT settled FROM targets WHERE id = ?1", [target], |r| {
            r.get(0)
        })
        .optional()?
        .flatten())
}

/// Sets (or clears) a target's `settled` mark.
pub fn write_settled(
    conn: &Connection,
    target: i64,
    settled: Option<&str>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE targets SET settled = ?2 WHERE id = ?1",
        params![target, settled],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::testing::on_both_engines;

    on_both_engines! {
        fn a_sources_answer_the_generation_and_a_targets_settled_mark_read_back_as_written(conn) {
            conn.execute("INSERT INTO sources (id, name, skus) VALUES (1, 'stock', 40)", [])
                .expect("source");
            conn.execute("INSERT INTO targets (id, name) VALUES (1, 'hardtofind')", [])
                .expect("target");
            assert_eq!(load_answer(&conn, 1).expect("loads"), (Vec::new(), 40));
            let digest: Vec<u8> = (0..=255).collect();
            write_answer(&conn, 1, &digest).expect("written");
            assert_eq!(load_answer(&conn, 1).expect("loads"), (digest, 40));
            conn.execute("UPDATE sources SET last_error = 'down', last_error_at = 5", [])
                .expect("an error");
            source_answered_same(&conn, 1, 77).expect("same");
            let fetched: (Option<i64>, Option<String>, Option<i64>) = conn
                .query_row(
                    "SELECT last_fetch_at, last_error, last_error_at FROM sources WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .expect("the source");
            assert_eq!(fetched, (Some(77), None, None), "a complete fetch, the error gone");

            assert_eq!(load_generation(&conn).expect("loads"), 0);
            write_generation(&conn, 7).expect("7");
            assert_eq!(load_generation(&conn).expect("loads"), 7);
            write_generation(&conn, u64::MAX).expect("the largest");
            assert_eq!(load_generation(&conn).expect("loads"), u64::MAX);

            assert_eq!(load_settled(&conn, 1).expect("loads"), None);
            write_settled(&conn, 1, Some("generation 7, 3 endpoints")).expect("set");
            assert_eq!(
                load_settled(&conn, 1).expect("loads").as_deref(),
                Some("generation 7, 3 endpoints")
            );
            write_settled(&conn, 1, None).expect("cleared");
            assert_eq!(load_settled(&conn, 1).expect("loads"), None);
            assert_eq!(load_settled(&conn, 9).expect("a target unknown"), None);
        }
    }
}
