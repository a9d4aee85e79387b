//! `[relay]`: as written, and validated against the sources and order feeds it names.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::checker::Checker;
use super::{FeedSpec, SourceKind, SourceSpec};
use crate::services::endless_aisles::CancelMethod;

/// Endless Aisles' production host: orders placed there are filled for real.
pub const PRODUCTION_HOST: &str = "app.endlessaisles.io";

/// `[relay]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelay {
    /// `off` (default), `dry_run`, `approve` or `auto`.
    pub mode: Option<String>,
    /// The `[orders.NAME]` feed whose `READY` orders are relayed.
    pub from: Option<String>,
    /// The `[sources.NAME]` (type `endless_aisles`) whose account places the orders.
    pub to: Option<String>,
    /// Placing orders at the production host needs this true.
    pub allow_production: Option<bool>,
    /// The most orders placed in one cycle (default 10); the rest wait for the next.
    pub max_orders_per_cycle: Option<u32>,
    /// An order worth more than this (supplier's prices) waits for `relay approve`.
    pub max_order_value: Option<f64>,
    /// Tracking URL host → Hardtofind shipping provider name.
    pub carriers: Option<BTreeMap<String, String>>,
    /// The cancel forms to try, in order: `"put"`, `"get"` (default both, PUT first).
    pub cancel: Option<Vec<String>>,
    /// An order awaiting `relay approve` longer than this makes `status --check` warn
    /// (default a day). Read by `status` alone.
    pub approval_alert_after: Option<String>,
}

/// An order awaiting approval for a day is worth a warning: a paid order nobody placed.
pub const DEFAULT_APPROVAL_ALERT_AFTER: std::time::Duration =
    std::time::Duration::from_secs(24 * 3600);

/// What the relay does with an eligible order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing at all: no request is made.
    Off,
    /// Logs the order it would place; places nothing.
    DryRun,
    /// Places an order once `invsync relay approve ORDER` approved it.
    Approve,
    /// Places every eligible order.
    Auto,
}

impl Mode {
    /// As written in the file.
    pub fn word(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DryRun => "dry_run",
            Mode::Approve => "approve",
            Mode::Auto => "auto",
        }
    }
}

/// `[relay]`, validated.
#[derive(Debug, Clone)]
pub struct RelaySpec {
    /// What it does.
    pub mode: Mode,
    /// Index into `Config::feeds`.
    pub from: usize,
    /// Index into `Config::sources` (an Endless Aisles source).
    pub to: usize,
    /// The most orders placed per cycle.
    pub max_orders_per_cycle: usize,
    /// The value above which an order waits for approval.
    pub max_order_value: Option<f64>,
    /// Tracking host (lower case) → provider name.
    pub carriers: BTreeMap<String, String>,
    /// Cancel forms, in order.
    pub cancel: Vec<CancelMethod>,
}

/// Ten orders a cycle: a runaway (a feed gone mad, a bug) costs ten orders, not a thousand.
const DEFAULT_MAX_ORDERS_PER_CYCLE: u32 = 10;

