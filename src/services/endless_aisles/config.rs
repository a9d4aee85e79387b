//! `[sources.NAME]` with `type = "endless_aisles"`: as written, and validated.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::checker::Checker;
use crate::config::{Account, DEFAULT_REQUESTS_PER_MINUTE, Remote};

/// An Endless Aisles source as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The service root.
    pub base_url: String,
    /// The `X-EA-REQUEST-TOKEN`, inline…
    pub token: Option<SecretString>,
    /// …or in a file.
    pub token_file: Option<PathBuf>,
    /// Prepended to every option id to make the canonical SKU.
    pub sku_prefix: Option<String>,
    /// The account's budget; none is documented, default 60.
    pub requests_per_minute: Option<u32>,
}

/// An Endless Aisles source, validated.
#[derive(Debug)]
pub struct SourceSettings {
    /// The `X-EA-REQUEST-TOKEN`.
    pub token: SecretString,
    /// Canonical SKU = prefix + option id.
    pub sku_prefix: String,
}

impl SourceSettings {
    /// Who it is at Endless Aisles: the token.
    pub fn account(&self) -> Account {
        Account::Secret(self.token.clone())
    }
}

/// Checks an Endless Aisles source, recording every error in `check`.
pub fn source(check: &Checker, prefix: &str, raw: RawSource) -> Option<(Remote, SourceSettings)> {
    let remote = check.keep(check.remote(
        prefix,
        &raw.base_url,
        raw.requests_per_minute,
        DEFAULT_REQUESTS_PER_MINUTE,
    ));
    let token = check.keep(check.secret(prefix, "token", raw.token, raw.token_file));
    Some((
        remote?,
        SourceSettings {
            token: token?,
            sku_prefix: raw.sku_prefix.unwrap_or_default(),
        },
    ))
}
