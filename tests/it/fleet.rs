//! `invsync fleet`: worker processes sharing shops through leases in a real PostgreSQL, against
//! a pair of simulators per shop. Every request a worker sends names it in its `User-Agent`
//! (`invsync/VERSION (worker NAME)`), so the simulators' records say which worker pushed what,
//! in the order the requests arrived.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use invsync::harness::postgres::TestPostgres;
use invsync::services::endless_aisles::sim::{EndlessAislesSim, EndlessAislesSimConfig};
use invsync::services::hardtofind::sim::{HardtofindSim, HardtofindSimConfig};

use crate::helpers::invsync_command;

const SKUS: usize = 40;
pub(crate) const LEASE_TTL: Duration = Duration::from_secs(2);

pub(crate) struct Shop {
    pub(crate) name: String,
    pub(crate) source: EndlessAislesSim,
    pub(crate) htf: HardtofindSim,
    /// Tables appended to the shop's file (an order feed and a `[relay]`, say).
    pub(crate) extra: String,
}

impl Shop {
    pub(crate) async fn start(name: &str) -> Shop {
        let source = EndlessAislesSim::start(EndlessAislesSimConfig {
            token: format!("{name}-token"),
            page_size: None,
        })
        .await
        .expect("Endless Aisles");
        source.set_stocks((0..SKUS).map(|i| ((100_000 + i).to_string(), (i % 9) as i64)));
        let htf = HardtofindSim::start(HardtofindSimConfig {
            username: name.into(),
            password: format!("{name}-password"),
            catalogue: (0..SKUS).map(|i| format!("EA-{}", 100_000 + i)).collect(),
            ..Default::default()
        })
        .await
        .expect("Hardtofind");
        Shop {
            name: name.to_owned(),
            source,
            htf,
            extra: String::new(),
        }
    }

    pub(crate) fn config(&self) -> String {
        format!(
            r#"[daemon]
every = "1s"

[sources.stock]
type = "endless_aisles"
base_url = "{ea}"
token = "{name}-token"
sku_prefix = "EA-"
requests_per_minute = 100000

[targets.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "{name}"
password = "{name}-password"
inputs = ["stock"]
batch_size = 10
requests_per_minute = 100000
{extra}"#,
            ea = self.source.base_url(),
            htf = self.htf.base_url(),
            name = self.name,
            extra = self.extra,
        )
    }

    /// Whether the channel shows what the source has: `stock` plus `round` on every SKU.
    pub(crate) fn converged(&self, round: i64) -> bool {
        let shown = self.htf.inventories();
        (0..SKUS)
            .all(|i| shown.get(&format!("EA-{}", 100_000 + i)) == Some(&((i % 9) as i64 + round)))
    }

    pub(crate) fn change(&self, round: i64) {
        self.source
            .set_stocks((0..SKUS).map(|i| ((100_000 + i).to_string(), (i % 9) as i64 + round)));
    }

    /// The worker of each `POST` to Hardtofind's variant batches, in the order they came.
    pub(crate) fn pushers(&self) -> Vec<String> {
        self.htf
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/batch"))
            .filter_map(|r| r.header("user-agent").and_then(worker_of))
            .collect()
    }
}

/// The worker a `User-Agent` names.
pub(crate) fn worker_of(agent: &str) -> Option<String> {
    let start = agent.find("(worker ")? + "(worker ".len();
    Some(agent[start..].trim_end_matches(')').to_owned())
}

pub(crate) struct Fleet {
    /// The fleet's database.
    pub(crate) url: String,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) shops: Vec<Shop>,
    pub(crate) workers: BTreeMap<String, tokio::process::Child>,
}

impl Fleet {
    pub(crate) async fn start(count: usize) -> Fleet {
        let url = TestPostgres::get()
            .and_then(|pg| pg.database())
            .unwrap_or_else(|e| panic!("{e}"));
        Fleet::start_on(count, url).await
    }

    /// `count` shops on the database `url`.
    async fn start_on(count: usize, url: String) -> Fleet {
        let mut shops = Vec::new();
        for n in 0..count {
            shops.push(Shop::start(&format!("shop{n:02}")).await);
        }
        Fleet::of(shops, url)
    }

