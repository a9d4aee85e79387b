//! `invsync sim` as an operator rehearses with it: the configuration it prints syncs, with as
//! many SKUs as asked and the catalogue, and with `--changing` the relay's approve flow runs end
//! to end against orders that come on their own.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

use crate::cli::{exit_code, read_until, spawn};
use crate::helpers::{Run, invsync, signal};

/// The last line `invsync sim` prints: the commented-out relay table's.
const LAST_LINE: &str = "# to = \"dropship\"";

/// A port base whose four ports are free now (they may not stay so, but a test rarely loses
/// that race).
fn free_port_base() -> u16 {
    for _ in 0..100 {
        let Ok(first) = std::net::TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(base) = first.local_addr().map(|a| a.port()) else {
            continue;
        };
        if base > 65532 {
            continue;
        }
        let others: Vec<_> = (1..=3)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)))
            .collect();
        if others.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no four consecutive free ports");
}

/// A running `invsync sim` and the configuration it printed, saved with a database of the
/// test's own.
struct Sim {
    child: Child,
    base: u16,
    /// Everything it printed on stdout.
    printed: Vec<String>,
    /// Its log so far, kept for failure messages (and read, so it never blocks on a full pipe).
    log: Arc<Mutex<Vec<String>>>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sim {
    /// Starts `invsync sim --port-base … ARGS` and saves what it prints from `[daemon]` on,
    /// with `edit` applied.
    async fn start(args: &[&str], edit: impl Fn(&str) -> String) -> Sim {
        let base = free_port_base();
        let mut child = spawn(&[&["sim", "--port-base", &base.to_string()][..], args].concat());
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let printed = read_until(&mut stdout, |l| l == LAST_LINE).await;
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().expect("log").push(line);
            }
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("invsync.db");
        let config: String = printed
            .iter()
            .skip_while(|l| *l != "[daemon]")
            .map(|l| match l.starts_with("database = ") {
                true => format!("database = {:?}\n", database.display().to_string()),
                false => format!("{l}\n"),
            })
            .collect();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, edit(&config)).expect("config written");
        Sim {
            child,
            base,
            printed,
            log,
            config: path,
            _dir: dir,
        }
    }

    /// `invsync --config CONFIG ARGS`.
    async fn invsync(&self, args: &[&str]) -> Run {
        let config = self.config.display().to_string();
        invsync(&[&["--config", config.as_str()][..], args].concat()).await
    }

    /// What it printed, as one text.
    fn printed(&self) -> String {
        self.printed.join("\n")
    }

    /// Its log so far.
    fn log(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// SIGTERM; its exit status.
    async fn stop(self) -> Option<i32> {
        signal(&self.child, "TERM");
        exit_code(self.child).await
    }
}

/// The configuration as printed.
fn as_printed(config: &str) -> String {
    config.to_owned()
}

/// The configuration with every endpoint's budget raised, so that a test's cycle is not spent
/// waiting on the default of 60 requests a minute (what a long first sync rehearses).
fn fast(config: &str) -> String {
    let mut out = String::new();
    for line in config.lines() {
        out.push_str(line);
        out.push('\n');
        if line.starts_with("type = ") {
            out.push_str("requests_per_minute = 100000\n");
        }
    }
    out
}

