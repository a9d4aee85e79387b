//! From [`RawConfig`] to [`Config`]: the whole file and `[daemon]`; the sources and targets are
//! checked in [`super::endpoints`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::checker::Checker;
use super::endpoints::{check_feedback_loops, source_spec, target_spec};
use super::raw::{RawConfig, RawDaemon};
use super::{Config, ConfigError, Daemon, LogFormat, RetrySettings, StatusSettings, Trigger};

pub(super) const DEFAULT_DATABASE: &str = "/var/lib/invsync/invsync.db";
/// Once a day, at an hour when shops are quiet.
const DEFAULT_FULL_SYNC_SCHEDULE: &str = "0 30 3 * * *";
/// A million-SKU answer arrives in seconds; ten minutes is room for a slow service and still
/// stops a source that keeps saying "there is another page" from holding its targets for hours.
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// An hour without a complete fetch is far beyond a few failed cycles on any sane schedule, yet
/// soon enough that a shop has not oversold for a day.
const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60 * 60);

pub(super) fn validate(path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    let check = Checker {
        file: path,
        inline_secrets: Default::default(),
    };
    let daemon = daemon(&check, raw.daemon)?;
    if raw.sources.is_empty() {
        return Err(check.err("sources", "no source configured"));
    }
    if raw.targets.is_empty() {
        return Err(check.err("targets", "no target configured"));
    }
    let mut sources = Vec::new();
    for (name, value) in raw.sources {
        sources.push(source_spec(&check, name, value)?);
    }
    let mut targets = Vec::new();
    for (name, value) in raw.targets {
        targets.push(target_spec(&check, name, value, &sources)?);
    }
    check_feedback_loops(&check, &sources, &targets)?;
    let warnings = exposed_secrets(path, &check.inline_secrets.borrow())
        .into_iter()
        .collect();
    Ok(Config {
        path: path.to_path_buf(),
        daemon,
        sources,
        targets,
        warnings,
    })
}

/// A file holding secrets inline that other users can read exposes them.
fn exposed_secrets(path: &Path, inline: &[String]) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if !inline.is_empty() && mode & 0o044 != 0 {
            return Some(format!(
                "{} is readable by other users (mode {:o}) and holds secrets inline ({}): chmod 600 it, or move them to *_file keys",
                path.display(),
                mode & 0o777,
                inline.join(", ")
            ));
        }
    }
    None
}

/// The `[daemon]` keys `status` reads, checked by the same code as in [`daemon`], so the two
/// agree (`sources` is left empty).
pub(super) fn status_settings(path: &Path, raw: &RawDaemon) -> Result<StatusSettings, ConfigError> {
    let check = Checker {
        file: path,
        inline_secrets: Default::default(),
    };
    status_keys(&check, raw)
}

fn status_keys(check: &Checker, raw: &RawDaemon) -> Result<StatusSettings, ConfigError> {
    Ok(StatusSettings {
        database: raw
            .database
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATABASE)),
        stale_after: check.duration(
            "daemon.stale_after",
            raw.stale_after.as_deref(),
            DEFAULT_STALE_AFTER,
        )?,
        sources: Vec::new(),
        targets: Vec::new(),
    })
}

/// Each target's inputs and rules, typed like the full load types them but without reading a
/// secret.
pub(super) fn target_rules(
    path: &Path,
    raw: &BTreeMap<String, config::Value>,
) -> Result<Vec<super::TargetRules>, ConfigError> {
    let check = Checker {
        file: path,
        inline_secrets: Default::default(),
    };
    raw.iter()
        .map(|(name, value)| {
            let common =
                super::kinds::target_common(&check, &format!("targets.{name}"), value.clone())?;
            let (inputs, safety_stock, max_quantity) =
                (common.inputs, common.safety_stock, common.max_quantity);
            Ok(super::TargetRules {
                name: name.clone(),
                inputs,
                safety_stock: safety_stock.unwrap_or(0),
                max_quantity,
            })
        })
        .collect()
}

fn daemon(check: &Checker, raw: RawDaemon) -> Result<Daemon, ConfigError> {
    let StatusSettings {
        database,
        stale_after,
        ..
    } = status_keys(check, &raw)?;
    let trigger = match (raw.schedule, raw.every) {
        (Some(_), Some(_)) => {
            return Err(check.err("daemon.every", "give either schedule or every, not both"));
        }
        (None, None) => return Err(check.err("daemon.schedule", "missing; give schedule or every")),
        (Some(expression), None) => {
            check.cron("daemon.schedule", &expression)?;
            Trigger::Schedule(expression)
        }
        (None, Some(every)) => {
            Trigger::Every(check.duration("daemon.every", Some(&every), Duration::ZERO)?)
        }
    };
    // Drift repair is on by default: a Hardtofind 2xx does not prove a SKU was applied, and a
    // channel can be edited by hand.
    let full_sync_schedule = match raw.full_sync_schedule.as_deref().map(str::trim) {
        None => Some(DEFAULT_FULL_SYNC_SCHEDULE.to_owned()),
        Some("off") => None,
        Some(expression) => {
            check.cron("daemon.full_sync_schedule", expression)?;
            Some(expression.to_owned())
        }
    };
    let log_format = match raw.log_format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(check.err(
                "daemon.log_format",
                format!("{other:?} is neither \"text\" nor \"json\""),
            ));
        }
    };
    let log_level = raw.log_level.unwrap_or_else(|| "info".to_owned());
    if let Err(message) = crate::ops::log_filter::check(&log_level) {
        return Err(check.err("daemon.log_level", message));
    }
    let max_zeroed_fraction = raw.max_zeroed_fraction.unwrap_or(0.25);
    if !(0.0..=1.0).contains(&max_zeroed_fraction) {
        return Err(check.err("daemon.max_zeroed_fraction", "must be between 0 and 1"));
    }
    let defaults = RetrySettings::default();
    let retry = RetrySettings {
        max_attempts: match raw.retry_max_attempts {
            Some(0) => return Err(check.err("daemon.retry_max_attempts", "must be at least 1")),
            Some(n) => n,
            None => defaults.max_attempts,
        },
        initial_backoff: check.duration(
            "daemon.retry_initial_backoff",
            raw.retry_initial_backoff.as_deref(),
            defaults.initial_backoff,
        )?,
        max_backoff: check.duration(
            "daemon.retry_max_backoff",
            raw.retry_max_backoff.as_deref(),
            defaults.max_backoff,
        )?,
        max_elapsed: check.duration(
            "daemon.retry_max_elapsed",
            raw.retry_max_elapsed.as_deref(),
            defaults.max_elapsed,
        )?,
    };
    Ok(Daemon {
        database,
        trigger,
        full_sync_schedule,
        log_format,
        log_level,
        request_timeout: check.duration(
            "daemon.request_timeout",
            raw.request_timeout.as_deref(),
            Duration::from_secs(30),
        )?,
        fetch_timeout: check.duration(
            "daemon.fetch_timeout",
            raw.fetch_timeout.as_deref(),
            DEFAULT_FETCH_TIMEOUT,
        )?,
        max_zeroed_fraction,
        max_response_bytes: check.size(
            "daemon.max_response_size",
            raw.max_response_size.as_deref(),
            super::DEFAULT_MAX_RESPONSE_BYTES,
        )?,
        retry,
        stale_after,
    })
}
