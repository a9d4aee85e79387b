//! Reading the file and the small checks every key needs (durations, sizes, cron expressions,
//! secrets, URLs), each error naming the key path an operator has to fix.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::raw::RawConfig;
use super::{ConfigError, Remote};

/// Errors of one file, so each check can say `err(key, message)`.
pub struct Checker<'a> {
    pub(crate) file: &'a Path,
    /// Keys whose secret is written in the file itself.
    pub(crate) inline_secrets: std::cell::RefCell<Vec<String>>,
}

impl Checker<'_> {
    pub(crate) fn err(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    pub(crate) fn duration(
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
    pub(crate) fn size(
        &self,
        key: &str,
        value: Option<&str>,
        default: usize,
    ) -> Result<usize, ConfigError> {
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

    pub(crate) fn cron(&self, key: &str, expression: &str) -> Result<(), ConfigError> {
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
    pub(crate) fn secret(
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
            (None, Some(written)) => {
                let key = format!("{prefix}.{name}_file");
                let credentials = std::env::var_os("CREDENTIALS_DIRECTORY");
                let path = secret_path(self.file, credentials.as_deref(), &written);
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

    pub(crate) fn remote(
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
            canonical_url: super::identity::canonical_url(&url),
            requests_per_minute: rpm,
        })
    }
}

/// Where a `*_file` path written as `written` is read. An absolute path is what it says. A
/// relative one is a credential's name: under systemd it lives in `$CREDENTIALS_DIRECTORY`
/// (`LoadCredential=` copies it there, readable by the service alone), so the file needs no
/// path that exists only while the unit runs; without systemd (`invsync check` by hand) it is
/// next to the configuration file.
pub fn secret_path(
    config: &Path,
    credentials: Option<&std::ffi::OsStr>,
    written: &Path,
) -> PathBuf {
    if written.is_absolute() {
        return written.to_path_buf();
    }
    match credentials.filter(|dir| !dir.is_empty()) {
        Some(dir) => Path::new(dir).join(written),
        None => config.parent().unwrap_or(Path::new("")).join(written),
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
pub(crate) fn read(path: &Path) -> Result<RawConfig, ConfigError> {
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
    pub(crate) fn typed<T: serde::de::DeserializeOwned, D>(
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
    pub(crate) fn kind_table(
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
