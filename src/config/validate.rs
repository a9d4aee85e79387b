//! From [`RawConfig`] to [`Config`]: the whole file and `[daemon]`; the sources and targets are
//! checked in [`super::endpoints`]. Every check records its error and the others go on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono_tz::Tz;

use super::checker::Checker;
use super::endpoints::{check_feedback_loops, source_spec, target_spec};
use super::raw::{RawConfig, RawDaemon};
use super::typed::suggest;
use super::{
    Config, ConfigErrors, Daemon, LogFormat, RetrySettings, StatusSettings, TargetSpec, Trigger,
};

pub(super) const DEFAULT_DATABASE: &str = "/var/lib/invsync/invsync.db";
/// A day: a slide that zeroes a catalogue over a day's cycles is caught; a shop's ordinary
/// sell-outs over weeks are not held against it.
const DEFAULT_GUARD_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Once a day, at an hour when shops are quiet.
const DEFAULT_FULL_SYNC_SCHEDULE: &str = "0 30 3 * * *";
/// A million-SKU answer arrives in seconds; ten minutes is room for a slow service and still
/// stops a source that keeps saying "there is another page" from holding its targets for hours.
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// An hour without a complete fetch is far beyond a few failed cycles on any sane schedule, yet
/// soon enough that a shop has not oversold for a day.
const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60 * 60);

pub(super) fn validate(path: &Path, file: toml::Table) -> Result<Config, ConfigErrors> {
    let check = Checker::new(path);
    let settings = super::Settings::of(&file);
    let raw = RawConfig::split(&check, file);
    let daemon = raw.daemon.and_then(|d| daemon(&check, d));
    if raw.sources.is_empty() {
        check.report("sources", "no source configured");
    }
    if raw.targets.is_empty() {
        check.report("targets", "no target configured");
    }
    let names: Vec<&str> = raw.sources.keys().map(String::as_str).collect();
    let mut sources = Vec::new();
    for (name, value) in &raw.sources {
        sources.extend(source_spec(&check, name.clone(), value.clone()));
    }
    let mut targets = Vec::new();
    for (name, value) in raw.targets {
        targets.extend(target_spec(&check, name, value, &sources, &names));
    }
    check_feedback_loops(&check, &sources, &targets);
    let mut feeds = Vec::new();
    for (name, value) in raw.orders.clone() {
        let prefix = format!("orders.{name}");
        if let Some((remote, kind)) = crate::services::kinds::feed(&check, &prefix, value) {
            feeds.push(super::FeedSpec { name, remote, kind });
        }
    }
    let feed_names: Vec<String> = raw.orders.keys().cloned().collect();
    let written: Vec<&str> = (names.iter().copied())
        .chain(feed_names.iter().map(String::as_str))
        .collect();
    let relay = super::relay::relay(&check, raw.relay, &sources, &feeds, &written);
    let mapping = raw
        .mapping
        .and_then(|value| super::mapping::mapping(&check, value, &sources, &targets));
    if let Some(daemon) = &daemon {
        warn_of_unused_sources(&check, &names, &targets);
        warn_of_early_staleness(&check, daemon);
    }
    if let Some(warning) = exposed_secrets(path, &check.inline_secrets.borrow()) {
        check.warn(warning);
    }
    let daemon = daemon.filter(|_| !check.failed());
    let warnings = check.finish()?;
    let Some(daemon) = daemon else {
        // Unreachable: a missing `[daemon]` is an error, and errors return above.
        return Err(Checker::new(path).err("daemon", "missing").into());
    };
    Ok(Config {
        path: path.to_path_buf(),
        daemon,
        sources,
        targets,
        feeds,
        relay,
        mapping,
        warnings,
        settings,
        shop: None,
    })
}

/// A source no target reads is fetched every cycle for nothing: most likely a target's
/// `inputs` forgot it.
fn warn_of_unused_sources(check: &Checker, sources: &[&str], targets: &[TargetSpec]) {
    for (index, name) in sources.iter().enumerate() {
        if !targets.iter().any(|t| t.inputs.contains(&index)) {
            check.warn(format!(
                "sources.{name} is not in any target's inputs: it is fetched every cycle for nothing"
            ));
        }
    }
}

