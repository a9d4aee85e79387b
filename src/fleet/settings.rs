//! The fleet's own file (`/etc/invsync/fleet.toml` by default): where the shared database is,
//! where the shops' files are, how long a lease lives, and this worker's name and logs.
//!
//! ```toml
//! [fleet]
//! database = "postgres://invsync@db.internal/invsync"  # the shops' state and the leases
//! shops = "/etc/invsync/shops"                          # one NAME.toml per shop
//! lease_ttl = "30s"                                     # a lost worker's shops move within this
//! # worker = "host-a"                                   # default: the host name and process id
//! # metrics_listen = "127.0.0.1:9793"                   # GET /metrics of this worker's shops
//! log_format = "text"
//! log_level = "info"
//! ```

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::LogFormat;

/// Where the fleet file is read from when `--config` is not given.
pub const DEFAULT_FLEET_PATH: &str = "/etc/invsync/fleet.toml";
/// Where the shops' files are read from when `fleet.shops` is not given.
pub const DEFAULT_SHOPS: &str = "/etc/invsync/shops";
/// How long a lease lives when `fleet.lease_ttl` is not given.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// The fleet file, checked.
#[derive(Debug, Clone)]
pub struct FleetSettings {
    /// `fleet.database`: the PostgreSQL URL (it may hold a password: never shown whole).
    pub database: SecretString,
    /// `fleet.shops`: the folder of shop files.
    pub shops: PathBuf,
    /// `fleet.lease_ttl`.
    pub lease_ttl: Duration,
    /// `fleet.worker`: this worker's name among the fleet's.
    pub worker: String,
    /// `fleet.log_format`.
    pub log_format: LogFormat,
    /// `fleet.log_level`.
    pub log_level: String,
    /// `fleet.metrics_listen`: where this worker serves `GET /metrics`, every sample of a shop
    /// it holds labelled `shop` (a shop file's own `daemon.metrics_listen` is not used in a
    /// fleet); off when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    fleet: RawFleet,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    database: SecretString,
    shops: Option<PathBuf>,
    lease_ttl: Option<String>,
    worker: Option<String>,
    log_format: Option<String>,
    log_level: Option<String>,
    metrics_listen: Option<String>,
}

/// A fleet file that cannot be used: which file, which key, why (never a secret).
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {message}")]
pub struct FleetConfigError {
    /// The file.
    pub file: String,
    /// The key (`fleet.lease_ttl`), or `-` for the file as a whole.
    pub key: String,
    /// Why.
    pub message: String,
}

impl FleetSettings {
    /// Reads and checks the fleet file at `path`.
    pub fn load(path: &Path) -> Result<FleetSettings, FleetConfigError> {
        let error = |key: &str, message: String| FleetConfigError {
            file: path.display().to_string(),
            key: key.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error("-", e.to_string()))?;
        let raw: RawFile = toml::from_str(&text).map_err(|e| {
            // toml's message names the key and the line, and quotes no value of a secret
            // key it failed on: its one-line summary.
            error("-", e.message().to_owned())
        })?;
        let fleet = raw.fleet;
        let url = fleet.database.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(error(
                "fleet.database",
                "must be a postgres:// URL (the fleet's shared database)".into(),
            ));
        }
        if let Err(e) = tokio_postgres::Config::from_str(url) {
            return Err(error(
                "fleet.database",
                format!("not a PostgreSQL URL: {e}"),
            ));
        }
        let lease_ttl = match fleet.lease_ttl.as_deref() {
            None => DEFAULT_LEASE_TTL,
            Some(text) => humantime::parse_duration(text)
                .map_err(|e| error("fleet.lease_ttl", format!("{text:?}: {e}")))?,
        };
        if lease_ttl < Duration::from_millis(300) {
            return Err(error(
                "fleet.lease_ttl",
                "at least 300ms: a lease is renewed every third of it".into(),
            ));
        }
        let log_format = match fleet.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(error(
                    "fleet.log_format",
                    format!("{other:?}: \"text\" or \"json\""),
                ));
            }
        };
        let metrics_listen = match fleet.metrics_listen.as_deref() {
            None => None,
            Some(text) => Some(text.trim().parse().map_err(|_| {
                error(
                    "fleet.metrics_listen",
                    format!(
                        "{text:?} is not an IP address and port; write e.g. \"127.0.0.1:9793\""
                    ),
                )
            })?),
        };
        let worker = fleet.worker.unwrap_or_else(default_worker);
        // It goes into every request's User-Agent: printable ASCII only.
        if worker.trim().is_empty() || !worker.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(error(
                "fleet.worker",
                "must be printable ASCII, not empty".into(),
            ));
        }
        Ok(FleetSettings {
            database: fleet.database,
            shops: fleet.shops.unwrap_or_else(|| PathBuf::from(DEFAULT_SHOPS)),
            lease_ttl,
            worker,
            log_format,
            log_level: fleet.log_level.unwrap_or_else(|| "info".to_owned()),
            metrics_listen,
        })
    }
}

/// The host name and the process id: unique among the workers of a fleet.
fn default_worker() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<FleetSettings, FleetConfigError> {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("fleet.toml");
        std::fs::write(&path, text).expect("written");
        FleetSettings::load(&path)
    }

    #[test]
    fn a_fleet_file_takes_defaults_and_says_which_key_is_wrong_without_the_password() {
        let settings =
            load("[fleet]\ndatabase = \"postgres://u:hunter2@db/fleet\"\n").expect("valid");
        assert_eq!(settings.lease_ttl, DEFAULT_LEASE_TTL);
        assert_eq!(settings.shops, PathBuf::from(DEFAULT_SHOPS));
        assert!(settings.worker.contains(':'), "{}", settings.worker);

        let e =
            load("[fleet]\ndatabase = \"postgres://u:hunter2@db/fleet\"\nlease_ttl = \"soon\"\n")
                .expect_err("refused");
        assert_eq!(e.key, "fleet.lease_ttl");
        let e = load("[fleet]\ndatabase = \"mysql://u:hunter2@db/fleet\"\n").expect_err("refused");
        assert_eq!(e.key, "fleet.database");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = load("[fleet]\ndatabase = \"postgres://u:hunter2@db/fleet\"\nttl = \"1s\"\n")
            .expect_err("an unknown key");
        assert!(e.to_string().contains("ttl"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn a_worker_serves_metrics_only_where_it_is_told() {
        let base = "[fleet]\ndatabase = \"postgres://u@db/fleet\"\n";
        assert_eq!(load(base).expect("valid").metrics_listen, None);
        let settings =
            load(&format!("{base}metrics_listen = \"127.0.0.1:9793\"\n")).expect("valid");
        assert_eq!(
            settings.metrics_listen,
            Some("127.0.0.1:9793".parse().expect("an address"))
        );
        let e = load(&format!("{base}metrics_listen = \"localhost:9793\"\n")).expect_err("refused");
        assert_eq!(e.key, "fleet.metrics_listen");
        assert!(e.message.contains("not an IP address and port"), "{e}");
    }
}
