//! `[targets.NAME]` with `type = "hardtofind"`: as written, and validated.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::order_state::{DEFAULT_RESERVE, OrderState};
use crate::plan::reservations::{FeedRules, ReleaseMode};
use crate::services::table::{
    Account, Check, DEFAULT_REQUESTS_PER_MINUTE, Remote, TargetCommon, TargetTable,
};
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
    check: &impl Check,
    prefix: &str,
    raw: RawTarget,
) -> Option<(Remote, TargetCommon, TargetSettings)> {
    let remote = check.target_remote(prefix, &raw, DEFAULT_REQUESTS_PER_MINUTE);
    let common = raw.common();
    if raw.username.trim().is_empty() {
        check.report(format!("{prefix}.username"), "is empty".to_owned());
    }
    let password = check.secret(prefix, "password", raw.password, raw.password_file);
    let settings = TargetSettings {
        username: raw.username,
        password: password?,
    };
    Some((remote?, common, settings))
}

crate::target_table!(RawTarget);

/// A Hardtofind order feed as written (`[orders.NAME] type = "hardtofind"`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeed {
    /// The service root.
    pub base_url: String,
    /// The store owner's login (the same account as a Hardtofind target shares its token).
    pub username: String,
    /// Its password, inline…
    pub password: Option<SecretString>,
    /// …or in a file.
    pub password_file: Option<PathBuf>,
    /// The order states that hold stock; default `["READY", "PROCESSED"]`.
    pub reserve: Option<Vec<String>>,
    /// `"absorb"` (default), `"status"` or `"none"`.
    pub release: Option<String>,
    /// How long a shipped order's remainder waits for the sources to show it, e.g. `"30m"`.
    pub settle_after: Option<String>,
    /// The account's budget; none is documented, default 60.
    pub requests_per_minute: Option<u32>,
}

/// A Hardtofind order feed, validated.
#[derive(Debug)]
pub struct FeedSettings {
    /// Login for `POST /authenticate`.
    pub username: String,
    /// Its password.
    pub password: SecretString,
    /// The states in which an order holds stock.
    pub reserve: Vec<OrderState>,
    /// When a reservation ends.
    pub rules: FeedRules,
}

/// Checks a Hardtofind order feed, recording every error in `check`.
pub fn feed(check: &impl Check, prefix: &str, raw: RawFeed) -> Option<(Remote, FeedSettings)> {
    let remote = check.remote(
        prefix,
        &raw.base_url,
        raw.requests_per_minute,
        DEFAULT_REQUESTS_PER_MINUTE,
    );
    let mut ok = true;
    if raw.username.trim().is_empty() {
        check.report(format!("{prefix}.username"), "is empty".to_owned());
        ok = false;
    }
    let password = check.secret(prefix, "password", raw.password, raw.password_file);
    let mut rules = FeedRules::default();
    let mut reserve = DEFAULT_RESERVE.to_vec();
    if let Some(states) = raw.reserve {
        let mut listed = Vec::new();
        for state in &states {
            let Some(parsed) = OrderState::parse(state) else {
                check.report(
                    format!("{prefix}.reserve"),
                    format!("unknown order state {state:?}; expected READY, PROCESSED, PENDING, …"),
                );
                ok = false;
                continue;
            };
            if matches!(parsed, OrderState::Cancelled | OrderState::Refunded) {
                check.report(
                    format!("{prefix}.reserve"),
                    format!("{state} is a final state: its orders hold no stock"),
                );
                ok = false;
                continue;
            }
            listed.push(parsed);
        }
        if states.is_empty() {
            check.report(format!("{prefix}.reserve"), "lists no state".to_owned());
            ok = false;
        }
        reserve = listed;
    }
    match raw.release.as_deref() {
        None | Some("absorb") => rules.release = ReleaseMode::Absorb,
        Some("status") => rules.release = ReleaseMode::Status,
        Some("none") => rules.release = ReleaseMode::None,
        Some(other) => {
            check.report(
                format!("{prefix}.release"),
                format!("{other:?} is not \"absorb\", \"status\" or \"none\""),
            );
            ok = false;
        }
    }
    let settle = check.duration(
        &format!("{prefix}.settle_after"),
        raw.settle_after.as_deref(),
        std::time::Duration::from_secs(30 * 60),
    );
    if let Some(settle) = settle {
        rules.settle_after_ms = i64::try_from(settle.as_millis()).unwrap_or(i64::MAX);
    }
    let settings = FeedSettings {
        username: raw.username,
        password: password?,
        reserve,
        rules,
    };
    (ok && settle.is_some()).then_some(())?;
    Some((remote?, settings))
}
