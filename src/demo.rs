//! `invsync demo`: the real daemon against the built-in simulators, so a newcomer sees real
//! cycles in the log without an account anywhere.
//!
//! It starts Hako, Endless Aisles and Hardtofind simulators on loopback with a few hundred SKUs,
//! writes a configuration for them in a temporary folder (printed, to read alongside the log),
//! runs `invsync run` on it with a cycle every few seconds, and changes simulated stock as it goes.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::commands::Failure;
use crate::config::{Config, LogFormat};
use crate::daemon;
use crate::daemon::cycle::Engine;
use crate::daemon::shutdown;
use crate::ops::notify::Notifier;
use crate::ops::telemetry;
use crate::services::endless_aisles::sim::{EndlessAislesSim, EndlessAislesSimConfig};
use crate::services::hako::sim::{HakoSim, HakoSimConfig};
use crate::services::hardtofind::sim::{HardtofindSim, HardtofindSimConfig};
use crate::store::Store;

const HAKO_KEY: &str = "demo-hako-key";
const EA_TOKEN: &str = "demo-ea-token";
const HTF_USER: &str = "demo@shop.example";
const HTF_PASSWORD: &str = "demo-password";
const WAREHOUSE_SKUS: usize = 150;
const DROPSHIP_SKUS: usize = 150;

fn sim_error(e: std::io::Error) -> Failure {
    Failure::Other(format!("cannot start a simulator: {e}"))
}

/// Runs the demo until Ctrl-C.
pub async fn run() -> Result<ExitCode, Failure> {
    telemetry::init(LogFormat::Text, "info");
    let hako = HakoSim::start(HakoSimConfig {
        api_key: HAKO_KEY.to_owned(),
        warehouses: vec!["warehouse-010".to_owned(), "dropship".to_owned()],
        ..Default::default()
    })
    .await
    .map_err(sim_error)?;
    let endless_aisles = EndlessAislesSim::start(EndlessAislesSimConfig {
        token: EA_TOKEN.to_owned(),
        ..Default::default()
    })
    .await
    .map_err(sim_error)?;
    let mut catalogue: Vec<String> = (1..=WAREHOUSE_SKUS).map(|i| format!("HK-{i:04}")).collect();
    catalogue.extend((1..=DROPSHIP_SKUS).map(|i| format!("EA-{}", 24_000 + i)));
    let hardtofind = HardtofindSim::start(HardtofindSimConfig {
        username: HTF_USER.to_owned(),
        password: HTF_PASSWORD.to_owned(),
        catalogue,
        ..Default::default()
    })
    .await
    .map_err(sim_error)?;

    let mut rng = rand::rng();
    for i in 1..=WAREHOUSE_SKUS {
        hako.set_quantity(
            "warehouse-010",
            &format!("HK-{i:04}"),
            rng.random_range(0..40),
        );
    }
    for i in 1..=DROPSHIP_SKUS {
        endless_aisles.set_stock(&(24_000 + i).to_string(), rng.random_range(0..40));
    }

    let dir = tempfile::tempdir()
        .map_err(|e| Failure::Other(format!("cannot make a temporary folder: {e}")))?;
    let path = dir.path().join("config.toml");
    let text = demo_config(
        &dir.path().join("invsync.db").display().to_string(),
        &hako.base_url(),
        &endless_aisles.base_url(),
        &hardtofind.base_url(),
    );
    std::fs::write(&path, text)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))?;
    info!(config = %path.display(), hako = %hako.base_url(), endless_aisles = %endless_aisles.base_url(), hardtofind = %hardtofind.base_url(), "demo: simulators started; press Ctrl-C to stop");

    let config = Arc::new(Config::load(&path)?);
    let store = Store::open(&config.daemon.database).await?;
    let cancel = CancellationToken::new();
    let engine = Engine::new(config.clone(), store.clone(), &cancel, false).await?;
    let changer = tokio::spawn(change_stock(hako.clone(), endless_aisles.clone()));
    shutdown::watch_signals(cancel.clone());
    let running = daemon::Daemon {
        engine,
        config,
        store,
        cancel: cancel.clone(),
        reloads: shutdown::reload_requests(),
    };
    daemon::run(running, &Notifier::disabled(), cancel.cancelled_owned()).await?;
    changer.abort();
    let sold_out = hardtofind
        .inventories()
        .values()
        .filter(|q| **q == 0)
        .count();
    info!(
        hardtofind_variants = hardtofind.inventories().len(),
        sold_out, "demo: finished"
    );
    Ok(ExitCode::SUCCESS)
}

/// Every few seconds, a handful of SKUs sell or get restocked.
async fn change_stock(hako: HakoSim, endless_aisles: EndlessAislesSim) {
    let mut tick = tokio::time::interval(Duration::from_secs(4));
    tick.tick().await;
    loop {
        tick.tick().await;
        let (warehouse, dropship) = {
            let mut rng = rand::rng();
            let warehouse: Vec<(String, i64)> = (0..rng.random_range(1..5))
                .map(|_| {
                    (
                        format!("HK-{:04}", rng.random_range(1..=WAREHOUSE_SKUS)),
                        rng.random_range(0..40),
                    )
                })
                .collect();
            let dropship: Vec<(String, i64)> = (0..rng.random_range(1..5))
                .map(|_| {
                    (
                        (24_000 + rng.random_range(1..=DROPSHIP_SKUS)).to_string(),
                        rng.random_range(0..40),
                    )
                })
                .collect();
            (warehouse, dropship)
        };
        for (sku, quantity) in &warehouse {
            hako.set_quantity("warehouse-010", sku, *quantity);
        }
        for (id, quantity) in &dropship {
            endless_aisles.set_stock(id, *quantity);
        }
        info!(
            warehouse = warehouse.len(),
            dropship = dropship.len(),
            "demo: simulated stock changed"
        );
    }
}

fn demo_config(database: &str, hako: &str, endless_aisles: &str, hardtofind: &str) -> String {
    format!(
        r#"# Written by `invsync demo` for its simulators.
[daemon]
database = {database:?}
every = "5s"
request_timeout = "10s"

[sources.warehouse]
type = "hako"
base_url = "{hako}"
api_key = "{HAKO_KEY}"
warehouses = ["warehouse-010"]

[sources.dropship]
type = "endless_aisles"
base_url = "{endless_aisles}"
token = "{EA_TOKEN}"
sku_prefix = "EA-"

[targets.hardtofind]
type = "hardtofind"
base_url = "{hardtofind}"
username = "{HTF_USER}"
password = "{HTF_PASSWORD}"
inputs = ["warehouse", "dropship"]
safety_stock = 1
max_quantity = 30

[targets.hako_dropship]
type = "hako"
base_url = "{hako}"
api_key = "{HAKO_KEY}"
warehouse = "dropship"
inputs = ["dropship"]
"#
    )
}
