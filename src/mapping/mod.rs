//! SKU mapping, pure: what each endpoint calls a canonical SKU, and which SKUs are in doubt.
//!
//! By default a SKU is called the same everywhere (a source's `sku_prefix` aside). Two kinds of
//! [`Link`] say otherwise: a line of the `[mapping] file` ([`csv`]) and, with `by_barcode`, an
//! Endless Aisles size whose barcode is a catalogue product's ([`barcode_links`]). A line of the
//! file wins over a barcode for the same key or the same SKU at an endpoint, and either wins
//! over the default. [`Mapping::resolve`] is the one place these rules live.
//!
//! A **conflict** is a key that maps to two SKUs at one endpoint, or one SKU given two keys at
//! one endpoint, or a SKU whose own name is taken at a target by another SKU's alias, or (found
//! only in an answer, see [`Mapping::translate`]) a SKU that two records of one source's answer
//! name, such as an alias's key and a record under the SKU's own name. invsync
//! cannot tell which is meant, so a conflicted SKU is pushed nowhere: every target keeps what it
//! last acknowledged (never 0), and `status` lists it with the reason.
//!
//! With no `[mapping]` the [`Mapping`] is empty and every lookup answers "the same" at once: the
//! cost per SKU is one `is_empty` test.
//!
//! A million-line file resolves into a few large tables, not a million small ones: the lines
//! stay in their compact [`Aliases`], and each endpoint indexes them by key and by SKU in hash
//! tables of 4-byte line numbers (about 10 MB each for a million lines). The few links in
//! conflict are kept aside, where their reasons are worked out in the order a reader expects.

mod by_id;
pub mod csv;
pub mod gtin;
mod translate;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::plan::ledger::{SkuId, SkuTable};

pub use by_id::ById;
pub use csv::{Alias, Aliases, CsvError};
use gtin::gtin14;
pub use translate::Translated;

/// What part an endpoint plays, which decides which way its keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `[sources.NAME]`: its records are named by keys, turned into canonical SKUs.
    Source,
    /// `[targets.NAME]`: canonical SKUs are pushed under their keys.
    Target,
    /// `[orders.NAME]`: its order lines are named by keys, turned into canonical SKUs.
    Feed,
}

/// An endpoint of the configuration, as the mapping needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Its name in the configuration.
    pub name: String,
    /// Its part.
    pub role: Role,
    /// What its records' names start with before the key (`sku_prefix` of an Endless Aisles
    /// source; empty elsewhere): a key is written without it, as the service names the item.
    pub prefix: String,
}

/// Where a link comes from: what `status` shows beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the mapping file.
    Csv(usize),
    /// A barcode (GTIN-14) shared by an Endless Aisles size and a catalogue product.
    Barcode(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Csv(line) => write!(f, "mapping file line {line}"),
            Origin::Barcode(gtin) => write!(f, "barcode {gtin}"),
        }
    }
}

/// The canonical SKU `sku` is called `key` at `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The canonical SKU.
    pub sku: String,
    /// The endpoint's name.
    pub endpoint: String,
    /// What it calls the SKU (without a source's prefix).
    pub key: String,
    /// Why.
    pub origin: Origin,
}

/// A link by number: below the number of the file's lines, a line of [`Aliases`]; from there
/// on, a barcode link.
type LinkId = u32;

/// One endpoint's links, indexed both ways.
#[derive(Debug)]
struct Keys {
    name: String,
    role: Role,
    prefix: String,
    /// Its links, the file's first.
    links: Vec<LinkId>,
    /// Key → its first link.
    by_key: HashTable<LinkId>,
    /// SKU → its link; a SKU with two keys is in conflict and has none.
    by_sku: HashTable<LinkId>,
    /// Keys that map to two or more SKUs: their links, by SKU.
    shared: HashMap<String, Vec<LinkId>>,
    /// SKUs given two or more keys: their links.
    two_keys: HashMap<String, Vec<LinkId>>,
    /// `by_sku`'s answers, by SKU id, as [`ById`] found them.
    by_id: std::sync::Mutex<by_id::Answers>,
}

