//! Benchmark of a sync cycle at catalogue scale, through the release binary.
//!
//! ```sh
//! cargo build --release && cargo run --release --example bench -- --skus 100000
//! ```
//!
//! Starts the Endless Aisles and Hardtofind simulators on loopback with N SKUs, then runs
//! `target/release/invsync once` three times under `/usr/bin/time`: the first cycle (everything
//! new), an unchanged cycle, and one with 1% of the SKUs changed. For each it prints wall time,
//! peak RSS, the write requests Hardtofind received and the SKUs they carried.

use std::path::{Path, PathBuf};
use std::time::Instant;

use invsync::sim::{EndlessAislesSim, EndlessAislesSimConfig, HardtofindSim, HardtofindSimConfig};

struct Args {
    skus: usize,
    batch_size: usize,
    changed_percent: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        skus: 100_000,
        batch_size: 1000,
        changed_percent: 1.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--skus" => args.skus = value.parse().map_err(|e| bad(&e))?,
            "--batch-size" => args.batch_size = value.parse().map_err(|e| bad(&e))?,
            "--changed-percent" => args.changed_percent = value.parse().map_err(|e| bad(&e))?,
            _ => {
                return Err(format!(
                    "unknown flag {flag}; use --skus N [--batch-size N] [--changed-percent P]"
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

/// Runs `invsync once` under `/usr/bin/time`, which reports the child's own peak RSS.
fn once(binary: &Path, config: &Path, dir: &Path) -> Result<Measure, String> {
    let report = dir.join("time.txt");
    let started = Instant::now();
    let status = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(binary)
        .arg("--config")
        .arg(config)
        .arg("once")
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
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/invsync");
    if !binary.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release` first",
            binary.display()
        ));
    }
    let ea = EndlessAislesSim::start(EndlessAislesSimConfig {
        token: "bench-token".into(),
        page_size: None,
    })
    .await
    .map_err(|e| e.to_string())?;
    let htf = HardtofindSim::start(HardtofindSimConfig {
        username: "bench".into(),
        password: "bench-password".into(),
        catalogue: (0..args.skus)
            .map(|i| format!("EA-{}", 100_000 + i))
            .collect(),
        ..Default::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    ea.set_stocks((0..args.skus).map(|i| ((100_000 + i).to_string(), (i % 50) as i64)));

    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("config.toml");
    let text = format!(
        r#"[daemon]
database = "{db}"
every = "1m"
request_timeout = "60s"

[sources.dropship]
type = "endless_aisles"
base_url = "{ea}"
token = "bench-token"
sku_prefix = "EA-"
requests_per_minute = 1000000

[targets.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "bench"
password = "bench-password"
inputs = ["dropship"]
batch_size = {batch}
requests_per_minute = 1000000
"#,
        db = dir.path().join("invsync.db").display(),
        ea = ea.base_url(),
        htf = htf.base_url(),
        batch = args.batch_size,
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;

    println!(
        "skus={} batch_size={} machine: {} cores",
        args.skus,
        args.batch_size,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<14} {:>8} {:>13} {:>9} {:>13} {:>5}",
        "cycle", "wall_s", "peak_rss_mib", "requests", "skus_written", "exit"
    );
    let changed = ((args.skus as f64) * args.changed_percent / 100.0).round() as usize;
    for name in ["first", "unchanged", "changed"] {
        if name == "changed" {
            let step = (args.skus / changed.max(1)).max(1);
            ea.set_stocks(
                (0..args.skus)
                    .step_by(step)
                    .take(changed)
                    .map(|i| ((100_000 + i).to_string(), 1_000 + (i % 7) as i64)),
            );
        }
        htf.clear_batches();
        let measure = once(&binary, &config, dir.path())?;
        let batches = htf.batches();
        println!(
            "{:<14} {:>8.3} {:>13.1} {:>9} {:>13} {:>5}",
            name,
            measure.wall_s,
            measure.peak_rss_mib,
            batches.len(),
            batches.iter().map(Vec::len).sum::<usize>(),
            measure.exit
        );
    }
    Ok(())
}
