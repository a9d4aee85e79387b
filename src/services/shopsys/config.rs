//! `[targets.NAME] type = "shopsys"`: the catalogue target's table, as written and as checked.
//!
//! The keys every target shares are checked where every target's are (`base_url` and
//! `requests_per_minute` as a remote, `client_secret`/`client_secret_file` as a secret, `inputs`,
//! `safety_stock`, `max_quantity`); [`RawTarget::rules`] checks the rest, the keys only this
//! target has. [`target`] joins the two, in the shape every service's `config.rs` has.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::flag::Thresholds;
use super::wire::{Product, ProductPatch};
use crate::services::table::{
    Account, Check, DEFAULT_REQUESTS_PER_MINUTE, Remote, TargetCommon, TargetTable,
};

/// How often the product list is read again, unless `catalogue_refresh` says otherwise.
pub const DEFAULT_CATALOGUE_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest `catalogue_refresh`: a 100,000-product catalogue is 1,000 requests, and reading
/// it more often than this would spend the shop's budget on reading, not on flags.
pub const MIN_CATALOGUE_REFRESH: Duration = Duration::from_secs(60);

/// The table as written (`type` already taken off). Unknown keys are errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// The shop's root, e.g. `https://shop.example.com`; invsync appends `/api/token` and
    /// `/api/v1/products`.
    pub base_url: String,
    /// The OAuth2 client id of invsync's API client in the shop.
    pub client_id: String,
    /// The OAuth2 client secret, inline (better: `client_secret_file`).
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret; relative paths as for every `*_file` key.
    pub client_secret_file: Option<PathBuf>,
    /// The sources whose quantities are summed per SKU.
    pub inputs: Vec<String>,
    /// The product field that holds the SKU: `catnum` (default), `ean` or `partno`.
    #[serde(rename = "match")]
    pub match_field: Option<MatchField>,
    /// The flag invsync sets on a product out of stock: `sellingDenied` (default) or `hidden`.
    pub flag: Option<Flag>,
    /// The flag is set when the quantity is at or below this (default 0).
    pub deny_at: Option<i64>,
    /// The flag is cleared when the quantity is at or above this in two consecutive cycles
    /// (default `deny_at + 1`).
    pub allow_at: Option<i64>,
    /// How often the product list is read again, e.g. `"24h"` (default `"24h"`).
    pub catalogue_refresh: Option<String>,
    /// The shop's request budget per minute (shared with other endpoints of the same account).
    pub requests_per_minute: Option<u32>,
    /// Subtracted from the summed quantity before the thresholds apply.
    pub safety_stock: Option<i64>,
    /// The most the computed quantity is ever taken to be.
    pub max_quantity: Option<i64>,
    /// Not a key of this target (one `PATCH` per product): present only to say so clearly.
    #[serde(default)]
    batch_size: Option<serde::de::IgnoredAny>,
}

/// The product field that holds the SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchField {
    /// `catnum`, the catalogue number.
    #[default]
    Catnum,
    /// `ean`, the barcode, compared as the string the shop holds.
    Ean,
    /// `partno`, the manufacturer's part number.
    Partno,
}

impl MatchField {
    /// The field's name in the document.
    pub fn name(self) -> &'static str {
        match self {
            MatchField::Catnum => "catnum",
            MatchField::Ean => "ean",
            MatchField::Partno => "partno",
        }
    }

    /// The SKU `product` carries in this field: trimmed, `None` when empty or null.
    pub fn of(self, product: &Product) -> Option<&str> {
        let value = match self {
            MatchField::Catnum => &product.catnum,
            MatchField::Ean => &product.ean,
            MatchField::Partno => &product.partno,
        };
        value.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
}

/// The flag that makes a product unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Flag {
    /// Listed but not for sale.
    #[default]
    #[serde(rename = "sellingDenied")]
    SellingDenied,
    /// Not listed at all.
    #[serde(rename = "hidden")]
    Hidden,
}

