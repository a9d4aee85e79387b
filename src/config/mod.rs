//! The configuration: one TOML file, checked at start-up and again at each reload (SIGHUP).
//!
//! Loading goes in two steps. [`raw`] mirrors the file with serde, read strictly ([`typed`]:
//! unknown keys and numbers of the wrong kind are errors), and [`validate`] turns it into the
//! typed [`Config`] the rest of invsync uses: URLs parsed, durations read, secrets resolved from
//! `*_file` paths, inputs resolved to sources. Every error names the file and the key path, the
//! way an operator would look it up, and every error of the file is reported at once.

pub mod checker;
mod clients;
pub mod database;
mod endpoints;
pub mod identity;
pub mod log_level;
pub mod mapping;
mod raw;
pub mod relay;
pub mod schedule;
mod settings;
mod typed;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::services::kinds::{FeedKind, SourceKind, TargetKind};
pub use crate::services::table::{DEFAULT_REQUESTS_PER_MINUTE, Remote, TargetCommon};
pub use clients::build_all;
pub use database::{Database, PostgresDatabase};
pub use identity::{Account, Identity};
pub use mapping::MappingSpec;
pub use schedule::Cron;
pub use settings::Settings;

/// The default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/invsync/config.toml";

/// Default cap on an answer body: a million-SKU stock answer is about 20 MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Default entities per write request.
pub const DEFAULT_BATCH_SIZE: usize = 100;

/// A configuration problem: which file, which key, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{message}", file.display(), key_prefix(key))]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// Dotted key path (`targets.hardtofind.inputs`); empty for whole-file problems.
    pub key: String,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// Every error of one file, one per line, in the order of the file.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> ConfigErrors {
        ConfigErrors(vec![error])
    }
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// The whole, validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Where it was read from, for messages.
    pub path: PathBuf,
    /// `[daemon]`.
    pub daemon: Daemon,
    /// `[sources.*]`, ordered by name.
    pub sources: Vec<SourceSpec>,
    /// `[targets.*]`, ordered by name.
    pub targets: Vec<TargetSpec>,
    /// `[orders.*]`, ordered by name.
    pub feeds: Vec<FeedSpec>,
    /// `[relay]`, when present.
    pub relay: Option<relay::RelaySpec>,
    /// `[mapping]`, if any: SKUs that differ between services.
    pub mapping: Option<MappingSpec>,
    /// Things worth a WARN that do not stop invsync (logged once logging is set up).
    pub warnings: Vec<String>,
    /// Every value as written, to tell what a reload changed.
    pub settings: Settings,
    /// The shop's name when a fleet worker serves it (its file's stem), which its metrics carry
    /// as `shop`; `None` for the one shop of `invsync run`.
    pub shop: Option<String>,
}

/// `[daemon]`, with defaults applied.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// Where the state lives: a SQLite file, or a schema of a PostgreSQL database.
    pub database: Database,
    /// When cycles start.
    pub trigger: Trigger,
    /// The cycles that push every SKU.
    pub full_sync_schedule: Option<Cron>,
    /// The zone both schedules are read in.
    pub timezone: chrono_tz::Tz,
    /// How log lines look.
    pub log_format: LogFormat,
    /// Default tracing filter (`RUST_LOG` wins).
    pub log_level: String,
    /// Time limit of one HTTP request.
    pub request_timeout: Duration,
    /// Time limit of one source's whole fetch, every page included.
    pub fetch_timeout: Duration,
    /// The mass-zero guard's threshold.
    pub max_zeroed_fraction: f64,
    /// How long the mass-zero guard remembers that a SKU was positive.
    pub guard_window: Duration,
    /// The largest answer body read, in bytes.
    pub max_response_bytes: usize,
    /// How failed requests are retried.
    pub retry: RetrySettings,
    /// A source without a complete fetch for longer than this is stale.
    pub stale_after: Duration,
    /// Where `GET /metrics` is served; `None`: not at all.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// When cycles start.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A cron expression with seconds, in `daemon.timezone`.
    Schedule(Cron),
    /// A fixed period.
    Every(Duration),
}

