//! The in-memory picture of every quantity invsync knows, shaped so that a cycle over a million
//! SKUs is a scan of flat arrays rather than a million hash maps' worth of allocations.
//!
//! Every SKU name is interned once in a [`SkuTable`] and known by its [`SkuId`] from then on
//! (the same id as in the database's `skus` table). A [`Column`] holds one quantity per SKU id for
//! one source snapshot or one target's acknowledged quantities.

use std::hash::BuildHasher;
use std::sync::OnceLock;

use hashbrown::HashTable;

/// A SKU's index in the [`SkuTable`] and its `skus.id` in the database.
pub type SkuId = u32;

/// Every SKU name seen, each stored once in one string arena.
#[derive(Default)]
pub struct SkuTable {
    arena: String,
    /// `ends[id]` is where name `id` ends in `arena`; it starts where `id - 1` ends. Four bytes
    /// a SKU rather than eight: 20 MB less for five million.
    ends: Vec<u32>,
    /// Names to ids, built the first time a name is looked up other than next to the previous
    /// one (see [`SkuTable::intern_near`]): loading a million names and finding each where it
    /// was last time builds none (building it is about 80 ms of random memory access).
    index: OnceLock<Index>,
    hasher: hashbrown::DefaultHashBuilder,
}

/// The index of a [`SkuTable`], and the first name it found twice, if any.
#[derive(Default)]
struct Index {
    ids: HashTable<SkuId>,
    /// Two ids of one name: only a damaged file has them (names are interned).
    duplicate: Option<(SkuId, SkuId)>,
}

impl std::fmt::Debug for SkuTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SkuTable")
            .field("len", &self.len())
            .finish()
    }
}

impl SkuTable {
    /// Makes room for `more` SKUs whose names take `bytes` in all, so that loading a million
    /// does not rehash the index twenty times over.
    pub fn reserve(&mut self, more: usize, bytes: usize) {
        self.arena.reserve(bytes);
        self.ends.reserve(more);
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        if let Some(index) = self.index.get_mut() {
            index
                .ids
                .reserve(more, |&id| hash_of(hasher, arena, ends, id));
        }
    }

    /// Makes room for `more` names about to be interned, in the index too (building it, empty,
    /// when no name is known yet): a first answer of a million names does not rehash the index
    /// twenty times over, each time jumping through memory.
    pub fn expect_new(&mut self, more: usize) {
        if self.is_empty() {
            self.index.get_or_init(|| Index {
                ids: HashTable::with_capacity(more),
                duplicate: None,
            });
        }
        self.reserve(more, 0);
    }

    /// A table of `names` (each ending where `ends` says), taken as they are, with their index
    /// built: a first answer's names become the table without a copy of them being made. The
    /// names are given back, untouched, when one is empty or two are the same, for they would
    /// not be a table then (interned one by one, a name twice has one id).
    pub fn from_names(names: String, ends: Vec<u32>) -> Result<SkuTable, (String, Vec<u32>)> {
        let well_formed = ends.last().is_none_or(|&end| end as usize == names.len())
            && ends
                .iter()
                .scan(0, |start, &end| {
                    let whole = *start < end && names.is_char_boundary(end as usize);
                    *start = end;
                    Some(whole)
                })
                .all(|whole| whole);
        if !well_formed {
            return Err((names, ends));
        }
        let table = SkuTable {
            arena: names,
            ends,
            ..SkuTable::default()
        };
        if table.find_duplicate().is_some() {
            return Err((table.arena, table.ends));
        }
        Ok(table)
    }

    /// How many SKUs are known.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no SKU is known.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The name of `id`.
    pub fn name(&self, id: SkuId) -> &str {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.arena[start..self.ends[id] as usize]
    }

    /// The id of `name`, if known.
    pub fn get(&self, name: &str) -> Option<SkuId> {
        let hash = self.hasher.hash_one(name);
        self.index()
            .ids
            .find(hash, |&id| self.name(id) == name)
            .copied()
    }

    /// Two ids with one name (blank names aside: forgotten SKUs), found when the index was
    /// built; `None` too while it was not. Only a damaged file has them.
    pub fn duplicate(&self) -> Option<(SkuId, SkuId)> {
        self.index.get().and_then(|index| index.duplicate)
    }

