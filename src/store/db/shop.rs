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
    /// Opened for reading only (`status`, `check`, dry runs): every transaction is read-only.
    read_only: bool,
}

pub use crate::config::database::valid_schema;

/// A daemon's claim on a shop's schema: a session advisory lock on a connection of its own
/// (taken out of the pool), held while this lives. The server lets it go with the connection,
/// so a daemon killed, or cut off, leaves no lock behind.
pub struct ShopLock {
    client: deadpool_postgres::ClientWrapper,
}

impl ShopLock {
    /// Whether the lock is still held: its connection is open (a server restarted, or one that
    /// ended the session, took the lock with it).
    pub fn is_held(&self) -> bool {
        !self.client.is_closed()
    }
}

/// Takes the one-daemon-per-shop lock on `schema`; `None` when another session holds it.
pub async fn lock(pool: &Pool, schema: &str) -> Result<Option<ShopLock>, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unreachable(e.to_string()))?;
    let taken: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtext('invsync shop ' || $1))",
            &[&schema],
        )
        .await?
        .try_get(0)?;
    Ok(taken.then(|| ShopLock {
        client: deadpool_postgres::Object::take(client),
    }))
}

/// Whether the role may create a shop's schema in the database (`CREATE` on it): what the first
/// start of a shop needs.
pub async fn may_create_schema(pool: &Pool) -> Result<bool, StoreError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StoreError::Unreachable(e.to_string()))?;
    Ok(client
        .query_one(
            "SELECT has_database_privilege(current_database(), 'CREATE')",
            &[],
        )
        .await?
        .try_get(0)?)
}

impl PgShop {
    /// The shop whose tables live in `schema` (made, and brought to the newest version, now).
    pub async fn open(pool: Pool, schema: &str) -> Result<Arc<PgShop>, StoreError> {
        check_name(schema)?;
        let shop = Arc::new(PgShop {
            pool,
            schema: schema.to_owned(),
            fence: Mutex::new(None),
            act_until: Mutex::new(None),
            read_only: false,
        });
        let opened = shop.clone();
        let handle = Handle::current();
        tokio::task::spawn_blocking(move || opened.connect_to(&handle, false).map(drop))
            .await
            .map_err(|_| StoreError::Join)??;
        Ok(shop)
    }

    /// The shop in `schema` as it is, never made nor migrated: `None` when there is no such
    /// schema, or invsync never made its tables there; a schema of another version is refused
    /// as a SQLite file of another version is. `read_only`: nothing is written through it.
    pub async fn open_existing(
        pool: Pool,
        schema: &str,
        read_only: bool,
    ) -> Result<Option<Arc<PgShop>>, StoreError> {
        check_name(schema)?;
        let client = pool
            .get()
            .await
            .map_err(|e| StoreError::Unreachable(e.to_string()))?;
        let versioned: bool = client
            .query_one(
                "SELECT to_regclass(quote_ident($1) || '.schema_version') IS NOT NULL",
                &[&schema],
            )
            .await?
            .try_get(0)?;
        if !versioned {
            return Ok(None);
        }
        // The schema's name is checked (`valid_schema`), so quoting it is enough.
        let rows = client
            .query(
                &format!("SELECT version FROM \"{schema}\".schema_version"),
                &[],
            )
            .await?;
        let found: i64 = match rows.as_slice() {
            [row] => row.try_get(0)?,
            more => {
                return Err(StoreError::Corrupt(format!(
                    "schema_version holds {} rows, not one",
                    more.len()
                )));
            }
        };
        let known = crate::store::pg_schema::PG_VERSION;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        if found < known {
            return Err(StoreError::Outdated { found, known });
        }
        Ok(Some(Arc::new(PgShop {
            pool,
            schema: schema.to_owned(),
            fence: Mutex::new(None),
            act_until: Mutex::new(None),
            read_only,
        })))
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
        // Said on every connection: the pool's connections serve stores of both kinds. The
        // statements of one batch share a transaction, begun before this takes effect: a
        // schema is made in a batch of its own after it.
        let read_only = if self.read_only { "on" } else { "off" };
        let set = format!("SET default_transaction_read_only = {read_only}");
        // The schema's name is checked (`valid_schema`), so quoting it is enough.
        let search_path = format!("SET search_path TO \"{}\"", self.schema);
        if exists {
            handle.block_on(client.batch_execute(&format!("{set}; {search_path}")))?;
        } else {
            handle.block_on(client.batch_execute(&set))?;
            // Made only when missing: `CREATE SCHEMA` asks for CREATE on the database even when
            // the schema is there, and a role needs that right for the first start only.
            let missing = handle
                .block_on(client.query_one(
                    "SELECT NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                    &[&self.schema],
                ))?
                .try_get(0)?;
            let create = if missing {
                // Under an advisory lock: two `CREATE SCHEMA IF NOT EXISTS` at once race on
                // PostgreSQL's catalogue, and the second fails (three workers starting at once).
                format!(
                    "BEGIN; SELECT pg_advisory_xact_lock(hashtext('invsync schema ' || '{0}')); \
                     CREATE SCHEMA IF NOT EXISTS \"{0}\"; COMMIT; ",
                    self.schema
                )
            } else {
                String::new()
            };
            handle.block_on(client.batch_execute(&format!("{create}{search_path}")))?;
            handle.block_on(crate::store::pg_schema::pg_migrate(&mut client))?;
        }
        let fence = self.fence.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(PgConn::new(client, handle.clone(), fence).into())
    }
}

