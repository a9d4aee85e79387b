//! SKUs a target may or may not have taken: each request's SKUs are written here before it is
//! sent and leave when the target acknowledges them (or refuses them). A crash, a timeout or an
//! answer that leaves a SKU out in between leaves it here, and the next plan pushes it even
//! when what it should show is back at the acknowledged figure: the target may show the
//! quantity that was sent.

use std::collections::BTreeSet;

use super::db::{Connection, OptionalExtension, params};

use super::StoreError;
use super::chunks::{check_named, sku_count};
use crate::plan::ledger::SkuId;

/// The SKUs, as stored: each id a little-endian `u32`, in order; `None` when there are none.
pub fn in_doubt_blob(doubt: &BTreeSet<SkuId>) -> Option<Vec<u8>> {
    (!doubt.is_empty()).then(|| doubt.iter().flat_map(|id| id.to_le_bytes()).collect())
}

/// A target's SKUs in doubt (each one a SKU that has a name, or the file is inconsistent).
pub fn load_in_doubt(conn: &Connection, target: i64) -> Result<BTreeSet<SkuId>, StoreError> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT in_doubt FROM targets WHERE id = ?1",
            [target],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let Some(stored) = stored else {
        return Ok(BTreeSet::new());
    };
    if stored.len() % 4 != 0 {
        return Err(StoreError::Corrupt(format!(
            "targets.in_doubt of target {target} is {} bytes, not a list of SKU ids",
            stored.len()
        )));
    }
    let skus = sku_count(conn)?;
    stored
        .chunks_exact(4)
        .map(|id| {
            let id = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
            check_named(i64::from(id), skus, "targets.in_doubt")
        })
        .collect()
}

/// Before a request is sent: the SKUs in doubt, the request's among them, and how far the push
/// has got (`pushed` of `total`, for `status`), in one write.
pub fn before_request(
    conn: &Connection,
    target: i64,
    in_doubt: Option<Vec<u8>>,
    pushed: usize,
    total: usize,
    at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE targets SET in_doubt = ?2, progress_pushed = ?3, progress_total = ?4,
                progress_at = ?5 WHERE id = ?1",
        params![target, in_doubt, pushed as i64, total as i64, at],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::plan::ledger::SkuTable;
    use crate::store::chunks::{name_chunks_from, write_name_chunks};
    use crate::store::db::testing::on_both_engines;

    /// Target 1, and `skus` named SKUs.
    fn target_and_skus(conn: &Connection, skus: usize) {
        conn.execute(
            "INSERT INTO targets (id, name) VALUES (1, 'hardtofind')",
            [],
        )
        .expect("target");
        let mut table = SkuTable::default();
        for i in 0..skus {
            table.push(&format!("SKU-{i}"));
        }
        write_name_chunks(conn, &name_chunks_from(&table, 0)).expect("names");
    }

    on_both_engines! {
        fn the_skus_in_doubt_and_the_push_progress_are_written_in_one_and_read_back(conn) {
            target_and_skus(&conn, 1000);
            let doubt: BTreeSet<SkuId> = [0, 3, 511, 512, 999].into();

            before_request(&conn, 1, in_doubt_blob(&doubt), 20, 140, 1_765_000_000_000)
                .expect("written");

            assert_eq!(load_in_doubt(&conn, 1).expect("loads"), doubt);
            let progress: (i64, i64, i64) = conn
                .query_row(
                    "SELECT progress_pushed, progress_total, progress_at FROM targets WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .expect("progress");
            assert_eq!(progress, (20, 140, 1_765_000_000_000));
            // Nothing in doubt is stored as nothing; a target unknown has nothing in doubt.
            before_request(&conn, 1, in_doubt_blob(&BTreeSet::new()), 140, 140, 1)
                .expect("cleared");
            assert!(load_in_doubt(&conn, 1).expect("loads").is_empty());
            assert!(load_in_doubt(&conn, 2).expect("loads").is_empty());
        }

        fn skus_in_doubt_of_odd_bytes_or_without_a_name_are_an_inconsistent_database(conn) {
            target_and_skus(&conn, 3);
            for (bytes, expected) in [
                (vec![1u8, 0, 0], "not a list of SKU ids"),
                (7u32.to_le_bytes().to_vec(), "SKU id 7 has no name"),
            ] {
                conn.execute("UPDATE targets SET in_doubt = ?1 WHERE id = 1", [&bytes])
                    .expect("written");
                match load_in_doubt(&conn, 1) {
                    Err(StoreError::Corrupt(message)) => {
                        assert!(message.contains(expected), "{message}")
                    }
                    other => panic!("{bytes:?}: {other:?}"),
                }
            }
        }
    }
}
