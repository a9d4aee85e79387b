//! The engine's side of SKU mapping: the [`Mapping`] in force, rebuilt when what it is made of
//! changes (the file's lines, read with the configuration; and with `by_barcode`, the Endless
//! Aisles sizes and the catalogues' barcodes), and what each Endless Aisles source's products
//! say (sizes that cannot be sold count as 0).
//!
//! [`Mapper::prepare`] is the one place a source's answer becomes canonical records: sizes that
//! cannot be sold set to 0, sizes waiting for their barcode's catalogue held, keys renamed. With
//! no `[mapping]` and no products read it gives the answer back untouched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::config::{Config, SourceKind, TargetKind, mapping::endpoints};
use crate::mapping::{EndpointSpec, Link, Mapping, SizeBarcode, barcode_links};
use crate::plan::ledger::SkuTable;
use crate::services::Stock;
use crate::services::endless_aisles::{NotSellable, SizeInfo, gtin14};
use crate::store::mapping::Note;

/// One Endless Aisles source's products, as the mapping uses them.
#[derive(Debug, Default)]
struct Sizes {
    /// When they were read (ms), `None`: never.
    read_at: Option<i64>,
    /// Record names (prefix + option id) of sizes that cannot be sold, and why.
    unsellable: HashMap<String, NotSellable>,
    /// Every size's barcode.
    barcodes: Vec<SizeBarcode>,
    /// Record names of sizes whose barcode is a GTIN (held until the catalogues are read).
    with_gtin: HashSet<String>,
}

#[derive(Debug, Default)]
struct Parts {
    sizes: BTreeMap<String, Sizes>,
    /// Each catalogue target's `(ean, match value)` pairs, once read.
    catalogues: BTreeMap<String, Vec<(String, String)>>,
}