/// A name that cannot be a schema's is refused before it reaches SQL.
fn check_name(schema: &str) -> Result<(), StoreError> {
    if valid_schema(schema) {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "{schema:?} cannot name a shop's schema: lower-case letters, digits and _ only"
        )))
    }
}

#[cfg(test)]
mod tests {
    use crate::harness::postgres::TestPostgres;
    use crate::store::{Side, Store, StoreError, endpoint_id};

    fn pool() -> deadpool_postgres::Pool {
        let url = TestPostgres::get()
            .and_then(|pg| pg.database())
            .unwrap_or_else(|e| panic!("{e}"));
        super::super::pool::pool(&url, 4).expect("a pool")
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_shop_read_as_it_is_is_none_until_made_then_read_only_and_refused_at_another_version()
    {
        let pool = pool();
        assert!(
            Store::open_postgres_read_only(pool.clone(), "shop")
                .await
                .expect("reads")
                .is_none(),
            "no schema yet"
        );
        let made = Store::open_postgres(pool.clone(), "shop")
            .await
            .expect("made");
        made.call(|c| endpoint_id(c, Side::Target, "hardtofind"))
            .await
            .expect("writes");

        let read = Store::open_postgres_read_only(pool.clone(), "shop")
            .await
            .expect("reads")
            .expect("there now");
        let refused = read
            .call(|c| endpoint_id(c, Side::Target, "hako"))
            .await
            .expect_err("read-only");
        let found = read
            .call(|c| crate::store::find_endpoint(c, Side::Target, "hardtofind"))
            .await
            .expect("reads");

        assert!(found.is_some());
        assert!(refused.to_string().contains("read-only"), "{refused}");
        // The schema still works for a writer after a reader used the pool's connections.
        made.call(|c| endpoint_id(c, Side::Target, "hako"))
            .await
            .expect("writes again");
        Store::open_postgres(pool.clone(), "shop")
            .await
            .expect("opened again after a reader");
        made.call(|c| c.execute("UPDATE schema_version SET version = 16", []))
            .await
            .expect("lowers");
        let outdated = Store::open_postgres_read_only(pool.clone(), "shop").await;
        assert!(matches!(
            outdated,
            Err(StoreError::Outdated { found: 16, .. })
        ));
        made.call(|c| c.execute("UPDATE schema_version SET version = 99", []))
            .await
            .expect("raises");
        let newer = Store::open_postgres_for_approval(pool, "shop").await;
        assert!(matches!(newer, Err(StoreError::TooNew { found: 99, .. })));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_role_needs_create_on_the_database_for_the_first_start_only() {
        let url = TestPostgres::get()
            .and_then(|pg| pg.database())
            .unwrap_or_else(|e| panic!("{e}"));
        let database = url.rsplit('/').next().expect("a name").to_owned();
        let admin = super::super::pool::pool(&url, 1).expect("a pool");
        let grant = format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'shopper') THEN CREATE ROLE shopper LOGIN; END IF; END $$;
             GRANT CONNECT, CREATE ON DATABASE {database} TO shopper"
        );
        admin
            .get()
            .await
            .expect("admin")
            .batch_execute(&grant)
            .await
            .expect("granted");
        let shopper = || {
            super::super::pool::pool(&url.replacen("invsync@", "shopper@", 1), 2).expect("a pool")
        };

        Store::open_postgres(shopper(), "shop")
            .await
            .expect("first start makes the schema");
        let revoke = format!("REVOKE CREATE ON DATABASE {database} FROM shopper");
        admin
            .get()
            .await
            .expect("admin")
            .batch_execute(&revoke)
            .await
            .expect("revoked");
        let again = Store::open_postgres(shopper(), "shop").await;
        let other = Store::open_postgres(shopper(), "other").await;

        assert!(again.is_ok(), "{:?}", again.err());
        let refused = other.err().expect("no right to make another");
        assert_eq!(
            refused.trouble(),
            crate::store::Trouble::Unusable,
            "{refused}"
        );
        assert!(!super::may_create_schema(&shopper()).await.expect("asks"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_lock_per_schema_held_until_dropped() {
        let pool = pool();
        let first = super::lock(&pool, "shop_a").await.expect("locks");
        let second = super::lock(&pool, "shop_a").await.expect("asks");
        let other = super::lock(&pool, "shop_b").await.expect("asks");

        assert!(first.is_some() && other.is_some());
        assert!(second.is_none(), "held by the first");
        drop(first);
        // The server lets go once the connection closes.
        let mut again = None;
        for _ in 0..100 {
            again = super::lock(&pool, "shop_a").await.expect("asks");
            if again.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(again.is_some(), "free once the first is dropped");
    }
}
