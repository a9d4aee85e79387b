//! The one place the configuration lists the kinds of service: `type = "…"` of
//! `[sources.NAME]` and `[targets.NAME]`, each typed and checked by its service's own
//! `config.rs`. A new service is a variant here and a folder under `services/`.

use secrecy::SecretString;

use crate::config::checker::Checker;
use crate::config::{Account, Remote, TargetCommon};
use crate::services::{endless_aisles, hako, hardtofind, shopsys};

/// Per-service settings of a source.
#[derive(Debug)]
pub enum SourceKind {
    /// Hako `GET /inventory`.
    Hako(hako::config::SourceSettings),
    /// Endless Aisles `GET /api/stock`.
    EndlessAisles(endless_aisles::config::SourceSettings),
}

/// Per-service settings of a target.
#[derive(Debug)]
pub enum TargetKind {
    /// Hardtofind `POST /batch`.
    Hardtofind(hardtofind::config::TargetSettings),
    /// Hako `PUT`/`POST /inventory` of one warehouse.
    Hako(hako::config::TargetSettings),
    /// The catalogue's availability flag, one `PATCH /api/v1/products/{uuid}` per change.
    Shopsys(shopsys::config::TargetSettings),
}

/// Per-service settings of an order feed.
#[derive(Debug)]
pub enum FeedKind {
    /// Hardtofind `GET /orders`.
    Hardtofind(hardtofind::config::FeedSettings),
}

impl FeedKind {
    /// Its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            FeedKind::Hardtofind(_) => "hardtofind",
        }
    }

    /// Who it is at its service: the same account as a target of that login shares its token
    /// and budget.
    pub fn account(&self) -> Account {
        match self {
            FeedKind::Hardtofind(f) => Account::Name(f.username.clone()),
        }
    }
}

const FEED_TYPES: &[&str] = &["hardtofind"];

/// Types and checks `[orders.NAME]` by its `type`.
pub(super) fn feed(
    check: &Checker,
    prefix: &str,
    value: toml::Value,
) -> Option<(Remote, FeedKind)> {
    let (_, rest) = check.kind_table(prefix, value, FEED_TYPES)?;
    let (remote, f) = hardtofind::config::feed(check, prefix, check.table(prefix, rest)?)?;
    Some((remote, FeedKind::Hardtofind(f)))
}

const SOURCE_TYPES: &[&str] = &["hako", "endless_aisles"];
const TARGET_TYPES: &[&str] = &["hardtofind", "hako", "shopsys"];

impl SourceKind {
    /// Its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Hako(_) => "hako",
            SourceKind::EndlessAisles(_) => "endless_aisles",
        }
    }

    /// Who it is at its service.
    pub fn account(&self) -> Account {
        match self {
            SourceKind::Hako(s) => s.account(),
            SourceKind::EndlessAisles(s) => s.account(),
        }
    }

    /// The secret it logs in with.
    pub fn credential(&self) -> SecretString {
        match self {
            SourceKind::Hako(s) => s.api_key.clone(),
            SourceKind::EndlessAisles(s) => s.token.clone(),
        }
    }
}

impl TargetKind {
    /// Its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Hardtofind(_) => "hardtofind",
            TargetKind::Hako(_) => "hako",
            TargetKind::Shopsys(_) => "shopsys",
        }
    }

    /// Who it is at its service.
    pub fn account(&self) -> Account {
        match self {
            TargetKind::Hardtofind(t) => t.account(),
            TargetKind::Hako(t) => t.account(),
            TargetKind::Shopsys(t) => t.account(),
        }
    }

    /// The secret it logs in with.
    pub fn credential(&self) -> SecretString {
        match self {
            TargetKind::Hardtofind(t) => t.password.clone(),
            TargetKind::Hako(t) => t.api_key.clone(),
            TargetKind::Shopsys(t) => t.client_secret.clone(),
        }
    }

    /// The part of its service it writes, where one account has several (a Hako warehouse).
    pub fn place(&self) -> Option<String> {
        match self {
            TargetKind::Hako(t) => Some(t.warehouse.clone()),
            TargetKind::Hardtofind(_) | TargetKind::Shopsys(_) => None,
        }
    }
}

/// Types and checks `[sources.NAME]` by its `type`.
pub(super) fn source(
    check: &Checker,
    prefix: &str,
    value: toml::Value,
) -> Option<(Remote, SourceKind)> {
    let (kind, rest) = check.kind_table(prefix, value, SOURCE_TYPES)?;
    Some(match kind.as_str() {
        "hako" => {
            let (remote, s) = hako::config::source(check, prefix, check.table(prefix, rest)?)?;
            (remote, SourceKind::Hako(s))
        }
        _ => {
            let raw = check.table(prefix, rest)?;
            let (remote, s) = endless_aisles::config::source(check, prefix, raw)?;
            (remote, SourceKind::EndlessAisles(s))
        }
    })
}

/// Types and checks `[targets.NAME]` by its `type`.
pub(super) fn target(
    check: &Checker,
    prefix: &str,
    value: toml::Value,
) -> Option<(Remote, TargetCommon, TargetKind)> {
    let (kind, rest) = check.kind_table(prefix, value, TARGET_TYPES)?;
    Some(match kind.as_str() {
        "hardtofind" => {
            let raw = check.table(prefix, rest)?;
            let (remote, common, t) = hardtofind::config::target(check, prefix, raw)?;
            (remote, common, TargetKind::Hardtofind(t))
        }
        "shopsys" => {
            let raw = check.table(prefix, rest)?;
            let (remote, common, t) = shopsys::config::target(check, prefix, raw)?;
            (remote, common, TargetKind::Shopsys(t))
        }
        _ => {
            let raw = check.table(prefix, rest)?;
            let (remote, common, t) = hako::config::target(check, prefix, raw)?;
            (remote, common, TargetKind::Hako(t))
        }
    })
}

/// A target's inputs and rules only, typed like [`target`] types them but without reading a
/// secret (for `status`).
pub(super) fn target_common(
    check: &Checker,
    prefix: &str,
    value: toml::Value,
) -> Option<TargetCommon> {
    let (kind, rest) = check.kind_table(prefix, value, TARGET_TYPES)?;
    Some(match kind.as_str() {
        "hardtofind" => {
            let t: hardtofind::config::RawTarget = check.table(prefix, rest)?;
            TargetCommon {
                inputs: t.inputs,
                batch_size: t.batch_size,
                safety_stock: t.safety_stock,
                max_quantity: t.max_quantity,
            }
        }
        "shopsys" => check
            .table::<shopsys::config::RawTarget>(prefix, rest)?
            .common(),
        _ => {
            let t: hako::config::RawTarget = check.table(prefix, rest)?;
            TargetCommon {
                inputs: t.inputs,
                batch_size: t.batch_size,
                safety_stock: t.safety_stock,
                max_quantity: t.max_quantity,
            }
        }
    })
}
