//! `invsync sim`: the demo's simulators alone, on fixed loopback ports, so that a configuration
//! of one's own (or the systemd unit) can be tried against them. It prints where they are and
//! how to log in on stdout, and serves until SIGINT or SIGTERM.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use tracing::info;

use super::catalogue::Catalogue;
use super::simulators::{
    DROPSHIP_WAREHOUSE, EA_TOKEN, HAKO_KEY, HTF_PASSWORD, HTF_USER, Simulators, WAREHOUSE, port,
};
use super::skus::Skus;
use crate::commands::Failure;
use crate::config::LogFormat;
use crate::daemon::shutdown;
use crate::ops::telemetry;

/// The default `--port-base`: Hako on 18080, Endless Aisles on 18081, Hardtofind on 18082, the
/// catalogue (Shopsys) on 18083.
pub const DEFAULT_PORT_BASE: u16 = 18080;

/// How often `--changing` moves stock (and the demo, whose cycle runs every 5 s).
pub const DEFAULT_CHANGE_EVERY: Duration = Duration::from_secs(4);

/// What `invsync sim` serves, and how.
#[derive(Debug, Clone, Copy)]
pub struct SimOptions {
    /// Hako listens here, Endless Aisles, Hardtofind and the catalogue on the next three ports.
    pub port_base: u16,
    /// Every request is accepted and never answered.
    pub stall: bool,
    /// Stock moves, shoppers order (dropship items too) and orders ship.
    pub changing: bool,
    /// How often, with `changing`; [`DEFAULT_CHANGE_EVERY`] unless a test shortens it.
    pub change_every: Duration,
    /// How the simulators answer where the documents are silent.
    pub dialect: crate::sim::Dialect,
    /// How many SKUs each source holds.
    pub skus: Skus,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            port_base: DEFAULT_PORT_BASE,
            stall: false,
            changing: false,
            change_every: DEFAULT_CHANGE_EVERY,
            dialect: crate::sim::Dialect::default(),
            skus: Skus::default(),
        }
    }
}

/// Serves the simulators on `port_base` and the three ports after it until a signal; with
/// `stall`, they accept every request and never answer.
pub async fn serve(options: SimOptions) -> Result<ExitCode, Failure> {
    telemetry::init(LogFormat::Text, "info");
    let SimOptions {
        port_base,
        stall,
        changing,
        dialect,
        skus,
        ..
    } = options;
    let started = std::time::Instant::now();
    let (simulators, shop) = tokio::try_join!(
        Simulators::start(port_base, dialect, skus),
        Catalogue::start_on(skus, dialect, port(port_base, 3)),
    )?;
    if stall {
        simulators.stall();
        shop.sim.faults().set_latency(super::simulators::STALL);
    }
    let changer = changing.then(|| {
        let simulators = simulators.clone();
        let every = options.change_every;
        tokio::spawn(super::change_stock(simulators, every, super::Script::Sim))
    });
    print!("{}", banner(&simulators, &shop, stall));
    info!(
        hako = %simulators.hako.base_url(),
        endless_aisles = %simulators.endless_aisles.base_url(),
        hardtofind = %simulators.hardtofind.base_url(),
        shop = %shop.sim.base_url(),
        skus = skus.count(),
        seeded_ms = started.elapsed().as_millis() as u64,
        stall,
        changing,
        %dialect,
        "simulators listening on loopback; SIGINT or SIGTERM stops them"
    );
    let signal = shutdown::signal().await;
    if let Some(changer) = changer {
        changer.abort();
    }
    info!(?signal, "simulators stopped");
    Ok(ExitCode::SUCCESS)
}

/// What an operator needs to point invsync at the simulators.
fn banner(simulators: &Simulators, shop: &Catalogue, stall: bool) -> String {
    let skus = simulators.skus;
    let count = skus.count();
    let mut text = String::new();
    let _ = writeln!(
        text,
        "invsync sim: simulators on loopback until Ctrl-C or SIGTERM"
    );
    if stall {
        let _ = writeln!(
            text,
            "--stall: every request is accepted and never answered (a daemon against them stalls)"
        );
    }
    let _ = writeln!(
        text,
        "\n  hako            {:<28} api_key = {HAKO_KEY}\n                  \
         warehouses {WAREHOUSE} ({} to {}) and {DROPSHIP_WAREHOUSE}",
        simulators.hako.base_url(),
        skus.warehouse_sku(1),
        skus.warehouse_sku(count),
    );
    let _ = writeln!(
        text,
        "  endless_aisles  {:<28} token = {EA_TOKEN}\n                  items {} to {} (sku_prefix EA-)",
        simulators.endless_aisles.base_url(),
        skus.dropship_id(1),
        skus.dropship_id(count),
    );
    let _ = writeln!(
        text,
        "  hardtofind      {:<28} username = {HTF_USER}, password = {HTF_PASSWORD}",
        simulators.hardtofind.base_url(),
    );
    let _ = writeln!(
        text,
        "  shop (shopsys)  {:<28} client_id = {}, client_secret = {}\n                  \
         products 1 to {count}, catnums {} to {}\n",
        shop.sim.base_url(),
        shop.sim.client_id(),
        shop.sim.client_secret(),
        skus.warehouse_sku(1),
        skus.warehouse_sku(count),
    );
    let _ = writeln!(
        text,
        "A configuration for them (secrets inline: fine for simulators, not for a shop):\n"
    );
    let _ = writeln!(
        text,
        "[daemon]\n\
         # Where the systemd unit lets invsync write; to run it by hand, a path of your own.\n\
         database = \"/var/lib/invsync/invsync.db\"\n\
         every = \"10s\"\n"
    );
    text.push_str(&simulators.endpoints_toml());
    text.push('\n');
    text.push_str(&shop.target_toml("\"warehouse\""));
    text.push_str(RELAY);
    text
}

/// The relay, ready to be switched on: with `invsync sim --changing`, shoppers order dropship
/// items now and then, and the supplier ships what the relay places.
const RELAY: &str = "
# Rehearse the dropship relay with --changing: uncomment, then `invsync relay list` and `invsync relay approve ORDER`.
# [relay]
# mode = \"approve\"
# from = \"hardtofind\"
# to = \"dropship\"
";
