//! The world every integration test runs in: the three simulators on loopback (port 0), a temp
//! folder with a configuration and a SQLite file (or, with [`Setup::postgres`], a fresh
//! database on the test process's PostgreSQL server), and the real `invsync` binary.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Output;

use invsync::store::db::Connection;

use invsync::sim::{
    Dialect, EndlessAislesSim, EndlessAislesSimConfig, HakoSim, HakoSimConfig, HardtofindSim,
    HardtofindSimConfig,
};

pub const HAKO_KEY: &str = "hako-canary-key";
pub const EA_TOKEN: &str = "ea-canary-token";
pub const HTF_USER: &str = "seller@example.com";
pub const HTF_PASSWORD: &str = "htf-canary-password";

/// Settings a test may change before writing the configuration.
#[derive(Clone)]
pub struct Setup {
    /// SKUs in Hako's `warehouse-010` (`HK-1`…).
    pub warehouse_skus: usize,
    /// Items in Endless Aisles (ids `1001`…, canonical `EA-1001`…).
    pub dropship_skus: usize,
    /// Hardtofind's `batch_size`.
    pub htf_batch_size: usize,
    /// Hako target's `batch_size`.
    pub hako_batch_size: usize,
    /// Budget configured for every endpoint (and the simulators' limit) unless a test says otherwise.
    pub requests_per_minute: u32,
    /// Extra lines appended to `[daemon]`.
    pub daemon_extra: String,
    /// Lines appended to `[targets.hardtofind]`.
    pub htf_extra: String,
    /// Hardtofind's own budget, when it differs from `requests_per_minute`.
    pub htf_requests_per_minute: Option<u32>,
    /// Lines appended to `[targets.hako_dropship]`.
    pub hako_target_extra: String,
    /// Lines appended to `[sources.warehouse]` and `[sources.dropship]`.
    pub hako_source_extra: String,
    pub ea_source_extra: String,
    /// Hardtofind token lifetime.
    pub token_lifetime: std::time::Duration,
    /// Endless Aisles page size (`None`: one answer).
    pub ea_page_size: Option<usize>,
    /// Whole tables appended to the file (a `[targets.shop]` against a catalogue simulator).
    pub extra_tables: String,
    /// How every simulator answers where the documents are silent.
    pub dialect: Dialect,
    /// The state in a fresh PostgreSQL database (the schema `config`, named after the file)
    /// instead of a SQLite file.
    pub postgres: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            warehouse_skus: 20,
            dropship_skus: 30,
            htf_batch_size: 100,
            hako_batch_size: 100,
            requests_per_minute: 100_000,
            daemon_extra: String::new(),
            htf_extra: String::new(),
            htf_requests_per_minute: None,
            hako_target_extra: String::new(),
            hako_source_extra: String::new(),
            ea_source_extra: String::new(),
            token_lifetime: std::time::Duration::from_secs(15 * 60),
            ea_page_size: None,
            extra_tables: String::new(),
            dialect: Dialect::default(),
            postgres: false,
        }
    }
}

/// Simulators, a temp folder and a configuration pointing at them.
pub struct World {
    pub hako: HakoSim,
    pub ea: EndlessAislesSim,
    pub htf: HardtofindSim,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub setup: Setup,
    /// With [`Setup::postgres`]: the database's URL.
    pub postgres: Option<String>,
}

/// The schema a world's shop has on PostgreSQL: named after `config.toml`.
pub const SCHEMA: &str = "config";

pub fn warehouse_sku(i: usize) -> String {
    format!("HK-{i}")
}

/// The quantity item `i` starts with at Endless Aisles (always positive).
pub fn initial_dropship(i: usize) -> i64 {
    (i % 5) as i64 + 2
}

pub fn dropship_id(i: usize) -> String {
    (1000 + i).to_string()
}

impl World {
    pub async fn start() -> World {
        World::with(Setup::default()).await
    }

