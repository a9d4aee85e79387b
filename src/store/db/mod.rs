//! One connection, two engines: every store function is written once, against
//! [`Connection`], and runs on SQLite (the embedded default: one shop, one file) or on
//! PostgreSQL (a fleet: many shops, many machines, one database).
//!
//! The API is the small part of rusqlite's that the store uses, under the same names, so SQL
//! reads the same on both engines:
//! - statements are written once, with `?N` placeholders (rewritten to `$N` for PostgreSQL,
//!   see `postgres.rs`) and the SQL both engines share (`ON CONFLICT … DO UPDATE`, `RETURNING`,
//!   `CAST(sum(…) AS BIGINT)`); what only one engine has (SQLite's `PRAGMA`s) asks
//!   [`Connection::sqlite`];
//! - values are rusqlite's: parameters are [`ToSql`], cells are read as [`FromSql`] through
//!   [`ValueRef`] (a PostgreSQL cell is turned into the same `ValueRef`), so a type a store
//!   function reads is checked the same way on both engines. Every integer column is a
//!   `BIGINT` on PostgreSQL, a boolean is 0 or 1 on both, a BLOB is a `BYTEA`;
//! - a [`Transaction`] derefs to its [`Connection`], begins with `BEGIN` (or SQLite's
//!   `BEGIN IMMEDIATE`, [`Connection::transaction_immediate`]), and rolls back unless committed.

use std::ops::Deref;

pub use rusqlite::ToSql;
use rusqlite::types::{FromSql, ValueRef};

use super::StoreError;

pub mod pool;
pub mod postgres;
pub mod shop;
#[cfg(test)]
pub(crate) mod testing;

/// Which engine a [`Connection`] speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file (or memory).
    Sqlite,
    /// A PostgreSQL database, one schema per shop.
    Postgres,
}

/// A connection to the store's database, on either engine.
pub struct Connection {
    inner: Inner,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::PgConn),
}

impl From<rusqlite::Connection> for Connection {
    fn from(conn: rusqlite::Connection) -> Connection {
        Connection {
            inner: Inner::Sqlite(conn),
        }
    }
}

impl From<postgres::PgConn> for Connection {
    fn from(conn: postgres::PgConn) -> Connection {
        Connection {
            inner: Inner::Postgres(conn),
        }
    }
}

impl Connection {
    /// A fresh SQLite database in memory (tests, dry runs without a database).
    pub fn open_in_memory() -> Result<Connection, StoreError> {
        Ok(rusqlite::Connection::open_in_memory()?.into())
    }

    /// A SQLite file as it is, without the daemon's settings or migrations (tests, tools).
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Connection, StoreError> {
        Ok(rusqlite::Connection::open(path)?.into())
    }

    /// The engine this connection speaks to.
    pub fn engine(&self) -> Engine {
        match &self.inner {
            Inner::Sqlite(_) => Engine::Sqlite,
            Inner::Postgres(_) => Engine::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (`PRAGMA`s, the file's own checks);
    /// `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// [`Connection::sqlite`], mutable.
    pub fn sqlite_mut(&mut self) -> Option<&mut rusqlite::Connection> {
        match &mut self.inner {
            Inner::Sqlite(c) => Some(c),
            Inner::Postgres(_) => None,
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize, StoreError> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(params.values()))?),
            Inner::Postgres(c) => c.execute(sql, &params.values()),
        }
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<(), StoreError> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(c) => c.execute_batch(sql),
        }
    }

    /// The first row `sql` gives, read by `f`; [`StoreError::NoRows`] when it gives none (see
    /// [`OptionalExtension::optional`]).
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T, StoreError>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T, StoreError>,
    {
        self.prepare(sql)?.query_row(params, f)
    }

