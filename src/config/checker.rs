//! The small checks every key needs (durations, sizes, cron expressions, secrets, URLs), and
//! the list of errors and warnings of one file: a check records its error and the others go on,
//! so an operator sees every mistake of the file at once, each naming the key to fix.

use std::cell::RefCell;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};

use super::schedule::Cron;
use super::{ConfigError, ConfigErrors, Remote};

/// Errors and warnings of one file, so each check can say `err(key, message)`.
pub struct Checker<'a> {
    pub(crate) file: &'a Path,
    /// Keys whose secret is written in the file itself.
    pub(crate) inline_secrets: RefCell<Vec<String>>,
    errors: RefCell<Vec<ConfigError>>,
    warnings: RefCell<Vec<String>>,
}

impl<'a> Checker<'a> {
    /// A checker of the file at `file`, with nothing found yet.
    pub fn new(file: &'a Path) -> Checker<'a> {
        Checker {
            file,
            inline_secrets: RefCell::default(),
            errors: RefCell::default(),
            warnings: RefCell::default(),
        }
    }

    /// Records an error; the checks go on.
    pub(crate) fn report(&self, key: impl Into<String>, message: impl Into<String>) {
        let error = self.err(key, message);
        self.errors.borrow_mut().push(error);
    }

    /// The value, or `None` after recording its error.
    pub(crate) fn keep<T>(&self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.errors.borrow_mut().push(e)).ok()
    }

    /// Records something worth a WARN that does not stop invsync.
    pub(crate) fn warn(&self, message: impl Into<String>) {
        self.warnings.borrow_mut().push(message.into());
    }

    /// Whether any error was recorded.
    pub(crate) fn failed(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    /// Every error, or the warnings when there was none.
    pub(crate) fn finish(self) -> Result<Vec<String>, ConfigErrors> {
        let errors = self.errors.into_inner();
        if errors.is_empty() {
            Ok(self.warnings.into_inner())
        } else {
            Err(ConfigErrors(errors))
        }
    }

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

    pub(crate) fn cron(&self, key: &str, expression: &str, zone: Tz) -> Result<Cron, ConfigError> {
        Cron::parse(expression, zone).map_err(|message| self.err(key, message))
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
                let content = std::fs::read_to_string(&path).map_err(|e| {
                    let place = where_looked(&written, credentials.as_deref());
                    self.err(&key, format!("cannot read {}: {e}{place}", path.display()))
                })?;
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

/// Why a credential file was looked for where it was: a relative name is looked up in
/// `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`), else next to the configuration.
fn where_looked(written: &std::path::Path, credentials: Option<&std::ffi::OsStr>) -> String {
    if written.is_absolute() {
        return String::new();
    }
    match credentials {
        Some(dir) => format!(
            " (a relative name is looked up in $CREDENTIALS_DIRECTORY, {}: is it in the unit's LoadCredential=?)",
            std::path::Path::new(dir).display()
        ),
        None => " (a relative name is looked up in $CREDENTIALS_DIRECTORY, which is not set, so next to the configuration file)".to_owned(),
    }
}

/// What a service's table asks of the file: the checks above, each recording its error.
impl crate::services::table::Check for Checker<'_> {
    fn report(&self, key: String, message: String) {
        Checker::report(self, key, message);
    }

    fn remote(
        &self,
        prefix: &str,
        base_url: &str,
        requests_per_minute: Option<u32>,
        default_rpm: u32,
    ) -> Option<Remote> {
        self.keep(Checker::remote(
            self,
            prefix,
            base_url,
            requests_per_minute,
            default_rpm,
        ))
    }

    fn secret(
        &self,
        prefix: &str,
        name: &str,
        inline: Option<SecretString>,
        file: Option<PathBuf>,
    ) -> Option<SecretString> {
        self.keep(Checker::secret(self, prefix, name, inline, file))
    }

    fn duration(&self, key: &str, value: Option<&str>, default: Duration) -> Option<Duration> {
        self.keep(Checker::duration(self, key, value, default))
    }

    fn table<T: serde::de::DeserializeOwned>(&self, prefix: &str, table: toml::Table) -> Option<T> {
        Checker::table(self, prefix, table)
    }

    fn kind_table(
        &self,
        prefix: &str,
        value: toml::Value,
        kinds: &[&str],
    ) -> Option<(String, toml::Table)> {
        Checker::kind_table(self, prefix, value, kinds)
    }
}