/// What a source's or feed's record named `raw` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// The canonical SKU is the name itself (the default).
    Same,
    /// This canonical SKU.
    Sku(&'a str),
    /// The key maps to two or more SKUs: none of them can be told.
    Conflict(Vec<&'a str>),
}

/// Every endpoint's links, resolved, and the SKUs in conflict.
#[derive(Debug, Default)]
pub struct Mapping {
    /// The file's lines.
    aliases: Arc<Aliases>,
    /// The barcodes' links.
    barcodes: Vec<Link>,
    /// The endpoints with links, in the configuration's order.
    endpoints: Vec<Keys>,
    /// SKU → why it is in conflict.
    conflicts: BTreeMap<String, String>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl Mapping {
    /// Resolves `links` over `endpoints` (see [`Mapping::build`]): the lines of the file among
    /// them are kept as [`Aliases`] first.
    pub fn resolve(endpoints: &[EndpointSpec], links: Vec<Link>) -> Mapping {
        let (csv, barcodes): (Vec<Link>, Vec<Link>) = links
            .into_iter()
            .partition(|l| matches!(l.origin, Origin::Csv(_)));
        let aliases = Aliases::from_lines(csv.iter().map(|l| {
            let line = match l.origin {
                Origin::Csv(line) => line,
                Origin::Barcode(_) => 0,
            };
            (line, l.sku.as_str(), l.endpoint.as_str(), l.key.as_str())
        }));
        Mapping::build(endpoints, Arc::new(aliases), barcodes)
    }

    /// Resolves the file's lines and the barcodes' links over `endpoints` (see the module
    /// documentation): lines of the file first, then barcodes where the file says nothing of
    /// that key or SKU at that endpoint. Links naming an endpoint not in `endpoints` are
    /// ignored (the file was checked already).
    pub fn build(
        endpoints: &[EndpointSpec],
        aliases: Arc<Aliases>,
        barcodes: Vec<Link>,
    ) -> Mapping {
        let mut mapping = Mapping {
            aliases,
            barcodes,
            ..Mapping::default()
        };
        // Each endpoint's lines, in one pass over the file's.
        let mut lines: Vec<Vec<LinkId>> = vec![Vec::new(); mapping.aliases.names().len()];
        for i in 0..mapping.aliases.len() {
            // Fewer lines than `u32::MAX`: `Aliases` counts them in `u32`.
            lines[mapping.aliases.endpoint_index(i)].push(i as LinkId);
        }
        let first_barcode = mapping.aliases.len();
        for spec in endpoints {
            let csv = (mapping.aliases.names().iter().position(|n| *n == spec.name))
                .map(|i| std::mem::take(&mut lines[i]))
                .unwrap_or_default();
            let barcodes: Vec<LinkId> = (mapping.barcodes.iter().enumerate())
                .filter(|(_, l)| l.endpoint == spec.name)
                .filter_map(|(i, _)| LinkId::try_from(first_barcode + i).ok())
                .collect();
            if csv.is_empty() && barcodes.is_empty() {
                continue;
            }
            let keys = mapping.endpoint_keys(spec, csv, barcodes);
            mapping.endpoints.push(keys);
        }
        mapping
    }

    /// The SKU of link `id`.
    fn sku(&self, id: LinkId) -> &str {
        let i = id as usize;
        match i.checked_sub(self.aliases.len()) {
            None => self.aliases.sku(i),
            Some(b) => &self.barcodes[b].sku,
        }
    }

    /// The key of link `id`.
    fn key(&self, id: LinkId) -> &str {
        let i = id as usize;
        match i.checked_sub(self.aliases.len()) {
            None => self.aliases.key(i),
            Some(b) => &self.barcodes[b].key,
        }
    }

    /// Where link `id` comes from.
    fn origin(&self, id: LinkId) -> Origin {
        let i = id as usize;
        match i.checked_sub(self.aliases.len()) {
            None => Origin::Csv(self.aliases.line(i)),
            Some(b) => self.barcodes[b].origin.clone(),
        }
    }

    /// Whether link `id` is a line of the file.
    fn is_file_line(&self, id: LinkId) -> bool {
        (id as usize) < self.aliases.len()
    }

    fn hash(&self, text: &str) -> u64 {
        self.hasher.hash_one(text)
    }

    /// The first link of `key` at `keys`.
    fn by_key(&self, keys: &Keys, key: &str) -> Option<LinkId> {
        keys.by_key
            .find(self.hash(key), |&id| self.key(id) == key)
            .copied()
    }

    /// The one link of `sku` at `keys` (none when it has two keys).
    fn by_sku(&self, keys: &Keys, sku: &str) -> Option<LinkId> {
        keys.by_sku
            .find(self.hash(sku), |&id| self.sku(id) == sku)
            .copied()
    }

    /// Whether a link at `keys` names `sku`.
    fn links_sku(&self, keys: &Keys, sku: &str) -> bool {
        self.by_sku(keys, sku).is_some() || keys.two_keys.contains_key(sku)
    }

    /// One endpoint's links indexed both ways, its conflicts noted: `csv` (lines of the file,
    /// in its order) then `barcodes`, each left out where the file names its key or SKU.
    fn endpoint_keys(
        &mut self,
        spec: &EndpointSpec,
        csv: Vec<LinkId>,
        barcodes: Vec<LinkId>,
    ) -> Keys {
        let mut keys = Keys {
            name: spec.name.clone(),
            role: spec.role,
            prefix: spec.prefix.clone(),
            links: Vec::with_capacity(csv.len() + barcodes.len()),
            by_key: HashTable::with_capacity(csv.len() + barcodes.len()),
            by_sku: HashTable::with_capacity(csv.len() + barcodes.len()),
            shared: HashMap::new(),
            two_keys: HashMap::new(),
            by_id: Default::default(),
        };
        for id in csv {
            self.add_link(&mut keys, id);
        }
        for id in barcodes {
            let (key, sku) = (self.key(id), self.sku(id));
            // The file wins over barcodes, for a key and for a SKU alike.
            let file_key = self
                .by_key(&keys, key)
                .is_some_and(|first| self.is_file_line(first));
            let file_sku = match self.by_sku(&keys, sku) {
                Some(first) => self.is_file_line(first),
                None => keys
                    .two_keys
                    .get(sku)
                    .is_some_and(|ids| ids.iter().any(|&i| self.is_file_line(i))),
            };
            if !file_key && !file_sku {
                self.add_link(&mut keys, id);
            }
        }
        self.name_conflicts(&keys);
        for ids in keys.shared.values_mut() {
            ids.sort_by(|&a, &b| self.sku(a).cmp(self.sku(b)));
        }
        keys.links.shrink_to_fit();
        keys
    }

    /// Indexes link `id` at `keys`, unless the same link is there already. One probe of each
    /// table per link: a million links take two million probes, not four.
    fn add_link(&self, keys: &mut Keys, id: LinkId) {
        let (key, sku) = (self.key(id), self.sku(id));
        let hash = self.hash(key);
        match keys
            .by_key
            .entry(hash, |&i| self.key(i) == key, |&i| self.hash(self.key(i)))
        {
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(id);
            }
            hashbrown::hash_table::Entry::Occupied(first) => {
                let first = *first.get();
                let shared = keys
                    .shared
                    .entry(key.to_owned())
                    .or_insert_with(|| vec![first]);
                if shared.iter().any(|&i| self.sku(i) == sku) {
                    // The same link twice (two catalogues with one barcode): kept once.
                    if shared.len() == 1 {
                        keys.shared.remove(key);
                    }
                    return;
                }
                shared.push(id);
            }
        }
        keys.links.push(id);
        if let Some(ids) = keys.two_keys.get_mut(sku) {
            ids.push(id);
            return;
        }
        let hash = self.hash(sku);
        match keys
            .by_sku
            .entry(hash, |&i| self.sku(i) == sku, |&i| self.hash(self.sku(i)))
        {
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(id);
            }
            hashbrown::hash_table::Entry::Occupied(entry) => {
                let (first, _) = entry.remove();
                keys.two_keys.insert(sku.to_owned(), vec![first, id]);
            }
        }
    }

    /// Says why each SKU of `keys`' conflicts is in conflict. The links in conflict are taken
    /// in order of key, then SKU, so that the reasons name the same SKUs and keys whatever the
    /// order of the file's lines.
    fn name_conflicts(&mut self, keys: &Keys) {
        let mut involved: Vec<LinkId> = keys
            .shared
            .values()
            .chain(keys.two_keys.values())
            .flatten()
            .copied()
            .collect();
        if involved.is_empty() {
            return;
        }
        involved.sort_by(|&a, &b| (self.key(a), self.sku(a)).cmp(&(self.key(b), self.sku(b))));
        involved.dedup();
        let mut by_key: HashMap<String, Option<LinkId>> = HashMap::new();
        let mut by_sku: HashMap<String, LinkId> = HashMap::new();
        let mut found = Vec::new();
        for id in involved {
            let (sku, key) = (self.sku(id).to_owned(), self.key(id).to_owned());
            match by_key.get(&key).copied() {
                None => {
                    by_key.insert(key.clone(), Some(id));
                }
                Some(None) => found.push((sku.clone(), format!("key {key:?} maps to two SKUs"))),
                Some(Some(first)) => {
                    let other = self.sku(first).to_owned();
                    let why = format!("key {key:?} maps to two SKUs ({other} and {sku})");
                    found.push((other, why.clone()));
                    found.push((sku.clone(), why));
                    by_key.insert(key.clone(), None);
                }
            }
            match by_sku.get(&sku).copied() {
                Some(first) => {
                    let other = self.key(first);
                    found.push((sku, format!("two keys: {other:?} and {key:?}")));
                }
                None => {
                    by_sku.insert(sku, id);
                }
            }
        }
        for (sku, why) in found {
            self.conflict(&sku, &keys.name, why);
        }
    }

    fn conflict(&mut self, sku: &str, endpoint: &str, why: String) {
        self.conflicts
            .entry(sku.to_owned())
            .or_insert_with(|| format!("at {endpoint}: {why}"));
    }

    fn keys(&self, endpoint: &str) -> Option<&Keys> {
        self.endpoints.iter().find(|k| k.name == endpoint)
    }

    /// Whether nothing is mapped: every SKU is called the same everywhere.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Whether `endpoint` has links of its own.
    pub fn maps(&self, endpoint: &str) -> bool {
        self.keys(endpoint).is_some()
    }

    /// How many links there are in all.
    pub fn len(&self) -> usize {
        self.endpoints.iter().map(|k| k.links.len()).sum()
    }

    /// What a record named `raw` at source or feed `endpoint` is. `raw` is the name as the
    /// records give it (an Endless Aisles source's includes its prefix).
    pub fn inbound<'a>(&'a self, endpoint: &str, raw: &str) -> Inbound<'a> {
        match self.keys(endpoint) {
            None => Inbound::Same,
            Some(keys) => self.inbound_at(keys, raw),
        }
    }

    /// [`Mapping::inbound`] at the endpoint of `keys`.
    fn inbound_at<'a>(&'a self, keys: &'a Keys, raw: &str) -> Inbound<'a> {
        let key = raw.strip_prefix(keys.prefix.as_str()).unwrap_or(raw);
        let Some(first) = self.by_key(keys, key) else {
            return Inbound::Same;
        };
        match keys.shared.get(key) {
            Some(ids) => Inbound::Conflict(ids.iter().map(|&id| self.sku(id)).collect()),
            None => Inbound::Sku(self.sku(first)),
        }
    }

    /// The canonical SKU of a record named `raw` at `endpoint`; `None` when the key is in
    /// conflict (it maps to two SKUs).
    pub fn canonical<'a>(&'a self, endpoint: &str, raw: &'a str) -> Option<&'a str> {
        match self.inbound(endpoint, raw) {
            Inbound::Same => Some(raw),
            Inbound::Sku(sku) => Some(sku),
            Inbound::Conflict(_) => None,
        }
    }

    /// What `endpoint` calls the canonical SKU `sku` (for a source, without its prefix), and
    /// why when a link says so; `None` when the SKU is in conflict, when another SKU's link
    /// takes its name there, or (at a source) when the SKU is not one of that source's names.
    ///
    /// This is the one question the dropship relay asks ("which Endless Aisles option is this
    /// SKU?"), and the one the push asks for every SKU of a target that has links.
    pub fn key_at<'a>(
        &'a self,
        endpoint: &str,
        sku: &'a str,
    ) -> Option<(Cow<'a, str>, Option<Origin>)> {
        if self.conflicts.contains_key(sku) {
            return None;
        }
        let Some(keys) = self.keys(endpoint) else {
            return Some((Cow::Borrowed(sku), None));
        };
        let link = self.by_sku(keys, sku);
        let key = self.key_given(keys, sku, link.map(|id| self.key(id)))?;
        Some((Cow::Borrowed(key), link.map(|id| self.origin(id))))
    }

    /// [`Mapping::key_at`]'s key at the endpoint of `keys`, for a SKU in no conflict whose link
    /// there (`by_sku`) gives it the key `linked`.
    fn key_given<'a>(&self, keys: &Keys, sku: &'a str, linked: Option<&'a str>) -> Option<&'a str> {
        if linked.is_some() {
            return linked;
        }
        let key = match keys.role {
            Role::Source => sku.strip_prefix(keys.prefix.as_str())?,
            _ => sku,
        };
        // Its own name belongs to another SKU here.
        if self.by_key(keys, key).is_some() {
            return None;
        }
        Some(key)
    }

    /// Every SKU in conflict, with why, given the SKUs known (a SKU whose name another SKU's
    /// link takes at a target is in conflict only once it exists).
    pub fn conflicts(&self, known: &SkuTable) -> BTreeMap<String, String> {
        let mut all = self.conflicts.clone();
        for keys in self.endpoints.iter().filter(|k| k.role == Role::Target) {
            let mut taken: Vec<(&str, &str)> = Vec::new();
            for &id in &keys.links {
                let (sku, key) = (self.sku(id), self.key(id));
                // The names first: a key is seldom a SKU's name, and then one look-up is enough.
                if key == sku || known.get(key).is_none() || self.by_sku(keys, key).is_some() {
                    continue;
                }
                taken.push((key, sku));
            }
            // In order of key, then SKU: the reasons name the same SKUs whatever the file's order.
            taken.sort_unstable();
            for (key, sku) in taken {
                let why = format!(
                    "at {}: key {key:?} is the SKU {key} and also an alias of {sku}",
                    keys.name
                );
                all.entry(key.to_owned()).or_insert_with(|| why.clone());
                all.entry(sku.to_owned()).or_insert(why);
            }
        }
        all
    }

    /// The ids of [`Mapping::conflicts`] that `known` has: the SKUs every target holds.
    pub fn held(&self, known: &SkuTable) -> HashSet<SkuId> {
        if self.is_empty() {
            return HashSet::new();
        }
        self.conflicts(known)
            .keys()
            .filter_map(|sku| known.get(sku))
            .collect()
    }

    /// Every link of every endpoint that is not the default, for `status --sku`:
    /// `(sku, endpoint, key, origin)`.
    pub fn links(&self) -> impl Iterator<Item = (&str, &str, &str, Origin)> + '_ {
        self.endpoints.iter().flat_map(move |keys| {
            keys.links.iter().map(move |&id| {
                (
                    self.sku(id),
                    keys.name.as_str(),
                    self.key(id),
                    self.origin(id),
                )
            })
        })
    }

    /// The links at `endpoint`: `(sku, key)`.
    pub fn links_at<'a>(&'a self, endpoint: &str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.keys(endpoint).into_iter().flat_map(move |keys| {
            keys.links
                .iter()
                .map(move |&id| (self.sku(id), self.key(id)))
        })
    }

    /// Whether a link of `sku` at `endpoint` gives it its key there: it is in no conflict and
    /// has one key only (for a SKU with a link there, [`Mapping::key_at`] without its
    /// look-ups).
    pub fn link_holds(&self, endpoint: &str, sku: &str) -> bool {
        !self.conflicts.contains_key(sku)
            && self
                .keys(endpoint)
                .is_none_or(|keys| !keys.two_keys.contains_key(sku))
    }

    /// The key of the link from `sku` at `endpoint`, if there is one (whatever its conflicts).
    pub fn linked_key(&self, endpoint: &str, sku: &str) -> Option<&str> {
        let keys = self.keys(endpoint)?;
        let linked = self.by_sku(keys, sku).map(|id| self.key(id));
        self.linked_given(keys, sku, linked)
    }

    /// [`Mapping::linked_key`] at the endpoint of `keys`, for a SKU whose link there
    /// (`by_sku`) gives it the key `linked`.
    fn linked_given<'a>(
        &'a self,
        keys: &'a Keys,
        sku: &str,
        linked: Option<&'a str>,
    ) -> Option<&'a str> {
        match linked {
            Some(key) => Some(key),
            None => keys
                .two_keys
                .get(sku)
                .and_then(|ids| ids.first())
                .map(|&id| self.key(id)),
        }
    }

    /// Look-ups at `endpoint` of SKUs named by their id as well, each SKU's answer kept for
    /// the next (see [`ById`]): for a pass over (nearly) every SKU.
    pub fn by_id(&self, endpoint: &str) -> ById<'_> {
        ById::new(self, self.keys(endpoint), true)
    }

    /// Forgets the answers [`Mapping::by_id`] kept at `endpoint` (and frees them).
    pub fn forget_by_id(&self, endpoint: &str) {
        if let Some(keys) = self.keys(endpoint) {
            by_id::forget(&keys.by_id);
        }
    }

    /// [`Mapping::by_id`] that reads the answers kept and keeps no new one: for a few SKUs
    /// spread over the ids, whose answers would cost a vector over every id to keep.
    pub fn by_id_kept(&self, endpoint: &str) -> ById<'_> {
        ById::new(self, self.keys(endpoint), false)
    }
}