    /// [`SkuTable::duplicate`], building the index to know.
    pub fn find_duplicate(&self) -> Option<(SkuId, SkuId)> {
        self.index().duplicate
    }

    /// The index, built on first use. A name found twice keeps its first id.
    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
            let mut index = Index {
                ids: HashTable::with_capacity(ends.len()),
                duplicate: None,
            };
            for id in 0..ends.len() as SkuId {
                let hash = hash_of(hasher, arena, ends, id);
                let name = self.name(id);
                if !name.is_empty()
                    && let Some(&first) = index.ids.find(hash, |&other| self.name(other) == name)
                {
                    index.duplicate.get_or_insert((first, id));
                    continue;
                }
                index
                    .ids
                    .insert_unique(hash, id, |&other| hash_of(hasher, arena, ends, other));
            }
            index
        })
    }

    /// The id of `name`, adding it if new, looking first just after `*near` (where the record
    /// after the previous one of a source's answer is when the source lists its SKUs in the
    /// order they were first seen), and setting `*near` to the id after it. Walking an answer
    /// in its usual order this way makes no random probe into the index (a million of them
    /// cost about 80 ms, most of it waiting on memory).
    pub fn intern_near(&mut self, name: &str, near: &mut SkuId) -> SkuId {
        // A few places ahead: a SKU the source dropped since skips one.
        let end = near.saturating_add(NEAR).min(self.len() as SkuId);
        let id = (*near..end)
            .find(|&id| self.name(id) == name)
            .unwrap_or_else(|| self.intern(name));
        *near = id.saturating_add(1);
        id
    }

    /// The id of `name`, adding it if new.
    pub fn intern(&mut self, name: &str) -> SkuId {
        if let Some(id) = self.get(name) {
            return id;
        }
        self.push(name)
    }

    /// Appends `name` as the next id without looking it up (loading from the database, where
    /// names are unique already).
    pub fn push(&mut self, name: &str) -> SkuId {
        let id = SkuId::try_from(self.ends.len()).expect("fewer than 4 billion SKUs");
        self.arena.push_str(name);
        let end = u32::try_from(self.arena.len()).expect("SKU names of fewer than 4 GiB in all");
        self.ends.push(end);
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        if let Some(index) = self.index.get_mut() {
            let hash = hasher.hash_one(name);
            index
                .ids
                .insert_unique(hash, id, |&other| hash_of(hasher, arena, ends, other));
        }
        id
    }
}

/// How far past the expected place [`SkuTable::intern_near`] looks before it asks the index.
const NEAR: SkuId = 4;

/// The hash of name `id`.
fn hash_of(hasher: &hashbrown::DefaultHashBuilder, arena: &str, ends: &[u32], id: SkuId) -> u64 {
    let id = id as usize;
    let start = if id == 0 { 0 } else { ends[id - 1] as usize };
    hasher.hash_one(&arena[start..ends[id] as usize])
}

/// One quantity per SKU id, or nothing for a SKU this column has never had.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Column {
    values: Vec<i64>,
}

/// Marks a SKU the column has no quantity for (quantities are never negative).
const ABSENT: i64 = -1;

impl Column {
    /// An empty column with room for ids below `width`.
    pub fn with_width(width: usize) -> Column {
        Column {
            values: Vec::with_capacity(width),
        }
    }

    /// A column of `quantities`, the quantity of id `i` at `i` (negative ones stored as 0), in
    /// their own memory.
    pub fn from_quantities(mut quantities: Vec<i64>) -> Column {
        for q in &mut quantities {
            *q = (*q).max(0);
        }
        Column { values: quantities }
    }

    /// The quantity of `id`, if the column has one.
    pub fn get(&self, id: SkuId) -> Option<i64> {
        match self.values.get(id as usize) {
            Some(&q) if q != ABSENT => Some(q),
            _ => None,
        }
    }

    /// Sets the quantity of `id` (negative quantities are stored as 0).
    pub fn set(&mut self, id: SkuId, quantity: i64) {
        let id = id as usize;
        if id >= self.values.len() {
            self.values.resize(id + 1, ABSENT);
        }
        self.values[id] = quantity.max(0);
    }

