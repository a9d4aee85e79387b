//! Benchmark of a sync cycle at catalogue scale, through the release binary.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- --skus 100000
//! cargo run --release --example bench -- --skus 200000 --source hako      # over 3 warehouses
//! cargo run --release --example bench -- --skus 1000000 --run-seconds 600 # soak of `run`
//! cargo run --release --example bench -- --skus 1000000 --orders 10000    # with open orders
//! ```
//!
//! The binary is the release build in cargo's target directory (`CARGO_TARGET_DIR` honoured),
//! or `INVSYNC_BIN` when set (to compare two builds).
//!
//! Starts the source's and Hardtofind's simulators on loopback with N SKUs (for `--source hako`,
//! N inventory records: N/3 SKUs in each of 3 warehouses), then runs the release `invsync once`
//! three times under `/usr/bin/time`: the first cycle (everything new), an unchanged cycle, and
//! one with 1% changed. For each it prints wall time, peak RSS, the write requests Hardtofind
//! received and the SKUs they carried. With `--run-seconds S` it then runs `invsync run` with a
//! cycle every second for S seconds on the unchanged catalogue, printing its RSS and CPU use
//! every 30 s. With `--orders N`, Hardtofind holds N open orders (`READY`, one unit of a SKU
//! each, spread over the catalogue: N/10 pages, last updated an hour ago and earlier) read by an `[orders.bench]` feed on the
//! target's account (`release` from `$BENCH_RELEASE`, default `absorb`; `none` keeps no
//! reservation, which separates what the walk costs from what the book does); the bench first
//! times a plain walk of those pages, the floor of what reading them costs.
//! With `--mapping-skus N` it then writes a mapping file of N lines (each SKU a key
//! of its own at Hardtofind) and times `check --offline` (reading and checking it), the first
//! cycle with it (every mapped SKU pushed again under its key) and two unchanged ones: the first
//! reads the file again to compare its digest (it was written too recently for its stamp to be
//! trusted), the second finds its stamp recorded and does not read it at all, as a daemon
//! started on a file written more than a few seconds before does; then one with 1% changed
//! again (other quantities for the same SKUs), through the mapping.
//!
//! With `--database postgres` the state lives in a schema of a PostgreSQL server the bench starts
//! (the test suite's throwaway one, on a Unix socket) instead of a SQLite file.
//!
//! With `BENCH_HOLD=1` (and `--mapping-skus`) it keeps the database as it was before the first
//! cycle with the mapping (`before-mapping.db` beside `invsync.db`), and at the end prints its
//! directory and keeps the simulators up until killed: copy that database back and run
//! `invsync --config DIR/config.toml once` by hand, under a profiler, as often as needed.

mod support;

use std::path::Path;
use std::time::Instant;

use support::release_binary;

use invsync::sim::{
    EndlessAislesSim, EndlessAislesSimConfig, HakoSim, HakoSimConfig, HardtofindSim,
    HardtofindSimConfig,
};

struct Args {
    skus: usize,
    batch_size: usize,
    changed_percent: f64,
    hako: bool,
    run_seconds: u64,
    orders: usize,
    mapping_skus: usize,
    /// `--database postgres`: the state in a schema of the test suite's throwaway PostgreSQL
    /// server (started for the run) instead of a SQLite file.
    postgres: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        skus: 100_000,
        batch_size: 1000,
        changed_percent: 1.0,
        hako: false,
        run_seconds: 0,
        orders: 0,
        mapping_skus: 0,
        postgres: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--skus" => args.skus = value.parse().map_err(|e| bad(&e))?,
            "--batch-size" => args.batch_size = value.parse().map_err(|e| bad(&e))?,
            "--changed-percent" => args.changed_percent = value.parse().map_err(|e| bad(&e))?,
            "--run-seconds" => args.run_seconds = value.parse().map_err(|e| bad(&e))?,
            "--orders" => args.orders = value.parse().map_err(|e| bad(&e))?,
            "--mapping-skus" => args.mapping_skus = value.parse().map_err(|e| bad(&e))?,
            "--database" if value == "postgres" => args.postgres = true,
            "--database" if value == "sqlite" => args.postgres = false,
            "--source" if value == "hako" => args.hako = true,
            "--source" if value == "endless_aisles" => args.hako = false,
            _ => {
                return Err(format!(
                    "unknown {flag} {value}; use --skus N [--batch-size N] [--changed-percent P] [--source hako|endless_aisles] [--run-seconds S] [--orders N] [--mapping-skus N]"
                ));
            }
        }
    }
    Ok(args)
}

struct Measure {
    wall_s: f64,
    peak_rss_mib: f64,
    exit: i32,
}

