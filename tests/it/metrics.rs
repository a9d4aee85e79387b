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
