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
