//! What the engine keeps in the database for the mapping, and reads back at start: the notes
//! `status` shows (barcodes' keys, conflicts, sizes that cannot be sold), the parts a restart
//! needs (Endless Aisles products, catalogues' barcodes), the file in force (see [`super::file`])
//! and the acknowledgements a new key voids.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use hashbrown::HashTable;

use super::Mapper;
use super::file::{Prepared, Proof};
use crate::mapping::{Aliases, Mapping};
use crate::plan::ledger::{SkuId, SkuTable};
use crate::store::mapping::Note;
use crate::store::{self, Store, StoreError};
use crate::target::TargetSlot;

/// The mapping's notes as last written by this engine, to write only what changed (`None`:
/// not yet, so the first cycle replaces whatever an earlier configuration left).
#[derive(Default)]
pub struct WrittenNotes {
    /// The mapper's version whose keys were written.
    keys: Option<u64>,
    /// The mapper's count of changes and the number of names the notes were worked out for:
    /// while both stay, nothing is worked out again.
    of: Option<(u64, usize)>,
    conflicts: Option<Vec<store::mapping::Note>>,
    unsellable: Option<Vec<store::mapping::Note>>,
    /// Sizes held until a catalogue's barcodes are read.
    waiting: Option<Vec<store::mapping::Note>>,
}

impl WrittenNotes {
    /// Nothing written yet by this engine; the keys of mapper version `keys` are recorded
    /// already (see [`keys_recorded`]).
    pub fn with_keys(keys: Option<u64>) -> WrittenNotes {
        WrittenNotes {
            keys,
            ..WrittenNotes::default()
        }
    }
}

