//! `[targets.NAME]` with `type = "hardtofind"`: as written, and validated.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::checker::Checker;
use crate::config::{Account, DEFAULT_REQUESTS_PER_MINUTE, Remote, TargetCommon};

/// A Hardtofind target as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// The service root.
    pub base_url: String,
    /// The store owner's login.
    pub username: String,
    /// Its password, inline…
    pub password: Option<SecretString>,
    /// …or in a file.
    pub password_file: Option<PathBuf>,
    /// Source names whose quantities are summed.
    pub inputs: Vec<String>,
    /// Variants per `POST /batch`.
    pub batch_size: Option<usize>,
    /// The account's budget; none is documented, default 60.
    pub requests_per_minute: Option<u32>,
    /// Subtracted from the sum.
    pub safety_stock: Option<i64>,
    /// The most Hardtofind is ever told.
    pub max_quantity: Option<i64>,
}

/// A Hardtofind target, validated.
#[derive(Debug)]
pub struct TargetSettings {
    /// Login for `POST /authenticate`.
    pub username: String,
    /// Its password.
    pub password: SecretString,
}

impl TargetSettings {
    /// Who it is at Hardtofind: the username (a changed password is the same account).
    pub fn account(&self) -> Account {
        Account::Name(self.username.clone())
    }
}

/// Checks a Hardtofind target, recording every error in `check`.
pub fn target(
    check: &Checker,
    prefix: &str,
    raw: RawTarget,
) -> Option<(Remote, TargetCommon, TargetSettings)> {
    let remote = check.keep(check.remote(
        prefix,
        &raw.base_url,
        raw.requests_per_minute,
        DEFAULT_REQUESTS_PER_MINUTE,
    ));
    if raw.username.trim().is_empty() {
        check.report(format!("{prefix}.username"), "is empty");
    }
    let password = check.keep(check.secret(prefix, "password", raw.password, raw.password_file));
    let common = TargetCommon {
        inputs: raw.inputs,
        batch_size: raw.batch_size,
        safety_stock: raw.safety_stock,
        max_quantity: raw.max_quantity,
    };
    let settings = TargetSettings {
        username: raw.username,
        password: password?,
    };
    Some((remote?, common, settings))
}