    pub async fn with(setup: Setup) -> World {
        let hako = HakoSim::start(HakoSimConfig {
            api_key: HAKO_KEY.into(),
            requests_per_minute: setup.requests_per_minute,
            warehouses: vec!["warehouse-010".into(), "dropship".into()],
        })
        .await
        .expect("hako sim");
        let ea = EndlessAislesSim::start(EndlessAislesSimConfig {
            token: EA_TOKEN.into(),
            page_size: setup.ea_page_size,
        })
        .await
        .expect("ea sim");
        let mut catalogue: Vec<String> = (1..=setup.warehouse_skus).map(warehouse_sku).collect();
        catalogue.extend((1..=setup.dropship_skus).map(|i| format!("EA-{}", dropship_id(i))));
        let htf = HardtofindSim::start(HardtofindSimConfig {
            username: HTF_USER.into(),
            password: HTF_PASSWORD.into(),
            token_lifetime: setup.token_lifetime,
            catalogue,
        })
        .await
        .expect("htf sim");
        hako.set_dialect(setup.dialect);
        ea.set_dialect(setup.dialect);
        htf.set_dialect(setup.dialect);
        for i in 1..=setup.warehouse_skus {
            hako.set_quantity("warehouse-010", &warehouse_sku(i), (i % 7) as i64 + 1);
        }
        for i in 1..=setup.dropship_skus {
            ea.set_stock(&dropship_id(i), initial_dropship(i));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.toml");
        let postgres = setup.postgres.then(|| {
            invsync::harness::postgres::TestPostgres::get()
                .and_then(|pg| pg.database())
                .unwrap_or_else(|e| panic!("{e}"))
        });
        let world = World {
            hako,
            ea,
            htf,
            dir,
            config,
            setup,
            postgres,
        };
        world.write_config();
        world
    }

    /// (Re)writes the configuration from `self.setup`.
    pub fn write_config(&self) {
        let s = &self.setup;
        let text = format!(
            r#"[daemon]
database = "{db}"
every = "1s"
request_timeout = "5s"
retry_max_attempts = 4
retry_initial_backoff = "20ms"
retry_max_backoff = "100ms"
retry_max_elapsed = "20s"
log_level = "info"
{daemon_extra}

[sources.warehouse]
type = "hako"
base_url = "{hako}"
api_key = "{HAKO_KEY}"
warehouses = ["warehouse-010"]
requests_per_minute = {rpm}
{hako_source_extra}

[sources.dropship]
type = "endless_aisles"
base_url = "{ea}"
token = "{EA_TOKEN}"
sku_prefix = "EA-"
requests_per_minute = {rpm}
{ea_source_extra}

[targets.hardtofind]
type = "hardtofind"
base_url = "{htf}"
username = "{HTF_USER}"
password = "{HTF_PASSWORD}"
inputs = ["warehouse", "dropship"]
batch_size = {htf_batch}
requests_per_minute = {htf_rpm}
{htf_extra}

[targets.hako_dropship]
type = "hako"
base_url = "{hako}"
api_key = "{HAKO_KEY}"
warehouse = "dropship"
inputs = ["dropship"]
batch_size = {hako_batch}
requests_per_minute = {rpm}
{hako_target_extra}
{extra_tables}
"#,
            db = match &self.postgres {
                Some(url) => url.clone(),
                None => self.database().display().to_string(),
            },
            hako = self.hako.base_url(),
            ea = self.ea.base_url(),
            htf = self.htf.base_url(),
            rpm = s.requests_per_minute,
            htf_rpm = s.htf_requests_per_minute.unwrap_or(s.requests_per_minute),
            htf_batch = s.htf_batch_size,
            hako_batch = s.hako_batch_size,
            daemon_extra = s.daemon_extra,
            hako_source_extra = s.hako_source_extra,
            ea_source_extra = s.ea_source_extra,
            htf_extra = s.htf_extra,
            hako_target_extra = s.hako_target_extra,
            extra_tables = s.extra_tables,
        );
        std::fs::write(&self.config, text).expect("write config");
        // As an operator should: the file holds secrets inline.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }

    pub fn database(&self) -> PathBuf {
        self.dir.path().join("state").join("invsync.db")
    }

    /// `invsync --config … ARGS`, with a clean log environment.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_at(&self.config, args)
    }

    /// `invsync --config CONFIG ARGS`, with a clean log environment.
    fn command_at(&self, config: &std::path::Path, args: &[&str]) -> tokio::process::Command {
        let mut command = invsync_command();
        command.arg("--config").arg(config).args(args);
        command
    }

    /// Every `(point, value)` of the dialect that some simulator of this world answered with.
    pub fn dialect_used(&self) -> std::collections::BTreeSet<(&'static str, &'static str)> {
        let mut used = self.hako.dialect_used();
        used.extend(self.ea.dialect_used());
        used.extend(self.htf.dialect_used());
        used
    }

    /// Runs `invsync --config … ARGS` to completion.
    pub async fn invsync(&self, args: &[&str]) -> Run {
        self.invsync_env(args, &[]).await
    }

    /// Runs `invsync --config … ARGS` to completion with `env` added.
    pub async fn invsync_env(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Run {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .await
            .expect("invsync runs");
        Run::from(output)
    }

    /// Runs `invsync --config CONFIG ARGS` to completion: another configuration of this world.
    pub async fn invsync_with(&self, config: &std::path::Path, args: &[&str]) -> Run {
        let output = self.command_at(config, args).output().await;
        Run::from(output.expect("invsync runs"))
    }

    /// Runs `invsync --config … ARGS` to completion with `stderr` as its stderr; only its exit
    /// status and stdout are kept.
    pub async fn invsync_with_stderr(&self, args: &[&str], stderr: std::process::Stdio) -> Run {
        let output = self
            .command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("invsync starts")
            .wait_with_output()
            .await
            .expect("invsync runs");
        Run::from(output)
    }

    /// Starts `invsync --config … ARGS` in the background, stdout and stderr piped, with `env` added.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &OsStr)]) -> tokio::process::Child {
        self.command(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("invsync starts")
    }

    /// What Hardtofind should show per SKU: Hako's warehouse-010 plus Endless Aisles.
    /// Waits until the simulators have answered every request they took, or 150 ms (three
    /// times the largest latency the campaigns give them; a request whose connection was
    /// dropped is never answered): a killed process's request still in a simulator's latency
    /// is applied after its death, as a real service would apply it, and must not land on top
    /// of the next process's pushes.
    pub async fn wait_out_requests_in_flight(&self) {
        let started = std::time::Instant::now();
        let in_flight = || {
            [
                self.htf.requests(),
                self.hako.requests(),
                self.ea.requests(),
            ]
            .iter()
            .flatten()
            .any(|r| r.status == 0)
        };
        while in_flight() && started.elapsed() < std::time::Duration::from_millis(150) {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    pub fn expected_hardtofind(&self) -> HashMap<String, i64> {
        let mut expected: HashMap<String, i64> = self.hako.inventory("warehouse-010");
        for (id, q) in self.ea.stock() {
            *expected.entry(format!("EA-{id}")).or_default() += q;
        }
        expected
    }

    /// What Hako's dropship warehouse should hold: Endless Aisles' stock.
    pub fn expected_hako_dropship(&self) -> HashMap<String, i64> {
        self.ea
            .stock()
            .into_iter()
            .map(|(id, q)| (format!("EA-{id}"), q))
            .collect()
    }

    /// What Hako's dropship warehouse held when the world started (before a test cleared stock).
    pub fn expected_hako_dropship_before_clear(&self) -> HashMap<String, i64> {
        (1..=self.setup.dropship_skus)
            .map(|i| (format!("EA-{}", dropship_id(i)), initial_dropship(i)))
            .collect()
    }

    /// Hardtofind's inventory of the SKUs this world knows.
    pub fn hardtofind_shows(&self) -> HashMap<String, i64> {
        let expected = self.expected_hardtofind();
        self.htf
            .inventories()
            .into_iter()
            .filter(|(sku, _)| expected.contains_key(sku))
            .collect()
    }

    pub fn assert_in_sync(&self) {
        let (shows, expected) = (self.hardtofind_shows(), self.expected_hardtofind());
        if shows != expected {
            self.explain_hardtofind(&shows, &expected);
        }
        assert_eq!(shows, expected, "hardtofind");
        assert_eq!(
            self.hako.inventory("dropship"),
            self.expected_hako_dropship(),
            "hako dropship"
        );
    }

    /// For each SKU Hardtofind shows wrong: what was acknowledged and every batch that carried
    /// it, so a failure of a randomised campaign says how it came about.
    fn explain_hardtofind(&self, shows: &HashMap<String, i64>, expected: &HashMap<String, i64>) {
        let acked = self.acknowledged("hardtofind");
        for (sku, want) in expected {
            if shows.get(sku) == Some(want) {
                continue;
            }
            eprintln!(
                "{sku}: shows {:?}, expected {want}, acknowledged {:?}",
                shows.get(sku),
                acked.get(sku)
            );
            for (i, r) in self.htf.requests().iter().enumerate() {
                let body = String::from_utf8_lossy(&r.body);
                if r.method == "POST" && body.contains(&format!("\"{sku}\"")) {
                    eprintln!("  request {i} status {}: {body}", r.status);
                }
            }
        }
    }

    /// `f` on a connection to the world's database, on whichever engine holds it (the
    /// PostgreSQL schema read as `status` reads it, from a thread and runtime of its own).
    pub fn read<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, invsync::store::StoreError> + Send + 'static,
    {
        let Some(url) = self.postgres.clone() else {
            let mut conn = Connection::open(self.database()).expect("db opens");
            return f(&mut conn).expect("reads");
        };
        let reading = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let pool = invsync::store::db::pool::pool(&url, 1).expect("a pool");
                let store = invsync::store::Store::open_postgres_read_only(pool, SCHEMA)
                    .await
                    .expect("db opens")
                    .expect("the schema exists");
                store.call(f).await.expect("reads")
            })
        });
        reading.join().expect("read")
    }