/// Brings what `status` shows of the mapping up to date: the conflicts (which depend on
/// the SKUs known), unsellable sizes and sizes waiting for a catalogue when they changed, the
/// barcodes' keys when the mapping was rebuilt. Nothing is worked out while nothing they depend
/// on changed (the mapping, its parts, the collisions, the number of names), and nothing at all
/// without a mapping or products.
pub async fn write(
    store: &Store,
    mapper: &Mapper,
    names: &RwLock<SkuTable>,
    notes: &tokio::sync::Mutex<WrittenNotes>,
) -> Result<(), StoreError> {
    let mut written = notes.lock().await;
    let of = (
        mapper.changes(),
        names.read().unwrap_or_else(|p| p.into_inner()).len(),
    );
    if written.of == Some(of) {
        return Ok(());
    }
    let (conflicts, unsellable) = mapper.notes(names).await?;
    let version = mapper.version();
    let keys = if written.keys != Some(version) {
        Some((mapper.key_notes().await?, mapper.fingerprint()))
    } else {
        None
    };
    let fresh = (written.conflicts.as_ref() != Some(&conflicts)).then(|| conflicts.clone());
    let sold = (written.unsellable.as_ref() != Some(&unsellable)).then(|| unsellable.clone());
    let waiting = mapper.waiting_notes();
    let waits = (written.waiting.as_ref() != Some(&waiting)).then(|| waiting.clone());
    if keys.is_some() || fresh.is_some() || sold.is_some() || waits.is_some() {
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
    }
    let known = written.conflicts.take().unwrap_or_default();
    for (sku, why) in conflicts.iter().map(|n| (&n.sku, &n.detail)) {
        if !known.iter().any(|n| &n.sku == sku) {
            tracing::error!(sku = %sku, why = %why, "SKU mapping conflict: this SKU is held at every target at its last acknowledged quantity until the mapping says one thing");
        }
    }
    *written = WrittenNotes {
        keys: Some(version),
        of: Some(of),
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

/// Whether the barcodes' keys recorded for `status` are those of the mapping in force (their
/// fingerprint matches): then they need not be written again.
pub async fn keys_recorded(store: &Store, mapper: &Mapper) -> Result<bool, StoreError> {
    let current = mapper.fingerprint();
    let recorded = store
        .call(|c| store::mapping::notes_of_kind(c, FINGERPRINT, 1))
        .await?
        .1;
    Ok(recorded.first().map(|n| n.detail.as_str()) == Some(current.as_str()))
}

/// Whether the database's record of the mapping file is not the file in force: a new file,
/// a changed one, one checked against other endpoints, or none any more. Then
/// [`settle_file`] has acknowledgements to void and a record to write.
pub fn file_changed(prepared: &Prepared) -> bool {
    match &prepared.file {
        None => prepared.had_record,
        Some(file) => matches!(file.proof, Proof::Fresh(_)),
    }
}

/// The lines that gave SKUs their keys at the targets before: the file recorded, or for a
/// database an earlier invsync wrote, its key notes.
async fn keys_before(store: &Store, had_record: bool) -> Result<Aliases, StoreError> {
    if had_record {
        let lines = store.call(|c| store::mapping::load_file_lines(c)).await?;
        return Ok(lines.map(|(_, aliases)| aliases).unwrap_or_default());
    }
    let notes = store
        .call(|c| store::mapping::notes_of_kind(c, "key", usize::MAX))
        .await?
        .1;
    let key = |detail: &str| {
        detail
            .rsplit_once(" (")
            .map_or(detail, |(key, _)| key)
            .to_owned()
    };
    let lines: Vec<(String, String, String)> = notes
        .into_iter()
        .map(|n| (n.sku, n.endpoint, key(&n.detail)))
        .collect();
    Ok(Aliases::from_lines(lines.iter().map(
        |(sku, endpoint, key)| (0, sku.as_str(), endpoint.as_str(), key.as_str()),
    )))
}

/// Makes the database's record of the mapping file the file in force (see
/// [`file_changed`]): first the acknowledgements of SKUs whose key at a target changed are
/// voided (they are pushed again, under their new key), then the file, its digest and its
/// lines are recorded (or forgotten, with no file any more). A crash between the two voids the
/// same again at the next start. `skus` and every target's acknowledgements must be loaded.
pub async fn settle_file(
    store: &Store,
    mapper: &Mapper,
    prepared: &Prepared,
    targets: &[Arc<tokio::sync::Mutex<TargetSlot>>],
    skus: &SkuTable,
    read_only: bool,
) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let before = keys_before(store, prepared.had_record).await?;
    let mapping = mapper.mapping().await?;
    for target in targets {
        let mut slot = target.lock().await;
        let mut ids: Vec<SkuId> = rekeyed(&before, &mapping, &slot.name)
            .into_iter()
            .filter_map(|sku| skus.get(sku))
            .filter(|&id| slot.acked.get(id).is_some())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let void: Vec<(SkuId, i64)> = ids.into_iter().map(|id| (id, 0)).collect();
        if void.is_empty() {
            continue;
        }
        for &(id, _) in &void {
            slot.acked.clear(id);
        }
        tracing::info!(target = %slot.name, skus = void.len(), "the mapping gives these SKUs a new key here; they are pushed again under it");
        if !read_only {
            let id = slot.id;
            store
                .call(move |c| store::write_changes(c, store::Side::Target, id, &void))
                .await?;
        }
    }
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "acknowledgements of SKUs with a new key voided"
    );
    if read_only {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let recorded = match &prepared.file {
        Some(file) => {
            let record = file.record();
            let lines = match &file.proof {
                Proof::Fresh(lines) => lines.clone(),
                Proof::Recorded | Proof::Restamped => return Ok(()),
            };
            store
                .call(move |c| store::mapping::record_file(c, &record, &lines))
                .await
        }
        None => store.call(|c| store::mapping::forget_file(c)).await,
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "the mapping file in force recorded"
    );
    recorded
}

/// Records the new stamp of a mapping file whose bytes were recorded under another one.
pub async fn restamp(store: &Store, prepared: &Prepared) -> Result<(), StoreError> {
    let Some(file) = prepared
        .file
        .as_ref()
        .filter(|f| matches!(f.proof, Proof::Restamped) && !f.stamp.is_empty())
    else {
        return Ok(());
    };
    let stamp = file.stamp.clone();
    store
        .call(move |c| store::mapping::restamp_file(c, &stamp))
        .await
}

/// The SKUs whose key at `target` differs from the one `before` gave them (the lines recorded
/// before): what a target acknowledged under the old key says nothing of the new one, so those
/// acknowledgements are void and the SKUs pushed again. A SKU in conflict is left out: it is
/// held at what it acknowledged, and voided once the conflict is resolved. In no order, and a
/// SKU may come twice (sorting a million names would cost more than the caller's ids do).
pub fn rekeyed<'a>(before: &'a Aliases, mapping: &'a Mapping, target: &str) -> Vec<&'a str> {
    let hasher = hashbrown::DefaultHashBuilder::default();
    // A SKU with a link here has its key unless it is in conflict: no look-up needed.
    let linked = |sku: &&str| mapping.link_holds(target, sku);
    let Some(at) = before.names().iter().position(|n| n == target) else {
        // Nothing was keyed here before: every link is new.
        return mapping
            .links_at(target)
            .map(|(sku, _)| sku)
            .filter(linked)
            .collect();
    };
    // The old key of each SKU at the target (of two, the later line's, as a map would keep).
    let mut old: HashTable<u32> = HashTable::new();
    for i in (0..before.len()).filter(|&i| before.endpoint_index(i) == at) {
        let sku = before.sku(i);
        let hash = hasher.hash_one(sku);
        match old.find_mut(hash, |&j| before.sku(j as usize) == sku) {
            Some(slot) => *slot = i as u32,
            None => {
                old.insert_unique(hash, i as u32, |&j| hasher.hash_one(before.sku(j as usize)));
            }
        }
    }
    let old_key = |sku: &str| {
        old.find(hasher.hash_one(sku), |&j| before.sku(j as usize) == sku)
            .map(|&j| before.key(j as usize))
    };
    let new_ones = mapping
        .links_at(target)
        .filter(|(sku, key)| old_key(sku) != Some(*key))
        .map(|(sku, _)| sku)
        .filter(linked);
    let old_ones = old
        .iter()
        .map(|&j| (before.sku(j as usize), before.key(j as usize)))
        .filter(|(sku, key)| mapping.linked_key(target, sku) != Some(*key))
        .map(|(sku, _)| sku)
        .filter(|sku| mapping.key_at(target, sku).is_some());
    new_ones.chain(old_ones).collect()
}

/// The kind of the one note that holds the fingerprint of the keys recorded.
const FINGERPRINT: &str = "fingerprint";
