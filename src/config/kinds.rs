//! The one place the configuration lists the kinds of service: `type = "…"` of
//! `[sources.NAME]` and `[targets.NAME]`, each typed and checked by its service's own
//! `config.rs`. A new service is a variant here and a folder under `services/`.

use crate::config::checker::Checker;
use crate::config::{Account, Remote, TargetCommon};
use crate::services::{endless_aisles, hako, hardtofind};

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
}

const SOURCE_TYPES: &[&str] = &["hako", "endless_aisles"];
const TARGET_TYPES: &[&str] = &["hardtofind", "hako"];

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
}

impl TargetKind {
    /// Its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Hardtofind(_) => "hardtofind",
            TargetKind::Hako(_) => "hako",
        }
    }

    /// Who it is at its service.
    pub fn account(&self) -> Account {
        match self {
            TargetKind::Hardtofind(t) => t.account(),
            TargetKind::Hako(t) => t.account(),
        }
    }

    /// The part of its service it writes, where one account has several (a Hako warehouse).
    pub fn place(&self) -> Option<String> {
        match self {
            TargetKind::Hako(t) => Some(t.warehouse.clone()),
            TargetKind::Hardtofind(_) => None,
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
