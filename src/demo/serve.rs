//! `invsync sim`: the demo's simulators alone, on fixed loopback ports, so that a configuration
//! of one's own (or the systemd unit) can be tried against them. It prints where they are and
//! how to log in on stdout, and serves until SIGINT or SIGTERM.

use std::fmt::Write as _;
use std::process::ExitCode;

use tracing::info;

use super::simulators::{
    DROPSHIP_SKUS, DROPSHIP_WAREHOUSE, EA_TOKEN, HAKO_KEY, HTF_PASSWORD, HTF_USER, Simulators,
    WAREHOUSE, WAREHOUSE_SKUS, dropship_id, warehouse_sku,
};
use crate::commands::Failure;
use crate::config::LogFormat;
use crate::daemon::shutdown;
use crate::ops::telemetry;

/// The default `--port-base`: Hako on 18080, Endless Aisles on 18081, Hardtofind on 18082.
pub const DEFAULT_PORT_BASE: u16 = 18080;

/// Serves the simulators on `port_base` and the two ports after it until a signal; with
/// `stall`, they accept every request and never answer.
pub async fn serve(
    port_base: u16,
    stall: bool,
    changing: bool,
    dialect: crate::sim::Dialect,
) -> Result<ExitCode, Failure> {
    telemetry::init(LogFormat::Text, "info");
    let simulators = Simulators::start(port_base, dialect).await?;
    if stall {
        simulators.stall();
    }
    let changer = changing.then(|| {
        let simulators = simulators.clone();
        tokio::spawn(super::change_stock(simulators, super::Faults::None))
    });
    print!("{}", banner(&simulators, stall));
    info!(
        hako = %simulators.hako.base_url(),
        endless_aisles = %simulators.endless_aisles.base_url(),
        hardtofind = %simulators.hardtofind.base_url(),
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
fn banner(simulators: &Simulators, stall: bool) -> String {
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
        warehouse_sku(1),
        warehouse_sku(WAREHOUSE_SKUS),
    );
    let _ = writeln!(
        text,
        "  endless_aisles  {:<28} token = {EA_TOKEN}\n                  items {} to {} (sku_prefix EA-)",
        simulators.endless_aisles.base_url(),
        dropship_id(1),
        dropship_id(DROPSHIP_SKUS),
    );
    let _ = writeln!(
        text,
        "  hardtofind      {:<28} username = {HTF_USER}, password = {HTF_PASSWORD}\n",
        simulators.hardtofind.base_url(),
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
    text
}
