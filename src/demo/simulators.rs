//! The three simulators as `invsync demo` and `invsync sim` serve them: known credentials, a
//! catalogue of a few hundred SKUs with stock, and the configuration tables that point at them.

use std::time::Duration;

use rand::Rng;

use crate::commands::Failure;
use crate::sim::{
    EndlessAislesSim, EndlessAislesSimConfig, HakoSim, HakoSimConfig, HardtofindSim,
    HardtofindSimConfig,
};

/// The simulated accounts. They guard nothing: the simulators listen on loopback only.
pub(crate) const HAKO_KEY: &str = "demo-hako-key";
pub(crate) const EA_TOKEN: &str = "demo-ea-token";
pub(crate) const HTF_USER: &str = "demo@shop.example";
pub(crate) const HTF_PASSWORD: &str = "demo-password";
/// Hako's warehouse that holds stock, and the one the `hako_dropship` target writes.
pub(crate) const WAREHOUSE: &str = "warehouse-010";
pub(crate) const DROPSHIP_WAREHOUSE: &str = "dropship";
/// SKUs `HK-0001`… at Hako, items `24001`… (`EA-24001`…) at Endless Aisles.
pub(crate) const WAREHOUSE_SKUS: usize = 150;
pub(crate) const DROPSHIP_SKUS: usize = 150;
/// What `--stall` adds to every request: far longer than any request timeout or watchdog.
const STALL: Duration = Duration::from_secs(24 * 3600);

/// Hako's name for warehouse SKU `i`.
pub(crate) fn warehouse_sku(i: usize) -> String {
    format!("HK-{i:04}")
}

/// Endless Aisles' option id of dropship item `i`.
pub(crate) fn dropship_id(i: usize) -> String {
    (24_000 + i).to_string()
}

/// A random stock level, sold out now and then.
pub(crate) fn random_quantity(rng: &mut impl Rng) -> i64 {
    rng.random_range(0..40)
}

/// Hako, Endless Aisles and Hardtofind, running on loopback (clones share them).
#[derive(Clone)]
pub(crate) struct Simulators {
    /// The `warehouse` source and the `hako_dropship` target.
    pub hako: HakoSim,
    /// The `dropship` source.
    pub endless_aisles: EndlessAislesSim,
    /// The `hardtofind` target.
    pub hardtofind: HardtofindSim,
    /// How they answer where the documents are silent (the catalogue's simulator too).
    pub dialect: crate::sim::Dialect,
}

impl Simulators {
    /// Starts the three on `127.0.0.1`: Hako on `port_base`, Endless Aisles on the next port,
    /// Hardtofind on the one after; with `port_base` 0 each on a free port. Every SKU gets stock.
    pub async fn start(
        port_base: u16,
        dialect: crate::sim::Dialect,
    ) -> Result<Simulators, Failure> {
        let port = |offset: u16| {
            if port_base == 0 {
                0
            } else {
                port_base.saturating_add(offset)
            }
        };
        let hako = HakoSim::start_on(
            HakoSimConfig {
                api_key: HAKO_KEY.to_owned(),
                warehouses: vec![WAREHOUSE.to_owned(), DROPSHIP_WAREHOUSE.to_owned()],
                ..Default::default()
            },
            port(0),
        )
        .await
        .map_err(|e| cannot_listen("Hako", port(0), e))?;
        let endless_aisles = EndlessAislesSim::start_on(
            EndlessAislesSimConfig {
                token: EA_TOKEN.to_owned(),
                ..Default::default()
            },
            port(1),
        )
        .await
        .map_err(|e| cannot_listen("Endless Aisles", port(1), e))?;
        let mut catalogue: Vec<String> = (1..=WAREHOUSE_SKUS).map(warehouse_sku).collect();
        catalogue.extend((1..=DROPSHIP_SKUS).map(|i| format!("EA-{}", dropship_id(i))));
        let hardtofind = HardtofindSim::start_on(
            HardtofindSimConfig {
                username: HTF_USER.to_owned(),
                password: HTF_PASSWORD.to_owned(),
                catalogue,
                ..Default::default()
            },
            port(2),
        )
        .await
        .map_err(|e| cannot_listen("Hardtofind", port(2), e))?;

        let mut rng = rand::rng();
        for i in 1..=WAREHOUSE_SKUS {
            hako.set_quantity(WAREHOUSE, &warehouse_sku(i), random_quantity(&mut rng));
        }
        for i in 1..=DROPSHIP_SKUS {
            endless_aisles.set_stock(&dropship_id(i), random_quantity(&mut rng));
        }
        hako.set_dialect(dialect);
        endless_aisles.set_dialect(dialect);
        hardtofind.set_dialect(dialect);
        let simulators = Simulators {
            hako,
            endless_aisles,
            hardtofind,
            dialect,
        };
        super::catalogue::add_sizes(&simulators);
        Ok(simulators)
    }

    /// Makes every simulator accept each request and never answer it, so that a daemon against
    /// them stalls mid-cycle (what systemd's watchdog is there for).
    pub fn stall(&self) {
        self.hako.faults().set_latency(STALL);
        self.endless_aisles.faults().set_latency(STALL);
        self.hardtofind.faults().set_latency(STALL);
    }

    /// The `[sources.*]`, `[targets.*]` and `[orders.*]` tables of a configuration for these simulators, with
    /// the credentials inline.
    pub fn endpoints_toml(&self) -> String {
        let (hako, endless_aisles, hardtofind) = (
            self.hako.base_url(),
            self.endless_aisles.base_url(),
            self.hardtofind.base_url(),
        );
        format!(
            r#"[sources.warehouse]
type = "hako"
base_url = "{hako}"
api_key = "{HAKO_KEY}"
warehouses = ["{WAREHOUSE}"]

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

[orders.hardtofind]
type = "hardtofind"
base_url = "{hardtofind}"
username = "{HTF_USER}"
password = "{HTF_PASSWORD}"

[targets.hako_dropship]
type = "hako"
base_url = "{hako}"
api_key = "{HAKO_KEY}"
warehouse = "{DROPSHIP_WAREHOUSE}"
inputs = ["dropship"]
"#
        )
    }
}

fn cannot_listen(service: &str, port: u16, error: std::io::Error) -> Failure {
    let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
        " (is another `invsync sim` running? choose another --port-base)"
    } else {
        ""
    };
    Failure::Other(format!(
        "cannot start the {service} simulator on 127.0.0.1:{port}: {error}{hint}"
    ))
}
