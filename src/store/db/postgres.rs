//! The PostgreSQL side of [`super::Connection`]: a pooled connection (deadpool over
//! tokio-postgres) driven from the store's blocking threads.
//!
//! - The store's functions are plain functions run on the blocking pool ([`crate::store::Store::call`]);
//!   here each statement is awaited with the runtime's [`Handle::block_on`], which a blocking
//!   thread may do.
//! - SQL is the store's own, with `?N` placeholders: [`translate`] rewrites them to `$N`.
//! - Parameters come as rusqlite values and are sent as the type PostgreSQL expects for each
//!   (an integer for a `BIGINT`, an `INT` or a `BOOLEAN`; see [`Param`]); cells come back as
//!   rusqlite's [`ValueRef`] ([`value_ref`]), so a store function reads both engines alike.
//! - A shop's tables live in a schema of its own (`search_path`), and every write can be
//!   *fenced*: made to fail once the shop's lease has moved to another worker ([`Fence`]).

use std::cell::Cell;
use std::error::Error;

use bytes::BytesMut;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use tokio::runtime::Handle;
use tokio_postgres::types::{IsNull, ToSql as PgToSql, Type, to_sql_checked};

use crate::store::StoreError;

/// What a shop's writes must prove: the shop's lease is still held by this worker under this
/// epoch. Every transaction that writes reads the lease row `FOR SHARE` first, so a claim by
/// another worker (which updates that row) waits for the transaction, then moves the epoch on:
/// no write of an old epoch lands after a new one began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease group the shop belongs to.
    pub group: String,
    /// This worker.
    pub owner: String,
    /// The epoch of the lease held.
    pub epoch: i64,
}

/// The statement that proves a [`Fence`]: one row while the lease is ours.
const FENCE: &str = "SELECT 1 FROM invsync_fleet.fleet_leases
     WHERE lease_group = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp()
     FOR SHARE";

/// One pooled connection, in a shop's schema.
pub struct PgConn {
    client: deadpool_postgres::Object,
    handle: Handle,
    fence: Option<Fence>,
    in_tx: Cell<bool>,
}

impl PgConn {
    /// `client`, already in the shop's schema, driven on `handle`'s runtime; its writes fenced by
    /// `fence` when one is given.
    pub fn new(client: deadpool_postgres::Object, handle: Handle, fence: Option<Fence>) -> PgConn {
        PgConn {
            client,
            handle,
            fence,
            in_tx: Cell::new(false),
        }
    }

    pub(super) fn in_transaction(&self) -> bool {
        self.in_tx.get()
    }

    pub(super) fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        let sql = translate(sql);
        self.handle
            .block_on(self.client.prepare_cached(&sql))
            .map_err(|e| {
                // The statement is the store's own (no values in it): worth a line to whoever
                // reads debug logs when PostgreSQL refuses one.
                tracing::debug!(statement = %sql, "PostgreSQL refused a statement");
                e.into()
            })
    }

    pub(super) fn execute(
        &self,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<usize, StoreError> {
        let statement = self.prepare(sql)?;
        self.execute_prepared(&statement, params)
    }

    pub(super) fn execute_prepared(
        &self,
        statement: &tokio_postgres::Statement,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<usize, StoreError> {
        let params = convert(params)?;
        let refs: Vec<&(dyn PgToSql + Sync)> =
            params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect();
        if self.in_tx.get() || self.fence.is_none() {
            let n = self
                .handle
                .block_on(self.client.execute(statement, &refs))?;
            return Ok(usize::try_from(n).unwrap_or(usize::MAX));
        }
        // A write outside a transaction is still fenced: it becomes one.
        self.begin()?;
        let done = self
            .handle
            .block_on(self.client.execute(statement, &refs))
            .map_err(StoreError::from)
            .and_then(|n| {
                self.commit()?;
                Ok(n)
            });
        if done.is_err() {
            let _ = self.rollback();
        }
        Ok(usize::try_from(done?).unwrap_or(usize::MAX))
    }

    /// The rows of `statement`; `writes` when it may write (`INSERT … RETURNING`), which is
    /// then fenced as [`PgConn::execute_prepared`] is.
    pub(super) fn query(
        &self,
        statement: &tokio_postgres::Statement,
        params: &[&dyn rusqlite::ToSql],
        writes: bool,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let params = convert(params)?;
        let refs: Vec<&(dyn PgToSql + Sync)> =
            params.iter().map(|p| p as &(dyn PgToSql + Sync)).collect();
        if !writes || self.in_tx.get() || self.fence.is_none() {
            return Ok(self.handle.block_on(self.client.query(statement, &refs))?);
        }
        self.begin()?;
        let done = self
            .handle
            .block_on(self.client.query(statement, &refs))
            .map_err(StoreError::from)
            .and_then(|rows| {
                self.commit()?;
                Ok(rows)
            });
        if done.is_err() {
            let _ = self.rollback();
        }
        done
    }

    pub(super) fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        Ok(self.handle.block_on(self.client.batch_execute(sql))?)
    }

    /// `BEGIN`, then the fence's proof.
    pub(super) fn begin(&self) -> Result<(), StoreError> {
        self.execute_batch("BEGIN")?;
        self.in_tx.set(true);
        if let Some(fence) = &self.fence {
            let held = self.handle.block_on(
                self.client
                    .query_opt(FENCE, &[&fence.group, &fence.owner, &fence.epoch]),
            );
            match held {
                Ok(Some(_)) => {}
                Ok(None) => {
                    let _ = self.rollback();
                    return Err(StoreError::Fenced {
                        group: fence.group.clone(),
                        epoch: fence.epoch,
                    });
                }
                Err(e) => {
                    let _ = self.rollback();
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    pub(super) fn commit(&self) -> Result<(), StoreError> {
        self.in_tx.set(false);
        self.execute_batch("COMMIT")
    }

    pub(super) fn rollback(&self) -> Result<(), StoreError> {
        if !self.in_tx.replace(false) {
            return Ok(());
        }
        self.execute_batch("ROLLBACK")
    }
}

/// Whether `sql` may write: anything but a plain `SELECT` (`INSERT … RETURNING` is read as
/// rows, and must be fenced all the same).
pub fn may_write(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("");
    !first.eq_ignore_ascii_case("SELECT")
}

/// `sql` with its `?N` placeholders written `$N` (a bare `?` takes the next number), leaving
/// quoted strings and names alone.
pub fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 1;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    digits = next.to_string();
                }
                next = digits.parse::<usize>().map_or(next, |n| n + 1);
                out.push('$');
                out.push_str(&digits);
            }
            None => out.push(c),
        }
    }
    out
}