    /// A fleet of `shops` on the database `url`, each with its file written.
    pub(crate) fn of(shops: Vec<Shop>, url: String) -> Fleet {
        let dir = tempfile::tempdir().expect("a folder");
        std::fs::create_dir(dir.path().join("shops")).expect("shops");
        for shop in &shops {
            write_private(
                &dir.path().join("shops").join(format!("{}.toml", shop.name)),
                &shop.config(),
            );
        }
        write_private(
            &dir.path().join("fleet.toml"),
            &format!(
                "[fleet]\ndatabase = \"{url}\"\nshops = \"{}\"\nlease_ttl = \"{}ms\"\n",
                dir.path().join("shops").display(),
                LEASE_TTL.as_millis()
            ),
        );
        Fleet {
            url,
            dir,
            shops,
            workers: BTreeMap::new(),
        }
    }

    pub(crate) fn fleet_file(&self) -> PathBuf {
        self.dir.path().join("fleet.toml")
    }

    pub(crate) fn add_worker(&mut self, name: &str) {
        self.add_worker_with(name, "");
    }

    /// A worker named `name` whose `[fleet]` has the lines `extra` too.
    pub(crate) fn add_worker_with(&mut self, name: &str, extra: &str) {
        let config = self.dir.path().join(format!("{name}.toml"));
        let text = std::fs::read_to_string(self.fleet_file()).expect("fleet file");
        write_private(&config, &format!("{text}worker = \"{name}\"\n{extra}"));
        let child = invsync_command()
            .arg("--config")
            .arg(&config)
            .arg("fleet")
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log"),
            )
            .spawn()
            .expect("a worker starts");
        self.workers.insert(name.to_owned(), child);
    }

    /// Each held shop's worker, from `fleet status --json`.
    pub(crate) async fn holders(&self) -> HashMap<String, Option<String>> {
        let output = invsync_command()
            .arg("--config")
            .arg(self.fleet_file())
            .args(["fleet", "status", "--json"])
            .output()
            .await
            .expect("fleet status runs");
        let lines: Vec<serde_json::Value> =
            serde_json::from_slice(&output.stdout).unwrap_or_default();
        lines
            .iter()
            .map(|l| {
                (
                    l["shop"].as_str().unwrap_or_default().to_owned(),
                    l["worker"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    /// How many live leases `worker` holds, straight from the lease table.
    pub(crate) async fn leases_of(&self, worker: &str) -> i64 {
        let pool = invsync::store::db::pool::pool(&self.url, 1).expect("a pool");
        let client = pool.get().await.expect("a connection");
        client
            .query_one(
                "SELECT count(*) FROM invsync_fleet.fleet_leases \
                 WHERE owner = $1 AND expires_at > clock_timestamp()",
                &[&worker],
            )
            .await
            .expect("the lease table")
            .get(0)
    }

    /// How many shops each worker holds.
    pub(crate) async fn shares(&self) -> BTreeMap<String, usize> {
        let mut shares = BTreeMap::new();
        for worker in self.holders().await.into_values().flatten() {
            *shares.entry(worker).or_default() += 1;
        }
        shares
    }

    /// Waits (30 s at most) until every shop is held, by `workers` workers holding `min..=max`
    /// shops each; how long it took.
    pub(crate) async fn spread(
        &self,
        what: &str,
        workers: usize,
        min: usize,
        max: usize,
    ) -> Duration {
        self.wait_for(what, Duration::from_secs(30), Spread { workers, min, max })
            .await
    }

    /// Waits until the shops spread as [`Fleet::spread`] says, then until every shop shows its
    /// source's first figures.
    pub(crate) async fn settle(&self, what: &str, workers: usize, min: usize, max: usize) {
        self.spread(what, workers, min, max).await;
        self.wait_for(
            "every shop converged",
            Duration::from_secs(60),
            Converged(0),
        )
        .await;
    }

    pub(crate) async fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        done: impl AsyncCheck,
    ) -> Duration {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done.check(self).await {
                return start.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut logs = String::new();
        for name in self.workers.keys() {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            logs.push_str(&format!("--- {name}, last lines:\n"));
            for line in tail.into_iter().rev() {
                logs.push_str(line);
                logs.push('\n');
            }
        }
        let status = invsync_command()
            .arg("--config")
            .arg(self.fleet_file())
            .args(["fleet", "status"])
            .output()
            .await
            .expect("fleet status runs");
        panic!(
            "timed out after {limit:?} waiting until {what}\n{logs}--- fleet status:\n{}{}",
            String::from_utf8_lossy(&status.stdout),
            String::from_utf8_lossy(&status.stderr)
        );
    }
}

pub(crate) trait AsyncCheck {
    async fn check(&self, fleet: &Fleet) -> bool;
}

pub(crate) struct Converged(pub(crate) i64);
impl AsyncCheck for Converged {
    async fn check(&self, fleet: &Fleet) -> bool {
        fleet.shops.iter().all(|s| s.converged(self.0))
    }
}

/// Every shop held, by `workers` workers, each holding `min..=max`.
struct Spread {
    workers: usize,
    min: usize,
    max: usize,
}
impl AsyncCheck for Spread {
    async fn check(&self, fleet: &Fleet) -> bool {
        let holders = fleet.holders().await;
        let shares = fleet.shares().await;
        holders.len() == fleet.shops.len()
            && holders.values().all(Option::is_some)
            && shares.len() == self.workers
            && shares.values().all(|&n| (self.min..=self.max).contains(&n))
    }
}

pub(crate) fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("written");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("0600");
}

/// Whether, for every shop, no worker pushed again once another had pushed after it: the pushes
/// of a shop are runs of one worker each, and a worker's run never comes back.
pub(crate) fn one_worker_at_a_time(shops: &[Shop]) -> Result<(), String> {
    for shop in shops {
        let pushers = shop.pushers();
        if !runs_never_return(&pushers) {
            return Err(format!("{}: pushes by {pushers:?}", shop.name));
        }
    }
    Ok(())
}

impl Fleet {
    /// Whether each run of one worker's pushes at a shop (each shop its own lease group here)
    /// came under a claim of its own: the worker's log claims the shop's group at least as
    /// often as the worker's runs of pushes there. A worker that lost a lease and pushed on
    /// without claiming it again would have one run too many.
    fn each_run_claimed(&self) -> Result<(), String> {
        for shop in &self.shops {
            let pushers = shop.pushers();
            let mut runs: BTreeMap<&String, usize> = BTreeMap::new();
            for (i, worker) in pushers.iter().enumerate() {
                if i == 0 || pushers[i - 1] != *worker {
                    *runs.entry(worker).or_default() += 1;
                }
            }
            for (worker, runs) in runs {
                let log = std::fs::read_to_string(self.dir.path().join(format!("{worker}.log")))
                    .unwrap_or_default();
                let claimed = format!("fleet: claimed group={} ", shop.name);
                let claims = log.lines().filter(|l| l.contains(&claimed)).count();
                if claims < runs {
                    return Err(format!(
                        "{}: {runs} runs of {worker}'s pushes, {claims} claims ({pushers:?})",
                        shop.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Whether `workers` (whoever sent each request, in the order they came) are runs of one
/// worker each, none coming back once another came after it.
pub(crate) fn runs_never_return(workers: &[String]) -> bool {
    let mut runs: Vec<&String> = Vec::new();
    for worker in workers {
        if runs.last() != Some(&worker) {
            if runs.contains(&worker) {
                return false;
            }
            runs.push(worker);
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_thirty_shops_a_killed_one_loses_them_within_the_lease_a_fourth_takes_its_share_a_stopped_one_hands_over()
 {
    let mut fleet = Fleet::start(30).await;
    for name in ["w1", "w2", "w3"] {
        fleet.add_worker(name);
    }
    fleet
        .wait_for(
            "every shop converged",
            Duration::from_secs(60),
            Converged(0),
        )
        .await;
    fleet.spread("the shops spread 10/10/10", 3, 10, 10).await;
    let before = fleet.holders().await;
    let of_w1: Vec<String> = before
        .iter()
        .filter(|(_, w)| w.as_deref() == Some("w1"))
        .map(|(s, _)| s.clone())
        .collect();
    assert_eq!(of_w1.len(), 10, "{before:?}");
    for shop in &fleet.shops {
        shop.htf.clear_requests();
    }

    // Every shop changes; w1 is killed while it pushes (each batch takes 100 ms to answer, so
    // a push of four batches is under way when its first batch arrives).
    for shop in &fleet.shops {
        shop.htf.faults().set_latency(Duration::from_millis(100));
        shop.change(5);
    }
    let w1_pushing = Instant::now();
    while Instant::now() - w1_pushing < Duration::from_secs(10)
        && !fleet
            .shops
            .iter()
            .any(|s| s.pushers().iter().any(|w| w == "w1"))
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mid_push = fleet
        .shops
        .iter()
        .filter(|s| of_w1.contains(&s.name))
        .any(|s| s.pushers().iter().any(|w| w == "w1") && !s.converged(5));
    let mut w1 = fleet.workers.remove("w1").expect("w1");
    w1.start_kill().expect("SIGKILL");
    assert!(
        mid_push,
        "the kill did not land in the middle of a push of w1's"
    );
    let killed = Instant::now();
    let _ = w1.wait().await;
    // Straight from the lease table (fleet status reads every shop's state: slower to ask).
    while fleet.leases_of("w2").await + fleet.leases_of("w3").await < 30 {
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "w1's shops did not move"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let moved = killed.elapsed();
    fleet.spread("the shops spread 15/15", 2, 15, 15).await;
    let converged = fleet
        .wait_for(
            "every shop converged again",
            Duration::from_secs(60),
            Converged(5),
        )
        .await;
    let _ = converged;
    eprintln!(
        "timeline: killed at 0 s; shops moved after {:.1} s (lease {:.1} s); every shop converged {:.1} s after the kill",
        moved.as_secs_f64(),
        LEASE_TTL.as_secs_f64(),
        killed.elapsed().as_secs_f64()
    );
    assert!(
        moved <= LEASE_TTL * 3,
        "shops moved {moved:?} after the kill, the lease is {LEASE_TTL:?}"
    );
    one_worker_at_a_time(&fleet.shops).unwrap_or_else(|e| panic!("two workers pushed: {e}"));
    let after_kill: usize = fleet.shops.iter().map(|s| s.pushers().len()).sum();
    assert!(
        after_kill >= 30 * 4,
        "every shop pushed its change: {after_kill} batches"
    );

    // Nothing acknowledged was lost: the channels show the figures, and nothing is pushed again.
    for shop in &fleet.shops {
        shop.htf.faults().set_latency(Duration::ZERO);
        shop.htf.clear_requests();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pushed: usize = fleet.shops.iter().map(|s| s.pushers().len()).sum();
    assert_eq!(pushed, 0, "acknowledged figures are not pushed again");

    // A fourth worker takes its share.
    fleet.add_worker("w4");
    fleet
        .spread("the shops spread over three workers again", 3, 10, 10)
        .await;
    fleet.add_worker("w5");
    fleet
        .spread("a fourth worker took its share", 4, 7, 8)
        .await;
    for shop in &fleet.shops {
        shop.change(7);
    }
    fleet
        .wait_for(
            "every shop converged after the rebalance",
            Duration::from_secs(60),
            Converged(7),
        )
        .await;
    one_worker_at_a_time(&fleet.shops).unwrap_or_else(|e| panic!("two workers pushed: {e}"));

    // SIGTERM: w5 stops its shops and hands them over at once, not when its leases expire.
    assert!(fleet.leases_of("w5").await > 0, "w5 holds leases");
    let w5 = fleet.workers.remove("w5").expect("w5");
    signal(&w5, libc::SIGTERM);
    let status = w5.wait_with_output().await.expect("w5 exits");
    assert_eq!(status.status.code(), Some(0), "a clean shutdown");
    assert_eq!(
        fleet.leases_of("w5").await,
        0,
        "every lease of w5 was handed over before it exited"
    );
    let handed = fleet.spread("w5's shops taken over", 3, 10, 10).await;
    eprintln!(
        "SIGTERM: w5's shops held by the others {:.1} s after it exited",
        handed.as_secs_f64()
    );
}

/// Sends `signal` to `child`.
pub(crate) fn signal(child: &tokio::process::Child, signal: i32) {
    let pid = child.id().expect("running") as i32;
    // SAFETY: a plain kill(2) on a child this test started and has not reaped.
    let sent = unsafe { libc::kill(pid, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_push_past_its_lease_then_continued_sends_nothing_more_and_lets_go() {
    let mut fleet = Fleet::start(1).await;
    fleet.add_worker("w1");
    fleet.spread("w1 holds the shop", 1, 1, 1).await;
    fleet
        .wait_for("the shop converged", Duration::from_secs(60), Converged(0))
        .await;
    fleet.add_worker("w2");
    let shop = &fleet.shops[0];

    // A change, pushed slowly (300 ms a batch): w1 is stopped (SIGSTOP) after its first batch.
    shop.htf.clear_requests();
    shop.htf.faults().set_latency(Duration::from_millis(300));
    shop.change(3);
    let waiting = Instant::now();
    while shop.pushers().is_empty() && waiting.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&fleet.workers["w1"], libc::SIGSTOP);
    let before_stop = shop.pushers();
    assert!(
        before_stop.iter().all(|w| w == "w1") && !before_stop.is_empty() && !shop.converged(3),
        "the stop lands in the middle of w1's push: {before_stop:?}"
    );

    // Past its lease, w2 takes the shop over and finishes the push.
    fleet
        .wait_for(
            "w2 converged the shop",
            Duration::from_secs(60),
            Converged(3),
        )
        .await;
    let taken_over = shop.pushers();
    assert!(
        taken_over[before_stop.len()..].iter().any(|w| w == "w2"),
        "w2 pushed: {taken_over:?}"
    );
    // The shop moves on under w2 (the channel and w2's acknowledgements say round 4), while w1,
    // stopped, still has the answer to its round-3 batch to read. Then w2 stops (SIGTERM: the
    // shop is free at once) and the source goes back to round 3.
    shop.htf.faults().set_latency(Duration::ZERO);
    shop.change(4);
    fleet
        .wait_for(
            "w2 converged the shop again",
            Duration::from_secs(30),
            Converged(4),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let w2 = fleet.workers.remove("w2").expect("w2");
    signal(&w2, libc::SIGTERM);
    let stopped = w2.wait_with_output().await.expect("w2 exits");
    assert_eq!(stopped.status.code(), Some(0), "w2 stopped cleanly");
    shop.change(3);

    // w1 continues: until it says it let the shop go, it sends nothing.
    let seen = shop.pushers().len();
    signal(&fleet.workers["w1"], libc::SIGCONT);
    let log_path = fleet.dir.path().join("w1.log");
    let continued = Instant::now();
    let mut let_go = false;
    while !let_go && continued.elapsed() < Duration::from_secs(20) {
        // Pushes first: those seen before the log says it let go came before it did.
        let since: Vec<String> = shop.pushers()[seen..].to_vec();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let_go = log.contains("letting its shops go");
        if !let_go {
            assert!(
                since.iter().all(|w| w != "w1"),
                "w1 pushed after it was continued, before letting go: {since:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(let_go, "w1 says it let the shop go");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        log.contains("the write was refused"),
        "w1's acknowledgement of its round-3 batch, read once continued, was refused:\n{log}"
    );

    // What the database holds as acknowledged is what the channel shows: w1 claims the free
    // shop again, starts it from the database, and converges it back to round 3. Had w1's stale
    // acknowledgement been written, round 3 would be believed shown on that batch's SKUs (the
    // channel shows round 4 there), and they would never be pushed.
    fleet
        .wait_for(
            "w1, holding the shop again, converged it back to round 3",
            Duration::from_secs(30),
            Converged(3),
        )
        .await;
    assert_eq!(fleet.leases_of("w1").await, 1, "w1 holds the shop again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_in_the_middle_of_a_push_the_workers_retry_resume_and_lose_nothing() {
    let server = TestPostgres::own("restart").unwrap_or_else(|e| panic!("{e}"));
    let mut fleet = Fleet::start_on(6, server.database().unwrap_or_else(|e| panic!("{e}"))).await;
    fleet.add_worker("w1");
    fleet.add_worker("w2");
    fleet.settle("the shops spread 3/3", 2, 3, 3).await;
    for shop in &fleet.shops {
        shop.htf.clear_requests();
        shop.htf.faults().set_latency(Duration::from_millis(200));
        shop.change(2);
    }
    let waiting = Instant::now();
    while fleet.shops.iter().all(|s| s.pushers().is_empty())
        && waiting.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mid_push = fleet
        .shops
        .iter()
        .any(|s| !s.pushers().is_empty() && !s.converged(2));
    server.stop().unwrap_or_else(|e| panic!("{e}"));
    assert!(mid_push, "the database went away in the middle of a push");
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart().unwrap_or_else(|e| panic!("{e}"));

    fleet
        .wait_for(
            "every shop converged after the restart",
            Duration::from_secs(60),
            Converged(2),
        )
        .await;
    fleet.spread("the shops held again", 2, 3, 3).await;
    // Leases that ran out while the database was away are claimed again, and a worker that
    // first saw itself alone hands some back: a shop may come back to a worker, each time
    // under a claim of its own.
    fleet
        .each_run_claimed()
        .unwrap_or_else(|e| panic!("a worker pushed without a lease: {e}"));
    for shop in &fleet.shops {
        shop.htf.faults().set_latency(Duration::ZERO);
        shop.htf.clear_requests();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pushed: usize = fleet.shops.iter().map(|s| s.pushers().len()).sum();
    assert_eq!(
        pushed, 0,
        "nothing acknowledged was lost: nothing is pushed again"
    );
    for (name, worker) in &mut fleet.workers {
        assert!(
            worker.try_wait().expect("a worker").is_none(),
            "{name} kept running through the restart"
        );
    }
}

/// The shops a `/metrics` page has samples of (`shop="NAME"`).
fn shops_on(page: &str) -> std::collections::BTreeSet<String> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let start = l.find("shop=\"")? + "shop=\"".len();
            Some(l[start..].split('"').next()?.to_owned())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_metrics_label_each_shop_it_holds_and_drop_a_shop_it_hands_over() {
    let mut fleet = Fleet::start(4).await;
    fleet.add_worker_with("wa", "metrics_listen = \"127.0.0.1:0\"\n");
    fleet.settle("wa holds every shop", 1, 4, 4).await;
    let log = fleet.dir.path().join("wa.log");
    let addr = std::fs::read_to_string(&log)
        .expect("wa's log")
        .lines()
        .filter(|l| l.contains("metrics served"))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("addr="))
                .map(str::to_owned)
        })
        .expect("the bound address is logged");
    let url = format!("http://{addr}/metrics");
    let client = reqwest::Client::new();
    let scrape = || async {
        let answer = client.get(&url).send().await.expect("GET /metrics");
        assert_eq!(answer.status(), 200);
        answer.text().await.expect("a page")
    };

    // Every shop's figures, each under its name; one family each, whatever the shops.
    let names: Vec<String> = fleet.shops.iter().map(|s| s.name.clone()).collect();
    let mut page = String::new();
    for _ in 0..100 {
        page = scrape().await;
        if names.iter().all(|name| {
            page.contains(&format!(
                "invsync_target_pending_skus{{shop=\"{name}\",target=\"hardtofind\"}} 0"
            ))
        }) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for name in &names {
        for series in [
            format!("invsync_target_pending_skus{{shop=\"{name}\",target=\"hardtofind\"}} 0"),
            format!("invsync_source_skus{{shop=\"{name}\",source=\"stock\"}} {SKUS}"),
            format!(
                "invsync_requests_total{{shop=\"{name}\",endpoint=\"target hardtofind\",code=\"200\"}} "
            ),
            format!("invsync_cycle_duration_seconds_count{{shop=\"{name}\"}} "),
        ] {
            assert!(page.contains(&series), "{series} in\n{page}");
        }
    }
    assert_eq!(
        page.matches("# TYPE invsync_requests counter").count(),
        1,
        "{page}"
    );

    // A second worker takes half: wa's page then says only the shops wa still holds.
    fleet.add_worker("wb");
    fleet.spread("the shops spread 2/2", 2, 2, 2).await;
    let of_wa: std::collections::BTreeSet<String> = fleet
        .holders()
        .await
        .into_iter()
        .filter(|(_, w)| w.as_deref() == Some("wa"))
        .map(|(s, _)| s)
        .collect();
    assert_eq!(of_wa.len(), 2, "{of_wa:?}");
    let mut shown = shops_on(&scrape().await);
    for _ in 0..100 {
        if shown == of_wa {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        shown = shops_on(&scrape().await);
    }
    assert_eq!(
        shown, of_wa,
        "wa's page names the shops it holds, and only those"
    );
}
