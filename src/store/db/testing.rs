//! The conformance suite's engines: every store test written with [`on_both_engines!`] runs
//! once on SQLite (in memory) and once on PostgreSQL (a schema of its own on the test process's
//! throwaway server, see `harness::postgres`), so the store's functions are proven the same on
//! both, never assumed to be.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Connection;
use super::postgres::PgConn;

/// A fresh SQLite database in memory, migrated.
pub fn sqlite() -> Connection {
    let mut conn = Connection::open_in_memory().expect("an in-memory database");
    crate::store::migrations::migrate(&mut conn).expect("the schema");
    conn
}

struct Server {
    runtime: tokio::runtime::Runtime,
    pool: deadpool_postgres::Pool,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static SCHEMAS: AtomicU64 = AtomicU64::new(0);

fn server() -> &'static Server {
    SERVER.get_or_init(|| {
        let postgres = crate::harness::postgres::TestPostgres::get().expect("a PostgreSQL server");
        let url = postgres.database().expect("a database");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let pool = {
            let _entered = runtime.enter();
            super::pool::pool(&url, 8).expect("a pool")
        };
        Server { runtime, pool }
    })
}

/// A fresh schema on the test process's PostgreSQL server, migrated: the connection is used
/// from the test's own thread, each statement awaited on the suite's runtime.
pub fn postgres() -> Connection {
    let server = server();
    let handle = server.runtime.handle().clone();
    let schema = format!("t{}", SCHEMAS.fetch_add(1, Ordering::SeqCst));
    let mut client = handle.block_on(server.pool.get()).expect("a connection");
    handle
        .block_on(client.batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path TO {schema}"
        )))
        .expect("a schema");
    handle
        .block_on(crate::store::pg_schema::pg_migrate(&mut client))
        .expect("the schema's tables");
    PgConn::new(client, handle, None).into()
}

/// Each test once per engine: `on_both_engines! { fn name(conn) { … } }` makes
/// `sqlite::name` and `postgres::name`, each with `conn` a fresh, migrated database.
macro_rules! on_both_engines {
    ($(
        $(#[$meta:meta])*
        fn $name:ident($conn:ident) $body:block
    )*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    #[allow(unused_mut)]
                    let mut $conn = $crate::store::db::testing::sqlite();
                    $body
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[$meta])*
                #[test]
                fn $name() {
                    #[allow(unused_mut)]
                    let mut $conn = $crate::store::db::testing::postgres();
                    $body
                }
            )*
        }
    };
}
pub(crate) use on_both_engines;
