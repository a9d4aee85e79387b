//! What the engine keeps in the database for the mapping, and reads back at start: the notes
//! `status` shows (keys, conflicts, sizes that cannot be sold), the parts a restart needs
//! (Endless Aisles products, catalogues' barcodes), and the acknowledgements a new key voids.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Mapper;
use crate::mapping::Mapping;
use crate::plan::ledger::SkuTable;
use crate::store::mapping::Note;
use crate::store::{self, Store, StoreError};
use crate::target::TargetSlot;

/// The mapping's notes as last written by this engine, to write only what changed (`None`:
/// not yet, so the first cycle replaces whatever an earlier configuration left).
#[derive(Default)]
pub struct WrittenNotes {
    /// The mapper's version whose keys were written.
    keys: Option<u64>,
    conflicts: Option<Vec<store::mapping::Note>>,
    unsellable: Option<Vec<store::mapping::Note>>,
    /// Sizes held until a catalogue's barcodes are read.
    waiting: Option<Vec<store::mapping::Note>>,
}

impl WrittenNotes {
    /// Nothing written yet by this engine; the keys of mapper version `keys` are recorded
    /// already (see [`forget_rekeyed`]).
    pub fn with_keys(keys: Option<u64>) -> WrittenNotes {
        WrittenNotes {
            keys,
            ..WrittenNotes::default()
        }
    }
}

/// Brings what `status` shows of the mapping up to date: the conflicts (which depend on
/// the SKUs known), unsellable sizes and sizes waiting for a catalogue each cycle when they
/// changed, every key when the
/// mapping was rebuilt. Nothing at all without a mapping or products.
pub async fn write(
    store: &Store,
    mapper: &Mapper,
    names: &RwLock<SkuTable>,
    notes: &tokio::sync::Mutex<WrittenNotes>,
) -> Result<(), StoreError> {
    let mut written = notes.lock().await;
    let (conflicts, unsellable) = {
        let names = names.read().unwrap_or_else(|p| p.into_inner());
        mapper.notes(&names)
    };
    let version = mapper.version();
    let keys = (written.keys != Some(version))
        .then(|| (mapper.key_notes(), fingerprint(&mapper.current())));
    let fresh = (written.conflicts.as_ref() != Some(&conflicts)).then(|| conflicts.clone());
    let sold = (written.unsellable.as_ref() != Some(&unsellable)).then(|| unsellable.clone());
    let waiting = mapper.waiting_notes();
    let waits = (written.waiting.as_ref() != Some(&waiting)).then(|| waiting.clone());
    if keys.is_none() && fresh.is_none() && sold.is_none() && waits.is_none() {
        return Ok(());
    }
    store
        .call(move |c| {
            if let Some((keys, print)) = keys {
                store::mapping::replace_notes(c, "key", None, &keys)?;
                let print = Note {
                    kind: FINGERPRINT.into(),
                    sku: String::new(),
                    endpoint: String::new(),
                    detail: print,
                };
                store::mapping::replace_notes(c, FINGERPRINT, None, &[print])?;
            }
            if let Some(conflicts) = fresh {
                store::mapping::replace_notes(c, "conflict", None, &conflicts)?;
            }
            if let Some(unsellable) = sold {
                store::mapping::replace_notes(c, "unsellable", None, &unsellable)?;
            }
            if let Some(waiting) = waits {
                store::mapping::replace_notes(c, "waiting", None, &waiting)?;
            }
            Ok(())
        })
        .await?;
    let known = written.conflicts.take().unwrap_or_default();
    for (sku, why) in conflicts.iter().map(|n| (&n.sku, &n.detail)) {
        if !known.iter().any(|n| &n.sku == sku) {
            tracing::error!(sku = %sku, why = %why, "SKU mapping conflict: this SKU is held at every target at its last acknowledged quantity until the mapping says one thing");
        }
    }
    *written = WrittenNotes {
        keys: Some(version),
        conflicts: Some(conflicts),
        unsellable: Some(unsellable),
        waiting: Some(waiting),
    };
    Ok(())
}

/// What the mapping is made of besides the file, as last recorded: each Endless Aisles source's
/// products, the SKUs sources' answers named twice, and each catalogue's barcodes.
pub async fn restore_parts(
    store: &Store,
    mapper: &Arc<Mapper>,
    sources: Vec<(String, i64)>,
    catalogues: Vec<(String, i64)>,
) -> Result<(), StoreError> {
    for (name, id) in sources {
        if let Some((sizes, at)) = store
            .call(move |c| store::mapping::load_sizes(c, id))
            .await?
        {
            mapper.set_sizes(&name, &sizes, at);
        }
    }
    // Collisions were found in answers that are not read again while they stay the same.
    let conflicts = store
        .call(|c| store::mapping::notes_of_kind(c, "conflict", usize::MAX))
        .await?
        .1;
    mapper.restore_collisions(&conflicts);
    if mapper.by_barcode() {
        for (name, id) in catalogues {
            if let Some(pairs) = store
                .call(move |c| store::mapping::load_barcodes(c, id))
                .await?
            {
                mapper.set_catalogue(&name, pairs);
            }
        }
    }
    Ok(())
}

