//! What the mapping holds, as the engine keeps it: the SKUs in conflict (the mapping's own, and
//! those two records of one answer named), and the sizes that wait for a catalogue.
//!
//! A collision is found only in an answer, and an answer that is the same as the one recorded
//! is not read again (`services::answer`): so collisions are kept in memory per source, and
//! written with the conflicts (`kind = conflict`, `endpoint` the source) so that a restart
//! holds them again before any new answer comes.

use std::collections::{BTreeMap, HashSet};

use super::Mapper;
use crate::store::mapping::Note;

impl Mapper {
    /// Takes what `source`'s newest answer showed: SKUs two of its records named.
    pub(super) fn set_collisions(&self, source: &str, found: BTreeMap<String, String>) {
        let mut all = self.collisions.lock().unwrap_or_else(|p| p.into_inner());
        let same = match all.get(source) {
            None => found.is_empty(),
            Some(before) => *before == found,
        };
        if same {
            return;
        }
        if found.is_empty() {
            all.remove(source);
        } else {
            all.insert(source.to_owned(), found);
        }
        self.changed();
    }

    /// Takes the collisions recorded before a restart: the conflict notes that name a source
    /// (the mapping's own conflicts name none).
    pub fn restore_collisions(&self, notes: &[Note]) {
        let sources: HashSet<&str> = self
            .endpoints
            .iter()
            .filter(|e| e.role == crate::mapping::Role::Source)
            .map(|e| e.name.as_str())
            .collect();
        let mut all = self.collisions.lock().unwrap_or_else(|p| p.into_inner());
        for note in notes.iter().filter(|n| n.kind == "conflict") {
            if sources.contains(note.endpoint.as_str()) {
                all.entry(note.endpoint.clone())
                    .or_default()
                    .insert(note.sku.clone(), note.detail.clone());
            }
        }
        self.changed();
    }

    /// Every SKU two records of a source's last answer named.
    pub(super) fn collided(&self) -> Vec<String> {
        let all = self.collisions.lock().unwrap_or_else(|p| p.into_inner());
        all.values().flat_map(|skus| skus.keys().cloned()).collect()
    }

    /// The conflicts as `status` shows them: the mapping's own (no endpoint: they hold at
    /// every endpoint), then each source's collisions not among them, by SKU.
    pub(super) fn conflict_notes(&self, own: &BTreeMap<String, String>) -> Vec<Note> {
        let mut notes: Vec<Note> = {
            let all = self.collisions.lock().unwrap_or_else(|p| p.into_inner());
            all.iter()
                .flat_map(|(source, skus)| skus.iter().map(move |(sku, why)| (source, sku, why)))
                .filter(|(_, sku, _)| !own.contains_key(*sku))
                .map(|(source, sku, why)| Note {
                    kind: "conflict".into(),
                    sku: sku.clone(),
                    endpoint: source.clone(),
                    detail: why.clone(),
                })
                .collect()
        };
        notes.extend(own.iter().map(|(sku, detail)| Note {
            kind: "conflict".into(),
            sku: sku.clone(),
            endpoint: String::new(),
            detail: detail.clone(),
        }));
        notes.sort_by(|a, b| (&a.sku, &a.endpoint).cmp(&(&b.sku, &b.endpoint)));
        notes
    }

    /// The sizes held because a catalogue's barcodes were never read (`by_barcode`), one note
    /// each under its record name, for `status`: nothing once every catalogue was read.
    pub fn waiting_notes(&self) -> Vec<Note> {
        let parts = self.parts();
        if !self.waiting_for_catalogues(&parts) {
            return Vec::new();
        }
        let missing: Vec<&str> = self
            .catalogue_targets
            .iter()
            .filter(|t| !parts.catalogues.contains_key(*t))
            .map(String::as_str)
            .collect();
        let detail = format!(
            "the product list of {} (mapping.by_barcode)",
            missing.join(", ")
        );
        let mut notes: Vec<Note> = parts
            .sizes
            .iter()
            .flat_map(|(source, sizes)| {
                sizes.with_gtin.iter().map(|raw| Note {
                    kind: "waiting".into(),
                    sku: raw.clone(),
                    endpoint: source.clone(),
                    detail: detail.clone(),
                })
            })
            .collect();
        notes.sort_by(|a, b| (&a.endpoint, &a.sku).cmp(&(&b.endpoint, &b.sku)));
        notes
    }
}
