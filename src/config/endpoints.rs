//! `[sources.NAME]` and `[targets.NAME]`: their remotes, secrets, inputs and rules, and the one
//! check across them (no Hako feedback loop).

use std::collections::BTreeMap;

use super::checker::Checker;
use super::raw::{RawSource, RawTarget};
use super::{
    ConfigError, DEFAULT_BATCH_SIZE, DEFAULT_REQUESTS_PER_MINUTE, HAKO_REQUESTS_PER_MINUTE,
    SourceKind, SourceSpec, TargetKind, TargetSpec,
};

pub(super) fn source_spec(
    check: &Checker,
    name: String,
    raw: RawSource,
) -> Result<SourceSpec, ConfigError> {
    let prefix = format!("sources.{name}");
    let (remote, kind) = match raw {
        RawSource::Hako(s) => {
            let remote = check.remote(
                &prefix,
                &s.base_url,
                s.requests_per_minute,
                HAKO_REQUESTS_PER_MINUTE,
            )?;
            let bad_list = s
                .warehouses
                .as_ref()
                .is_some_and(|list| list.is_empty() || list.iter().any(|w| w.trim().is_empty()));
            if bad_list {
                return Err(check.err(
                    format!("{prefix}.warehouses"),
                    "must list warehouse ids; leave it out to read every warehouse",
                ));
            }
            let api_key = check.secret(&prefix, "api_key", s.api_key, s.api_key_file)?;
            (
                remote,
                SourceKind::Hako {
                    api_key,
                    warehouses: s.warehouses,
                },
            )
        }
        RawSource::EndlessAisles(s) => {
            let remote = check.remote(
                &prefix,
                &s.base_url,
                s.requests_per_minute,
                DEFAULT_REQUESTS_PER_MINUTE,
            )?;
            let token = check.secret(&prefix, "token", s.token, s.token_file)?;
            (
                remote,
                SourceKind::EndlessAisles {
                    token,
                    sku_prefix: s.sku_prefix.unwrap_or_default(),
                },
            )
        }
    };
    Ok(SourceSpec { name, remote, kind })
}

/// The settings every target kind shares, checked in one place.
struct Common {
    inputs: Vec<String>,
    batch_size: Option<usize>,
    safety_stock: Option<i64>,
    max_quantity: Option<i64>,
}

pub(super) fn target_spec(
    check: &Checker,
    name: String,
    raw: RawTarget,
    sources: &[SourceSpec],
) -> Result<TargetSpec, ConfigError> {
    let prefix = format!("targets.{name}");
    let (remote, common, kind) = match raw {
        RawTarget::Hardtofind(t) => {
            let remote = check.remote(
                &prefix,
                &t.base_url,
                t.requests_per_minute,
                DEFAULT_REQUESTS_PER_MINUTE,
            )?;
            if t.username.trim().is_empty() {
                return Err(check.err(format!("{prefix}.username"), "is empty"));
            }
            let password = check.secret(&prefix, "password", t.password, t.password_file)?;
            let common = Common {
                inputs: t.inputs,
                batch_size: t.batch_size,
                safety_stock: t.safety_stock,
                max_quantity: t.max_quantity,
            };
            (
                remote,
                common,
                TargetKind::Hardtofind {
                    username: t.username,
                    password,
                },
            )
        }
        RawTarget::Hako(t) => {
            let remote = check.remote(
                &prefix,
                &t.base_url,
                t.requests_per_minute,
                HAKO_REQUESTS_PER_MINUTE,
            )?;
            if t.warehouse.trim().is_empty() {
                return Err(check.err(format!("{prefix}.warehouse"), "is empty"));
            }
            let api_key = check.secret(&prefix, "api_key", t.api_key, t.api_key_file)?;
            let common = Common {
                inputs: t.inputs,
                batch_size: t.batch_size,
                safety_stock: t.safety_stock,
                max_quantity: t.max_quantity,
            };
            (
                remote,
                common,
                TargetKind::Hako {
                    api_key,
                    warehouse: t.warehouse,
                },
            )
        }
    };
    let by_name: BTreeMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    if common.inputs.is_empty() {
        return Err(check.err(format!("{prefix}.inputs"), "lists no source"));
    }
    let mut inputs = Vec::new();
    for input in &common.inputs {
        let Some(&index) = by_name.get(input.as_str()) else {
            return Err(check.err(
                format!("{prefix}.inputs"),
                format!("unknown source {input:?}"),
            ));
        };
        if inputs.contains(&index) {
            return Err(check.err(
                format!("{prefix}.inputs"),
                format!("lists source {input:?} twice"),
            ));
        }
        inputs.push(index);
    }
    let batch_size = common.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if !(1..=10_000).contains(&batch_size) {
        return Err(check.err(
            format!("{prefix}.batch_size"),
            "must be between 1 and 10000",
        ));
    }
    let safety_stock = common.safety_stock.unwrap_or(0);
    if safety_stock < 0 {
        return Err(check.err(format!("{prefix}.safety_stock"), "must not be negative"));
    }
    if common.max_quantity.is_some_and(|m| m < 0) {
        return Err(check.err(format!("{prefix}.max_quantity"), "must not be negative"));
    }
    Ok(TargetSpec {
        name,
        remote,
        inputs,
        batch_size,
        safety_stock,
        max_quantity: common.max_quantity,
        kind,
    })
}

/// A Hako target writing to a warehouse that a Hako source of the same account reads would feed
/// its own output back as input, growing stock every cycle.
pub(super) fn check_feedback_loops(
    check: &Checker,
    sources: &[SourceSpec],
    targets: &[TargetSpec],
) -> Result<(), ConfigError> {
    for target in targets {
        let TargetKind::Hako { warehouse, .. } = &target.kind else {
            continue;
        };
        let writes = target.identity();
        for source in sources {
            let SourceKind::Hako { warehouses, .. } = &source.kind else {
                continue;
            };
            // Compared canonically: `localhost` and `127.0.0.1` are one Hako account.
            if !source.identity().same_account(&writes) {
                continue;
            }
            let reads_it = warehouses
                .as_ref()
                .is_none_or(|list| list.contains(warehouse));
            if reads_it {
                let how = if warehouses.is_none() {
                    " (it reads every warehouse; list the ones to read in its warehouses)"
                } else {
                    ""
                };
                return Err(check.err(
                    format!("targets.{}.warehouse", target.name),
                    format!(
                        "writes to warehouse {warehouse:?} of the Hako account that sources.{} reads{how}: that is a feedback loop",
                        source.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
