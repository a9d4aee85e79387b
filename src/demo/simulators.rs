//! The three simulators as `invsync demo` and `invsync sim` serve them: known credentials, a
//! catalogue of [`Skus`] with stock (a few hundred in the demo), and the configuration tables
//! that point at them.

use std::time::Duration;

use rand::Rng;

use super::skus::{Skus, barcodes};
use crate::commands::Failure;
use crate::services::endless_aisles::sim::SimSize;
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
/// What `--stall` adds to every request: far longer than any request timeout or watchdog.
pub(crate) const STALL: Duration = Duration::from_secs(24 * 3600);

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
    /// How many SKUs each source holds, and their names.
    pub skus: Skus,
}

/// The port of the simulator `offset` places after `port_base`; 0 (a free port) when
/// `port_base` is 0.
pub(crate) fn port(port_base: u16, offset: u16) -> u16 {
    if port_base == 0 {
        0
    } else {
        port_base.saturating_add(offset)
    }
}

impl Simulators {
    /// Starts the three on `127.0.0.1`: Hako on `port_base`, Endless Aisles on the next port,
    /// Hardtofind on the one after; with `port_base` 0 each on a free port. Every SKU gets stock.
    pub async fn start(
        port_base: u16,
        dialect: crate::sim::Dialect,
        skus: Skus,
    ) -> Result<Simulators, Failure> {
        let port = |offset: u16| port(port_base, offset);
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
        let hardtofind = HardtofindSim::start_on(
            HardtofindSimConfig {
                username: HTF_USER.to_owned(),
                password: HTF_PASSWORD.to_owned(),
                ..Default::default()
            },
            port(2),
        )
        .await
        .map_err(|e| cannot_listen("Hardtofind", port(2), e))?;
        hako.set_dialect(dialect);
        endless_aisles.set_dialect(dialect);
        hardtofind.set_dialect(dialect);
        let simulators = Simulators {
            hako,
            endless_aisles,
            hardtofind,
            dialect,
            skus,
        };
        simulators.seed().await?;
        Ok(simulators)
    }

    /// Gives every SKU stock (and its listing at Hardtofind, its size at Endless Aisles), each
    /// simulator on a thread of its own: a million SKUs a source take seconds, not a minute.
    async fn seed(&self) -> Result<(), Failure> {
        let (skus, count) = (self.skus, self.skus.count());
        let hako = self.hako.clone();
        let warehouse = tokio::task::spawn_blocking(move || {
            let mut rng = rand::rng();
            let stock = (1..=count).map(|i| (skus.warehouse_sku(i), random_quantity(&mut rng)));
            hako.set_quantities(WAREHOUSE, stock);
        });
        let endless_aisles = self.endless_aisles.clone();
        let dropship = tokio::task::spawn_blocking(move || {
            let mut rng = rand::rng();
            let stock = (1..=count).map(|i| (skus.dropship_id(i), random_quantity(&mut rng)));
            endless_aisles.set_stocks(stock);
            add_sizes(&endless_aisles, skus);
        });
        let hardtofind = self.hardtofind.clone();
        let listings = tokio::task::spawn_blocking(move || {
            let warehouse = (1..=count).map(|i| skus.warehouse_sku(i));
            let dropship = (1..=count).map(|i| skus.dropship_sku(i));
            hardtofind.add_variants(warehouse.chain(dropship));
        });
        for job in [warehouse, dropship, listings] {
            job.await.map_err(|e| {
                Failure::Other(format!("cannot give the simulators their SKUs: {e}"))
            })?;
        }
        Ok(())
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

pub(crate) fn cannot_listen(service: &str, port: u16, error: std::io::Error) -> Failure {
    let hint = if error.kind() == std::io::ErrorKind::AddrInUse {
        " (is another `invsync sim` running? choose another --port-base)"
    } else {
        ""
    };
    Failure::Other(format!(
        "cannot start the {service} simulator on 127.0.0.1:{port}: {error}{hint}"
    ))
}

/// Gives every Endless Aisles item a size in a product (three sizes a product), a few of them
/// not for sale ([`Skus::dropship_sellable`]), so the products the source reads look like the
/// document's.
pub(crate) fn add_sizes(ea: &EndlessAislesSim, skus: Skus) {
    let count = skus.count();
    for product in 0..count.div_ceil(3) {
        let sizes = (1..=3)
            .map(|n| product * 3 + n)
            .filter(|&i| i <= count)
            .map(|i| SimSize {
                purchasability: Skus::dropship_purchasable(i),
                discontinued: Skus::dropship_discontinued(i),
                ..SimSize::new(skus.dropship_option(i), &barcodes(i).0)
            })
            .collect();
        ea.add_product(
            product as u64 + 1,
            &format!("Dog food {}", product + 1),
            sizes,
        );
    }
}