    /// A statement to run (cached: the store runs the same few statements over and over).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        Ok(Statement {
            inner: match &self.inner {
                Inner::Sqlite(c) => StatementInner::Sqlite(c.prepare_cached(sql)?),
                Inner::Postgres(c) => {
                    StatementInner::Postgres(c, c.prepare(sql)?, postgres::may_write(sql))
                }
            },
        })
    }

    /// [`Connection::prepare`] (every statement is cached).
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>, StoreError> {
        self.prepare(sql)
    }

    /// Begins a transaction: committed by [`Transaction::commit`], rolled back when dropped.
    pub fn transaction(&mut self) -> Result<Transaction<'_>, StoreError> {
        self.begin("BEGIN")
    }

    /// Begins a transaction that takes the write lock at once (SQLite's `BEGIN IMMEDIATE`), so
    /// that what it reads cannot change before it writes. On PostgreSQL, rows read to be
    /// written are locked by the statements themselves (`FOR UPDATE`).
    pub fn transaction_immediate(&mut self) -> Result<Transaction<'_>, StoreError> {
        self.begin("BEGIN IMMEDIATE")
    }

    fn begin(&mut self, sqlite_begin: &str) -> Result<Transaction<'_>, StoreError> {
        match &self.inner {
            Inner::Sqlite(c) => c.execute_batch(sqlite_begin)?,
            Inner::Postgres(c) => c.begin()?,
        }
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }

    /// Whether the table `name` exists: `status` and dry runs read a database as it is, never
    /// migrated.
    pub fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        let sql = match self.engine() {
            Engine::Sqlite => {
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)"
            }
            Engine::Postgres => {
                "SELECT EXISTS (SELECT 1 FROM information_schema.tables
                     WHERE table_schema = current_schema() AND table_name = ?1)"
            }
        };
        self.query_row(sql, [name], |r| r.get(0))
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        match &self.inner {
            Inner::Sqlite(c) => c.is_autocommit(),
            Inner::Postgres(c) => !c.in_transaction(),
        }
    }
}

/// A transaction: derefs to its connection; rolled back when dropped uncommitted.
pub struct Transaction<'c> {
    conn: &'c mut Connection,
    done: bool,
}

impl Transaction<'_> {
    /// Makes the transaction's writes durable.
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.done = true;
        match &self.conn.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch("COMMIT")?),
            Inner::Postgres(c) => c.commit(),
        }
    }

    /// Undoes the transaction's writes.
    pub fn rollback(mut self) -> Result<(), StoreError> {
        self.done = true;
        self.conn.rollback()
    }
}

impl Connection {
    fn rollback(&self) -> Result<(), StoreError> {
        match &self.inner {
            Inner::Sqlite(c) => {
                if !c.is_autocommit() {
                    c.execute_batch("ROLLBACK")?;
                }
                Ok(())
            }
            Inner::Postgres(c) => c.rollback(),
        }
    }
}

impl Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            // What a failed rollback leaves is what a crash leaves: the engine discards an
            // uncommitted transaction on its own.
            let _ = self.conn.rollback();
        }
    }
}

/// A prepared statement.
pub struct Statement<'c> {
    inner: StatementInner<'c>,
}

enum StatementInner<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    /// The connection, the statement, and whether it may write.
    Postgres(&'c postgres::PgConn, tokio_postgres::Statement, bool),
}

impl Statement<'_> {
    /// Runs it; the number of rows it changed.
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize, StoreError> {
        match &mut self.inner {
            StatementInner::Sqlite(s) => {
                Ok(s.execute(rusqlite::params_from_iter(params.values()))?)
            }
            StatementInner::Postgres(c, s, _) => c.execute_prepared(s, &params.values()),
        }
    }

    /// Its rows, one at a time.
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>, StoreError> {
        Ok(Rows {
            inner: match &mut self.inner {
                StatementInner::Sqlite(s) => {
                    RowsInner::Sqlite(s.query(rusqlite::params_from_iter(params.values()))?)
                }
                StatementInner::Postgres(c, s, writes) => RowsInner::Postgres {
                    rows: c.query(s, &params.values(), *writes)?,
                    at: 0,
                },
            },
        })
    }

    /// Its rows, each read by `f`.
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T, StoreError>>, StoreError>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T, StoreError>,
    {
        let mut rows = self.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(&row));
        }
        Ok(out.into_iter())
    }

    /// Whether it gives any row.
    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool, StoreError> {
        Ok(self.query(params)?.next()?.is_some())
    }

    /// Its first row, read by `f`; [`StoreError::NoRows`] when there is none.
    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T, StoreError>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T, StoreError>,
    {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(StoreError::NoRows),
        }
    }
}

