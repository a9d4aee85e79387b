//! `invsync fleet`: one worker of a fleet (see `fleet`), and `invsync fleet status`: which
//! worker holds which shop, how old its lease is, and each shop's health in one line.

use std::path::Path;
use std::process::ExitCode;

use secrecy::ExposeSecret;
use serde::Serialize;

use super::{Failure, print_json};
use crate::config::{self, ConfigError};
use crate::daemon::shutdown;
use crate::fleet::settings::{FleetConfigError, FleetSettings};
use crate::fleet::{shops, worker};
use crate::ops::{status as status_view, telemetry};
use crate::store::Store;
use crate::store::db::pool::pool;

fn settings(path: &Path) -> Result<FleetSettings, Failure> {
    FleetSettings::load(path).map_err(|FleetConfigError { file, key, message }| {
        Failure::Config(
            ConfigError {
                file: file.into(),
                key,
                message,
            }
            .into(),
        )
    })
}

/// `invsync fleet`: serves shops until SIGTERM (or SIGINT), reading the shops' folder again on
/// SIGHUP.
pub async fn fleet(path: &Path) -> Result<ExitCode, Failure> {
    let settings = settings(path)?;
    telemetry::init(settings.log_format, &settings.log_level);
    let cancel = tokio_util::sync::CancellationToken::new();
    shutdown::watch_signals(cancel.clone());
    let reloads = shutdown::reload_requests();
    if let Some(addr) = settings.metrics_listen {
        super::serve_metrics(path, "fleet.metrics_listen", addr, &cancel).await?;
    }
    let mut notifier = crate::ops::notify::Notifier::from_env();
    notifier.stopping_on(&cancel);
    worker::serve(settings, cancel, reloads, &mut notifier)
        .await
        .map_err(|e| match e {
            worker::FleetError::Db(e) => Failure::Temporary(e.to_string()),
            other => Failure::Other(other.to_string()),
        })?;
    Ok(ExitCode::SUCCESS)
}

/// One shop in `fleet status`.
#[derive(Debug, Serialize)]
pub struct ShopLine {
    /// The shop (its file's stem).
    pub shop: String,
    /// Its lease group.
    pub group: String,
    /// The worker holding it, if any.
    pub worker: Option<String>,
    /// The lease's epoch.
    pub epoch: Option<i64>,
    /// Milliseconds until the lease expires (negative: expired).
    pub lease_left_ms: Option<i64>,
    /// Its health: the `status --check` line.
    pub health: String,
    /// Its `status --check` code: 0 in sync, 1 pending, 2 failing, 3 unknown.
    pub code: u8,
}

/// `invsync fleet status [--json]`: exit 0 when every shop is held and in sync, 1 when one is
/// pending or not held, 2 when one is failing, 3 when one is unknown.
pub async fn fleet_status(path: &Path, json: bool) -> Result<ExitCode, Failure> {
    let settings = settings(path)?;
    let dir = settings.shops.clone();
    let scanned = tokio::task::spawn_blocking(move || shops::scan(&dir))
        .await
        .map_err(|e| Failure::Other(e.to_string()))?
        .map_err(|e| Failure::Other(format!("fleet.shops {}: {e}", settings.shops.display())))?;
    let pool = pool(settings.database.expose_secret(), 2)
        .map_err(|e| Failure::Temporary(e.to_string()))?;
    let client = pool
        .get()
        .await
        .map_err(|e| Failure::Temporary(format!("PostgreSQL cannot be reached: {e}")))?;
    let leases = client
        .query(
            "SELECT lease_group, owner, epoch, \
             CAST(extract(epoch FROM expires_at - clock_timestamp()) * 1000 AS BIGINT) \
             FROM invsync_fleet.fleet_leases",
            &[],
        )
        .await
        .unwrap_or_default();
    let lease_of = |group: &str| {
        leases
            .iter()
            .find(|r| r.get::<_, String>(0) == group)
            .map(|r| {
                (
                    r.get::<_, Option<String>>(1),
                    r.get::<_, i64>(2),
                    r.get::<_, Option<i64>>(3),
                )
            })
    };
    let mut lines = Vec::new();
    for (group, names) in &scanned.groups {
        let lease = lease_of(group);
        for name in names {
            let shop = &scanned.shops[name];
            let (health, code) = health(&pool, shop).await;
            let (worker, epoch, left) = match &lease {
                Some((owner, epoch, left)) if left.is_some_and(|l| l > 0) => {
                    (owner.clone(), Some(*epoch), *left)
                }
                Some((_, epoch, left)) => (None, Some(*epoch), *left),
                None => (None, None, None),
            };
            lines.push(ShopLine {
                shop: name.clone(),
                group: group.clone(),
                worker,
                epoch,
                lease_left_ms: left,
                health,
                code,
            });
        }
    }
    let code = lines
        .iter()
        .map(|l| {
            if l.worker.is_none() {
                l.code.max(1)
            } else {
                l.code
            }
        })
        .max()
        .unwrap_or(0);
    if json {
        print_json(&lines)?;
    } else {
        for line in &lines {
            let held = match (&line.worker, line.lease_left_ms) {
                (Some(worker), Some(left)) => format!("held by {worker} ({}s left)", left / 1000),
                _ => "NOT HELD".to_owned(),
            };
            outln!("{} [{}] {held}: {}", line.shop, line.group, line.health);
        }
        for (path, why) in &scanned.refused {
            outln!("{}: NOT SERVED: {why}", path.display());
        }
    }
    Ok(ExitCode::from(code))
}

/// A shop's `status --check` line, from its schema, read-only (never created or migrated here).
async fn health(pool: &deadpool_postgres::Pool, shop: &shops::Shop) -> (String, u8) {
    let settings = match config::status_settings(&shop.path) {
        Ok(settings) => settings,
        Err(e) => return (format!("UNKNOWN: {e}"), 3),
    };
    let store = match Store::open_postgres_read_only(pool.clone(), &shop.schema).await {
        Ok(Some(store)) => store,
        Ok(None) => return ("UNKNOWN: never synced".to_owned(), 3),
        Err(e) => return (format!("UNKNOWN: {e}"), 3),
    };
    match store
        .call(move |c| status_view::read(c, 10, &settings))
        .await
    {
        Ok(status) => status_view::check_line(&status),
        Err(e) => (format!("UNKNOWN: {e}"), 3),
    }
}
