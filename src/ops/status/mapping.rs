//! What `status` shows of the SKU mapping: the SKUs in conflict (held at every target), the
//! SKUs a target cannot map (a catalogue SKU with no product), and those a catalogue matches
//! twice (flagged and cleared on every product). Read from the notes
//! the daemon records (`store::mapping`); empty without a mapping or a catalogue.

use std::fmt::Write as _;

use crate::store::db::Connection;
use serde::Serialize;

use crate::store::{self, StoreError};

/// How many SKUs in conflict `status` lists by name: each is worth a look.
const LISTED: usize = 20;
/// How many unmapped SKUs it lists: a catalogue that reads a large source may miss many.
const LISTED_UNMAPPED: usize = 5;

/// The mapping's part of `status`.
#[derive(Debug, Default, Serialize)]
pub struct MappingStatus {
    /// SKUs in conflict: held at every target at what it last acknowledged.
    pub conflicts: Vec<MappingNote>,
    /// How many there are in all.
    pub conflicts_total: usize,
    /// SKUs a target of the configuration cannot map.
    pub unmapped: Vec<MappingNote>,
    /// How many there are in all (each catalogue lists at most 1,000).
    pub unmapped_total: usize,
    /// SKUs that two or more products of a catalogue match: flagged and cleared on each.
    pub matched_twice: Vec<MappingNote>,
    /// How many there are in all.
    pub matched_twice_total: usize,
}

/// One SKU and what is wrong with its mapping.
#[derive(Debug, Serialize)]
pub struct MappingNote {
    /// The canonical SKU.
    pub sku: String,
    /// The target it concerns (`None`: every endpoint).
    pub target: Option<String>,
    /// Why.
    pub detail: String,
}

fn note(n: store::mapping::Note) -> MappingNote {
    MappingNote {
        sku: n.sku,
        target: (!n.endpoint.is_empty()).then_some(n.endpoint),
        detail: n.detail,
    }
}

/// Reads the conflicts and the SKUs that the configured `targets` cannot map.
pub fn read(conn: &Connection, targets: &[String]) -> Result<MappingStatus, StoreError> {
    let (conflicts_total, conflicts) = store::mapping::notes_of_kind(conn, "conflict", LISTED)?;
    let (_, unmapped) = store::mapping::notes_of_kind(conn, "unmapped", usize::MAX)?;
    let of_targets = |notes: Vec<store::mapping::Note>| -> Vec<MappingNote> {
        (notes.into_iter())
            .filter(|n| targets.contains(&n.endpoint))
            .map(note)
            .collect()
    };
    let unmapped = of_targets(unmapped);
    let (_, twice) = store::mapping::notes_of_kind(conn, "matched_twice", usize::MAX)?;
    let twice = of_targets(twice);
    Ok(MappingStatus {
        conflicts: conflicts.into_iter().map(note).collect(),
        conflicts_total,
        unmapped_total: unmapped.len(),
        unmapped: unmapped.into_iter().take(LISTED_UNMAPPED).collect(),
        matched_twice_total: twice.len(),
        matched_twice: twice.into_iter().take(LISTED).collect(),
    })
}

/// The mapping's lines of the text status; nothing when all is well.
pub fn render(out: &mut String, mapping: &MappingStatus) {
    if mapping.conflicts_total == 0
        && mapping.unmapped_total == 0
        && mapping.matched_twice_total == 0
    {
        return;
    }
    out.push_str("mapping:\n");
    for n in &mapping.conflicts {
        let _ = writeln!(
            out,
            "  CONFLICT {}: {}; held at every target at what it last acknowledged",
            n.sku, n.detail
        );
    }
    more(
        out,
        mapping.conflicts_total,
        mapping.conflicts.len(),
        "conflicts",
    );
    for n in &mapping.unmapped {
        let target = n.target.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  unmapped at {target}: {}: {}", n.sku, n.detail);
    }
    more(
        out,
        mapping.unmapped_total,
        mapping.unmapped.len(),
        "unmapped SKUs",
    );
    for n in &mapping.matched_twice {
        let target = n.target.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  matched twice at {target}: {}: {}", n.sku, n.detail);
    }
    more(
        out,
        mapping.matched_twice_total,
        mapping.matched_twice.len(),
        "SKUs matched twice",
    );
}

fn more(out: &mut String, total: usize, shown: usize, what: &str) {
    if total > shown {
        let _ = writeln!(out, "  … and {} more {what}", total - shown);
    }
}
