//! Catalogue products the API cannot change (see `services::shopsys::flag::Unchangeable`), per
//! (target, product uuid): written when a `PATCH` is refused so, forgotten when one goes through
//! or the product leaves the list.

use std::collections::HashMap;

use super::db::{Connection, OptionalExtension, Row, params};

use super::StoreError;
use crate::services::shopsys::flag::Unchangeable;

const COLUMNS: &str = "product, sku, message, digest, refused_at";

fn row(r: &Row<'_>) -> Result<(String, Unchangeable), StoreError> {
    Ok((
        r.get(0)?,
        Unchangeable {
            sku: r.get(1)?,
            message: r.get(2)?,
            digest: r.get(3)?,
            refused_at: r.get(4)?,
        },
    ))
}

/// Every unchangeable product of `target`, by uuid.
pub fn load_unchangeable(
    conn: &Connection,
    target: i64,
) -> Result<HashMap<String, Unchangeable>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM unchangeable_products WHERE target_id = ?1");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([target], row)?;
    rows.collect::<Result<_, _>>()
}

/// Records `products` of `target` as unchangeable (replacing what was there).
pub fn write_unchangeable(
    conn: &mut Connection,
    target: i64,
    products: &[(String, Unchangeable)],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO unchangeable_products
                 (target_id, product, sku, message, digest, refused_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (target_id, product) DO UPDATE SET sku = excluded.sku,
                 message = excluded.message, digest = excluded.digest,
                 refused_at = excluded.refused_at",
        )?;
        for (product, u) in products {
            upsert.execute(params![
                target,
                product,
                u.sku,
                u.message,
                u.digest,
                u.refused_at
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Forgets `products` of `target`: changed since, or gone from the list.
pub fn forget_unchangeable(
    conn: &mut Connection,
    target: i64,
    products: &[String],
) -> Result<(), StoreError> {
    let tx = conn.transaction()?;
    {
        let mut delete = tx.prepare_cached(
            "DELETE FROM unchangeable_products WHERE target_id = ?1 AND product = ?2",
        )?;
        for product in products {
            delete.execute(params![target, product])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// How many products of `target` are unchangeable, and the first `limit` by SKU.
pub fn unchangeable_of_target(
    conn: &Connection,
    target: i64,
    limit: usize,
) -> Result<(i64, Vec<(String, Unchangeable)>), StoreError> {
    let count = conn.query_row(
        "SELECT count(*) FROM unchangeable_products WHERE target_id = ?1",
        [target],
        |r| r.get(0),
    )?;
    let sql = format!(
        "SELECT {COLUMNS} FROM unchangeable_products WHERE target_id = ?1
         ORDER BY sku, product LIMIT ?2"
    );
    let mut stmt = conn.prepare(&sql)?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![target, limit], row)?;
    Ok((count, rows.collect::<Result<_, _>>()?))
}

/// The first unchangeable product of `target` matched to `sku`, if any.
pub fn unchangeable_of_sku(
    conn: &Connection,
    target: i64,
    sku: &str,
) -> Result<Option<(String, Unchangeable)>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM unchangeable_products WHERE target_id = ?1 AND sku = ?2
         ORDER BY product LIMIT 1"
    );
    conn.query_row(&sql, params![target, sku], row).optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::db::testing::on_both_engines;

    on_both_engines! {
        fn unchangeable_products_come_back_as_written_until_forgotten(conn) {
            conn.execute("INSERT INTO targets (id, name) VALUES (1, 'shop')", [])
                .expect("target");
            let refused = |sku: &str| Unchangeable {
                sku: sku.to_owned(),
                message: "HTTP 400: Bad Request".to_owned(),
                digest: "d".to_owned(),
                refused_at: 5,
            };
            let rows = [
                ("u2".to_owned(), refused("B")),
                ("u1".to_owned(), refused("A")),
            ];
            write_unchangeable(&mut conn, 1, &rows).expect("written");

            assert_eq!(
                load_unchangeable(&conn, 1).expect("loaded")["u1"],
                refused("A")
            );
            let (count, first) = unchangeable_of_target(&conn, 1, 1).expect("read");
            assert_eq!((count, first[0].0.as_str()), (2, "u1"));
            let of_b = unchangeable_of_sku(&conn, 1, "B").expect("read");
            assert_eq!(of_b.map(|(p, _)| p).as_deref(), Some("u2"));
            forget_unchangeable(&mut conn, 1, &["u1".to_owned()]).expect("forgotten");
            assert_eq!(load_unchangeable(&conn, 1).expect("loaded").len(), 1);
        }
    }
}
