//! The configuration file exactly as written: serde types with `deny_unknown_fields`, so a
//! misspelt key is an error rather than a silently ignored setting. Nothing here is checked
//! beyond its type; [`super::validate`] turns these into [`super::Config`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::checker::Checker;

/// The whole file.
#[derive(Debug)]
pub struct RawConfig {
    /// How the daemon itself behaves (`None`: missing or unusable, with its errors recorded).
    pub daemon: Option<RawDaemon>,
    /// The sources of truth, by name (`[sources.NAME]`); typed by `type` in
    /// `services::kinds`, so that errors inside keep their key path.
    pub sources: BTreeMap<String, toml::Value>,
    /// The channels to keep in sync, by name (`[targets.NAME]`).
    pub targets: BTreeMap<String, toml::Value>,
    /// The order feeds whose open orders reserve stock, by name (`[orders.NAME]`).
    pub orders: BTreeMap<String, toml::Value>,
    /// `[relay]`, the dropship relay, checked in `config::relay`.
    pub relay: Option<toml::Value>,
    /// `[mapping]`, checked in [`super::mapping`].
    pub mapping: Option<toml::Value>,
}

/// The file's top-level tables.
const SECTIONS: &[&str] = &["daemon", "sources", "targets", "orders", "relay", "mapping"];

impl RawConfig {
    /// Splits the file into its sections, recording what is wrong with them.
    pub fn split(check: &Checker, mut file: toml::Table) -> RawConfig {
        check.unknown_keys("", &mut file, SECTIONS);
        let daemon = match file.remove("daemon") {
            Some(toml::Value::Table(table)) => check.table("daemon", table),
            Some(_) => {
                check.report("daemon", "must be a table: [daemon]");
                None
            }
            None => {
                check.report(
                    "daemon",
                    "missing; add a [daemon] table with schedule or every",
                );
                None
            }
        };
        RawConfig {
            daemon,
            sources: named_tables(check, "sources", file.remove("sources")),
            targets: named_tables(check, "targets", file.remove("targets")),
            orders: named_tables(check, "orders", file.remove("orders")),
            relay: file.remove("relay"),
            mapping: file.remove("mapping"),
        }
    }
}

/// `[sources.NAME]`, `[targets.NAME]` or `[orders.NAME]`: a table of tables.
fn named_tables(
    check: &Checker,
    section: &str,
    value: Option<toml::Value>,
) -> BTreeMap<String, toml::Value> {
    match value {
        None => BTreeMap::new(),
        Some(toml::Value::Table(tables)) => tables.into_iter().collect(),
        Some(_) => {
            check.report(section, format!("must be tables: [{section}.NAME]"));
            BTreeMap::new()
        }
    }
}

/// `[daemon]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    /// SQLite state file, created with its folder if missing; or a `postgres://` URL.
    pub database: Option<PathBuf>,
    /// With a PostgreSQL `database`: the shop's schema (default: the configuration file's name).
    pub schema: Option<String>,
    /// Cron expression with seconds: when a sync cycle starts.
    pub schedule: Option<String>,
    /// A fixed period between cycle starts, e.g. `"5m"` (instead of `schedule`).
    pub every: Option<String>,
    /// The IANA zone (`"Australia/Sydney"`) both schedules are read in; default UTC.
    pub timezone: Option<String>,
    /// Cron expression for cycles that push every SKU, repairing drift.
    pub full_sync_schedule: Option<String>,
    /// `"text"` or `"json"`.
    pub log_format: Option<String>,
    /// A tracing filter such as `"info"` or `"invsync=debug"`; `RUST_LOG` wins.
    pub log_level: Option<String>,
    /// Time limit of one HTTP request, e.g. `"30s"`.
    pub request_timeout: Option<String>,
    /// Time limit of one source's whole fetch, every page included, e.g. `"10m"`.
    pub fetch_timeout: Option<String>,
    /// Mass-zero guard: the largest fraction of positive SKUs a cycle may set to 0.
    pub max_zeroed_fraction: Option<f64>,
    /// How long the mass-zero guard remembers that a SKU was positive, e.g. `"24h"`.
    pub guard_window: Option<String>,
    /// The largest answer body read, e.g. `"256MiB"`; larger is an error, not an out-of-memory kill.
    pub max_response_size: Option<String>,
    /// Attempts per request, the first included.
    pub retry_max_attempts: Option<u32>,
    /// Wait before the first retry; doubles per retry, with jitter.
    pub retry_initial_backoff: Option<String>,
    /// Longest wait between two attempts.
    pub retry_max_backoff: Option<String>,
    /// No retry starts once this long has passed since a request's first attempt.
    pub retry_max_elapsed: Option<String>,
    /// Where `GET /metrics` is served, e.g. `"127.0.0.1:9793"`; off when absent.
    pub metrics_listen: Option<String>,
    /// A source without a complete fetch for longer than this, e.g. `"1h"`, is stale: an ERROR
    /// every cycle and `STALE` in `status`.
    pub stale_after: Option<String>,
}
