//! What `status` says is held, and why: SKUs in a mapping conflict (held at every target),
//! sizes waiting for a catalogue's barcodes (`mapping.by_barcode`), targets and sources the
//! mass-zero guard holds. A target with held SKUs is never called "in sync": its state is
//! `HELD n SKUs` (see [`TargetState::HeldSkus`]), and `--check` counts it as critical.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::store::db::Connection;
use serde::Serialize;

use super::mapping::MappingStatus;
use super::{SourceStatus, TargetState, TargetStatus};
use crate::config::TargetRules;
use crate::store::{self, StoreError};

/// How a source held by its mass-zero guard is recorded: its last error says so (see
/// `daemon::sources`).
const SOURCE_GUARD: &str = "held by the mass-zero guard";

/// One thing held.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    /// `mapping_conflict`, `waiting_for_catalogue`, `target_guard` or `source_guard`.
    pub kind: &'static str,
    /// The SKU, for a conflict.
    pub sku: Option<String>,
    /// The source or target it concerns (`None`: every target).
    pub endpoint: Option<String>,
    /// How many SKUs it holds (`None`: the whole endpoint).
    pub skus: Option<usize>,
    /// Why, in words.
    pub why: String,
}

/// Sizes waiting for a catalogue, per source: how many, and for which catalogue.
pub fn waiting(conn: &Connection) -> Result<BTreeMap<String, (usize, String)>, StoreError> {
    let (_, notes) = store::mapping::notes_of_kind(conn, "waiting", usize::MAX)?;
    let mut per_source: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for note in notes {
        let entry = per_source.entry(note.endpoint).or_insert((0, note.detail));
        entry.0 += 1;
    }
    Ok(per_source)
}

/// Everything held, and each target in sync but for held SKUs marked `HELD n SKUs`.
pub fn held(
    targets: &mut [TargetStatus],
    rules: &[TargetRules],
    sources: &[SourceStatus],
    mapping: &MappingStatus,
    waiting: &BTreeMap<String, (usize, String)>,
) -> Vec<Held> {
    let mut held: Vec<Held> = mapping
        .conflicts
        .iter()
        .map(|n| Held {
            kind: "mapping_conflict",
            sku: Some(n.sku.clone()),
            endpoint: None,
            skus: Some(1),
            why: format!("mapping conflict: {}", n.detail),
        })
        .collect();
    for (source, (count, catalogue)) in waiting {
        held.push(Held {
            kind: "waiting_for_catalogue",
            sku: None,
            endpoint: Some(source.clone()),
            skus: Some(*count),
            why: format!(
                "{count} {} with a barcode {} for {catalogue}: held, never pushed under a name it may lose",
                if *count == 1 { "size" } else { "sizes" },
                if *count == 1 { "waits" } else { "wait" },
            ),
        });
    }
    for t in targets.iter_mut() {
        if let Some(reason) = &t.held {
            held.push(guard("target_guard", &t.name, reason));
        }
        let inputs = rules.iter().find(|r| r.name == t.name).map(|r| &r.inputs);
        let waits: usize = inputs
            .into_iter()
            .flatten()
            .filter_map(|i| waiting.get(i).map(|(n, _)| n))
            .sum();
        let count = mapping.conflicts_total + waits;
        if count > 0 && t.state == TargetState::InSync {
            t.state = TargetState::HeldSkus(count);
            t.label = t.state.label();
        }
    }
    for s in sources {
        if let Some(e) = s.failing.as_deref().filter(|e| e.starts_with(SOURCE_GUARD)) {
            held.push(guard("source_guard", &s.name, e));
        }
    }
    held
}

fn guard(kind: &'static str, endpoint: &str, why: &str) -> Held {
    Held {
        kind,
        sku: None,
        endpoint: Some(endpoint.to_owned()),
        skus: None,
        why: why.to_owned(),
    }
}

/// The held lines of the text status; nothing when nothing is held.
pub fn render(out: &mut String, held: &[Held], conflicts_total: usize) {
    if held.is_empty() {
        return;
    }
    out.push_str("held:\n");
    if conflicts_total > 0 {
        let named: Vec<&str> = held.iter().filter_map(|h| h.sku.as_deref()).collect();
        let more = conflicts_total.saturating_sub(named.len());
        let _ = writeln!(
            out,
            "  {conflicts_total} SKU{} in a mapping conflict, held at every target: {}{} (see mapping)",
            if conflicts_total == 1 { "" } else { "s" },
            named.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    for h in held.iter().filter(|h| h.kind != "mapping_conflict") {
        let _ = writeln!(out, "  {}: {}", h.endpoint.as_deref().unwrap_or("-"), h.why);
    }
}

/// What `--check` says of held SKUs not already told by a target's state: the conflicts by
/// name (a few).
pub fn check_items(held: &[Held], conflicts_total: usize) -> Option<String> {
    if conflicts_total == 0 {
        return None;
    }
    let named: Vec<&str> = held
        .iter()
        .filter_map(|h| h.sku.as_deref())
        .take(3)
        .collect();
    let more = conflicts_total.saturating_sub(named.len());
    Some(format!(
        "mapping conflict {}{}",
        named.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    ))
}
