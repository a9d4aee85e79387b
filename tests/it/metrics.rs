//! `daemon.metrics_listen`: `GET /metrics` in the Prometheus text format.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{Setup, World, signal};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listen_serves_the_contracts_families_after_a_cycle() {
    let world = World::with(Setup {
        daemon_extra: "metrics_listen = \"127.0.0.1:0\"".into(),
        ..Setup::default()
    })
    .await;
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut addr = None;
    let cycled = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("metrics served") {
                addr = line
                    .split_whitespace()
                    .find_map(|f| f.strip_prefix("addr="))
                    .map(str::to_owned);
            }
            if line.contains("cycle finished") {
                return;
            }
        }
    })
    .await;
    assert!(cycled.is_ok(), "a cycle ran");
    let url = format!(
        "http://{}/metrics",
        addr.expect("the bound address is logged")
    );
    let client = reqwest::Client::new();
    let mut page = String::new();
    for _ in 0..100 {
        let answer = client.get(&url).send().await.expect("GET /metrics");
        assert_eq!(answer.status(), 200);
        page = answer.text().await.expect("body");
        if page.contains("invsync_target_pending_skus{target=\"hardtofind\"}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing = client
        .get(url.replace("/metrics", "/other"))
        .send()
        .await
        .expect("GET");
    signal(&child, "TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    for sample in [
        "invsync_target_pending_skus{target=\"hardtofind\"} 0",
        "invsync_target_held{target=\"hako_dropship\"} 0",
        "invsync_target_last_success_timestamp_seconds{target=\"hardtofind\"}",
        "invsync_source_last_fetch_timestamp_seconds{source=\"warehouse\"}",
        "invsync_source_skus{source=\"dropship\"} 30",
        "invsync_requests_total{endpoint=\"target hardtofind\",code=\"200\"}",
        "invsync_cycle_duration_seconds_count",
        "invsync_reservations_open 0",
    ] {
        assert!(page.contains(sample), "{sample} in\n{page}");
    }
    println!(
        "{}",
        page.lines()
            .filter(|l| l.starts_with("invsync_target") || l.starts_with("invsync_requests"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(missing.status(), 404);
}

/// 300 idle connections to `/metrics` (a slowloris, a port scan) under a limit of 128 file
/// descriptors: the listener takes a bounded number, the sync keeps its own connections, and a
/// failing accept is not a flood of WARN lines.
#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_to_metrics_never_starve_the_sync_of_file_descriptors() {
    let world = World::with(Setup {
        daemon_extra: "metrics_listen = \"127.0.0.1:0\"".into(),
        ..Setup::default()
    })
    .await;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 128 && exec \"$0\" --config \"$1\" run")
        .arg(env!("CARGO_BIN_EXE_invsync"))
        .arg(&world.config)
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("invsync starts");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let mut addr = None;
    while log.iter().all(|l: &String| !l.contains("cycle finished")) {
        let line = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("a first cycle")
            .expect("a line");
        if line.contains("metrics served") {
            addr = line
                .split_whitespace()
                .find_map(|f| f.strip_prefix("addr="))
                .map(str::to_owned);
        }
        log.push(line);
    }
    let addr = addr.expect("the bound address is logged");
    let mut idle = Vec::new();
    for _ in 0..300 {
        let connect = tokio::net::TcpStream::connect(&addr);
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(200), connect).await {
            idle.push(stream);
        }
    }

    world.hako.set_quantity("warehouse-010", "HK-1", 42);
    let mut synced = false;
    for _ in 0..200 {
        if world.htf.inventory("HK-1") == Some(42) {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while let Ok(line) = rx.try_recv() {
        log.push(line);
    }
    drop(idle);
    signal(&child, "TERM");
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    let accept_warnings = log
        .iter()
        .filter(|l| l.contains("could not accept"))
        .count();
    println!(
        "{} idle connections held open; {accept_warnings} accept WARN lines",
        300
    );
    assert!(
        synced,
        "a stock change reached Hardtofind:\n{}",
        log.join("\n")
    );
    assert!(accept_warnings <= 2, "{}", log.join("\n"));
}
