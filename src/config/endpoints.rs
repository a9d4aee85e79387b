//! `[sources.NAME]` and `[targets.NAME]`: their remotes, secrets, inputs and rules, and the one
//! check across them (no Hako feedback loop).

use std::collections::BTreeMap;

use super::checker::Checker;
use super::kinds;
use super::{ConfigError, DEFAULT_BATCH_SIZE, SourceKind, SourceSpec, TargetKind, TargetSpec};

pub(super) fn source_spec(
    check: &Checker,
    name: String,
    value: config::Value,
) -> Result<SourceSpec, ConfigError> {
    let prefix = format!("sources.{name}");
    let (remote, kind) = kinds::source(check, &prefix, value)?;
    Ok(SourceSpec { name, remote, kind })
}

pub(super) fn target_spec(
    check: &Checker,
    name: String,
    value: config::Value,
    sources: &[SourceSpec],
) -> Result<TargetSpec, ConfigError> {
    let prefix = format!("targets.{name}");
    let (remote, common, kind) = kinds::target(check, &prefix, value)?;
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
        let TargetKind::Hako(hako) = &target.kind else {
            continue;
        };
        let (warehouse, writes) = (&hako.warehouse, target.identity());
        for source in sources {
            let SourceKind::Hako(hako) = &source.kind else {
                continue;
            };
            // Compared canonically: `localhost` and `127.0.0.1` are one Hako account.
            if !source.identity().same_account(&writes) {
                continue;
            }
            let warehouses = &hako.warehouses;
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