/// A `stale_after` shorter than the time between two cycles makes a healthy source show STALE
/// (and raise its ERROR) while it simply waits for the next cycle.
fn warn_of_early_staleness(check: &Checker, daemon: &Daemon) {
    let period = match &daemon.trigger {
        Trigger::Every(period) => Some(*period),
        Trigger::Schedule(cron) => cron.longest_gap(chrono::Utc::now(), 24),
    };
    if let Some(period) = period.filter(|p| *p > daemon.stale_after) {
        check.warn(format!(
            "daemon.stale_after ({}) is shorter than the time between two cycles ({}): a healthy source shows STALE while it waits",
            humantime::format_duration(daemon.stale_after),
            humantime::format_duration(period)
        ));
    }
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

/// The `[daemon]` keys `status` reads, each target's inputs and rules, and the sources' names,
/// checked by the same code as in [`validate`] but without reading a secret.
pub(super) fn status_settings(
    path: &Path,
    file: toml::Table,
) -> Result<StatusSettings, ConfigErrors> {
    let check = Checker::new(path);
    let raw = RawConfig::split(&check, file);
    let settings = raw.daemon.as_ref().and_then(|d| status_keys(&check, d));
    let targets = target_rules(&check, &raw.targets);
    let sources = raw.sources.into_keys().collect();
    let feeds = raw.orders.into_keys().collect();
    let relay_alert_after = raw
        .relay
        .as_ref()
        .and_then(|relay| relay_alert_after(&check, relay));
    check.finish()?;
    let Some(settings) = settings else {
        return Err(Checker::new(path).err("daemon", "missing").into());
    };
    Ok(StatusSettings {
        sources,
        targets,
        feeds,
        relay_alert_after,
        ..settings
    })
}

/// `[relay] approval_alert_after` for `status`, when the relay is on (default a day).
fn relay_alert_after(check: &Checker, relay: &toml::Value) -> Option<Duration> {
    let mode = relay
        .get("mode")
        .and_then(toml::Value::as_str)
        .unwrap_or("off");
    if mode.trim() == "off" {
        return None;
    }
    let written = relay
        .get("approval_alert_after")
        .and_then(toml::Value::as_str);
    check.keep(check.duration(
        "relay.approval_alert_after",
        written,
        super::relay::DEFAULT_APPROVAL_ALERT_AFTER,
    ))
}

fn status_keys(check: &Checker, raw: &RawDaemon) -> Option<StatusSettings> {
    let database = super::database::database(
        check,
        raw.database.as_deref(),
        raw.schema.as_deref(),
        DEFAULT_DATABASE,
    );
    let stale_after = check.keep(check.duration(
        "daemon.stale_after",
        raw.stale_after.as_deref(),
        DEFAULT_STALE_AFTER,
    ));
    Some(StatusSettings {
        database: database?,
        stale_after: stale_after?,
        sources: Vec::new(),
        targets: Vec::new(),
        feeds: Vec::new(),
        relay_alert_after: None,
    })
}

/// Each target's inputs and rules, typed like the full load types them but without reading a
/// secret.
fn target_rules(check: &Checker, raw: &BTreeMap<String, toml::Value>) -> Vec<super::TargetRules> {
    raw.iter()
        .filter_map(|(name, value)| {
            let prefix = format!("targets.{name}");
            let common = crate::services::kinds::target_common(check, &prefix, value.clone())?;
            Some(super::TargetRules {
                name: name.clone(),
                inputs: common.inputs,
                safety_stock: common.safety_stock.unwrap_or(0),
                max_quantity: common.max_quantity,
            })
        })
        .collect()
}

/// Abbreviations people write for a zone, and the IANA zone they usually mean.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("AEST", "Australia/Sydney"),
    ("AEDT", "Australia/Sydney"),
    ("ACST", "Australia/Adelaide"),
    ("ACDT", "Australia/Adelaide"),
    ("AWST", "Australia/Perth"),
    ("NZST", "Pacific/Auckland"),
    ("NZDT", "Pacific/Auckland"),
    ("BST", "Europe/London"),
    ("CEST", "Europe/Paris"),
    ("PST", "America/Los_Angeles"),
    ("PDT", "America/Los_Angeles"),
    ("MDT", "America/Denver"),
    ("CDT", "America/Chicago"),
    ("EDT", "America/New_York"),
    ("IST", "Asia/Kolkata"),
    ("JST", "Asia/Tokyo"),
];

/// `daemon.timezone`: an IANA name, default UTC.
fn timezone(check: &Checker, raw: Option<&str>) -> Option<Tz> {
    let Some(name) = raw.map(str::trim) else {
        return Some(Tz::UTC);
    };
    if let Ok(zone) = name.parse::<Tz>() {
        return Some(zone);
    }
    // An abbreviation is not a zone, and the nearest name by spelling can be hours away
    // ("AEST" is one letter from "EST", 15 hours off): name the zone it usually means.
    let abbreviation = name.len() <= 5 && name.chars().all(|c| c.is_ascii_uppercase());
    if abbreviation {
        let hint = match ABBREVIATIONS.iter().find(|(a, _)| *a == name) {
            Some((_, zone)) => format!("; did you mean {zone:?}?"),
            None => "; write the IANA name of the place, such as \"Australia/Sydney\"".into(),
        };
        check.report(
            "daemon.timezone",
            format!("{name:?} is an abbreviation, not a time zone (it does not say when summer time starts){hint}"),
        );
        return None;
    }
    let names = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name());
    let hint = suggest(name, names)
        .map(|z| format!("; did you mean {z:?}?"))
        .unwrap_or_else(|| "; write an IANA name such as \"Australia/Sydney\" or \"UTC\"".into());
    check.report(
        "daemon.timezone",
        format!("{name:?} is not a time zone{hint}"),
    );
    None
}