impl Trigger {
    /// About how long one cycle is from the next: backoffs counted in cycles ("the next cycle,
    /// then 2, 4, …") are kept as times, so they survive a restart. For a cron schedule, the gap
    /// between its next two times; five minutes when that cannot be told.
    pub fn period(&self) -> Duration {
        const UNKNOWN: Duration = Duration::from_secs(300);
        match self {
            Trigger::Every(period) => *period,
            Trigger::Schedule(cron) => {
                let first = cron.next_after(chrono::Utc::now());
                let second = first.and_then(|first| cron.next_after(first));
                first
                    .zip(second)
                    .and_then(|(first, second)| (second - first).to_std().ok())
                    .unwrap_or(UNKNOWN)
            }
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

pub use crate::http::retry::{RETRY_AFTER_CAP, RetrySettings};

/// A source of truth.
#[derive(Debug)]
pub struct SourceSpec {
    /// Its name in `[sources.NAME]`.
    pub name: String,
    /// Where it lives.
    pub remote: Remote,
    /// What kind of service it is, with its own settings.
    pub kind: SourceKind,
}

/// An order feed: its open orders reserve stock.
#[derive(Debug)]
pub struct FeedSpec {
    /// Its name in `[orders.NAME]`.
    pub name: String,
    /// Where it lives.
    pub remote: Remote,
    /// What kind of service it is, with its own settings.
    pub kind: FeedKind,
}

impl FeedSpec {
    /// The account it reads (for the shared session and budget).
    pub fn identity(&self) -> Identity {
        Identity {
            kind: self.kind.name(),
            base_url: self.remote.canonical_url.clone(),
            account: self.kind.account(),
            warehouse: None,
        }
    }
}

/// A channel to keep in sync.
#[derive(Debug)]
pub struct TargetSpec {
    /// Its name in `[targets.NAME]`.
    pub name: String,
    /// Where it lives.
    pub remote: Remote,
    /// Indices into [`Config::sources`] whose quantities are summed.
    pub inputs: Vec<usize>,
    /// Entities per write request.
    pub batch_size: usize,
    /// Subtracted from the sum before it is shown.
    pub safety_stock: i64,
    /// The most the target is ever told.
    pub max_quantity: Option<i64>,
    /// What kind of service it is, with its own settings.
    pub kind: TargetKind,
}

impl SourceSpec {
    /// A short word for the kind of service, for logs.
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }

    /// The place it reads.
    pub fn identity(&self) -> Identity {
        Identity {
            kind: self.kind_name(),
            base_url: self.remote.canonical_url.clone(),
            account: self.kind.account(),
            warehouse: None,
        }
    }
}

impl TargetSpec {
    /// A short word for the kind of service, for logs.
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }

    /// The place it writes: its acknowledged quantities belong to this.
    pub fn identity(&self) -> Identity {
        Identity {
            kind: self.kind_name(),
            base_url: self.remote.canonical_url.clone(),
            account: self.kind.account(),
            warehouse: self.kind.place(),
        }
    }
}

/// The `[daemon]` keys `invsync status` reads, and nothing else.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSettings {
    /// `daemon.database` (and `daemon.schema`): where the status is read from.
    pub database: Database,
    /// `daemon.stale_after`: when a source shows as stale.
    pub stale_after: Duration,
    /// The names in `[sources.NAME]`: only these can be stale. A source removed from the file is
    /// not fetched any more, so its age means nothing (its row stays in the database).
    pub sources: Vec<String>,
    /// Each target's inputs and rules (no credentials), for `status --sku`.
    pub targets: Vec<TargetRules>,
    /// The names in `[orders.NAME]`: the order feeds `status` shows.
    pub feeds: Vec<String>,
    /// `[relay] approval_alert_after`, with the relay on: an order awaiting approval longer is
    /// a warning of `status --check`.
    pub relay_alert_after: Option<Duration>,
}

/// What a target shows is made of: its inputs' names, its safety stock and cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRules {
    /// `[targets.NAME]`.
    pub name: String,
    /// Its `inputs`.
    pub inputs: Vec<String>,
    /// Its `safety_stock` (default 0).
    pub safety_stock: i64,
    /// Its `max_quantity`.
    pub max_quantity: Option<i64>,
}

/// Only [`StatusSettings`], checked as [`Config::load`] checks them, without validating the rest
/// or reading secrets: what `status` needs, runnable by an operator who cannot read the
/// service's credential files.
pub fn status_settings(path: &Path) -> Result<StatusSettings, ConfigErrors> {
    validate::status_settings(path, typed::read(path)?)
}

/// Only `daemon.database` (or its default) and `daemon.schema`, by the same cheap read as
/// [`status_settings`].
pub fn database(path: &Path) -> Result<Database, ConfigErrors> {
    Ok(status_settings(path)?.database)
}

impl Config {
    /// Reads and validates the configuration file; every error of it at once.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        validate::validate(path, typed::read(path)?)
    }
}

#[cfg(test)]
mod strict_tests;
#[cfg(test)]
mod tests;
