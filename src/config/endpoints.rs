//! `[sources.NAME]` and `[targets.NAME]`: their remotes, secrets, inputs and rules, and the one
//! check across them (no Hako feedback loop).

use std::collections::BTreeMap;

use super::checker::Checker;
use super::typed::suggest;
use super::{DEFAULT_BATCH_SIZE, SourceKind, SourceSpec, TargetKind, TargetSpec};
use crate::services::kinds;

pub(super) fn source_spec(check: &Checker, name: String, value: toml::Value) -> Option<SourceSpec> {
    let prefix = format!("sources.{name}");
    let (remote, kind) = kinds::source(check, &prefix, value)?;
    Some(SourceSpec { name, remote, kind })
}

/// `[targets.NAME]`; `sources` are the valid sources, `names` every source the file names
/// (an input naming a source that has errors of its own is not "unknown").
pub(super) fn target_spec(
    check: &Checker,
    name: String,
    value: toml::Value,
    sources: &[SourceSpec],
    names: &[&str],
) -> Option<TargetSpec> {
    let prefix = format!("targets.{name}");
    let (remote, common, kind) = kinds::target(check, &prefix, value)?;
    let by_name: BTreeMap<&str, usize> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let key = format!("{prefix}.inputs");
    if common.inputs.is_empty() {
        check.report(&key, "lists no source");
    }
    let mut inputs = Vec::new();
    for input in &common.inputs {
        match by_name.get(input.as_str()) {
            Some(index) if inputs.contains(index) => {
                check.report(&key, format!("lists source {input:?} twice"));
            }
            Some(&index) => inputs.push(index),
            None if names.contains(&input.as_str()) => {}
            None => {
                let hint = suggest(input, names.iter().copied())
                    .map(|n| format!("; did you mean {n:?}?"))
                    .unwrap_or_default();
                check.report(&key, format!("unknown source {input:?}{hint}"));
            }
        }
    }
    let batch_size = common.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if !(1..=10_000).contains(&batch_size) {
        check.report(
            format!("{prefix}.batch_size"),
            "must be between 1 and 10000",
        );
    }
    let safety_stock = common.safety_stock.unwrap_or(0);
    if safety_stock < 0 {
        check.report(format!("{prefix}.safety_stock"), "must not be negative");
    }
    if common.max_quantity.is_some_and(|m| m < 0) {
        check.report(format!("{prefix}.max_quantity"), "must not be negative");
    }
    Some(TargetSpec {
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
) {
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
                check.report(
                    format!("targets.{}.warehouse", target.name),
                    format!(
                        "writes to warehouse {warehouse:?} of the Hako account that sources.{} reads{how}: that is a feedback loop",
                        source.name
                    ),
                );
            }
        }
    }
}
