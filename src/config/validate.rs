//! From [`RawConfig`] to [`Config`]: every check that needs more than a type, each error
//! naming the key an operator has to fix.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::raw::{RawConfig, RawDaemon, RawSource, RawTarget};
use super::{
    Config, ConfigError, DEFAULT_BATCH_SIZE, DEFAULT_REQUESTS_PER_MINUTE, Daemon,
    HAKO_REQUESTS_PER_MINUTE, LogFormat, Remote, RetrySettings, SourceKind, SourceSpec,
    StatusSettings, TargetKind, TargetSpec, Trigger,
};

const DEFAULT_DATABASE: &str = "/var/lib/invsync/invsync.db";
/// An hour without a complete fetch is far beyond a few failed cycles on any sane schedule, yet
/// soon enough that a shop has not oversold for a day.
const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(60 * 60);

/// Errors of one file, so each check can say `err(key, message)`.
struct Checker<'a> {
    file: &'a Path,
    /// Keys whose secret is written in the file itself.
    inline_secrets: std::cell::RefCell<Vec<String>>,
}

impl Checker<'_> {
    fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        let Some(text) = value else {
            return Ok(default);
        };
        let duration = humantime::parse_duration(text).map_err(|e| {
            self.err(
                key,
                format!("{text:?} is not a duration ({e}); write e.g. \"30s\" or \"5m\""),
            )
        })?;
        if duration.is_zero() {
            return Err(self.err(key, "must be longer than zero"));
        }
        Ok(duration)
    }

    /// A size such as `"256MiB"`, `"20 MB"` or `"1048576"` (bytes).
    fn size(&self, key: &str, value: Option<&str>, default: usize) -> Result<usize, ConfigError> {
        let Some(text) = value else {
            return Ok(default);
        };
        let bad = || {
            self.err(
                key,
                format!("{text:?} is not a size; write e.g. \"256MiB\""),
            )
        };
        let trimmed = text.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(trimmed.len());
        let (number, unit) = trimmed.split_at(split);
        let number: usize = number.parse().map_err(|_| bad())?;
        let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "kib" => 1 << 10,
            "mb" => 1_000_000,
            "mib" => 1 << 20,
            "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            _ => return Err(bad()),
        };
        let bytes = number.checked_mul(factor).ok_or_else(bad)?;
        if bytes < 1024 {
            return Err(self.err(key, "must be at least 1KiB"));
        }
        Ok(bytes)
    }

    fn cron(&self, key: &str, expression: &str) -> Result<(), ConfigError> {
        tokio_cron_scheduler::Job::new_async(expression, |_, _| Box::pin(async {}))
            .map(|_| ())
            .map_err(|_| {
                self.err(
                    key,
                    format!("{expression:?} is not a cron expression with seconds (e.g. \"0 */5 * * * *\")"),
                )
            })
    }

    /// A secret given inline (`name`) or as a file (`name_file`), exactly one of the two.
    fn secret(
        &self,
        prefix: &str,
        name: &str,
        inline: Option<SecretString>,
        file: Option<PathBuf>,
    ) -> Result<SecretString, ConfigError> {
        match (inline, file) {
            (Some(_), Some(_)) => Err(self.err(
                format!("{prefix}.{name}"),
                format!("give either {name} or {name}_file, not both"),
            )),
            (None, None) => Err(self.err(
                format!("{prefix}.{name}"),
                format!("missing; give {name} or {name}_file"),
            )),
            (Some(secret), None) => {
                self.inline_secrets
                    .borrow_mut()
                    .push(format!("{prefix}.{name}"));
                if secret.expose_secret().trim().is_empty() {
                    return Err(self.err(format!("{prefix}.{name}"), "is empty"));
                }
                Ok(secret)
            }
            (None, Some(path)) => {
                let key = format!("{prefix}.{name}_file");
                let content = std::fs::read_to_string(&path)
                    .map_err(|e| self.err(&key, format!("cannot read {}: {e}", path.display())))?;
                let trimmed = content.trim();
                if trimmed.is_empty() {
                    return Err(self.err(key, format!("{} is empty", path.display())));
                }
                Ok(SecretString::from(trimmed.to_owned()))
            }
        }
    }

    fn remote(
        &self,
        prefix: &str,
        base_url: &str,
        requests_per_minute: Option<u32>,
        default_rpm: u32,
    ) -> Result<Remote, ConfigError> {
        let key = format!("{prefix}.base_url");
        let url = url::Url::parse(base_url.trim())
            .map_err(|e| self.err(&key, format!("{base_url:?} is not a URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(self.err(
                    key,
                    "plain http:// is accepted only for loopback hosts; use https://",
                ));
            }
            other => return Err(self.err(key, format!("scheme {other:?} is not http(s)"))),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(self.err(
                key,
                "must not carry credentials; use the api_key/token/password keys",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(self.err(key, "must not have a query or fragment"));
        }
        let rpm = requests_per_minute.unwrap_or(default_rpm);
        if rpm == 0 {
            return Err(self.err(
                format!("{prefix}.requests_per_minute"),
                "must be at least 1",
            ));
        }
        Ok(Remote {
            base_url: url.as_str().trim_end_matches('/').to_owned(),
            requests_per_minute: rpm,
        })
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Reads the file into the raw types; TOML syntax and type errors come out here.
pub(super) fn read(path: &Path) -> Result<RawConfig, ConfigError> {
    let check = Checker {
        file: path,
        inline_secrets: Default::default(),
    };
    if !path.exists() {
        return Err(check.err("", "no such file (set --config or INVSYNC_CONFIG)"));
    }
    let loaded = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .map_err(|e| check.err("", strip_file_mention(&e.to_string(), path)))?;
    check.typed("", loaded)
}

impl Checker<'_> {
    /// Deserialises `value` as `T`, errors naming `prefix` + the path inside.
    fn typed<T: serde::de::DeserializeOwned, D>(
        &self,
        prefix: &str,
        value: D,
    ) -> Result<T, ConfigError>
    where
        for<'de> D: serde::Deserializer<'de, Error = config::ConfigError>,
    {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let key = match (prefix.is_empty(), inner == ".") {
                (true, true) => String::new(),
                (true, false) => inner,
                (false, true) => prefix.to_owned(),
                (false, false) => format!("{prefix}.{inner}"),
            };
            self.err(key, strip_key_mention(&e.into_inner().to_string()))
        })
    }

    /// Splits `[sources.NAME]` / `[targets.NAME]` on its `type` and types the rest.
    fn kind_table(
        &self,
        prefix: &str,
        value: config::Value,
        kinds: &[&str],
    ) -> Result<(String, config::Value), ConfigError> {
        let origin = value.origin().map(str::to_owned);
        let mut table = value
            .into_table()
            .map_err(|_| self.err(prefix, "must be a table"))?;
        let expected = kinds
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let kind = table
            .remove("type")
            .ok_or_else(|| self.err(format!("{prefix}.type"), format!("missing; {expected}")))?
            .into_string()
            .map_err(|_| self.err(format!("{prefix}.type"), format!("must be {expected}")))?;
        if !kinds.contains(&kind.as_str()) {
            return Err(self.err(
                format!("{prefix}.type"),
                format!("unknown type {kind:?}; expected {expected}"),
            ));
        }
        Ok((
            kind,
            config::Value::new(origin.as_ref(), config::ValueKind::Table(table)),
        ))
    }

    fn raw_source(&self, name: &str, value: config::Value) -> Result<RawSource, ConfigError> {
        let prefix = format!("sources.{name}");
        let (kind, rest) = self.kind_table(&prefix, value, &["hako", "endless_aisles"])?;
        Ok(match kind.as_str() {
            "hako" => RawSource::Hako(self.typed(&prefix, rest)?),
            _ => RawSource::EndlessAisles(self.typed(&prefix, rest)?),
        })
    }

    fn raw_target(&self, name: &str, value: config::Value) -> Result<RawTarget, ConfigError> {
        let prefix = format!("targets.{name}");
        let (kind, rest) = self.kind_table(&prefix, value, &["hardtofind", "hako"])?;
        Ok(match kind.as_str() {
            "hardtofind" => RawTarget::Hardtofind(self.typed(&prefix, rest)?),
            _ => RawTarget::Hako(self.typed(&prefix, rest)?),
        })
    }
}