/// The mapping in force and what it is made of.
#[derive(Debug)]
pub struct Mapper {
    endpoints: Vec<EndpointSpec>,
    /// The file's lines, shared with the configuration.
    aliases: Arc<Vec<crate::mapping::Alias>>,
    by_barcode: bool,
    /// The catalogue targets whose barcodes `by_barcode` waits for.
    catalogue_targets: Vec<String>,
    /// Each Endless Aisles source's `products_refresh` (`None`: off).
    refresh: HashMap<String, Duration>,
    parts: Mutex<Parts>,
    current: RwLock<Arc<Mapping>>,
    /// Counts rebuilds, so the notes are written again only when the mapping changed.
    version: AtomicU64,
    /// The mapping's fingerprint, and the version it is of.
    printed: Mutex<Option<(u64, String)>>,
    /// Per source, the SKUs two records of its last answer named (see [`held`]).
    collisions: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl Mapper {
    /// The mapping of `config`'s file; barcodes and products come later.
    pub fn new(config: &Config) -> Mapper {
        let spec = config.mapping.as_ref();
        let aliases = spec.map(|m| m.aliases.clone()).unwrap_or_default();
        let endpoints = endpoints(&config.sources, &config.targets, &config.feeds);
        let mapping = Mapping::resolve(&endpoints, aliases.iter().map(Link::from).collect());
        let refresh = config
            .sources
            .iter()
            .filter_map(|s| match &s.kind {
                SourceKind::EndlessAisles(ea) => ea.products_refresh.map(|r| (s.name.clone(), r)),
                SourceKind::Hako(_) => None,
            })
            .collect();
        let catalogue_targets = config
            .targets
            .iter()
            .filter(|t| matches!(t.kind, TargetKind::Shopsys(_)))
            .map(|t| t.name.clone())
            .collect();
        Mapper {
            endpoints,
            aliases,
            by_barcode: spec.is_some_and(|m| m.by_barcode),
            catalogue_targets,
            refresh,
            parts: Mutex::default(),
            current: RwLock::new(Arc::new(mapping)),
            version: AtomicU64::new(0),
            printed: Mutex::default(),
            collisions: Mutex::default(),
        }
    }

    /// No mapping at all: every SKU is its own name (for tests of the parts that read one).
    #[cfg(test)]
    pub(crate) fn none() -> Mapper {
        Mapper {
            endpoints: Vec::new(),
            aliases: Arc::default(),
            by_barcode: false,
            catalogue_targets: Vec::new(),
            refresh: HashMap::new(),
            parts: Mutex::default(),
            current: RwLock::default(),
            version: AtomicU64::new(0),
            printed: Mutex::default(),
            collisions: Mutex::default(),
        }
    }

    /// The mapping's content, summed up the same way in every process: a target settled under
    /// another mapping is planned again (see `target::settled`).
    pub fn fingerprint(&self) -> String {
        let version = self.version();
        let mut printed = self.printed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((of, print)) = &*printed
            && *of == version
        {
            return print.clone();
        }
        let print = notes::fingerprint(&self.current());
        *printed = Some((version, print.clone()));
        print
    }

    /// How [`Mapper::prepare`] reads `source`'s records now: the mapping, and which of its sizes
    /// can be sold. The same answer read another way is a new answer (see
    /// `services::answer`).
    pub fn context(&self, source: &str) -> String {
        use std::hash::{Hash, Hasher};
        let sizes = {
            let parts = self.parts();
            match parts.sizes.get(source) {
                None => "-".to_owned(),
                Some(sizes) => {
                    let waiting = self.waiting_for_catalogues(&parts);
                    let mut unsellable: Vec<String> = sizes
                        .unsellable
                        .iter()
                        .map(|(name, why)| format!("{name} {why:?}"))
                        .collect();
                    unsellable.sort_unstable();
                    let mut held: Vec<&String> = if waiting {
                        sizes.with_gtin.iter().collect()
                    } else {
                        Vec::new()
                    };
                    held.sort_unstable();
                    // SipHash with fixed keys: the same in every process.
                    let mut hasher = std::hash::DefaultHasher::new();
                    (unsellable, held).hash(&mut hasher);
                    format!("{:016x}", hasher.finish())
                }
            }
        };
        format!("mapping={} sizes={sizes}", self.fingerprint())
    }

    /// The mapping in force.
    pub fn current(&self) -> Arc<Mapping> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many times it was rebuilt.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Parts> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the products of `source` are to be read now: never read, or read
    /// `products_refresh` ago (or more, or in the future: a clock set back).
    pub fn products_due(&self, source: &str, now: i64) -> bool {
        let Some(every) = self.refresh.get(source) else {
            return false;
        };
        let every = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        match self.parts().sizes.get(source).and_then(|s| s.read_at) {
            None => true,
            Some(at) => now < at || now.saturating_sub(at) >= every,
        }
    }

    /// Takes the products of `source` read at `read_at`.
    pub fn set_sizes(&self, source: &str, sizes: &[SizeInfo], read_at: i64) {
        let prefix = self.prefix(source);
        let name = |s: &SizeInfo| s.sku(&prefix);
        let fresh = Sizes {
            read_at: Some(read_at),
            unsellable: sizes
                .iter()
                .filter_map(|s| s.sellable().err().map(|why| (name(s), why)))
                .collect(),
            barcodes: sizes
                .iter()
                .map(|s| SizeBarcode {
                    key: s.option_id.to_string(),
                    upc: s.upc.clone(),
                })
                .collect(),
            with_gtin: sizes
                .iter()
                .filter(|s| s.upc.as_deref().and_then(gtin14).is_some())
                .map(name)
                .collect(),
        };
        let changed = {
            let mut parts = self.parts();
            let changed = parts
                .sizes
                .get(source)
                .is_none_or(|old| old.barcodes != fresh.barcodes);
            parts.sizes.insert(source.to_owned(), fresh);
            changed
        };
        if changed && self.by_barcode {
            self.rebuild();
        }
    }

    /// Takes the barcodes of catalogue target `target` (each product's `ean` and `match`
    /// value).
    pub fn set_catalogue(&self, target: &str, mut pairs: Vec<(String, String)>) {
        if !self.by_barcode {
            return;
        }
        pairs.sort();
        let changed = {
            let mut parts = self.parts();
            let changed = parts.catalogues.get(target) != Some(&pairs);
            parts.catalogues.insert(target.to_owned(), pairs);
            changed
        };
        if changed {
            self.rebuild();
        }
    }

    /// What Endless Aisles source `source` calls the canonical SKU `sku`: its option id, as an
    /// order there must name it; `None` when the SKU is not one of its sizes (by the mapping or
    /// its prefix) or is in a mapping conflict. The dropship relay's one question.
    pub fn supplier_key(&self, source: &str, sku: &str) -> Option<String> {
        self.current()
            .key_at(source, sku)
            .map(|(key, _)| key.into_owned())
    }

    /// Why the size that `source` calls `key` (its option id) cannot be sold, if the products
    /// last read say so.
    pub fn not_sellable(&self, source: &str, key: &str) -> Option<NotSellable> {
        let raw = format!("{}{key}", self.prefix(source));
        self.parts()
            .sizes
            .get(source)
            .and_then(|s| s.unsellable.get(&raw).copied())
    }

    /// Whether `by_barcode` waits for the barcodes of catalogue target `target`: they were
    /// never read (nor recorded before a restart).
    pub fn lacks_catalogue(&self, target: &str) -> bool {
        self.by_barcode && !self.parts().catalogues.contains_key(target)
    }

    /// Whether `by_barcode` is on.
    pub fn by_barcode(&self) -> bool {
        self.by_barcode
    }

    /// Whether sizes with a barcode wait for a catalogue not read yet (`by_barcode`).
    fn waiting_for_catalogues(&self, parts: &Parts) -> bool {
        self.by_barcode
            && !self
                .catalogue_targets
                .iter()
                .all(|t| parts.catalogues.contains_key(t))
    }

    fn prefix(&self, source: &str) -> String {
        self.endpoints
            .iter()
            .find(|e| e.name == source)
            .map(|e| e.prefix.clone())
            .unwrap_or_default()
    }

    fn rebuild(&self) {
        let mut links: Vec<Link> = self.aliases.iter().map(Link::from).collect();
        {
            let parts = self.parts();
            let products: Vec<(String, String)> =
                parts.catalogues.values().flatten().cloned().collect();
            for (source, sizes) in &parts.sizes {
                links.extend(barcode_links(source, &sizes.barcodes, &products));
            }
        }
        let mapping = Arc::new(Mapping::resolve(&self.endpoints, links));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = mapping;
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// A source's answer as canonical records (see the module documentation).
    pub fn prepare(&self, source: &str, stock: Stock) -> Stock {
        let stock = {
            let parts = self.parts();
            match parts.sizes.get(source) {
                Some(sizes) => {
                    let waiting = self.waiting_for_catalogues(&parts);
                    if waiting && !sizes.with_gtin.is_empty() {
                        tracing::warn!(
                            source,
                            sizes = sizes.with_gtin.len(),
                            "sizes with a barcode are held until every catalogue's products have been read once (mapping.by_barcode): they may be called otherwise"
                        );
                    }
                    sellable_only(stock, sizes, waiting)
                }
                None => stock,
            }
        };
        let translated = self.current().translate(source, stock);
        self.set_collisions(source, translated.collisions);
        translated.stock
    }

    /// What `status` shows of the conflicts (given the SKUs known) and of the sizes that cannot
    /// be sold, under their canonical SKUs.
    pub fn notes(&self, known: &SkuTable) -> (Vec<Note>, Vec<Note>) {
        let mapping = self.current();
        let conflicts = self.conflict_notes(&mapping, known);
        let parts = self.parts();
        let mut unsellable: Vec<Note> = parts
            .sizes
            .iter()
            .flat_map(|(source, sizes)| {
                let mapping = &mapping;
                sizes.unsellable.iter().filter_map(move |(raw, why)| {
                    Some(Note {
                        kind: "unsellable".into(),
                        sku: mapping.canonical(source, raw)?.to_owned(),
                        endpoint: source.clone(),
                        detail: match why {
                            NotSellable::NotPurchasable => format!("not purchasable at {source}"),
                            NotSellable::Discontinued => format!("discontinued at {source}"),
                        },
                    })
                })
            })
            .collect();
        unsellable.sort_by(|a, b| (&a.sku, &a.endpoint).cmp(&(&b.sku, &b.endpoint)));
        (conflicts, unsellable)
    }

    /// Every key that is not the SKU itself, for `status --sku`.
    pub fn key_notes(&self) -> Vec<Note> {
        self.current()
            .links()
            .map(|(sku, endpoint, key, origin)| Note {
                kind: "key".into(),
                sku: sku.to_owned(),
                endpoint: endpoint.to_owned(),
                detail: format!("{key} ({origin})"),
            })
            .collect()
    }
}

/// `stock` with the sizes that cannot be sold at 0, and (`waiting`) those with a barcode held
/// until the catalogues' barcodes are known: recorded under a name they may not keep, they
/// would be pushed and then zeroed.
fn sellable_only(stock: Stock, sizes: &Sizes, waiting: bool) -> Stock {
    if sizes.unsellable.is_empty() && (!waiting || sizes.with_gtin.is_empty()) {
        return stock;
    }
    let touched = |raw: &str| {
        sizes.unsellable.contains_key(raw) || (waiting && sizes.with_gtin.contains(raw))
    };
    if !stock.iter().any(|(raw, _)| touched(raw)) {
        return stock;
    }
    let mut out = Stock::with_capacity(stock.len(), 0);
    for (raw, quantity) in stock.iter() {
        if waiting && sizes.with_gtin.contains(raw) {
            out.hold(raw);
        } else if sizes.unsellable.contains_key(raw) {
            out.push(raw, 0);
        } else {
            out.push(raw, quantity);
        }
    }
    for raw in stock.held() {
        out.hold(raw);
    }
    for _ in 0..stock.dropped() {
        out.count_dropped();
    }
    out
}

mod held;
pub mod notes;

#[cfg(test)]
mod tests;
