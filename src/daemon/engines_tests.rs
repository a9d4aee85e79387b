//! The same cycles on both engines: a shop whose state lives in PostgreSQL syncs exactly as one
//! whose state lives in a SQLite file (what it pushes, what it acknowledges, what it reserves,
//! what an unchanged cycle costs), and a fleet worker whose lease moved on writes nothing.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::engine::Engine;
use crate::config::Config;
use crate::harness::postgres::TestPostgres;
use crate::services::endless_aisles::sim::{EndlessAislesSim, EndlessAislesSimConfig};
use crate::services::hardtofind::sim::{HardtofindSim, HardtofindSimConfig, NewOrder};
use crate::store::Store;
use crate::targets::CycleOptions;

const SKUS: usize = 1_500;

struct Shop {
    source: EndlessAislesSim,
    htf: HardtofindSim,
    dir: tempfile::TempDir,
}

impl Shop {
    async fn start() -> Shop {
        let source = EndlessAislesSim::start(EndlessAislesSimConfig {
            token: "ea-token".into(),
            page_size: None,
        })
        .await
        .expect("Endless Aisles");
        source.set_stocks((0..SKUS).map(|i| ((100_000 + i).to_string(), (i % 7) as i64)));
        let htf = HardtofindSim::start(HardtofindSimConfig {
            username: "shop".into(),
            password: "shop-password".into(),
            catalogue: (0..SKUS).map(|i| format!("EA-{}", 100_000 + i)).collect(),
            ..Default::default()
        })
        .await
        .expect("Hardtofind");
        // Two open orders: what they hold is not for sale.
        htf.place_orders([
            NewOrder::new([("EA-100006", 2)]),
            NewOrder::new([("EA-100013", 1), ("EA-100020", 1)]),
        ]);
        Shop {
            source,
            htf,
            dir: tempfile::tempdir().expect("a folder"),
        }
    }

    fn config(&self) -> Arc<Config> {
        let text = format!(
            r#"[daemon]
database = "{db}"
every = "1m"

[sources.stock]
type = "endless_aisles"
base_url = "{ea}"
token = "ea-token"
sku_prefix = "EA-"
requests_per_minute = 1000000

[targets.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "shop"
password = "shop-password"
inputs = ["stock"]
batch_size = 500
requests_per_minute = 1000000

[orders.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "shop"
password = "shop-password"
requests_per_minute = 1000000
"#,
            db = self.dir.path().join("invsync.db").display(),
            ea = self.source.base_url(),
            htf = self.htf.base_url(),
        );
        let path = self.dir.path().join("invsync.toml");
        std::fs::write(&path, text).expect("written");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("0600");
        Arc::new(Config::load(&path).expect("a valid configuration"))
    }

    /// One `once` on `store`: the engine built anew, as a process would.
    async fn cycle(&self, store: &Store) -> bool {
        let config = self.config();
        let prepared = crate::mapper::file::prepare_with(config.clone(), Some(store))
            .await
            .expect("no mapping file")
            .expect("no mapping file");
        let cancel = CancellationToken::new();
        let engine = Engine::with_mapping(config, prepared, store.clone(), &cancel, false)
            .await
            .expect("an engine");
        let report = engine
            .run_cycle(CycleOptions::default(), engine.turn().await)
            .await
            .expect("a cycle");
        report.all_in_sync()
    }
}

/// What the shop's channel shows and how many SKUs each of three cycles pushed: a first,
/// an unchanged one, and one after a SKU's stock changed.
async fn three_cycles(shop: &Shop, store: &Store) -> (Vec<(String, i64)>, Vec<usize>) {
    let mut pushed = Vec::new();
    for round in 0..3 {
        if round == 2 {
            shop.source.set_stock("100003", 40);
        }
        shop.htf.clear_batches();
        assert!(shop.cycle(store).await, "round {round} in sync");
        pushed.push(shop.htf.batches().iter().map(Vec::len).sum());
    }
    let mut shown: Vec<(String, i64)> = shop.htf.inventories().into_iter().collect();
    shown.sort();
    (shown, pushed)
}

async fn postgres_store(schema: &str) -> Store {
    let url = TestPostgres::get()
        .and_then(|pg| pg.database())
        .expect("a PostgreSQL database");
    let pool = crate::store::db::pool::pool(&url, 4).expect("a pool");
    Store::open_postgres(pool, schema)
        .await
        .expect("a shop's schema")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shop_on_postgresql_syncs_as_one_on_sqlite_does() {
    let on_sqlite = Shop::start().await;
    let store = Store::open(&on_sqlite.dir.path().join("invsync.db"))
        .await
        .expect("SQLite");
    let (sqlite_shown, sqlite_pushed) = three_cycles(&on_sqlite, &store).await;

    let on_postgres = Shop::start().await;
    let store = postgres_store("shop_a").await;
    let (postgres_shown, postgres_pushed) = three_cycles(&on_postgres, &store).await;

    assert_eq!(
        sqlite_pushed,
        vec![SKUS, 0, 1],
        "SQLite: first, unchanged, one changed"
    );
    assert_eq!(
        postgres_pushed, sqlite_pushed,
        "PostgreSQL pushes as SQLite does"
    );
    assert_eq!(
        postgres_shown, sqlite_shown,
        "and the channel shows the same"
    );
    let shown: std::collections::HashMap<_, _> = postgres_shown.into_iter().collect();
    assert_eq!(
        shown["EA-100006"],
        6 - 2,
        "an open order's units are held back"
    );
    assert_eq!(shown["EA-100003"], 40);
}
