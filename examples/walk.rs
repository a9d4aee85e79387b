//! What an order feed costs a cycle, through the release binary in `invsync run`.
//!
//! ```sh
//! cargo build --release && cargo run --release --example walk -- --orders 10000 --cycles 4 --ship 1
//! ```
//!
//! Starts Endless Aisles (100 SKUs) and Hardtofind on loopback, places N open `READY` orders as
//! a shop has them (the newest changed an hour ago, each older one a minute before the next:
//! ten thousand span a week), and runs `invsync run`, a cycle every two seconds, with an
//! `[orders.walk]` feed on Hardtofind's account. For each cycle it prints the cycle's own
//! duration (its summary line's `duration_ms`), the `GET /orders` and `GET /order/{id}`
//! Hardtofind answered during it, and what the summary line says of the orders. After
//! `--cycles` cycles it ships `--ship` orders and prints one more. The feed's budget is
//! unlimited, so the time is invsync's and the simulator's; at Hardtofind's 60 requests a
//! minute, each request costs a second more. `INVSYNC_BIN` runs another binary (to compare
//! two builds: one without the incremental read has no `walk=` in its summary line).
//!
//! `--relay N` turns the dropship relay on (`mode = "approve"`, from the feed to the Endless
//! Aisles source): N of the orders are dropship orders (they wait in the relay's queue), the
//! others are the shop's own (a SKU no source knows). Its column shows the summary line's
//! `relay_read` (a build without the relay's incremental read shows `-`).

mod support;

use std::time::Duration;

use invsync::services::hardtofind::sim::NewOrder;
use invsync::services::hardtofind::wire::OrderStatus;
use invsync::sim::{EndlessAislesSim, EndlessAislesSimConfig, HardtofindSim, HardtofindSimConfig};
use support::release_binary;
use tokio::io::{AsyncBufReadExt, BufReader};

struct Args {
    orders: usize,
    cycles: usize,
    ship: usize,
    relay: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        orders: 10_000,
        cycles: 4,
        ship: 1,
        relay: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: usize = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--orders" => args.orders = number,
            "--cycles" => args.cycles = number,
            "--ship" => args.ship = number,
            "--relay" => args.relay = Some(number),
            _ => {
                return Err(format!(
                    "unknown {flag}; use --orders N --cycles N --ship N --relay N"
                ));
            }
        }
    }
    Ok(args)
}

/// The text of `key=` in a summary line, up to the next space or quote.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let Some(at) = line.find(&format!(" {key}=")) else {
        return "-";
    };
    let rest = &line[at + key.len() + 2..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    rest.split([' ', '"']).next().unwrap_or("-")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let binary = release_binary();
    if !binary.exists() {
        return Err(format!("{} is missing: build it first", binary.display()));
    }
    let ea = EndlessAislesSim::start(EndlessAislesSimConfig {
        token: "walk-token".into(),
        page_size: None,
    })
    .await
    .map_err(|e| e.to_string())?;
    ea.set_stocks((0..100).map(|i| ((100_000 + i).to_string(), 5)));
    let htf = HardtofindSim::start(HardtofindSimConfig {
        username: "walk".into(),
        password: "walk-password".into(),
        catalogue: (0..100).map(|i| format!("EA-{}", 100_000 + i)).collect(),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let now = chrono::Utc::now();
    // With the relay, only the first N are the supplier's.
    let dropship = |i: usize| args.relay.is_none_or(|n| i < n);
    let placed = htf.place_orders((0..args.orders).map(|i| {
        let sku = if dropship(i) {
            format!("EA-{}", 100_000 + i % 100)
        } else {
            format!("OWN-{}", i % 100)
        };
        let mut order = NewOrder::new([(sku, 1)]);
        let updated = now - chrono::Duration::minutes(60 + i as i64);
        order.updated_at = Some(updated);
        order.created_at = Some(updated - chrono::Duration::days(1));
        order
    }));

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("config.toml");
    let text = format!(
        r#"[daemon]
database = "{db}"
every = "2s"

[sources.stock]
type = "endless_aisles"
base_url = "{ea}"
token = "walk-token"
sku_prefix = "EA-"
requests_per_minute = 1000000

[targets.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "walk"
password = "walk-password"
inputs = ["stock"]
requests_per_minute = 1000000

[orders.walk]
type = "hardtofind"
base_url = "{htf}"
username = "walk"
password = "walk-password"
requests_per_minute = 1000000
"#,
        db = dir.path().join("invsync.db").display(),
        ea = ea.base_url(),
        htf = htf.base_url(),
    );
    let text = match args.relay {
        None => text,
        Some(_) => {
            format!("{text}\n[relay]\nmode = \"approve\"\nfrom = \"walk\"\nto = \"stock\"\n")
        }
    };
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;

    let mut child = tokio::process::Command::new(&binary)
        .arg("--config")
        .arg(&config)
        .arg("run")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    println!(
        "binary={} orders={} (READY, one a minute back from an hour ago)",
        binary.display(),
        args.orders
    );
    println!(
        "{:<10} {:>11} {:>12} {:>13}  reservations [relay_read]",
        "cycle", "duration_ms", "GET /orders", "GET /order/id"
    );
    let (mut lists, mut lookups) = (0usize, 0usize);
    let total = args.cycles + usize::from(args.ship > 0);
    let mut seen = 0;
    let reading = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if !line.contains("cycle finished") {
                continue;
            }
            seen += 1;
            let queries = htf.orders_queries().len();
            let order_lookups = (htf.requests().iter())
                .filter(|r| r.method == "GET" && r.path.starts_with("/order/"))
                .count();
            let name = match seen {
                1 => "first".to_owned(),
                n if n > args.cycles => "shipped".to_owned(),
                _ => "unchanged".to_owned(),
            };
            let relay_read = match args.relay {
                None => String::new(),
                Some(_) => {
                    let read = line.split(" relay_read=").nth(1).unwrap_or("-");
                    format!(" [{}]", read.trim_matches('"'))
                }
            };
            println!(
                "{:<10} {:>11} {:>12} {:>13}  {}{relay_read}",
                name,
                field(&line, "duration_ms"),
                queries - lists,
                order_lookups - lookups,
                line.split("reservations=")
                    .nth(1)
                    .unwrap_or("-")
                    .split(" relay=")
                    .next()
                    .unwrap_or("-")
            );
            (lists, lookups) = (queries, order_lookups);
            if seen == args.cycles {
                for id in placed.iter().skip(args.orders / 2).take(args.ship) {
                    htf.set_order_status(id, OrderStatus::Shipped);
                }
            }
            if seen == total {
                return true;
            }
        }
        false
    };
    let done = tokio::time::timeout(Duration::from_secs(600), reading)
        .await
        .unwrap_or(false);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap_or(0).to_string()])
        .status();
    let _ = child.wait().await;
    if done {
        Ok(())
    } else {
        Err("the cycles did not all finish within 10 minutes".to_owned())
    }
}