/// What an operator does to the printed relay table: uncomments it.
fn uncomment_relay(config: &str) -> String {
    let mut relay = false;
    let mut out = String::new();
    for line in config.lines() {
        relay |= line == "# [relay]";
        let line = match relay {
            true => line.strip_prefix("# ").unwrap_or(line),
            false => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A field of the cycle's summary line, e.g. `shop(state=…)` in `targets=`.
fn summary_target<'a>(run: &'a Run, target: &str) -> &'a str {
    let summary = run.summary();
    let start = summary
        .find(&format!("{target}(state="))
        .unwrap_or_else(|| panic!("{target} in {summary}"));
    let rest = &summary[start..];
    &rest[..rest.find(')').unwrap_or(rest.len())]
}

fn status_json(run: &Run) -> Value {
    run.assert_code(0);
    serde_json::from_str(&run.stdout).expect("status --json is JSON")
}

/// Starts `invsync sim ARGS`, syncs once against the configuration it prints and, with `then`,
/// once more that long after; SIGTERM stops it. The later cycle's run, if any.
async fn the_configuration_sim_prints_syncs(args: &[&str], then: Option<Duration>) -> Option<Run> {
    let sim = Sim::start(args, fast).await;

    let once = sim.invsync(&["once"]).await;
    let mut later = None;
    if let Some(wait) = then {
        tokio::time::sleep(wait).await;
        later = Some(sim.invsync(&["once"]).await);
    }

    once.assert_code(0);
    assert!(once.summary().contains("outcome=\"ok\""), "{}", once.stderr);
    let text = sim.printed();
    for port in sim.base..=sim.base + 3 {
        assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
    }
    assert!(text.contains("demo-hako-key") && text.contains("demo-password"));
    assert_eq!(sim.stop().await, Some(0));
    later
}

#[tokio::test(flavor = "multi_thread")]
async fn the_configuration_sim_prints_syncs_against_it_and_sigterm_stops_it() {
    the_configuration_sim_prints_syncs(&[], None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_speaks_the_dialect_it_is_given_and_a_production_dialect_syncs_as_well() {
    the_configuration_sim_prints_syncs(&["--dialect", "production"], None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_changing_moves_stock_so_a_later_cycle_has_something_to_push() {
    // The simulators change stock every 100 ms: a cycle a second after the first finds changes.
    let args = ["--changing", "--change-every", "100ms"];
    let later = the_configuration_sim_prints_syncs(&args, Some(Duration::from_secs(1)))
        .await
        .expect("a later cycle");

    later.assert_code(0);
    let pushed: usize = later
        .summary()
        .split_whitespace()
        .find_map(|f| f.strip_prefix("pushed="))
        .and_then(|n| n.parse().ok())
        .expect("pushed= in the summary");
    assert!(pushed > 0, "{}", later.summary());
}

#[tokio::test]
async fn an_unknown_dialect_is_a_usage_error_naming_the_values() {
    let run = invsync(&["sim", "--dialect", "gone=418"]).await;

    run.assert_code(2);
    assert!(run.stderr.contains("one of 404, 410"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn sim_on_a_taken_port_says_which_and_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("address").port();

    let run = invsync(&["sim", "--port-base", &port.to_string()]).await;

    run.assert_code(1);
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")) && run.stderr.contains("--port-base"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_sim_accepts_requests_and_never_answers() {
    let sim = Sim::start(&["--stall"], as_printed).await;

    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/v0/warehouses", sim.base))
        .timeout(Duration::from_millis(1500))
        .send()
        .await;

    assert!(answer.is_err_and(|e| e.is_timeout()));
    assert_eq!(sim.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_once_against_sim_skus_n_tracks_n_skus_a_source_and_flags_sold_out_products_of_its_catalogue()
 {
    let sim = Sim::start(&["--skus", "1234"], fast).await;

    let once = sim.invsync(&["once"]).await;
    let status = status_json(&sim.invsync(&["status", "--json"]).await);

    once.assert_code(0);
    let printed = sim.printed();
    assert!(printed.contains("HK-0001 to HK-1234"), "{printed}");
    assert!(printed.contains("[targets.shop]"), "{printed}");
    let sources = status["sources"].as_array().expect("sources");
    assert_eq!(sources.len(), 2, "{status}");
    for source in sources {
        assert_eq!(source["skus"], 1234, "{source}");
    }
    let hardtofind = (status["targets"].as_array().into_iter().flatten())
        .find(|t| t["name"] == "hardtofind")
        .expect("the hardtofind target");
    assert_eq!(hardtofind["tracked"], 2 * 1234, "{hardtofind}");
    // Stock is 0 to 39 at random: among 1,234 products some are sold out (all in stock has a
    // chance of (39/40)^1234, about 3e-14), and each is flagged.
    let shop = summary_target(&once, "shop");
    assert!(shop.starts_with("shop(state=in_sync pushed="), "{shop}");
    assert!(!shop.starts_with("shop(state=in_sync pushed=0 "), "{shop}");
    assert_eq!(sim.stop().await, Some(0));
}

#[tokio::test]
async fn sim_refuses_a_sku_count_of_nought_or_beyond_ten_million_as_a_usage_error() {
    for count in ["0", "10000001", "lots"] {
        let run = invsync(&["sim", "--skus", count]).await;

        run.assert_code(2);
        assert!(
            run.stderr.contains("--skus") && run.stderr.contains("from 1 to 10000000"),
            "{count}: {}",
            run.stderr
        );
    }
}

/// Runs `once` until `done` says yes of the status (`--json`), at most a minute of tries.
async fn once_until(sim: &Sim, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..120 {
        sim.invsync(&["once"]).await.assert_code(0);
        let status = status_json(&sim.invsync(&["status", "--json"]).await);
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never {what}; the simulators' log:\n{}", sim.log());
}

/// The state `relay list` shows for order `id`.
fn listed_state<'a>(list: &'a str, id: &str) -> Option<&'a str> {
    let line = list
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))?;
    line.split_whitespace().nth(1)
}

/// Runs `once` until `relay list` shows order `id` in `state`, at most a minute of tries; the
/// list then.
async fn relay_list_until(sim: &Sim, id: &str, state: &str) -> String {
    for _ in 0..120 {
        sim.invsync(&["once"]).await.assert_code(0);
        let list = sim.invsync(&["relay", "list"]).await;
        list.assert_code(0);
        if listed_state(&list.stdout, id) == Some(state) {
            return list.stdout;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "order {id} never {state}; the simulators' log:\n{}",
        sim.log()
    );
}

/// A JSON answer of a simulator.
async fn get(url: &str, header: (&str, &str)) -> Value {
    let answer = reqwest::Client::new()
        .get(url)
        .header(header.0, header.1)
        .send()
        .await
        .expect("the simulator answers");
    assert!(answer.status().is_success(), "{url}: {}", answer.status());
    answer.json().await.expect("JSON")
}

/// Orders at Endless Aisles, as its API lists them.
async fn supplier_orders(sim: &Sim) -> Value {
    let url = format!("http://127.0.0.1:{}/api/orders", sim.base + 1);
    get(&url, ("X-EA-REQUEST-TOKEN", "demo-ea-token")).await
}

/// Hardtofind order `id`, as its API shows it.
async fn hardtofind_order(sim: &Sim, id: &str) -> Value {
    let base = format!("http://127.0.0.1:{}", sim.base + 2);
    let login = reqwest::Client::new()
        .post(format!("{base}/authenticate"))
        .json(&json!({"username": "demo@shop.example", "password": "demo-password"}))
        .send()
        .await
        .expect("Hardtofind answers");
    let token: Value = login.json().await.expect("JSON");
    let token = token["token"].as_str().expect("a token");
    let order = get(&format!("{base}/order/{id}"), ("X-Auth-Token", token)).await;
    order.get("data").cloned().unwrap_or(order)
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_printed_relay_uncommented_a_dropship_order_waits_for_approval_is_placed_once_and_ships_with_tracking()
 {
    let args = ["--skus", "30", "--changing", "--change-every", "100ms"];
    let sim = Sim::start(&args, |c| uncomment_relay(&fast(c))).await;

    let waiting = once_until(&sim, "an order awaiting approval", |s| {
        s["relay"]["awaiting_approval"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    let id = waiting["relay"]["awaiting_approval"][0]["order_id"]
        .as_str()
        .expect("an order id")
        .to_owned();
    let before = supplier_orders(&sim).await;
    let shown = sim.invsync(&["relay", "show", &id]).await;
    let approved = sim.invsync(&["relay", "approve", &id]).await;
    let listed = relay_list_until(&sim, &id, "done").await;
    sim.invsync(&["once"]).await.assert_code(0);
    let after = supplier_orders(&sim).await;
    let order = hardtofind_order(&sim, &id).await;
    let log = sim.log();
    assert_eq!(sim.stop().await, Some(0));

    assert_eq!(before["total"], 0, "nothing placed before the approval");
    shown.assert_code(0);
    assert!(shown.stdout.contains("eligible"), "{}", shown.stdout);
    approved.assert_code(0);
    let line = listed.lines().find(|l| l.starts_with(id.as_str()));
    assert!(
        line.is_some_and(|l| !l.contains("supplier=-")),
        "{listed}\n{log}"
    );
    assert_eq!(after["total"], 1, "placed exactly once: {after}");
    assert_eq!(order["status"], "SHIPPED", "{order}");
    let shipment = &order["shipments"][0];
    assert_eq!(shipment["shipping_provider_name"], "FedEx", "{order}");
    assert!(
        shipment["tracking_number"]
            .as_str()
            .is_some_and(|t| t.starts_with("7946")),
        "{order}"
    );
}