/// The `config` crate appends ``for key `…` `` to messages; the key is said already.
fn strip_key_mention(message: &str) -> String {
    match message.rfind(" for key `") {
        Some(at) if message.ends_with('`') => message[..at].to_owned(),
        _ => message.to_owned(),
    }
}

/// A parse error on one line: the `config` crate appends `in FILE` (the message names the file
/// already) and the TOML parser draws the offending line, which a log line cannot hold.
fn strip_file_mention(message: &str, path: &Path) -> String {
    let suffix = format!(" in {}", path.display());
    let message = message.trim_end().trim_end_matches(&suffix);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let names_the_file = |l: &str| l.starts_with("in ") && l.ends_with(file_name.as_str());
    let mut lines = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('|') && !names_the_file(l));
    let first = lines.next().unwrap_or_default().to_owned();
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        first
    } else {
        format!("{first}: {}", rest.join("; "))
    }
}

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
        let source = check.raw_source(&name, value)?;
        sources.push(source_spec(&check, name, source)?);
    }
    let mut targets = Vec::new();
    for (name, value) in raw.targets {
        let target = check.raw_target(&name, value)?;
        targets.push(target_spec(&check, name, target, &sources)?);
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
            let (inputs, safety_stock, max_quantity) =
                match check.raw_target(name, value.clone())? {
                    RawTarget::Hardtofind(t) => (t.inputs, t.safety_stock, t.max_quantity),
                    RawTarget::Hako(t) => (t.inputs, t.safety_stock, t.max_quantity),
                };
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
    if let Some(expression) = &raw.full_sync_schedule {
        check.cron("daemon.full_sync_schedule", expression)?;
    }
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
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        return Err(check.err(
            "daemon.log_level",
            format!("{log_level:?} is not a log filter (e.g. \"info\")"),
        ));
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
        full_sync_schedule: raw.full_sync_schedule,
        log_format,
        log_level,
        request_timeout: check.duration(
            "daemon.request_timeout",
            raw.request_timeout.as_deref(),
            Duration::from_secs(30),
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

fn source_spec(check: &Checker, name: String, raw: RawSource) -> Result<SourceSpec, ConfigError> {
    let prefix = format!("sources.{name}");
    let (remote, kind) = match raw {
        RawSource::Hako(s) => {
            let remote = check.remote(
                &prefix,
                &s.base_url,
                s.requests_per_minute,
                HAKO_REQUESTS_PER_MINUTE,
            )?;
            let bad_list = s
                .warehouses
                .as_ref()
                .is_some_and(|list| list.is_empty() || list.iter().any(|w| w.trim().is_empty()));
            if bad_list {
                return Err(check.err(
                    format!("{prefix}.warehouses"),
                    "must list warehouse ids; leave it out to read every warehouse",
                ));
            }
            let api_key = check.secret(&prefix, "api_key", s.api_key, s.api_key_file)?;
            (
                remote,
                SourceKind::Hako {
                    api_key,
                    warehouses: s.warehouses,
                },
            )
        }
        RawSource::EndlessAisles(s) => {
            let remote = check.remote(
                &prefix,
                &s.base_url,
                s.requests_per_minute,
                DEFAULT_REQUESTS_PER_MINUTE,
            )?;
            let token = check.secret(&prefix, "token", s.token, s.token_file)?;
            (
                remote,
                SourceKind::EndlessAisles {
                    token,
                    sku_prefix: s.sku_prefix.unwrap_or_default(),
                },
            )
        }
    };
    Ok(SourceSpec { name, remote, kind })
}

/// The settings every target kind shares, checked in one place.
struct Common {
    inputs: Vec<String>,
    batch_size: Option<usize>,
    safety_stock: Option<i64>,
    max_quantity: Option<i64>,
}

fn target_spec(
    check: &Checker,
    name: String,
    raw: RawTarget,
    sources: &[SourceSpec],
) -> Result<TargetSpec, ConfigError> {
    let prefix = format!("targets.{name}");
    let (remote, common, kind) = match raw {
        RawTarget::Hardtofind(t) => {
            let remote = check.remote(
                &prefix,
                &t.base_url,
                t.requests_per_minute,
                DEFAULT_REQUESTS_PER_MINUTE,
            )?;
            if t.username.trim().is_empty() {
                return Err(check.err(format!("{prefix}.username"), "is empty"));
            }
            let password = check.secret(&prefix, "password", t.password, t.password_file)?;
            let common = Common {
                inputs: t.inputs,
                batch_size: t.batch_size,
                safety_stock: t.safety_stock,
                max_quantity: t.max_quantity,
            };
            (
                remote,
                common,
                TargetKind::Hardtofind {
                    username: t.username,
                    password,
                },
            )
        }
        RawTarget::Hako(t) => {
            let remote = check.remote(
                &prefix,
                &t.base_url,
                t.requests_per_minute,
                HAKO_REQUESTS_PER_MINUTE,
            )?;
            if t.warehouse.trim().is_empty() {
                return Err(check.err(format!("{prefix}.warehouse"), "is empty"));
            }
            let api_key = check.secret(&prefix, "api_key", t.api_key, t.api_key_file)?;
            let common = Common {
                inputs: t.inputs,
                batch_size: t.batch_size,
                safety_stock: t.safety_stock,
                max_quantity: t.max_quantity,
            };
            (
                remote,
                common,
                TargetKind::Hako {
                    api_key,
                    warehouse: t.warehouse,
                },
            )
        }
    };
    let by_name: BTreeMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    if common.inputs.is_empty() {
        return Err(check.err(format!("{prefix}.inputs"), "lists no source"));
    }
    let mut inputs = Vec::new();
    for input in &common.inputs {
        let Some(&index) = by_name.get(input.as_str()) else {
            return Err(check.err(
                format!("{prefix}.inputs"),
                format!("unknown source {input:?}"),
            ));
        };
        if inputs.contains(&index) {
            return Err(check.err(
                format!("{prefix}.inputs"),
                format!("lists source {input:?} twice"),
            ));
        }
        inputs.push(index);
    }
    let batch_size = common.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if !(1..=10_000).contains(&batch_size) {
        return Err(check.err(
            format!("{prefix}.batch_size"),
            "must be between 1 and 10000",
        ));
    }
    let safety_stock = common.safety_stock.unwrap_or(0);
    if safety_stock < 0 {
        return Err(check.err(format!("{prefix}.safety_stock"), "must not be negative"));
    }
    if common.max_quantity.is_some_and(|m| m < 0) {
        return Err(check.err(format!("{prefix}.max_quantity"), "must not be negative"));
    }
    Ok(TargetSpec {
        name,
        remote,
        inputs,
        batch_size,
        safety_stock,
        max_quantity: common.max_quantity,
        kind,
    })
}

/// A Hako target writing to a warehouse that a Hako source of the same account reads would feed
/// its own output back as input, growing stock every cycle.
fn check_feedback_loops(
    check: &Checker,
    sources: &[SourceSpec],
    targets: &[TargetSpec],
) -> Result<(), ConfigError> {
    for target in targets {
        let TargetKind::Hako {
            api_key: target_key,
            warehouse,
        } = &target.kind
        else {
            continue;
        };
        for source in sources {
            let SourceKind::Hako {
                api_key,
                warehouses,
            } = &source.kind
            else {
                continue;
            };
            let same_account = source.remote.base_url == target.remote.base_url
                && api_key.expose_secret() == target_key.expose_secret();
            if !same_account {
                continue;
            }
            let reads_it = warehouses
                .as_ref()
                .is_none_or(|list| list.contains(warehouse));
            if reads_it {
                let how = if warehouses.is_none() {
                    " (it reads every warehouse; list the ones to read in its warehouses)"
                } else {
                    ""
                };
                return Err(check.err(
                    format!("targets.{}.warehouse", target.name),
                    format!(
                        "writes to warehouse {warehouse:?} of the Hako account that sources.{} reads{how}: that is a feedback loop",
                        source.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
