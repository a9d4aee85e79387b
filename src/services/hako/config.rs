//! `[sources.NAME]` and `[targets.NAME]` with `type = "hako"`: as written, and validated.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::services::table::{Account, Check, Remote, TargetCommon, TargetTable};

/// Hako's documented limit, 120 requests a minute per key.
pub const REQUESTS_PER_MINUTE: u32 = 120;

/// A Hako source as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The service root, `/v0` included.
    pub base_url: String,
    /// The API key (basic-auth user), inline…
    pub api_key: Option<SecretString>,
    /// …or in a file.
    pub api_key_file: Option<PathBuf>,
    /// Warehouses whose quantities are summed per SKU; default every warehouse.
    pub warehouses: Option<Vec<String>>,
    /// The account's budget; default 120.
    pub requests_per_minute: Option<u32>,
}

/// A Hako target as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// The service root, `/v0` included.
    pub base_url: String,
    /// The API key (basic-auth user), inline…
    pub api_key: Option<SecretString>,
    /// …or in a file.
    pub api_key_file: Option<PathBuf>,
    /// The warehouse these quantities are written to.
    pub warehouse: String,
    /// Source names whose quantities are summed.
    pub inputs: Vec<String>,
    /// Inventory objects per request.
    pub batch_size: Option<usize>,
    /// The account's budget; default 120.
    pub requests_per_minute: Option<u32>,
    /// Subtracted from the sum.
    pub safety_stock: Option<i64>,
    /// The most the warehouse is ever told.
    pub max_quantity: Option<i64>,
}

/// A Hako source, validated.
#[derive(Debug)]
pub struct SourceSettings {
    /// The API key.
    pub api_key: SecretString,
    /// Warehouses to sum; `None` = every warehouse.
    pub warehouses: Option<Vec<String>>,
}

/// A Hako target, validated.
#[derive(Debug)]
pub struct TargetSettings {
    /// The API key.
    pub api_key: SecretString,
    /// The warehouse written to.
    pub warehouse: String,
}

impl SourceSettings {
    /// Who it is at Hako: the key.
    pub fn account(&self) -> Account {
        Account::Secret(self.api_key.clone())
    }
}

impl TargetSettings {
    /// Who it is at Hako: the key.
    pub fn account(&self) -> Account {
        Account::Secret(self.api_key.clone())
    }
}

/// Checks a Hako source, recording every error in `check`.
pub fn source(
    check: &impl Check,
    prefix: &str,
    raw: RawSource,
) -> Option<(Remote, SourceSettings)> {
    let remote = check.remote(
        prefix,
        &raw.base_url,
        raw.requests_per_minute,
        REQUESTS_PER_MINUTE,
    );
    let bad_list = raw
        .warehouses
        .as_ref()
        .is_some_and(|list| list.is_empty() || list.iter().any(|w| w.trim().is_empty()));
    if bad_list {
        check.report(
            format!("{prefix}.warehouses"),
            "must list warehouse ids; leave it out to read every warehouse".to_owned(),
        );
    }
    let api_key = check.secret(prefix, "api_key", raw.api_key, raw.api_key_file);
    Some((
        remote?,
        SourceSettings {
            api_key: api_key?,
            warehouses: raw.warehouses,
        },
    ))
}

/// Checks a Hako target, recording every error in `check`.
pub fn target(
    check: &impl Check,
    prefix: &str,
    raw: RawTarget,
) -> Option<(Remote, TargetCommon, TargetSettings)> {
    let (remote, common) = (
        check.target_remote(prefix, &raw, REQUESTS_PER_MINUTE),
        raw.common(),
    );
    if raw.warehouse.trim().is_empty() {
        check.report(format!("{prefix}.warehouse"), "is empty".to_owned());
    }
    let api_key = check.secret(prefix, "api_key", raw.api_key, raw.api_key_file);
    let settings = TargetSettings {
        api_key: api_key?,
        warehouse: raw.warehouse,
    };
    Some((remote?, common, settings))
}

crate::target_table!(RawTarget);