    /// The acknowledged quantities of a target, from the database.
    pub fn acknowledged(&self, target: &str) -> HashMap<String, i64> {
        self.quantities(invsync::store::Side::Target, target)
    }

    /// A source's recorded snapshot, from the database.
    pub fn source_snapshot(&self, source: &str) -> HashMap<String, i64> {
        self.quantities(invsync::store::Side::Source, source)
    }

    fn quantities(&self, side: invsync::store::Side, name: &str) -> HashMap<String, i64> {
        let name = name.to_owned();
        self.read(move |conn| invsync::store::quantities_by_name(conn, side, &name))
            .into_iter()
            .collect()
    }

    /// Every row of every table, as text: to prove a command wrote nothing.
    pub fn database_dump(&self) -> String {
        let conn = rusqlite::Connection::open(self.database()).expect("db opens");
        let mut dump = String::new();
        for table in [
            "sku_chunks",
            "sources",
            "quantity_chunks",
            "quantity_deltas",
            "targets",
            "failed_skus",
            "cycles",
        ] {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
                .expect("query");
            let columns = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    (0..columns)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!("{v:?}"))
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("rows");
            for row in rows {
                dump.push_str(&format!("{table}: {}\n", row.expect("row").join(", ")));
            }
        }
        dump
    }
}