fn daemon(check: &Checker, raw: RawDaemon) -> Option<Daemon> {
    let status = status_keys(check, &raw);
    let timezone = timezone(check, raw.timezone.as_deref());
    let zone = timezone.unwrap_or(Tz::UTC);
    let trigger = match (raw.schedule.clone(), raw.every.clone()) {
        (Some(_), Some(_)) => {
            check.report("daemon.every", "give either schedule or every, not both");
            None
        }
        (None, None) => {
            check.report("daemon.schedule", "missing; give schedule or every");
            None
        }
        (Some(expression), None) => check
            .keep(check.cron("daemon.schedule", &expression, zone))
            .map(Trigger::Schedule),
        (None, Some(every)) => check
            .keep(check.duration("daemon.every", Some(&every), Duration::ZERO))
            .map(Trigger::Every),
    };
    // Drift repair is on by default: a Hardtofind 2xx does not prove a SKU was applied, and a
    // channel can be edited by hand.
    let full_sync_schedule = match raw.full_sync_schedule.as_deref().map(str::trim) {
        Some("off") => Some(None),
        written => {
            let expression = written.unwrap_or(DEFAULT_FULL_SYNC_SCHEDULE);
            check
                .keep(check.cron("daemon.full_sync_schedule", expression, zone))
                .map(Some)
        }
    };
    let log_format = match raw.log_format.as_deref() {
        None | Some("text") => Some(LogFormat::Text),
        Some("json") => Some(LogFormat::Json),
        Some(other) => {
            check.report(
                "daemon.log_format",
                format!("{other:?} is neither \"text\" nor \"json\""),
            );
            None
        }
    };
    let log_level = raw.log_level.clone().unwrap_or_else(|| "info".to_owned());
    if let Err(message) = super::log_level::check(&log_level) {
        check.report("daemon.log_level", message);
    }
    let max_zeroed_fraction = raw.max_zeroed_fraction.unwrap_or(0.25);
    if !(0.0..=1.0).contains(&max_zeroed_fraction) {
        check.report("daemon.max_zeroed_fraction", "must be between 0 and 1");
    }
    let retry = retry(check, &raw);
    let request_timeout = check.keep(check.duration(
        "daemon.request_timeout",
        raw.request_timeout.as_deref(),
        Duration::from_secs(30),
    ));
    let fetch_timeout = check.keep(check.duration(
        "daemon.fetch_timeout",
        raw.fetch_timeout.as_deref(),
        DEFAULT_FETCH_TIMEOUT,
    ));
    let guard_window = check.keep(check.duration(
        "daemon.guard_window",
        raw.guard_window.as_deref(),
        DEFAULT_GUARD_WINDOW,
    ));
    let max_response_bytes = check.keep(check.size(
        "daemon.max_response_size",
        raw.max_response_size.as_deref(),
        super::DEFAULT_MAX_RESPONSE_BYTES,
    ));
    let metrics_listen = metrics_listen(check, raw.metrics_listen.as_deref());
    let status = status?;
    Some(Daemon {
        database: status.database,
        trigger: trigger?,
        full_sync_schedule: full_sync_schedule?,
        timezone: timezone?,
        log_format: log_format?,
        log_level,
        request_timeout: request_timeout?,
        fetch_timeout: fetch_timeout?,
        guard_window: guard_window?,
        max_zeroed_fraction,
        max_response_bytes: max_response_bytes?,
        retry: retry?,
        stale_after: status.stale_after,
        metrics_listen: metrics_listen?,
    })
}

/// `daemon.metrics_listen`: an IP address and a port, written out. No host name and no default
/// address: whoever exposes the metrics beyond the machine (`0.0.0.0:9793`) says so in the file.
fn metrics_listen(check: &Checker, raw: Option<&str>) -> Option<Option<std::net::SocketAddr>> {
    let Some(text) = raw else {
        return Some(None);
    };
    match text.trim().parse::<std::net::SocketAddr>() {
        Ok(addr) => Some(Some(addr)),
        Err(_) => {
            check.report(
                "daemon.metrics_listen",
                format!("{text:?} is not an IP address and port; write e.g. \"127.0.0.1:9793\""),
            );
            None
        }
    }
}

fn retry(check: &Checker, raw: &RawDaemon) -> Option<RetrySettings> {
    let defaults = RetrySettings::default();
    let max_attempts = match raw.retry_max_attempts {
        Some(0) => {
            check.report("daemon.retry_max_attempts", "must be at least 1");
            None
        }
        Some(n) => Some(n),
        None => Some(defaults.max_attempts),
    };
    let duration = |key: &str, value: &Option<String>, default| {
        check.keep(check.duration(&format!("daemon.{key}"), value.as_deref(), default))
    };
    let initial_backoff = duration(
        "retry_initial_backoff",
        &raw.retry_initial_backoff,
        defaults.initial_backoff,
    );
    let max_backoff = duration(
        "retry_max_backoff",
        &raw.retry_max_backoff,
        defaults.max_backoff,
    );
    let max_elapsed = duration(
        "retry_max_elapsed",
        &raw.retry_max_elapsed,
        defaults.max_elapsed,
    );
    Some(RetrySettings {
        max_attempts: max_attempts?,
        initial_backoff: initial_backoff?,
        max_backoff: max_backoff?,
        max_elapsed: max_elapsed?,
    })
}
