//! `daemon.metrics_listen`: `GET /metrics` in the Prometheus text format.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use invsync::services::hardtofind::sim::NewOrder;

use crate::helpers::{HTF_PASSWORD, HTF_USER, Setup, World, signal};

/// A running daemon's metrics after its first cycle.
struct Scraped {
    /// `GET /metrics`.
    page: String,
    /// Its URL.
    url: String,
    /// The daemon, still running.
    child: tokio::process::Child,
}

impl Scraped {
    /// Stops the daemon (SIGTERM), waits for it, and gives the page.
    async fn stop(mut self) -> String {
        signal(&self.child, "TERM");
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        self.page
    }
}

/// Starts `invsync run` in `world`, waits for its first cycle, and reads `GET /metrics` until
/// the page holds `ready` (the figures read back after a cycle come a moment after its summary
/// line).
async fn metrics_after_first_cycle(world: &World, ready: &str) -> Scraped {
    let mut child = world.spawn(&["run"], &[]);
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut addr = None;
    let mut log = String::new();
    let cycled = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
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
    assert!(cycled.is_ok(), "a cycle ran:\n{log}");
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
        if page.contains(ready) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Scraped { page, url, child }
}

/// The value of the sample `series` (name and labels, as the page writes them), if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_listen_serves_the_contracts_families_after_a_cycle() {
    let world = World::with(Setup {
        daemon_extra: "metrics_listen = \"127.0.0.1:0\"".into(),
        ..Setup::default()
    })
    .await;
    let scraped =
        metrics_after_first_cycle(&world, "invsync_target_pending_skus{target=\"hardtofind\"}")
            .await;
    let missing = reqwest::get(scraped.url.replace("/metrics", "/other"))
        .await
        .expect("GET");
    let page = scraped.stop().await;

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

/// Two order feeds on the target's Hardtofind account, both named apart from it only by kind:
/// `hardtofind` with a wrong password, `shop` with the right one (so it shares the target's
/// login). One cycle only (`every = "1h"`), so the simulator's log is the whole story.
#[tokio::test(flavor = "multi_thread")]
async fn a_feed_on_the_targets_account_is_counted_under_its_own_label_and_has_its_own_figures() {
    let world = World::with(Setup {
        daemon_extra: "metrics_listen = \"127.0.0.1:0\"".into(),
        ..Setup::default()
    })
    .await;
    let text = std::fs::read_to_string(&world.config).expect("config");
    let mut text = text.replace("every = \"1s\"", "every = \"1h\"");
    for (feed, password) in [("hardtofind", "wrong-password"), ("shop", HTF_PASSWORD)] {
        text.push_str(&format!(
            "\n[orders.{feed}]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"{HTF_USER}\"\npassword = \"{password}\"\n",
            world.htf.base_url()
        ));
    }
    std::fs::write(&world.config, text).expect("config");
    // An order whose second line names a deleted variant: not read whole.
    let unreadable = world
        .htf
        .place_order(NewOrder::new([("HK-1", 1), ("HK-2", 1)]));
    world.htf.rewrite_order(&unreadable, |o| {
        o["lines"][1]["sku"] = serde_json::Value::Null
    });

    let page = metrics_after_first_cycle(&world, "invsync_feed_failing")
        .await
        .stop()
        .await;

    let requests = world.htf.requests();
    let answered = |status: u16| requests.iter().filter(|r| r.status == status).count() as f64;
    let lists = (requests.iter())
        .filter(|r| r.path == "/orders" && r.status == 200)
        .count() as f64;
    let counted = |label: &str, code: &str| {
        sample(
            &page,
            &format!("invsync_requests_total{{endpoint=\"{label}\",code=\"{code}\"}}"),
        )
        .unwrap_or(0.0)
    };
    println!(
        "{}",
        (page.lines())
            .filter(|l| l.starts_with("invsync_requests") || l.starts_with("invsync_feed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The refused logins are the wrong-password feed's, and counted as its own.
    assert!(answered(401) >= 1.0, "the simulator refused a login");
    assert_eq!(counted("orders hardtofind", "401"), answered(401), "{page}");
    assert!(
        !page.contains("endpoint=\"target hardtofind\",code=\"401\""),
        "{page}"
    );
    // The feed sharing the target's login (one login for both) reads the lists under its own
    // label.
    let logins = (requests.iter())
        .filter(|r| r.path == "/authenticate" && r.status == 200)
        .count();
    assert_eq!(logins, 1, "the target and the shop feed share one token");
    assert!(lists >= 2.0, "READY and PROCESSED were read");
    assert!(counted("orders shop", "200") >= lists, "{page}");
    assert!(
        counted("target hardtofind", "200") <= answered(200) - lists,
        "{page}"
    );
    assert_eq!(
        counted("target hardtofind", "200") + counted("orders shop", "200"),
        answered(200),
        "{page}"
    );
    for (series, value) in [
        ("invsync_feed_failing{feed=\"hardtofind\"}", 1.0),
        ("invsync_feed_failing{feed=\"shop\"}", 0.0),
        ("invsync_feed_unreadable_orders{feed=\"shop\"}", 1.0),
    ] {
        assert_eq!(sample(&page, series), Some(value), "{series} in\n{page}");
    }
    let read_at = sample(
        &page,
        "invsync_feed_last_read_timestamp_seconds{feed=\"shop\"}",
    )
    .expect("the feed that read has a last read");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!((now - 120.0..=now).contains(&read_at), "{read_at} vs {now}");
    assert!(
        !page.contains("invsync_feed_last_read_timestamp_seconds{feed=\"hardtofind\"}"),
        "a feed that never read has no last read\n{page}"
    );
}