/// One line of the table: the cycle, its wall time and peak RSS, and what Hardtofind received.
fn print_row<T>(name: &str, measure: &Measure, batches: &[Vec<T>]) {
    println!(
        "{:<15} {:>8.3} {:>13.1} {:>9} {:>13} {:>5}",
        name,
        measure.wall_s,
        measure.peak_rss_mib,
        batches.len(),
        batches.iter().map(Vec::len).sum::<usize>(),
        measure.exit
    );
}

/// Runs `invsync once` under `/usr/bin/time`, which reports the child's own peak RSS.
fn once(binary: &Path, config: &Path, dir: &Path) -> Result<Measure, String> {
    timed(binary, config, dir, &["once"])
}

/// Runs `invsync --config CONFIG ARGS` under `/usr/bin/time`.
fn timed(binary: &Path, config: &Path, dir: &Path, args: &[&str]) -> Result<Measure, String> {
    let report = dir.join("time.txt");
    let started = Instant::now();
    let status = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(binary)
        .arg("--config")
        .arg(config)
        .args(args)
        // RUST_LOG=info shows each cycle's own summary line (its in-cycle duration).
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .status()
        .map_err(|e| format!("cannot run /usr/bin/time: {e}"))?;
    let wall_s = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&report).map_err(|e| format!("no time report: {e}"))?;
    let kib: f64 = text
        .lines()
        .last()
        .unwrap_or("0")
        .trim()
        .parse()
        .map_err(|e| format!("time report {text:?}: {e}"))?;
    Ok(Measure {
        wall_s,
        peak_rss_mib: kib / 1024.0,
        exit: status.code().unwrap_or(-1),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let binary = release_binary();
    if !binary.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            binary.display()
        ));
    }
    let source = Source::start(&args).await?;
    let htf = HardtofindSim::start(HardtofindSimConfig {
        username: "bench".into(),
        password: "bench-password".into(),
        catalogue: (0..source.skus()).map(|i| source.sku(i)).collect(),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    htf.set_recording(false);
    let orders_table = if args.orders > 0 {
        place_orders(&htf, &source, args.orders);
        format!(
            "[orders.bench]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"bench\"\npassword = \"bench-password\"\nrequests_per_minute = 1000000\nrelease = \"{}\"\n",
            htf.base_url(),
            std::env::var("BENCH_RELEASE").unwrap_or_else(|_| "absorb".into())
        )
    } else {
        String::new()
    };

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("config.toml");
    let database = if args.postgres {
        invsync::harness::postgres::TestPostgres::get()
            .and_then(|pg| pg.database())
            .map_err(|e| e.to_string())?
    } else {
        dir.path().join("invsync.db").display().to_string()
    };
    let write_config = |schedule: &str| {
        let text = format!(
            r#"[daemon]
database = "{db}"
{schedule}
request_timeout = "60s"

{source}
[targets.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "bench"
password = "bench-password"
inputs = ["stock"]
batch_size = {batch}
requests_per_minute = 1000000

{orders_table}"#,
            db = database,
            source = source.config(),
            htf = htf.base_url(),
            batch = args.batch_size,
        );
        std::fs::write(&config, text).map_err(|e| e.to_string())?;
        // It holds credentials inline: private, as an operator's should be.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())
    };
    write_config("every = \"1m\"")?;

    println!(
        "source={} records={} skus={} batch_size={} machine: {} cores",
        if args.hako {
            "hako (3 warehouses)"
        } else {
            "endless_aisles"
        },
        args.skus,
        source.skus(),
        args.batch_size,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if args.orders > 0 {
        let (pages, seconds) = walk_orders(&htf).await?;
        println!(
            "orders={} over {pages} pages; a plain walk of those pages takes {seconds:.3} s",
            args.orders
        );
    }
    println!(
        "{:<15} {:>8} {:>13} {:>9} {:>13} {:>5}",
        "cycle", "wall_s", "peak_rss_mib", "requests", "skus_written", "exit"
    );
    let changed = ((source.skus() as f64) * args.changed_percent / 100.0).round() as usize;
    for name in ["first", "unchanged", "changed"] {
        if name == "changed" {
            source.change(changed, 1);
            // The simulator renders its answer once per change: render it now, so that the
            // cycle measures invsync, not the simulator sharing its two cores.
            source.warm_up().await?;
        }
        htf.clear_batches();
        let measure = once(&binary, &config, dir.path())?;
        print_row(name, &measure, &htf.batches());
    }
    if args.mapping_skus > 0 {
        // A mapping file of N lines: each of the first N SKUs gets a key of its own at the
        // target (and lines beyond the catalogue name SKUs no source has).
        let csv = dir.path().join("skus.csv");
        let mut text = String::from("sku,endpoint,key\n");
        for i in 0..args.mapping_skus {
            let sku = if i < source.skus() {
                source.sku(i)
            } else {
                format!("X-{i}")
            };
            text.push_str(&format!("{sku},hardtofind,M-{i}\n"));
        }
        std::fs::write(&csv, text).map_err(|e| e.to_string())?;
        let mut with = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
        with.push_str(&format!("\n[mapping]\nfile = \"{}\"\n", csv.display()));
        std::fs::write(&config, with).map_err(|e| e.to_string())?;
        println!("with a mapping file of {} lines:", args.mapping_skus);
        let written = Instant::now();
        for (name, run) in [
            ("mapping_load", &["check", "--offline"][..]),
            ("mapping_first", &["once"]),
            ("mapping_again", &["once"]),
            ("mapping_settled", &["once"]),
            ("mapping_changed", &["once"]),
        ] {
            if name == "mapping_first" && std::env::var_os("BENCH_HOLD").is_some() {
                for end in ["", "-wal", "-shm"] {
                    let from = dir.path().join(format!("invsync.db{end}"));
                    if from.exists() {
                        std::fs::copy(&from, dir.path().join(format!("before-mapping.db{end}")))
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
            if name == "mapping_changed" {
                source.change(changed, 2);
                source.warm_up().await?;
            }
            if name == "mapping_again" {
                // A stamp is trusted once the file is a few seconds old: the digest this cycle
                // compares is recorded with it, and the next cycle does not read the file.
                std::thread::sleep(
                    std::time::Duration::from_secs(4).saturating_sub(written.elapsed()),
                );
            }
            htf.clear_batches();
            let measure = timed(&binary, &config, dir.path(), run)?;

            print_row(name, &measure, &htf.batches());
        }
    }
    if std::env::var_os("BENCH_HOLD").is_some() {
        println!(
            "holding {} (simulators up); kill to end",
            dir.path().display()
        );
        let _kept = dir.keep();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    }
    if args.run_seconds > 0 {
        write_config("every = \"1s\"")?;
        soak(&binary, &config, args.run_seconds).await?;
    }
    Ok(())
}

/// The source under test: Endless Aisles, or Hako with every SKU in three warehouses.
enum Source {
    EndlessAisles(EndlessAislesSim, usize),
    Hako(HakoSim, usize),
}

const WAREHOUSES: [&str; 3] = ["w1", "w2", "w3"];

impl Source {
    async fn start(args: &Args) -> Result<Source, String> {
        if args.hako {
            let sim = HakoSim::start(HakoSimConfig {
                api_key: "bench-key".into(),
                requests_per_minute: 1_000_000,
                warehouses: WAREHOUSES.map(str::to_owned).to_vec(),
            })
            .await
            .map_err(|e| e.to_string())?;
            sim.set_recording(false);
            let skus = args.skus / WAREHOUSES.len();
            for (n, warehouse) in WAREHOUSES.iter().enumerate() {
                sim.set_quantities(
                    warehouse,
                    (0..skus).map(|i| (format!("HK-{i}"), ((i + n) % 20) as i64)),
                );
            }
            Ok(Source::Hako(sim, skus))
        } else {
            let sim = EndlessAislesSim::start(EndlessAislesSimConfig {
                token: "bench-token".into(),
                page_size: None,
            })
            .await
            .map_err(|e| e.to_string())?;
            sim.set_recording(false);
            sim.set_stocks((0..args.skus).map(|i| ((100_000 + i).to_string(), (i % 50) as i64)));
            Ok(Source::EndlessAisles(sim, args.skus))
        }
    }

    fn skus(&self) -> usize {
        match self {
            Source::EndlessAisles(_, n) | Source::Hako(_, n) => *n,
        }
    }

    /// The canonical SKU of the i-th item.
    fn sku(&self, i: usize) -> String {
        match self {
            Source::EndlessAisles(..) => format!("EA-{}", 100_000 + i),
            Source::Hako(..) => format!("HK-{i}"),
        }
    }

    /// Changes `count` SKUs spread over the catalogue, to quantities of the `round`-th change
    /// (each round's differ from the last's).
    fn change(&self, count: usize, round: i64) {
        let step = (self.skus() / count.max(1)).max(1);
        let picked = (0..self.skus()).step_by(step).take(count);
        match self {
            Source::EndlessAisles(sim, _) => {
                sim.set_stocks(
                    picked.map(|i| ((100_000 + i).to_string(), 1_000 * round + (i % 7) as i64)),
                );
            }
            Source::Hako(sim, _) => {
                sim.set_quantities("w1", picked.map(|i| (format!("HK-{i}"), 1_000 * round)))
            }
        }
    }

    /// Asks the source's simulator for its whole answer once (Endless Aisles keeps it rendered
    /// until the next change; Hako renders every answer anew, so there is nothing to warm).
    async fn warm_up(&self) -> Result<(), String> {
        if let Source::EndlessAisles(sim, _) = self {
            reqwest::Client::new()
                .get(format!("{}/api/stock", sim.base_url()))
                .header("X-EA-REQUEST-TOKEN", "bench-token")
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| format!("warming the simulator up: {e}"))?
                .bytes()
                .await
                .map_err(|e| format!("warming the simulator up: {e}"))?;
        }
        Ok(())
    }

    fn config(&self) -> String {
        match self {
            Source::EndlessAisles(sim, _) => format!(
                "[sources.stock]\ntype = \"endless_aisles\"\nbase_url = \"{}\"\ntoken = \"bench-token\"\nsku_prefix = \"EA-\"\nrequests_per_minute = 1000000\n",
                sim.base_url()
            ),
            Source::Hako(sim, _) => format!(
                "[sources.stock]\ntype = \"hako\"\nbase_url = \"{}\"\napi_key = \"bench-key\"\nwarehouses = [\"w1\", \"w2\", \"w3\"]\nrequests_per_minute = 1000000\n",
                sim.base_url()
            ),
        }
    }
}

/// Runs `invsync run` (a cycle a second) for `seconds`, printing RSS and CPU every 30 s.
async fn soak(binary: &Path, config: &Path, seconds: u64) -> Result<(), String> {
    let mut child = tokio::process::Command::new(binary)
        .arg("--config")
        .arg(config)
        .arg("run")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start invsync run: {e}"))?;
    let pid = child.id().ok_or("invsync run exited at once")?;
    let ticks_per_second = 100.0; // USER_HZ on Linux
    println!("\nrun, a cycle every second, {seconds} s:");
    println!("{:>6} {:>9} {:>14}", "t_s", "rss_mib", "cpu_avg_cores");
    let started = Instant::now();
    let mut rss = Vec::new();
    let cpu = |pid: u32| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(
            (fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?)
                / ticks_per_second,
        )
    };
    let resident = |pid: u32| -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        Some(line.split_whitespace().nth(1)?.parse::<f64>().ok()? / 1024.0)
    };
    while started.elapsed().as_secs() < seconds {
        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        let (Some(mib), Some(cpu_s)) = (resident(pid), cpu(pid)) else {
            break;
        };
        rss.push(mib);
        println!(
            "{:>6} {:>9.1} {:>14.3}",
            started.elapsed().as_secs(),
            mib,
            cpu_s / started.elapsed().as_secs_f64()
        );
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = child.wait().await.map_err(|e| e.to_string())?;
    let (min, max) = rss
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    println!(
        "rss min {min:.1} MiB, max {max:.1} MiB; exit {:?}",
        status.code()
    );
    Ok(())
}

/// Places `count` open orders, one unit of a SKU each, spread over the catalogue.
fn place_orders(htf: &HardtofindSim, source: &Source, count: usize) {
    use invsync::services::hardtofind::sim::NewOrder;
    let step = (source.skus() / count.max(1)).max(1);
    // A backlog, as a shop has one: last updated an hour ago and earlier, one a minute apart
    // (orders updated within the last few minutes are read again every cycle, as they should).
    let now = chrono::Utc::now();
    htf.place_orders((0..count).map(|k| {
        let mut order = NewOrder::new([(source.sku((k * step) % source.skus()), 1)]);
        let updated = now - chrono::Duration::minutes(60 + k as i64);
        order.updated_at = Some(updated);
        order.created_at = Some(updated - chrono::Duration::days(1));
        order
    }));
}

/// Logs in and reads every page of `READY` orders and the one of `PROCESSED`, one after the
/// other, as a plain client would: the floor of what reading the orders costs. Returns the
/// pages read and the seconds it took.
async fn walk_orders(htf: &HardtofindSim) -> Result<(usize, f64), String> {
    let client = reqwest::Client::new();
    let base = htf.base_url();
    let login: serde_json::Value = client
        .post(format!("{base}/authenticate"))
        .json(&serde_json::json!({"username": "bench", "password": "bench-password"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = login["token"].as_str().ok_or("no token")?.to_owned();
    let started = Instant::now();
    let mut read = 0;
    for status in ["READY", "PROCESSED"] {
        let mut page = 1;
        loop {
            let answer: serde_json::Value = client
                .get(format!("{base}/orders"))
                .query(&[("status", status), ("page_number", &page.to_string())])
                .header("X-Auth-Token", &token)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            read += 1;
            let pages = answer["pages"].as_u64().unwrap_or(0) as usize;
            if page >= pages {
                break;
            }
            page += 1;
        }
    }
    Ok((read, started.elapsed().as_secs_f64()))
}
