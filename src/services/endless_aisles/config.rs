//! `[sources.NAME]` with `type = "endless_aisles"`: as written, and validated.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::services::table::{Account, Check, DEFAULT_REQUESTS_PER_MINUTE, Remote};

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
    /// How often `GET /api/products` is read (`"24h"` by default, `"off"` never).
    pub products_refresh: Option<String>,
}

/// An Endless Aisles source, validated.
#[derive(Debug)]
pub struct SourceSettings {
    /// The `X-EA-REQUEST-TOKEN`.
    pub token: SecretString,
    /// Canonical SKU = prefix + option id.
    pub sku_prefix: String,
    /// How often the products (each size's barcode and whether it can be sold) are read;
    /// `None`: never, and every size with stock is offered.
    pub products_refresh: Option<Duration>,
}

/// A day: sizes change status rarely, and the list is large.
pub const DEFAULT_PRODUCTS_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);

impl SourceSettings {
    /// Who it is at Endless Aisles: the token.
    pub fn account(&self) -> Account {
        Account::Secret(self.token.clone())
    }
}

/// Checks an Endless Aisles source, recording every error in `check`.
pub fn source(
    check: &impl Check,
    prefix: &str,
    raw: RawSource,
) -> Option<(Remote, SourceSettings)> {
    let remote = check.remote(
        prefix,
        &raw.base_url,
        raw.requests_per_minute,
        DEFAULT_REQUESTS_PER_MINUTE,
    );
    let token = check.secret(prefix, "token", raw.token, raw.token_file);
    let products_refresh = match raw.products_refresh.as_deref().map(str::trim) {
        Some("off") => Some(None),
        written => check
            .duration(
                &format!("{prefix}.products_refresh"),
                written,
                DEFAULT_PRODUCTS_REFRESH,
            )
            .map(Some),
    };
    Some((
        remote?,
        SourceSettings {
            token: token?,
            sku_prefix: raw.sku_prefix.unwrap_or_default(),
            products_refresh: products_refresh?,
        },
    ))
}