/// Checks `[relay]`, recording every error in `check`; `None` when absent or wrong.
///
/// `written` are the names of every `[sources.NAME]` and `[orders.NAME]` in the file: one that
/// failed its own checks is not also called unknown here. With `mode = "off"` the names it gives
/// are not held against it (a relay switched off names nothing it uses).
pub fn relay(
    check: &Checker,
    value: Option<toml::Value>,
    sources: &[SourceSpec],
    feeds: &[FeedSpec],
    written: &[&str],
) -> Option<RelaySpec> {
    let value = value?;
    let toml::Value::Table(table) = value else {
        check.report("relay", "must be a table: [relay]");
        return None;
    };
    let raw: RawRelay = check.table("relay", table)?;
    let mode = match raw.mode.as_deref().map(str::trim) {
        None | Some("off") => Some(Mode::Off),
        Some("dry_run") => Some(Mode::DryRun),
        Some("approve") => Some(Mode::Approve),
        Some("auto") => Some(Mode::Auto),
        Some(other) => {
            check.report(
                "relay.mode",
                format!("{other:?} is not one of \"off\", \"dry_run\", \"approve\", \"auto\""),
            );
            None
        }
    };
    let off = matches!(mode, Some(Mode::Off));
    // Said only when it is this table's mistake: not with the relay off, and not for a name
    // whose own table has errors (those are said there).
    let report = |key: &str, name: Option<&str>, message: String| {
        if !off && name.is_none_or(|n| !written.contains(&n)) {
            check.report(key, message);
        }
    };
    let from = match raw.from.as_deref() {
        None => {
            report(
                "relay.from",
                None,
                "missing; name an [orders.NAME] feed".into(),
            );
            None
        }
        Some(name) => match feeds.iter().position(|f| f.name == name) {
            Some(i) => Some(i),
            None => {
                report(
                    "relay.from",
                    Some(name),
                    format!("unknown order feed {name:?}"),
                );
                None
            }
        },
    };
    let to = match raw.to.as_deref() {
        None => {
            let message = "missing; name an endless_aisles [sources.NAME]";
            report("relay.to", None, message.into());
            None
        }
        Some(name) => match sources.iter().position(|s| s.name == name) {
            Some(i) if matches!(sources[i].kind, SourceKind::EndlessAisles(_)) => Some(i),
            Some(_) => {
                let message = format!("source {name:?} is not of type \"endless_aisles\"");
                report("relay.to", None, message);
                None
            }
            None => {
                report("relay.to", Some(name), format!("unknown source {name:?}"));
                None
            }
        },
    };
    let places = matches!(mode, Some(Mode::Approve | Mode::Auto));
    if let Some(i) = to
        && places
        && !raw.allow_production.unwrap_or(false)
        && is_production(&sources[i].remote.base_url)
    {
        check.report(
            "relay.allow_production",
            format!(
                "sources.{} is Endless Aisles' production ({PRODUCTION_HOST}), where orders are filled for real: set allow_production = true to place them there",
                sources[i].name
            ),
        );
    }
    let max_orders_per_cycle = match raw.max_orders_per_cycle {
        Some(0) => {
            check.report("relay.max_orders_per_cycle", "must be at least 1");
            None
        }
        n => Some(n.unwrap_or(DEFAULT_MAX_ORDERS_PER_CYCLE) as usize),
    };
    if let Some(text) = raw.approval_alert_after.as_deref() {
        check.keep(check.duration(
            "relay.approval_alert_after",
            Some(text),
            DEFAULT_APPROVAL_ALERT_AFTER,
        ));
    }
    if let Some(value) = raw.max_order_value
        && !(value.is_finite() && value > 0.0)
    {
        check.report("relay.max_order_value", "must be a positive amount");
    }
    let mut carriers = BTreeMap::new();
    for (host, name) in raw.carriers.unwrap_or_default() {
        let key = host.trim().trim_start_matches("www.").to_ascii_lowercase();
        if key.is_empty() || key.contains('/') || name.trim().is_empty() {
            check.report(
                format!("relay.carriers.{host}"),
                "write a host name and a provider name, e.g. \"fedex.com\" = \"FedEx\"",
            );
            continue;
        }
        carriers.insert(key, name.trim().to_owned());
    }
    let cancel = match raw.cancel {
        None => Some(vec![CancelMethod::Put, CancelMethod::Get]),
        Some(list) if list.is_empty() => {
            check.report("relay.cancel", "name at least one of \"put\", \"get\"");
            None
        }
        Some(list) => {
            let parsed: Result<Vec<CancelMethod>, String> =
                list.iter().map(|m| m.trim().parse()).collect();
            parsed.map_err(|e| check.report("relay.cancel", e)).ok()
        }
    };
    Some(RelaySpec {
        mode: mode?,
        from: from?,
        to: to?,
        max_orders_per_cycle: max_orders_per_cycle?,
        max_order_value: raw.max_order_value,
        carriers,
        cancel: cancel?,
    })
}

/// Whether `base_url` is Endless Aisles' production host.
fn is_production(base_url: &str) -> bool {
    url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|h| h == PRODUCTION_HOST)
}
