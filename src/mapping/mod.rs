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

pub mod csv;
mod translate;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::plan::ledger::{SkuId, SkuTable};
use crate::services::endless_aisles::gtin14;

pub use csv::{Alias, CsvError};
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

impl From<&Alias> for Link {
    fn from(alias: &Alias) -> Link {
        Link {
            sku: alias.sku.clone(),
            endpoint: alias.endpoint.clone(),
            key: alias.key.clone(),
            origin: Origin::Csv(alias.line),
        }
    }
}

/// A key that maps to two or more SKUs.
const CONFLICT: u32 = u32::MAX;

/// One endpoint's links, each string stored once.
#[derive(Debug, Default)]
struct Keys {
    role: Option<Role>,
    prefix: String,
    links: Vec<(Arc<str>, Arc<str>, Origin)>,
    /// key → index in `links`, or [`CONFLICT`].
    by_key: HashMap<Arc<str>, u32>,
    /// SKU → index in `links` (a SKU with two keys is conflicted and has none).
    by_sku: HashMap<Arc<str>, u32>,
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
    endpoints: HashMap<String, Keys>,
    /// SKU → why it is in conflict.
    conflicts: BTreeMap<String, String>,
}

impl Mapping {
    /// Resolves `links` over `endpoints` (see the module documentation): lines of the file
    /// first, then barcodes where the file says nothing of that key or SKU at that endpoint.
    /// Links naming an endpoint not in `endpoints` are ignored (the file was checked already).
    pub fn resolve(endpoints: &[EndpointSpec], links: Vec<Link>) -> Mapping {
        let mut by_endpoint: HashMap<&str, Vec<Link>> = HashMap::new();
        for link in links {
            if let Some(spec) = endpoints.iter().find(|e| e.name == link.endpoint) {
                by_endpoint
                    .entry(spec.name.as_str())
                    .or_default()
                    .push(link);
            }
        }
        let mut mapping = Mapping::default();
        for spec in endpoints {
            let Some(mut links) = by_endpoint.remove(spec.name.as_str()) else {
                continue;
            };
            // The file wins over barcodes, for a key and for a SKU alike.
            if links.iter().any(|l| matches!(l.origin, Origin::Barcode(_))) {
                let (csv_keys, csv_skus): (HashSet<String>, HashSet<String>) = links
                    .iter()
                    .filter(|l| matches!(l.origin, Origin::Csv(_)))
                    .map(|l| (l.key.clone(), l.sku.clone()))
                    .unzip();
                links.retain(|l| {
                    matches!(l.origin, Origin::Csv(_))
                        || !(csv_keys.contains(&l.key) || csv_skus.contains(&l.sku))
                });
            }
            links.sort_by(|a, b| (&a.key, &a.sku).cmp(&(&b.key, &b.sku)));
            links.dedup_by(|a, b| a.key == b.key && a.sku == b.sku);
            let keys = mapping.endpoint_keys(spec, links);
            mapping.endpoints.insert(spec.name.clone(), keys);
        }
        mapping
    }

    /// One endpoint's links indexed both ways, its conflicts noted.
    fn endpoint_keys(&mut self, spec: &EndpointSpec, links: Vec<Link>) -> Keys {
        let mut keys = Keys {
            role: Some(spec.role),
            prefix: spec.prefix.clone(),
            links: Vec::with_capacity(links.len()),
            by_key: HashMap::with_capacity(links.len()),
            by_sku: HashMap::with_capacity(links.len()),
        };
        let mut two_keys: HashSet<Arc<str>> = HashSet::new();
        for link in links {
            let index = u32::try_from(keys.links.len()).unwrap_or(CONFLICT - 1);
            let (sku, key): (Arc<str>, Arc<str>) = (link.sku.into(), link.key.into());
            match keys.by_key.get(&key).copied() {
                None => {
                    keys.by_key.insert(key.clone(), index);
                }
                Some(CONFLICT) => {
                    self.conflict(&sku, &spec.name, format!("key {key:?} maps to two SKUs"));
                }
                Some(first) => {
                    let other = keys.links[first as usize].0.clone();
                    let why = format!("key {key:?} maps to two SKUs ({other} and {sku})");
                    self.conflict(&other, &spec.name, why.clone());
                    self.conflict(&sku, &spec.name, why);
                    keys.by_key.insert(key.clone(), CONFLICT);
                }
            }
            if let Some(first) = keys.by_sku.get(&sku).copied() {
                let other = &keys.links[first as usize].1;
                let why = format!("two keys: {other:?} and {key:?}");
                self.conflict(&sku, &spec.name, why);
                two_keys.insert(sku.clone());
            } else if !two_keys.contains(&sku) {
                keys.by_sku.insert(sku.clone(), index);
            }
            keys.links.push((sku, key, link.origin));
        }
        for sku in two_keys {
            keys.by_sku.remove(&sku);
        }
        keys
    }