impl Flag {
    /// The field's name in the document.
    pub fn name(self) -> &'static str {
        match self {
            Flag::SellingDenied => "sellingDenied",
            Flag::Hidden => "hidden",
        }
    }

    /// Whether `GET` shows the flag set (for `sellingDenied`, the calculated value).
    pub fn shown(self, product: &Product) -> bool {
        match self {
            Flag::SellingDenied => product.selling_denied,
            Flag::Hidden => product.hidden,
        }
    }

    /// The `PATCH` body writing `value`.
    pub fn patch(self, value: bool) -> ProductPatch {
        match self {
            Flag::SellingDenied => ProductPatch {
                selling_denied: Some(value),
                ..ProductPatch::default()
            },
            Flag::Hidden => ProductPatch {
                hidden: Some(value),
                ..ProductPatch::default()
            },
        }
    }
}

/// The settings only this target has, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShopsysRules {
    /// The product field that holds the SKU.
    pub match_field: MatchField,
    /// The flag invsync writes.
    pub flag: Flag,
    /// When it is set and cleared.
    pub thresholds: Thresholds,
    /// How often the product list is read again.
    pub catalogue_refresh: Duration,
}

/// A catalogue target, validated.
#[derive(Debug)]
pub struct TargetSettings {
    /// The OAuth2 client id: who invsync is at the shop.
    pub client_id: String,
    /// Its secret.
    pub client_secret: SecretString,
    /// The keys only this target has.
    pub rules: ShopsysRules,
}

impl TargetSettings {
    /// Who it is at the shop: the client id (a changed secret is the same API client, so its
    /// acknowledged flags stay trusted).
    pub fn account(&self) -> Account {
        Account::Name(self.client_id.clone())
    }
}

/// Checks a catalogue target, recording every error in `check`. The shop documents no request
/// budget, so the default is the one every undocumented service gets.
pub fn target(
    check: &impl Check,
    prefix: &str,
    raw: RawTarget,
) -> Option<(Remote, TargetCommon, TargetSettings)> {
    let remote = check.target_remote(prefix, &raw, DEFAULT_REQUESTS_PER_MINUTE);
    let common = raw.common();
    let rules = raw
        .rules()
        .map_err(|e| check.report(format!("{prefix}.{}", e.key), e.message))
        .ok();
    let client_secret = check.secret(
        prefix,
        "client_secret",
        raw.client_secret,
        raw.client_secret_file,
    );
    let settings = TargetSettings {
        client_id: raw.client_id.trim().to_owned(),
        client_secret: client_secret?,
        rules: rules?,
    };
    Some((remote?, common, settings))
}

impl TargetTable for RawTarget {
    fn base_url(&self) -> &str {
        &self.base_url
    }
    fn requests_per_minute(&self) -> Option<u32> {
        self.requests_per_minute
    }
    /// The keys every target shares; `batch_size` does not apply (one `PATCH` per product).
    fn common(&self) -> TargetCommon {
        TargetCommon {
            inputs: self.inputs.clone(),
            batch_size: None,
            safety_stock: self.safety_stock,
            max_quantity: self.max_quantity,
        }
    }
}

/// A key of the table that is wrong; `key` is relative to `[targets.NAME]`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{key}: {message}")]
pub struct TableError {
    /// The key, e.g. `allow_at`.
    pub key: &'static str,
    /// What is wrong, in a sentence.
    pub message: String,
}

fn table_error(key: &'static str, message: impl Into<String>) -> TableError {
    TableError {
        key,
        message: message.into(),
    }
}