/// Adds to the world's configuration an `[orders.hardtofind]` feed on its Hardtofind account,
/// with `release`.
pub fn add_order_feed(world: &World, release: &str) {
    let mut text = std::fs::read_to_string(&world.config).expect("config");
    text.push_str(&format!(
        "\n[orders.hardtofind]\ntype = \"hardtofind\"\nbase_url = \"{}\"\nusername = \"{HTF_USER}\"\npassword = \"{HTF_PASSWORD}\"\nrelease = \"{release}\"\nrequests_per_minute = 100000\n",
        world.htf.base_url()
    ));
    std::fs::write(&world.config, text).expect("config");
}

/// Waits (bounded, so a broken build cannot hang CI) until `condition` holds: polled every
/// 50 ms for up to 30 s.
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..600 {
        if condition() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A running `invsync`'s stderr, line by line.
pub type LogLines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>;

/// Reads `lines` into `log` until `count` lines have contained `needle`; `false` if they did
/// not come within 60 s (bounded, so a broken build cannot hang CI) or the stream ended.
pub async fn read_until(
    lines: &mut LogLines,
    log: &mut String,
    needle: &str,
    count: usize,
) -> bool {
    let mut seen = 0;
    let reading = async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains(needle) {
                seen += 1;
                if seen == count {
                    return true;
                }
            }
        }
        false
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), reading)
        .await
        .unwrap_or(false)
}

/// `invsync` with a clean environment (no log filter, no systemd, no `$INVSYNC_CONFIG`) and no
/// arguments yet; killed if the test drops it.
pub fn invsync_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_invsync"));
    command
        .env_remove("RUST_LOG")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env_remove("INVSYNC_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .kill_on_drop(true);
    command
}

/// Runs `invsync ARGS` (no configuration of a world) to completion.
pub async fn invsync(args: &[&str]) -> Run {
    let output = invsync_command()
        .args(args)
        .output()
        .await
        .expect("invsync runs");
    Run::from(output)
}

/// Sends signal `name` (`TERM`, `INT`, `KILL`) to a running `invsync`.
pub fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
}

/// A finished `invsync` process.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The lines of stderr at a level (`INFO`, `WARN`, `ERROR`).
    pub fn lines_at(&self, level: &str) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.contains(&format!(" {level} ")))
            .collect()
    }

    /// The one `cycle finished` line.
    pub fn summary(&self) -> &str {
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains("cycle finished"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one summary line expected in\n{}",
            self.stderr
        );
        lines[0]
    }
}

/// A small deterministic generator: the kill moments vary but a failure can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}