/// An Endless Aisles size: its key (option id) and barcode as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeBarcode {
    /// The option id.
    pub key: String,
    /// The `upc`, as written.
    pub upc: Option<String>,
}

/// The links `by_barcode` makes at Endless Aisles source `source`: each size whose `upc` is,
/// as a GTIN-14, the `ean` of a catalogue product (`products`: each product's `ean` and its
/// `match` field's value) is that value. Barcodes that are not GTINs link nothing.
pub fn barcode_links(
    source: &str,
    sizes: &[SizeBarcode],
    products: &[(String, String)],
) -> Vec<Link> {
    let mut by_gtin: HashMap<String, Vec<&str>> = HashMap::new();
    for (ean, sku) in products {
        if let Some(gtin) = gtin14(ean) {
            by_gtin.entry(gtin.to_string()).or_default().push(sku);
        }
    }
    let mut links = Vec::new();
    for size in sizes {
        let Some(gtin) = size.upc.as_deref().and_then(gtin14) else {
            continue;
        };
        for sku in by_gtin.get(gtin.as_str()).into_iter().flatten() {
            links.push(Link {
                sku: (*sku).to_owned(),
                endpoint: source.to_owned(),
                key: size.key.clone(),
                origin: Origin::Barcode(gtin.to_string()),
            });
        }
    }
    links
}

#[cfg(test)]
mod tests;