impl RawTarget {
    /// Checks the keys only this target has and applies their defaults.
    pub fn rules(&self) -> Result<ShopsysRules, TableError> {
        if self.batch_size.is_some() {
            return Err(table_error(
                "batch_size",
                "does not apply to a shopsys target: each product's flag is one PATCH",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(table_error("client_id", "is empty"));
        }
        let deny_at = self.deny_at.unwrap_or(0);
        if deny_at < 0 {
            return Err(table_error(
                "deny_at",
                "must not be negative: a quantity is never below 0, so the flag would never be set",
            ));
        }
        let allow_at = match self.allow_at {
            Some(allow_at) => allow_at,
            None => deny_at.saturating_add(1),
        };
        if allow_at <= deny_at {
            return Err(table_error(
                "allow_at",
                format!("must be above deny_at ({deny_at}), or the flag would flip every cycle"),
            ));
        }
        let catalogue_refresh = match self.catalogue_refresh.as_deref() {
            None => DEFAULT_CATALOGUE_REFRESH,
            Some(text) => {
                let refresh = humantime::parse_duration(text.trim()).map_err(|e| {
                    table_error(
                        "catalogue_refresh",
                        format!("{text:?} is not a duration ({e}); write e.g. \"24h\""),
                    )
                })?;
                if refresh < MIN_CATALOGUE_REFRESH {
                    return Err(table_error("catalogue_refresh", "must be at least 1m"));
                }
                refresh
            }
        };
        Ok(ShopsysRules {
            match_field: self.match_field.unwrap_or_default(),
            flag: self.flag.unwrap_or_default(),
            thresholds: Thresholds { deny_at, allow_at },
            catalogue_refresh,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a table the way the configuration file is read (TOML, strictly typed).
    fn table(toml: &str) -> Result<RawTarget, String> {
        let text = format!(
            "base_url = \"https://shop.example.com\"\nclient_id = \"invsync\"\nclient_secret_file = \"s\"\ninputs = [\"warehouse\"]\n{toml}"
        );
        toml::from_str(&text).map_err(|e| e.to_string())
    }

    fn rules(toml: &str) -> Result<ShopsysRules, String> {
        table(toml)?.rules().map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_are_catnum_selling_denied_zero_one_and_a_day() {
        assert_eq!(
            rules(""),
            Ok(ShopsysRules {
                match_field: MatchField::Catnum,
                flag: Flag::SellingDenied,
                thresholds: Thresholds {
                    deny_at: 0,
                    allow_at: 1
                },
                catalogue_refresh: DEFAULT_CATALOGUE_REFRESH,
            })
        );
    }

    #[test]
    fn the_contracts_example_table_is_read() {
        let read = rules(
            "match = \"ean\"\nflag = \"hidden\"\ndeny_at = 2\nallow_at = 5\ncatalogue_refresh = \"6h\"\nrequests_per_minute = 30\nsafety_stock = 1\nmax_quantity = 9",
        )
        .expect("valid");
        assert_eq!(
            (read.match_field, read.flag),
            (MatchField::Ean, Flag::Hidden)
        );
        assert_eq!(
            read.thresholds,
            Thresholds {
                deny_at: 2,
                allow_at: 5
            }
        );
        assert_eq!(read.catalogue_refresh, Duration::from_secs(6 * 3600));
        let partno = rules("match = \"partno\"").expect("valid");
        assert_eq!(partno.match_field, MatchField::Partno);
    }

    #[test]
    fn allow_at_must_be_above_deny_at() {
        let error = rules("deny_at = 3\nallow_at = 3").expect_err("equal");
        assert!(
            error.starts_with("allow_at: must be above deny_at (3)"),
            "{error}"
        );
        assert!(rules("deny_at = 3\nallow_at = 1").is_err());
        let only_deny = rules("deny_at = 3").expect("allow_at follows deny_at");
        assert_eq!(only_deny.thresholds.allow_at, 4);
        assert!(rules("deny_at = -1").is_err_and(|e| e.starts_with("deny_at:")));
    }

    #[test]
    fn match_and_flag_take_only_their_documented_values() {
        assert!(rules("match = \"sku\"").is_err());
        assert!(rules("match = \"CATNUM\"").is_err());
        assert!(rules("flag = \"selling_denied\"").is_err());
        assert!(rules("flag = \"sellingDenied\"").is_ok());
    }

    #[test]
    fn unknown_and_inapplicable_keys_are_errors() {
        let typo = table("alow_at = 3").expect_err("unknown key");
        assert!(typo.contains("alow_at"), "{typo}");
        let batch = rules("batch_size = 100").expect_err("not applicable");
        assert!(batch.starts_with("batch_size: does not apply"), "{batch}");
    }

    #[test]
    fn catalogue_refresh_is_a_duration_of_a_minute_or_more() {
        assert!(rules("catalogue_refresh = \"soon\"").is_err_and(|e| e.contains("\"soon\"")));
        assert!(rules("catalogue_refresh = \"10s\"").is_err());
        assert!(rules("catalogue_refresh = \"1m\"").is_ok());
    }

    #[test]
    fn an_inline_secret_stays_out_of_debug() {
        let read = table("client_secret = \"hunter2-very-secret\"").expect("read");
        assert!(!format!("{read:?}").contains("hunter2"));
    }
}
