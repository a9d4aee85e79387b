//! What the engine keeps in the database for the mapping, and reads back at start: the notes
//! `status` shows (barcodes' keys, conflicts, sizes that cannot be sold), the parts a restart
//! needs (Endless Aisles products, catalogues' barcodes), the file in force (see
//! [`crate::mapper::file`])
//! and the acknowledgements a new key voids.

use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};

use hashbrown::HashTable;

use crate::mapper::Mapper;
use crate::mapper::file::{Prepared, Proof};
use crate::mapping::{Aliases, ById, Mapping};
use crate::plan::ledger::{Column, SkuId, SkuTable};
use crate::store::mapping::Note;
use crate::store::{self, Store, StoreError};
use crate::targets::TargetSlot;

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
/// [`file_changed`]): the acknowledgements of SKUs whose key at a target changed are voided
/// (they are pushed again, under their new key), and the file, its digest and its lines are
/// recorded (or forgotten, with no file any more), both in one transaction: what was voided is
/// committed before anything is pushed, and a crash before the commit voids the same again at
/// the next start. `skus` and every target's acknowledgements must be loaded.
///
/// The lines are written while the voids are worked out, on the other core: a million of
/// each take about as long. Working them out needs no database (the mapping is built from the
/// lines just read, or from none), so the transaction can wait for them.
pub async fn settle_file(
    store: &Store,
    mapper: &Mapper,
    prepared: &Prepared,
    targets: &[Arc<tokio::sync::Mutex<TargetSlot>>],
    skus: &SkuTable,
    read_only: bool,
) -> Result<(), StoreError> {
    let before = keys_before(store, prepared.had_record).await?;
    if read_only {
        void_in_targets(mapper, &before, targets, skus, read_only).await?;
        return Ok(());
    }
    let started = std::time::Instant::now();
    let record = match &prepared.file {
        Some(file) => match &file.proof {
            Proof::Fresh(lines) => Some(Some((file.record(), lines.clone()))),
            // The lines recorded are the file's already.
            Proof::Recorded | Proof::Restamped => None,
        },
        None => Some(None),
    };
    let (send, voids) = std::sync::mpsc::channel::<Vec<(i64, Vec<SkuId>)>>();
    let writing = store.call(move |c| {
        let tx = c.transaction()?;
        match record {
            Some(Some((record, lines))) => store::mapping::record_file(&tx, &record, &lines)?,
            Some(None) => store::mapping::forget_file(&tx)?,
            None => {}
        }
        // Without the voids (working them out failed) nothing is committed.
        let voided = voids.recv().map_err(|_| StoreError::Join)?;
        for (id, void) in &voided {
            store::write_voids(&tx, store::Side::Target, *id, void)?;
        }
        tx.commit()?;
        Ok(())
    });
    let voiding = async move {
        let voided = void_in_targets(mapper, &before, targets, skus, read_only).await?;
        // A writer that stopped early has its own error to give.
        let _ = send.send(voided);
        Ok::<(), StoreError>(())
    };
    let (written, voided) = tokio::join!(writing, voiding);
    voided?;
    written?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "the voided acknowledgements and the mapping file in force recorded"
    );
    Ok(())
}

/// Voids, in every target, the acknowledgements of SKUs the mapping in force gives another key
/// there than `before` did, and gives them (none when `read_only`) by target id.
async fn void_in_targets(
    mapper: &Mapper,
    before: &Aliases,
    targets: &[Arc<tokio::sync::Mutex<TargetSlot>>],
    skus: &SkuTable,
    read_only: bool,
) -> Result<Vec<(i64, Vec<SkuId>)>, StoreError> {
    let started = std::time::Instant::now();
    let mapping = mapper.mapping().await?;
    let mut voided = Vec::new();
    for target in targets {
        let mut guard = target.lock().await;
        let slot = &mut *guard;
        let rekeyed = Rekeyed::new(before, &mapping, slot.name());
        let void = rekeyed_acknowledged(slot.acknowledged(), skus, &rekeyed);
        if void.is_empty() {
            continue;
        }
        slot.void(&void);
        tracing::info!(target = %slot.name(), skus = void.len(), "the mapping gives these SKUs a new key here; they are pushed again under it");
        if !read_only {
            voided.push((slot.id(), void));
        }
    }
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "acknowledgements of SKUs with a new key voided"
    );
    Ok(voided)
}

/// What `acked` holds that `rekeyed` says was acknowledged under another key, SKU by SKU in id
/// order (no name is looked up: a million of them would cost more than the mapping's look-ups):
/// the acknowledgements to void (the database is to hold none for them either, not 0: see
/// [`store::write_voids`]).
pub(super) fn rekeyed_acknowledged(
    acked: &Column,
    skus: &SkuTable,
    rekeyed: &Rekeyed<'_>,
) -> Vec<SkuId> {
    // Looked up by id: the push asks each of these SKUs' key again, and finds it by id.
    let mut by_id = rekeyed.by_id();
    acked
        .iter()
        .filter(|&(id, _)| {
            (id as usize) < skus.len() && rekeyed.of_id(&mut by_id, id, skus.name(id))
        })
        .map(|(id, _)| id)
        .collect()
}