/// Voids the acknowledgements of SKUs whose key at a target changed since the keys were last
/// recorded (a new mapping file): they are pushed again, under their new key.
///
/// Answers whether the keys recorded are those of the mapping in force (their fingerprint
/// matches): then nothing was read, nothing is voided, and the keys need not be written again.
/// A million-line file thus costs a hash at start, not a million rows read and rewritten.
/// Whether the keys recorded for `status` are those of the mapping in force (else
/// [`forget_rekeyed`] has acknowledgements to void).
pub async fn keys_recorded(store: &Store, mapper: &Mapper) -> Result<bool, StoreError> {
    let current = mapper.fingerprint();
    let recorded = store
        .call(|c| store::mapping::notes_of_kind(c, FINGERPRINT, 1))
        .await?
        .1;
    Ok(recorded.first().map(|n| n.detail.as_str()) == Some(current.as_str()))
}

pub async fn forget_rekeyed(
    store: &Store,
    mapper: &Mapper,
    targets: &[Arc<tokio::sync::Mutex<TargetSlot>>],
    skus: &crate::plan::ledger::SkuTable,
    read_only: bool,
) -> Result<bool, StoreError> {
    let current = fingerprint(&mapper.current());
    let recorded = store
        .call(|c| store::mapping::notes_of_kind(c, FINGERPRINT, 1))
        .await?
        .1;
    if recorded.first().map(|n| n.detail.as_str()) == Some(current.as_str()) {
        return Ok(true);
    }
    let before = store
        .call(|c| store::mapping::notes_of_kind(c, "key", usize::MAX))
        .await?
        .1;
    let mut names = Vec::new();
    for target in targets {
        names.push(target.lock().await.name.clone());
    }
    let rekeyed = rekeyed(&before, &mapper.current(), &names);
    if rekeyed.is_empty() {
        return Ok(false);
    }
    for target in targets {
        let mut slot = target.lock().await;
        let void: Vec<(crate::plan::ledger::SkuId, i64)> = rekeyed
            .iter()
            .filter(|(t, _)| *t == slot.name)
            .filter_map(|(_, sku)| skus.get(sku))
            .filter(|&id| slot.acked.get(id).is_some())
            .map(|id| (id, 0))
            .collect();
        if void.is_empty() {
            continue;
        }
        for &(id, _) in &void {
            slot.acked.clear(id);
        }
        tracing::info!(target = %slot.name, skus = void.len(), "the mapping gives these SKUs a new key here; they are pushed again under it");
        if !read_only {
            let (id, chunks) = (slot.id, store::quantity_chunks_after(&slot.acked, &void));
            store
                .call(move |c| store::write_quantity_chunks(c, store::Side::Target, id, &chunks))
                .await?;
        }
    }
    Ok(false)
}

/// The `(target, SKU)` pairs whose key at a target differs from the one recorded in `before`
/// (the keys as last written): what a target acknowledged under the old key says nothing of
/// the new one, so those acknowledgements are void and the SKUs pushed again. A SKU in conflict
/// is left out: it is held at what it acknowledged, and voided once the conflict is resolved.
pub fn rekeyed(before: &[Note], mapping: &Mapping, targets: &[String]) -> Vec<(String, String)> {
    let key = |detail: &str| {
        detail
            .rsplit_once(" (")
            .map_or(detail, |(key, _)| key)
            .to_owned()
    };
    let old: HashMap<(&str, &str), String> = before
        .iter()
        .filter(|n| targets.contains(&n.endpoint))
        .map(|n| ((n.endpoint.as_str(), n.sku.as_str()), key(&n.detail)))
        .collect();
    let new: HashMap<(&str, &str), &str> = mapping
        .links()
        .filter(|(_, endpoint, _, _)| targets.iter().any(|t| t == endpoint))
        .map(|(sku, endpoint, key, _)| ((endpoint, sku), key))
        .collect();
    let mut changed: Vec<(String, String)> = old
        .iter()
        .filter(|(pair, key)| new.get(*pair) != Some(&key.as_str()))
        .map(|((endpoint, sku), _)| ((*endpoint).to_owned(), (*sku).to_owned()))
        .chain(
            new.iter()
                .filter(|(pair, key)| old.get(*pair).map(String::as_str) != Some(**key))
                .map(|((endpoint, sku), _)| ((*endpoint).to_owned(), (*sku).to_owned())),
        )
        .collect();
    changed.retain(|(endpoint, sku)| mapping.key_at(endpoint, sku).is_some());
    changed.sort();
    changed.dedup();
    changed
}

/// The kind of the one note that holds the fingerprint of the keys recorded.
const FINGERPRINT: &str = "fingerprint";

/// A fingerprint of every link of `mapping` (SKU, endpoint, key and origin), whatever their
/// order: equal fingerprints, equal key notes.
pub(super) fn fingerprint(mapping: &Mapping) -> String {
    use std::hash::{Hash, Hasher};
    let (mut sum, mut count) = (0u64, 0u64);
    for (sku, endpoint, key, origin) in mapping.links() {
        // SipHash with fixed keys: the same in every process.
        let mut hasher = std::hash::DefaultHasher::new();
        (sku, endpoint, key, origin.to_string()).hash(&mut hasher);
        sum = sum.wrapping_add(hasher.finish());
        count += 1;
    }
    format!("{count}:{sum:016x}")
}