/// The rows of a query, one at a time.
pub struct Rows<'s> {
    inner: RowsInner<'s>,
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres {
        rows: Vec<tokio_postgres::Row>,
        at: usize,
    },
}

impl Rows<'_> {
    /// The next row, if any.
    #[allow(clippy::should_implement_trait)] // borrows from self: not an Iterator
    pub fn next(&mut self) -> Result<Option<Row<'_>>, StoreError> {
        match &mut self.inner {
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(Row::Sqlite)),
            RowsInner::Postgres { rows, at } => {
                let row = rows.get(*at);
                *at += 1;
                Ok(row.map(Row::Postgres))
            }
        }
    }
}

/// One row of a query.
pub enum Row<'r> {
    /// SQLite's.
    Sqlite(&'r rusqlite::Row<'r>),
    /// PostgreSQL's.
    Postgres(&'r tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `i` as `T`, checked as rusqlite checks it on both engines.
    pub fn get<I: ColumnIndex, T: FromSql>(&self, i: I) -> Result<T, StoreError> {
        let i = i.index();
        match self {
            Row::Sqlite(r) => Ok(r.get(i)?),
            Row::Postgres(r) => {
                let value = postgres::value_ref(r, i)?;
                T::column_result(value).map_err(|e| {
                    StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(
                        i,
                        value.data_type(),
                        Box::new(e),
                    ))
                })
            }
        }
    }

    /// Column `i` as it is stored, borrowed.
    pub fn get_ref<I: ColumnIndex>(&self, i: I) -> Result<ValueRef<'_>, StoreError> {
        let i = i.index();
        match self {
            Row::Sqlite(r) => Ok(r.get_ref(i)?),
            Row::Postgres(r) => postgres::value_ref(r, i),
        }
    }
}

/// A column's position (columns are read by position only).
pub trait ColumnIndex {
    /// The position.
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A statement's parameters: `[]`, `[a]` (one type), `params![a, b]` (any types).
pub trait Params {
    /// Each parameter in order.
    fn values(&self) -> Vec<&dyn ToSql>;
}

impl Params for [&dyn ToSql; 0] {
    fn values(&self) -> Vec<&dyn ToSql> {
        Vec::new()
    }
}

impl Params for &[&dyn ToSql] {
    fn values(&self) -> Vec<&dyn ToSql> {
        self.to_vec()
    }
}

macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToSql> Params for [T; $n] {
            fn values(&self) -> Vec<&dyn ToSql> {
                self.iter().map(|v| v as &dyn ToSql).collect()
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);

/// Parameters of any types, as rusqlite's `params!`.
#[macro_export]
macro_rules! store_params {
    () => { &[] as &[&dyn $crate::store::db::ToSql] };
    ($($value:expr),+ $(,)?) => {
        &[$(&$value as &dyn $crate::store::db::ToSql),+] as &[&dyn $crate::store::db::ToSql]
    };
}
pub use store_params as params;

/// `.optional()`: a query that found no row is `None`, as with rusqlite.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for [`StoreError::NoRows`].
    fn optional(self) -> Result<Option<T>, StoreError>;
}

impl<T> OptionalExtension<T> for Result<T, StoreError> {
    fn optional(self) -> Result<Option<T>, StoreError> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(StoreError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