/// Clears in `acked` what [`rekeyed_acknowledged`] gives, and gives it: as a target voids
/// (see `TargetSlot::void`).
#[cfg(test)]
pub(super) fn void_rekeyed(
    acked: &mut Column,
    skus: &SkuTable,
    rekeyed: &Rekeyed<'_>,
) -> Vec<SkuId> {
    let void = rekeyed_acknowledged(acked, skus, rekeyed);
    for &id in &void {
        acked.clear(id);
    }
    void
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
/// before), among those the mapping or `before` names there (see [`Rekeyed`]). In no order,
/// and a SKU may come twice.
pub fn rekeyed<'a>(before: &'a Aliases, mapping: &'a Mapping, target: &str) -> Vec<&'a str> {
    let rekeyed = Rekeyed::new(before, mapping, target);
    let old = rekeyed
        .old
        .iter()
        .map(|&j| before.sku(j as usize))
        .collect::<Vec<_>>();
    mapping
        .links_at(target)
        .map(|(sku, _)| sku)
        .chain(old)
        .filter(|sku| rekeyed.of(sku))
        .collect()
}

/// Whether a SKU's key at a target differs from the one the lines recorded before gave it:
/// what the target acknowledged under the old key says nothing of the new one, so that
/// acknowledgement is void and the SKU pushed again. A SKU in conflict is left out: it is held
/// at what it acknowledged, and voided once the conflict is resolved.
pub struct Rekeyed<'a> {
    before: &'a Aliases,
    mapping: &'a Mapping,
    target: &'a str,
    /// The line of `before` that keyed each SKU at the target (of two, the later, as a map
    /// would keep).
    old: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl<'a> Rekeyed<'a> {
    /// The SKUs rekeyed at `target` from `before` to `mapping`.
    pub fn new(before: &'a Aliases, mapping: &'a Mapping, target: &'a str) -> Rekeyed<'a> {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut old: HashTable<u32> = HashTable::new();
        if let Some(at) = before.names().iter().position(|n| n == target) {
            for i in (0..before.len()).filter(|&i| before.endpoint_index(i) == at) {
                let sku = before.sku(i);
                let hash = hasher.hash_one(sku);
                match old.find_mut(hash, |&j| before.sku(j as usize) == sku) {
                    Some(slot) => *slot = i as u32,
                    None => {
                        old.insert_unique(hash, i as u32, |&j| {
                            hasher.hash_one(before.sku(j as usize))
                        });
                    }
                }
            }
        }
        Rekeyed {
            before,
            mapping,
            target,
            old,
            hasher,
        }
    }

    /// The key the lines before gave `sku` at the target.
    fn old_key(&self, sku: &str) -> Option<&'a str> {
        if self.old.is_empty() {
            return None;
        }
        let before = self.before;
        self.old
            .find(self.hasher.hash_one(sku), |&j| {
                before.sku(j as usize) == sku
            })
            .map(|&j| before.key(j as usize))
    }

    /// Whether `sku` has another key at the target than before: a link that gives it its key
    /// there (in no conflict, one key only) with another key than before; or a key before that
    /// no link gives it now, and a key of its own there now (not in conflict, its name not
    /// another SKU's key).
    pub fn of(&self, sku: &str) -> bool {
        let linked = self.mapping.linked_key(self.target, sku);
        self.differs(sku, linked)
            .unwrap_or_else(|| self.mapping.key_at(self.target, sku).is_some())
    }

    /// [`Rekeyed::of`] for SKU `id`, named `sku`, looked up through `by_id` (from
    /// [`Rekeyed::by_id`]).
    pub fn of_id(&self, by_id: &mut ById<'_>, id: SkuId, sku: &str) -> bool {
        let decided = self.differs(sku, by_id.linked_key(id, sku));
        decided.unwrap_or_else(|| by_id.key_at(id, sku).is_some())
    }

    /// Look-ups by id at the target (see [`Rekeyed::of_id`]).
    pub fn by_id(&self) -> ById<'a> {
        self.mapping.by_id(self.target)
    }

    /// Whether `sku`, whose link at the target gives it the key `linked`, has another key
    /// there than before; `None`: if it has a key there at all.
    fn differs(&self, sku: &str, linked: Option<&str>) -> Option<bool> {
        let old = self.old_key(sku);
        if linked == old {
            return Some(false);
        }
        if linked.is_some() && self.mapping.link_holds(self.target, sku) {
            return Some(true);
        }
        if old.is_none() {
            return Some(false);
        }
        None
    }
}

/// The kind of the one note that holds the fingerprint of the keys recorded.
const FINGERPRINT: &str = "fingerprint";
