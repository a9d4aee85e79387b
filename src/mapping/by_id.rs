//! Look-ups by SKU id: a million SKUs looked up by name cost a million probes of a hash table
//! that outgrows the caches (each a few cache misses: the table, the line's ends, its text).
//! A first cycle under a new file asks each SKU's key twice, once to void what was acknowledged
//! under another key and once to push it under the new one, and a daemon asks again every
//! cycle it pushes. [`ById`] probes the hash table once per SKU and keeps the key its link
//! gives, copied in the order asked (the order of the ids, in a cycle), so that the next
//! question about that id reads it in one step from memory near the last one's.
//!
//! The ids are the database's SKU table's: a name keeps its id for good (names are only ever
//! added), so an answer found for an id holds for as long as the [`Mapping`] does.

use std::sync::{Mutex, MutexGuard};

use super::{Keys, Mapping};
use crate::plan::ledger::SkuId;

/// Not looked up yet.
const UNSEEN: u32 = u32::MAX;
/// Looked up: no link of that SKU at the endpoint (`by_sku` found none).
const NO_LINK: u32 = u32::MAX - 1;

/// One endpoint's answers by SKU id.
#[derive(Debug, Default)]
pub(super) struct Answers {
    /// Where the key of each id's link lies in `keys` (start, end), or `(UNSEEN, 0)`,
    /// `(NO_LINK, 0)`.
    at: Vec<(u32, u32)>,
    /// The keys, one after the other.
    keys: String,
}

/// One endpoint's look-ups of SKUs by id and name (see the module documentation), holding its
/// answers by id for as long as it lives: take one per batch of look-ups, not per SKU.
pub struct ById<'a> {
    mapping: &'a Mapping,
    /// The endpoint's links and its answers by id; `None`: the endpoint has no links.
    keys: Option<(&'a Keys, MutexGuard<'a, Answers>)>,
    /// Whether answers not found there are kept.
    keep: bool,
}

impl<'a> ById<'a> {
    /// Look-ups at the endpoint of `keys` that keep what they find (`keep`), or only read
    /// what earlier ones kept.
    pub(super) fn new(mapping: &'a Mapping, keys: Option<&'a Keys>, keep: bool) -> ById<'a> {
        let keys = keys.map(|k| (k, lock(&k.by_id)));
        ById {
            mapping,
            keys,
            keep,
        }
    }

    /// [`Mapping::key_at`]'s key for SKU `id`, named `sku`.
    pub fn key_at<'s>(&'s mut self, id: SkuId, sku: &'s str) -> Option<&'s str> {
        if self.mapping.conflicts.contains_key(sku) {
            return None;
        }
        let mapping = self.mapping;
        match &mut self.keys {
            None => Some(sku),
            Some((keys, answers)) => {
                let linked = linked(mapping, keys, answers, id, sku, self.keep);
                mapping.key_given(keys, sku, linked)
            }
        }
    }

    /// [`Mapping::linked_key`] for SKU `id`, named `sku`.
    pub fn linked_key<'s>(&'s mut self, id: SkuId, sku: &str) -> Option<&'s str> {
        let mapping = self.mapping;
        let (keys, answers) = self.keys.as_mut()?;
        let linked = linked(mapping, keys, answers, id, sku, self.keep);
        mapping.linked_given(keys, sku, linked)
    }
}

/// The key of the link (`by_sku`) of SKU `id` named `sku`: read from `answers`, or looked up
/// (and kept there if `keep`).
fn linked<'s>(
    mapping: &'s Mapping,
    keys: &Keys,
    answers: &'s mut Answers,
    id: SkuId,
    sku: &str,
    keep: bool,
) -> Option<&'s str> {
    let i = id as usize;
    let (start, end) = answers.at.get(i).copied().unwrap_or((UNSEEN, 0));
    match start {
        NO_LINK => return None,
        UNSEEN => {}
        _ => return Some(&answers.keys[start as usize..end as usize]),
    }
    let key = mapping.by_sku(keys, sku).map(|link| mapping.key(link));
    if !keep {
        return key;
    }
    // Past 4 GB of keys an answer is looked up every time.
    let start = u32::try_from(answers.keys.len()).ok();
    let end = key.and_then(|k| u32::try_from(answers.keys.len() + k.len()).ok());
    let found = match (key, start, end) {
        (None, _, _) => (NO_LINK, 0),
        (Some(_), Some(start), Some(end)) if end < NO_LINK => (start, end),
        _ => return key,
    };
    if answers.at.len() <= i {
        answers.at.resize(i + 1, (UNSEEN, 0));
    }
    answers.at[i] = found;
    if let Some(key) = key {
        answers.keys.push_str(key);
    }
    key
}

/// Forgets (and frees) the answers kept.
pub(super) fn forget(answers: &Mutex<Answers>) {
    *lock(answers) = Answers::default();
}

fn lock(answers: &Mutex<Answers>) -> MutexGuard<'_, Answers> {
    answers.lock().unwrap_or_else(|p| p.into_inner())
}