/// A parameter as PostgreSQL receives it.
#[derive(Debug)]
pub enum Param {
    /// NULL.
    Null,
    /// An integer: sent as whatever integer (or boolean) type the statement wants.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (`BYTEA`).
    Blob(Vec<u8>),
}

fn convert(params: &[&dyn rusqlite::ToSql]) -> Result<Vec<Param>, StoreError> {
    params
        .iter()
        .map(|p| {
            let value = match p.to_sql()? {
                ToSqlOutput::Borrowed(v) => Value::from(v),
                ToSqlOutput::Owned(v) => v,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "a parameter PostgreSQL cannot take: {other:?}"
                    )));
                }
            };
            Ok(match value {
                Value::Null => Param::Null,
                Value::Integer(i) => Param::Integer(i),
                Value::Real(r) => Param::Real(r),
                Value::Text(t) => Param::Text(t),
                Value::Blob(b) => Param::Blob(b),
            })
        })
        .collect()
}

impl PgToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Integer(v) => match *ty {
                Type::INT8 => PgToSql::to_sql(&v, ty, out),
                Type::INT4 => PgToSql::to_sql(&i32::try_from(*v)?, ty, out),
                Type::INT2 => PgToSql::to_sql(&i16::try_from(*v)?, ty, out),
                Type::BOOL => PgToSql::to_sql(&(*v != 0), ty, out),
                Type::FLOAT8 => PgToSql::to_sql(&(*v as f64), ty, out),
                _ => Err(format!("an integer where PostgreSQL wants {ty}").into()),
            },
            Param::Real(v) => match *ty {
                Type::FLOAT4 => PgToSql::to_sql(&(*v as f32), ty, out),
                _ => PgToSql::to_sql(&v, ty, out),
            },
            Param::Text(v) => PgToSql::to_sql(&v.as_str(), ty, out),
            Param::Blob(v) => PgToSql::to_sql(&v.as_slice(), ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Cell `i` of `row` as rusqlite's value: an integer of any width or a boolean as an
/// integer, text, bytes, a floating-point number, or NULL.
pub fn value_ref(row: &tokio_postgres::Row, i: usize) -> Result<ValueRef<'_>, StoreError> {
    let Some(column) = row.columns().get(i) else {
        return Err(rusqlite::Error::InvalidColumnIndex(i).into());
    };
    let ty = column.type_();
    let value = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(ValueRef::Integer),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| ValueRef::Integer(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| ValueRef::Integer(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|v| ValueRef::Integer(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i)?.map(ValueRef::Real),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(i)?
            .map(|v| ValueRef::Real(v.into())),
        Type::BYTEA => row.try_get::<_, Option<&[u8]>>(i)?.map(ValueRef::Blob),
        _ => row
            .try_get::<_, Option<&str>>(i)
            .map_err(|_| {
                StoreError::Corrupt(format!(
                    "column {} is of type {ty}, which invsync does not read",
                    column.name()
                ))
            })?
            .map(|s| ValueRef::Text(s.as_bytes())),
    };
    Ok(value.unwrap_or(ValueRef::Null))
}

#[cfg(test)]
mod tests {
    use super::{may_write, translate};

    #[test]
    fn only_a_plain_select_is_read_as_not_writing() {
        assert!(!may_write("  select id FROM t"));
        assert!(may_write(
            "INSERT INTO cycles (started_at) VALUES (?1) RETURNING id"
        ));
        assert!(may_write(
            "WITH x AS (DELETE FROM t RETURNING id) SELECT * FROM x"
        ));
        assert!(may_write("UPDATE t SET a = 1"));
    }

    #[test]
    fn placeholders_are_numbered_for_postgres_and_quoted_text_is_left_alone() {
        assert_eq!(
            translate("SELECT a FROM t WHERE a = ?1 AND b = ?12 AND c = '?3' AND \"?4\" = ?"),
            "SELECT a FROM t WHERE a = $1 AND b = $12 AND c = '?3' AND \"?4\" = $13"
        );
        assert_eq!(translate("VALUES (?, ?)"), "VALUES ($1, $2)");
    }
}