    /// Forgets the quantity of `id`.
    pub fn clear(&mut self, id: SkuId) {
        if let Some(value) = self.values.get_mut(id as usize) {
            *value = ABSENT;
        }
    }

    /// Every `(id, quantity)` present, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (SkuId, i64)> + '_ {
        self.values
            .iter()
            .enumerate()
            .filter(|(_, q)| **q != ABSENT)
            .map(|(id, q)| (id as SkuId, *q))
    }

    /// How many SKUs have a quantity.
    pub fn count(&self) -> usize {
        self.values.iter().filter(|q| **q != ABSENT).count()
    }

    /// One past the highest id this column has room for.
    pub fn width(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_names_come_back_by_id_and_by_name() {
        let mut skus = SkuTable::default();
        let a = skus.intern("EA-24752");
        let b = skus.intern("hk-001");
        assert_eq!(skus.intern("EA-24752"), a);
        assert_ne!(a, b);
        assert_eq!(skus.name(a), "EA-24752");
        assert_eq!(skus.name(b), "hk-001");
        assert_eq!(skus.get("hk-001"), Some(b));
        assert_eq!(skus.get("nope"), None);
        assert_eq!(skus.len(), 2);
    }

    #[test]
    fn many_names_survive_the_index_growing() {
        let mut skus = SkuTable::default();
        for i in 0..10_000 {
            assert_eq!(skus.intern(&format!("SKU-{i}")), i);
        }
        for i in (0..10_000).step_by(997) {
            assert_eq!(skus.get(&format!("SKU-{i}")), Some(i));
            assert_eq!(skus.name(i), format!("SKU-{i}"));
        }
    }

    #[test]
    fn names_found_near_the_previous_one_and_through_the_index_agree() {
        let mut skus = SkuTable::default();
        for i in 0..100 {
            skus.push(&format!("SKU-{i}"));
        }
        assert!(skus.index.get().is_none(), "loading builds no index");
        // The usual order, with SKU-3 dropped: found in place, the index never built.
        let mut near = 0;
        let order: Vec<SkuId> = [0, 1, 2, 4, 5]
            .iter()
            .map(|i| skus.intern_near(&format!("SKU-{i}"), &mut near))
            .collect();
        assert_eq!(order, vec![0, 1, 2, 4, 5]);
        assert!(skus.index.get().is_none());
        // Out of order and new: the index is built, and kept up to date after.
        assert_eq!(skus.intern_near("SKU-90", &mut near), 90);
        assert_eq!(near, 91);
        assert_eq!(skus.intern_near("NEW", &mut near), 100);
        assert_eq!(skus.intern_near("SKU-91", &mut near), 91);
        skus.push("PUSHED");
        assert_eq!(skus.get("PUSHED"), Some(101));
        assert_eq!(skus.get("NEW"), Some(100));
        assert_eq!(skus.get("SKU-3"), Some(3));
        assert_eq!(skus.duplicate(), None);
    }

    #[test]
    fn a_name_twice_is_found_when_the_index_is_built_and_keeps_its_first_id() {
        let mut skus = SkuTable::default();
        for name in ["A", "", "B", "", "A"] {
            skus.push(name);
        }
        assert_eq!(
            skus.duplicate(),
            None,
            "not known before the index is built"
        );
        assert_eq!(
            skus.find_duplicate(),
            Some((0, 4)),
            "blank names may repeat"
        );
        assert_eq!(skus.get("A"), Some(0));
    }

    #[test]
    fn a_column_tells_absent_from_zero_and_floors_negatives() {
        let mut column = Column::default();
        assert_eq!(column.get(3), None);
        column.set(3, 0);
        assert_eq!(column.get(3), Some(0));
        column.set(5, 10);
        assert_eq!(column.get(5), Some(10));
        column.set(1, -7);
        assert_eq!(column.get(1), Some(0));
        assert_eq!(
            column.iter().collect::<Vec<_>>(),
            vec![(1, 0), (3, 0), (5, 10)]
        );
        assert_eq!(column.count(), 3);
    }
}
