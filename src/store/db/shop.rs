//! A shop's state on PostgreSQL: the tables of one SQLite file, in a schema of the shop's own,
//! reached through a pool shared by every shop of a process.
//!
//! Each call of the store takes a connection from the pool, points its `search_path` at the
//! shop's schema, and carries the shop's [`Fence`] when a fleet worker holds the shop under a
//! lease (every write then proves the lease first, see `postgres.rs`).

use std::sync::{Arc, Mutex};

use deadpool_postgres::Pool;
use tokio::runtime::Handle;

use super::Connection;
use super::postgres::{Fence, PgConn};
use crate::store::StoreError;

/// One shop's schema on a PostgreSQL database.
pub struct PgShop {
    pool: Pool,
    schema: String,
    fence: Mutex<Option<Fence>>,
    /// Until when this process may act on the shop remotely (push, place an order), by its own
    /// clock: a fleet worker's lease less a margin (`None`: no lease, no limit).
    act_until: Mutex<Option<std::time::Instant>>,
}

/// Whether `name` may name a shop's schema: lower-case ASCII letters, digits and `_`, starting
/// with a letter, at most 63 bytes (PostgreSQL's limit), so it is never quoted wrongly.
pub fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

impl PgShop {
    /// The shop whose tables live in `schema` (made, and brought to the newest version, now).
    pub async fn open(pool: Pool, schema: &str) -> Result<Arc<PgShop>, StoreError> {
        if !valid_schema(schema) {
            return Err(StoreError::Corrupt(format!(
                "{schema:?} cannot name a shop's schema: lower-case letters, digits and _ only"
            )));
        }
        let shop = Arc::new(PgShop {
            pool,
            schema: schema.to_owned(),
            fence: Mutex::new(None),
            act_until: Mutex::new(None),
        });
        let opened = shop.clone();
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || opened.connect_to(&handle, false).map(drop))
            .await
            .map_err(|_| StoreError::Join)??;
        Ok(shop)
    }

    /// The schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Fences every later write by `fence` (`None`: writes are not fenced).
    pub fn set_fence(&self, fence: Option<Fence>) {
        *self.fence.lock().unwrap_or_else(|p| p.into_inner()) = fence;
    }

    /// Limits remote actions to before `until` (a fleet worker's lease, renewed).
    pub fn act_until(&self, until: Option<std::time::Instant>) {
        *self.act_until.lock().unwrap_or_else(|p| p.into_inner()) = until;
    }

    /// Whether this process may still act on the shop remotely now.
    pub fn may_act(&self) -> bool {
        self.act_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|until| std::time::Instant::now() < until)
    }

    /// A connection in the shop's schema, from a blocking thread of `handle`'s runtime.
    pub(crate) fn connect(&self, handle: &Handle) -> Result<Connection, StoreError> {
        self.connect_to(handle, true)
    }

    fn connect_to(&self, handle: &Handle, exists: bool) -> Result<Connection, StoreError> {
        let mut client = handle
            .block_on(self.pool.get())
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        let create = if exists {
            String::new()
        } else {
            // Under an advisory lock: two `CREATE SCHEMA IF NOT EXISTS` at once race on
            // PostgreSQL's catalogue, and the second fails.
            format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtext('invsync schema ' || '{0}')); \
                 CREATE SCHEMA IF NOT EXISTS \"{0}\"; COMMIT; ",
                self.schema
            )
        };
        // The schema's name is checked (`valid_schema`), so quoting it is enough.
        handle.block_on(
            client.batch_execute(&format!("{create}SET search_path TO \"{}\"", self.schema)),
        )?;
        if !exists {
            handle.block_on(crate::store::pg_schema::pg_migrate(&mut client))?;
        }
        let fence = self.fence.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(PgConn::new(client, handle.clone(), fence).into())
    }
}
