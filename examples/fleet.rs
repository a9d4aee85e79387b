//! What a fleet costs: N shops of K SKUs each over W `invsync fleet` workers (the release
//! binary) on one PostgreSQL server started for the run (the test suite's throwaway server).
//!
//! ```sh
//! cargo build --release --examples --bins && target/release/examples/fleet --shops 100 --skus 1000 --workers 3
//! ```
//!
//! Each shop has an Endless Aisles source and a Hardtofind target of its own (simulators on
//! loopback). It prints the time until every shop's channel shows its source's stock (the first
//! cycle of every shop, spread over the workers), each worker's CPU time and peak memory, and the
//! database's size; then it changes 1% of every shop's SKUs and prints the time until every
//! shop converged again; then, over a minute of unchanged cycles (every 10 s), the CPU a shop's
//! cycle costs the workers and the PostgreSQL server.

mod support;

use std::time::{Duration, Instant};

use invsync::harness::postgres::TestPostgres;
use invsync::sim::{EndlessAislesSim, EndlessAislesSimConfig, HardtofindSim, HardtofindSimConfig};
use support::release_binary;

struct Args {
    shops: usize,
    skus: usize,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        shops: 100,
        skus: 1000,
        workers: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number: usize = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--shops" => args.shops = number,
            "--skus" => args.skus = number,
            "--workers" => args.workers = number,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

struct Shop {
    source: EndlessAislesSim,
    htf: HardtofindSim,
}

fn converged(shops: &[Shop], skus: usize, round: i64) -> usize {
    shops
        .iter()
        .filter(|s| {
            let shown = s.htf.inventories();
            (0..skus).all(|i| {
                let expected = (i % 9) as i64 + if i % 100 == 0 { round } else { 0 };
                shown.get(&format!("EA-{}", 100_000 + i)) == Some(&expected)
            })
        })
        .count()
}

/// CPU seconds (user + system) of every PostgreSQL process on the machine (the bench's own
/// server: run it where no other one works).
fn postgres_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| usage(pid).0)
        .sum()
}

/// CPU seconds (user + system) and peak RSS in MiB of process `pid`.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the state).
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let binary = release_binary();
    let url = TestPostgres::get()
        .and_then(|pg| pg.database())
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let shops_dir = dir.path().join("shops");
    std::fs::create_dir(&shops_dir).map_err(|e| e.to_string())?;
    let mut shops = Vec::new();
    for n in 0..args.shops {
        let name = format!("shop{n:04}");
        let source = EndlessAislesSim::start(EndlessAislesSimConfig {
            token: format!("{name}-token"),
            page_size: None,
        })
        .await
        .map_err(|e| e.to_string())?;
        source.set_recording(false);
        source.set_stocks((0..args.skus).map(|i| ((100_000 + i).to_string(), (i % 9) as i64)));
        let htf = HardtofindSim::start(HardtofindSimConfig {
            username: name.clone(),
            password: format!("{name}-password"),
            catalogue: (0..args.skus)
                .map(|i| format!("EA-{}", 100_000 + i))
                .collect(),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
        htf.set_recording(false);
        let config = format!(
            "[daemon]\nevery = \"10s\"\n\n[sources.stock]\ntype = \"endless_aisles\"\nbase_url = \"{}\"\ntoken = \"{name}-token\"\nsku_prefix = \"EA-\"\nrequests_per_minute = 1000000\n\n[targets.hardtofind]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"{name}\"\npassword = \"{name}-password\"\ninputs = [\"stock\"]\nbatch_size = 1000\nrequests_per_minute = 1000000\n",
            source.base_url(),
            htf.base_url()
        );
        let path = shops_dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        shops.push(Shop { source, htf });
    }
    let mut workers = Vec::new();
    let started = Instant::now();
    for w in 0..args.workers {
        let fleet = dir.path().join(format!("w{w}.toml"));
        std::fs::write(
            &fleet,
            format!(
                "[fleet]\ndatabase = \"{url}\"\nshops = \"{}\"\nworker = \"w{w}\"\nlog_level = \"warn\"\n",
                shops_dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        workers.push(
            tokio::process::Command::new(&binary)
                .arg("--config")
                .arg(&fleet)
                .arg("fleet")
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| e.to_string())?,
        );
    }
    println!(
        "shops={} skus_each={} workers={} lease_ttl=30s machine: {} cores",
        args.shops,
        args.skus,
        args.workers,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let wait = |round: i64, since: Instant, shops: &[Shop]| {
        let done = converged(shops, args.skus, round);
        (done, since.elapsed())
    };
    loop {
        let (done, took) = wait(0, started, &shops);
        if done == shops.len() {
            println!("first cycle of every shop: {:.1} s", took.as_secs_f64());
            break;
        }
        if took > Duration::from_secs(1800) {
            return Err(format!("only {done} shops converged in 30 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The shares settle (a worker alone at first takes every group, and hands some over as the
    // others come): the changed cycle below is measured on a settled fleet.
    let pool = invsync::store::db::pool::pool(&url, 1).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    loop {
        let counts: Vec<i64> = client
            .query(
                "SELECT count(*) FROM invsync_fleet.fleet_leases \
                 WHERE owner IS NOT NULL AND expires_at > clock_timestamp() GROUP BY owner",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let (min, max) = (counts.iter().min(), counts.iter().max());
        if counts.len() == args.workers
            && counts.iter().sum::<i64>() == args.shops as i64
            && matches!((min, max), (Some(a), Some(b)) if b - a <= 1)
        {
            println!(
                "shares settled ({counts:?}) {:.1} s after the start",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("the shares did not settle: {counts:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    while converged(&shops, args.skus, 0) < shops.len() {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for shop in &shops {
        shop.source.set_stocks((0..args.skus).map(|i| {
            (
                (100_000 + i).to_string(),
                (i % 9) as i64 + if i % 100 == 0 { 1 } else { 0 },
            )
        }));
    }
    let changed = Instant::now();
    loop {
        let (done, took) = wait(1, changed, &shops);
        if done == shops.len() {
            println!(
                "1% of every shop changed: every shop converged after {:.1} s (cycles every 10 s)",
                took.as_secs_f64()
            );
            break;
        }
        if took > Duration::from_secs(600) {
            return Err(format!("only {done} shops converged again in 10 minutes"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (w, worker) in workers.iter().enumerate() {
        let (cpu, rss) = usage(worker.id().unwrap_or(0));
        println!("worker w{w}: cpu {cpu:.1} s, peak rss {rss:.1} MiB");
    }
    // A minute of unchanged cycles: what a shop's cycle costs once nothing changes.
    let workers_cpu = || -> f64 { workers.iter().map(|w| usage(w.id().unwrap_or(0)).0).sum() };
    let (workers_before, postgres_before) = (workers_cpu(), postgres_cpu());
    let window = Duration::from_secs(60);
    tokio::time::sleep(window).await;
    let cycles = args.shops as f64 * window.as_secs_f64() / 10.0;
    let (workers_spent, postgres_spent) = (
        workers_cpu() - workers_before,
        postgres_cpu() - postgres_before,
    );
    println!(
        "unchanged cycles over {} s ({cycles:.0} shop cycles): workers {workers_spent:.1} s CPU, PostgreSQL {postgres_spent:.1} s CPU; per shop cycle {:.1} ms and {:.1} ms",
        window.as_secs(),
        workers_spent * 1000.0 / cycles,
        postgres_spent * 1000.0 / cycles
    );
    let size: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    println!("database size: {:.1} MiB", size as f64 / 1_048_576.0);
    Ok(())
}
