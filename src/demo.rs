//! `invsync demo`: the real daemon against the built-in simulators, so a newcomer sees real
//! cycles in the log without an account anywhere; and `invsync sim` ([`serve`]), the simulators
//! alone.
//!
//! The demo starts Hako, Endless Aisles and Hardtofind simulators on loopback with a few hundred
//! SKUs, writes a configuration for them into a new folder that it keeps (printed, with the
//! `status` command to try beside it), and runs exactly what `invsync run` runs on it, database
//! lock included, with a cycle every few seconds. Meanwhile stock changes, and now and then a
//! simulator misbehaves so that the safety features show: a 503 that is retried, and once an
//! empty stock answer that the mass-zero guard refuses to believe. Shoppers order on Hardtofind
//! now and then ([`orders`]), and the warehouse counts each sale a little later: the summary line
//! shows the reservations made and absorbed. It includes the catalogue target and a mapping file
//! ([`catalogue`]): an alias, sizes linked by barcode, sizes that cannot be sold, and one
//! conflict on purpose, all shown by `status`.

mod catalogue;
mod orders;
mod serve;
mod simulators;
mod skus;

pub use serve::{DEFAULT_CHANGE_EVERY, DEFAULT_PORT_BASE, SimOptions, serve};
pub use skus::Skus;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use rand::Rng;
use tracing::info;

use crate::commands::{self, Failure};
use crate::config::LogFormat;
use crate::ops::telemetry;
use crate::sim::Fault;
use simulators::{Simulators, WAREHOUSE, random_quantity};

/// Runs the demo until Ctrl-C.
pub async fn run(dialect: crate::sim::Dialect) -> Result<ExitCode, Failure> {
    telemetry::init(LogFormat::Text, "info");
    let simulators = Simulators::start(0, dialect, Skus::default()).await?;
    let shop = catalogue::Catalogue::start(&simulators).await?;
    let dir = tempfile::Builder::new()
        .prefix("invsync-demo-")
        .tempdir()
        .map_err(|e| Failure::Other(format!("cannot make a folder for the demo: {e}")))?
        .keep();
    let path = dir.join("config.toml");
    let config = demo_config(&dir, &simulators) + &shop.demo_toml();
    catalogue::write_mapping(&dir, simulators.skus)
        .map_err(|e| Failure::Other(format!("cannot write the demo's mapping file: {e}")))?;
    write_private(&path, &config)
        .map_err(|e| Failure::Other(format!("cannot write {}: {e}", path.display())))?;
    let example = simulators.skus.warehouse_sku(1);
    print!("{}", banner(&dir, &path, &config, &example));

    let changer = tokio::spawn(change_stock(simulators, DEFAULT_CHANGE_EVERY, Script::Demo));
    let result = commands::run(&path).await;
    changer.abort();
    drop(shop);
    info!(folder = %dir.display(), "demo: finished; its configuration and database stay in the folder");
    result
}

/// Writes `text` readable by its owner only: the file holds (simulated) secrets inline.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// What the demo prints on stdout before it starts: where its files are, the configuration,
/// and what to try beside it (`status --sku` for `sku`).
fn banner(dir: &Path, path: &Path, config: &str, sku: &str) -> String {
    let invsync = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("invsync"));
    let mut text = String::new();
    let _ = writeln!(
        text,
        "invsync demo: the daemon against simulators on loopback; Ctrl-C stops it.\n\
         Its folder, kept after it stops: {}\n\n\
         The configuration it runs ({}):\n",
        dir.display(),
        path.display()
    );
    for line in config.lines() {
        let _ = writeln!(text, "    {line}");
    }
    let _ = writeln!(
        text,
        "\nTry beside it, in another terminal:\n    {0} --config {1} status\n    \
         {0} --config {1} status --sku {2}\n",
        invsync.display(),
        path.display(),
        sku,
    );
    text
}

/// The demo's configuration: the simulators, a cycle every 5 s, its database in `dir`.
fn demo_config(dir: &Path, simulators: &Simulators) -> String {
    format!(
        "# Written by `invsync demo` for its simulators.\n\
         [daemon]\n\
         database = {:?}\n\
         every = \"5s\"\n\
         request_timeout = \"10s\"\n\
         retry_initial_backoff = \"500ms\"\n\n{}",
        dir.join("invsync.db").display().to_string(),
        simulators.endpoints_toml()
    )
}

/// What comes with the stock changes besides them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Script {
    /// The demo's: now and then a staged fault (a 503, an empty answer).
    Demo,
    /// `invsync sim --changing`, where an operator rehearses a configuration: no faults, and
    /// some shoppers order dropship items, which the relay can place and the supplier ships.
    Sim,
}