    fn conflict(&mut self, sku: &str, endpoint: &str, why: String) {
        self.conflicts
            .entry(sku.to_owned())
            .or_insert_with(|| format!("at {endpoint}: {why}"));
    }

    /// Whether nothing is mapped: every SKU is called the same everywhere.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Whether `endpoint` has links of its own.
    pub fn maps(&self, endpoint: &str) -> bool {
        self.endpoints.contains_key(endpoint)
    }

    /// How many links there are in all.
    pub fn len(&self) -> usize {
        self.endpoints.values().map(|k| k.links.len()).sum()
    }

    /// What a record named `raw` at source or feed `endpoint` is. `raw` is the name as the
    /// records give it (an Endless Aisles source's includes its prefix).
    pub fn inbound<'a>(&'a self, endpoint: &str, raw: &str) -> Inbound<'a> {
        let Some(keys) = self.endpoints.get(endpoint) else {
            return Inbound::Same;
        };
        let key = raw.strip_prefix(keys.prefix.as_str()).unwrap_or(raw);
        match keys.by_key.get(key).copied() {
            None => Inbound::Same,
            Some(CONFLICT) => Inbound::Conflict(
                keys.links
                    .iter()
                    .filter(|(_, k, _)| &**k == key)
                    .map(|(sku, _, _)| &**sku)
                    .collect(),
            ),
            Some(index) => Inbound::Sku(&keys.links[index as usize].0),
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
    ) -> Option<(Cow<'a, str>, Option<&'a Origin>)> {
        if self.conflicts.contains_key(sku) {
            return None;
        }
        let Some(keys) = self.endpoints.get(endpoint) else {
            return Some((Cow::Borrowed(sku), None));
        };
        if let Some(&index) = keys.by_sku.get(sku) {
            let (_, key, origin) = &keys.links[index as usize];
            return Some((Cow::Borrowed(&**key), Some(origin)));
        }
        let key = match keys.role {
            Some(Role::Source) => sku.strip_prefix(keys.prefix.as_str())?,
            _ => sku,
        };
        // Its own name belongs to another SKU here.
        if keys.by_key.contains_key(key) {
            return None;
        }
        Some((Cow::Borrowed(key), None))
    }

    /// Every SKU in conflict, with why, given the SKUs known (a SKU whose name another SKU's
    /// link takes at a target is in conflict only once it exists).
    pub fn conflicts(&self, known: &SkuTable) -> BTreeMap<String, String> {
        let mut all = self.conflicts.clone();
        for (endpoint, keys) in &self.endpoints {
            if keys.role != Some(Role::Target) {
                continue;
            }
            for (sku, key, _) in &keys.links {
                if key == sku || keys.by_sku.contains_key(key) || known.get(key).is_none() {
                    continue;
                }
                let why = format!(
                    "at {endpoint}: key {key:?} is the SKU {key} and also an alias of {sku}"
                );
                all.entry(key.to_string()).or_insert_with(|| why.clone());
                all.entry(sku.to_string()).or_insert(why);
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
    pub fn links(&self) -> impl Iterator<Item = (&str, &str, &str, &Origin)> + '_ {
        self.endpoints.iter().flat_map(|(endpoint, keys)| {
            keys.links
                .iter()
                .map(move |(sku, key, origin)| (&**sku, endpoint.as_str(), &**key, origin))
        })
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