/// Every `every` a handful of SKUs sell or get restocked, and now and then a shopper orders
/// (see [`orders`]); in the demo, now and then a simulator misbehaves (see [`fault_at`]).
pub(crate) async fn change_stock(simulators: Simulators, every: Duration, script: Script) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut shoppers = match script {
        Script::Demo => orders::Shoppers::default(),
        Script::Sim => orders::Shoppers::with_dropship(),
    };
    let (skus, count) = (simulators.skus, simulators.skus.count());
    // The last SKUs are the shoppers', whose only change is a counted sale.
    let changing = count - orders::ordered_skus(count);
    for round in 1u64.. {
        tick.tick().await;
        shoppers.round(&simulators, round, &mut rand::rng());
        let (warehouse, dropship) = {
            let mut rng = rand::rng();
            let warehouse: Vec<(String, i64)> = (0..rng.random_range(1..5))
                .filter(|_| changing > 0)
                .map(|_| {
                    let sku = skus.warehouse_sku(rng.random_range(1..=changing));
                    (sku, random_quantity(&mut rng))
                })
                .collect();
            let dropship: Vec<(String, i64)> = (0..rng.random_range(1..5))
                .map(|_| {
                    let id = skus.dropship_id(rng.random_range(1..=count));
                    (id, random_quantity(&mut rng))
                })
                .collect();
            (warehouse, dropship)
        };
        for (sku, quantity) in &warehouse {
            simulators.hako.set_quantity(WAREHOUSE, sku, *quantity);
        }
        for (id, quantity) in &dropship {
            simulators.endless_aisles.set_stock(id, *quantity);
        }
        info!(
            warehouse = warehouse.len(),
            dropship = dropship.len(),
            "sim: simulated stock changed"
        );
        if let Some(fault) = fault_at(round).filter(|_| script == Script::Demo) {
            inject(&simulators, fault);
        }
    }
}

/// A misbehaviour the demo stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DemoFault {
    /// One request answered 503: invsync retries it (a WARN) and the cycle goes on.
    Unavailable(Service),
    /// Endless Aisles answers its stock empty once: the mass-zero guard holds what it feeds.
    EmptyStock,
}

/// The simulator a [`DemoFault::Unavailable`] hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Hako,
    EndlessAisles,
    Hardtofind,
}

/// The demo's script: a 503 after about 12 s, the empty answer after about 28 s (once), then a
/// 503 every 40 s or so, in turn at each simulator.
fn fault_at(round: u64) -> Option<DemoFault> {
    match round {
        3 => Some(DemoFault::Unavailable(Service::Hardtofind)),
        7 => Some(DemoFault::EmptyStock),
        r if r > 7 && r % 10 == 0 => Some(DemoFault::Unavailable(match (r / 10) % 3 {
            0 => Service::Hako,
            1 => Service::EndlessAisles,
            _ => Service::Hardtofind,
        })),
        _ => None,
    }
}

/// Queues `fault` at its simulator for the next matching request, and says what to watch for.
fn inject(simulators: &Simulators, fault: DemoFault) {
    let unavailable = || Fault::status(503, "Service Unavailable (staged by invsync demo)");
    match fault {
        DemoFault::Unavailable(Service::Hako) => {
            let faults = simulators.hako.faults();
            faults.push_for("GET", "/inventory", unavailable());
        }
        DemoFault::Unavailable(Service::EndlessAisles) => {
            let faults = simulators.endless_aisles.faults();
            faults.push_for("GET", "/api/stock", unavailable());
        }
        DemoFault::Unavailable(Service::Hardtofind) => {
            let faults = simulators.hardtofind.faults();
            faults.push_for("POST", "/batch", unavailable());
        }
        DemoFault::EmptyStock => {
            let empty = Fault::Status {
                status: 200,
                body: "{\"data\": []}".to_owned(),
                retry_after: None,
            };
            let faults = simulators.endless_aisles.faults();
            faults.push_for("GET", "/api/stock", empty);
        }
    }
    match fault {
        DemoFault::Unavailable(service) => info!(
            ?service,
            "demo: the next request to this simulator will be answered 503; watch invsync retry it (WARN)"
        ),
        DemoFault::EmptyStock => info!(
            "demo: Endless Aisles will answer its next stock request empty, as a broken API might; \
             watch the mass-zero guard hold the targets rather than zero every dropship SKU (ERROR), \
             and the cycle after go on"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_stages_one_empty_answer_and_503s_at_every_simulator() {
        let faults: Vec<DemoFault> = (1..=200).filter_map(fault_at).collect();
        let empty = faults
            .iter()
            .filter(|f| **f == DemoFault::EmptyStock)
            .count();
        assert_eq!(empty, 1, "{faults:?}");
        for service in [Service::Hako, Service::EndlessAisles, Service::Hardtofind] {
            assert!(
                faults.contains(&DemoFault::Unavailable(service)),
                "{service:?} in {faults:?}"
            );
        }
        assert_eq!(
            fault_at(3),
            Some(DemoFault::Unavailable(Service::Hardtofind))
        );
    }
}
