//! The mapping in force: the [`Mapping`], built when a cycle first needs
//! it and again when what it is made of changes (the file's lines, see [`file`]; and with
//! `by_barcode`, the Endless Aisles sizes and the catalogues' barcodes), and what each Endless
//! Aisles source's products say (sizes that cannot be sold count as 0).
//!
//! An unchanged cycle needs none of it: the fingerprint that marks answers and settled targets
//! is the file's digest (and the barcodes' parts), not a walk over its links, and the mapping
//! is built only when an answer is new at a source it maps, a target plans, an order feed it
//! maps has orders, or the relay asks ([`Mapper::mapping`]). What `status` shows of it is
//! computed again only when something it depends on changed
//! ([`crate::daemon::mapping::notes::write`]).
//!
//! [`Mapper::prepare`] is the one place a source's answer becomes canonical records: sizes that
//! cannot be sold set to 0, sizes waiting for their barcode's catalogue held, keys renamed. With
//! no `[mapping]` and no products read it gives the answer back untouched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::config::{Config, SourceKind, TargetKind, mapping::endpoints};
use crate::mapping::{Aliases, EndpointSpec, Link, Mapping, SizeBarcode, barcode_links};
use crate::plan::ledger::{SkuId, SkuTable};
use crate::services::Stock;
use crate::services::endless_aisles::{NotSellable, SizeInfo, gtin14};
use crate::store::mapping::Note;
use crate::store::{Store, StoreError};

use file::{FileInForce, Proof};

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
    /// How they read an answer, summed up once when read (see [`Mapper::context`]): while
    /// sizes wait for the catalogues, and once they do not.
    print_waiting: String,
    print_ready: String,
}

#[derive(Debug, Default)]
struct Parts {
    sizes: BTreeMap<String, Sizes>,
    /// Each catalogue target's `(ean, match value)` pairs, once read.
    catalogues: BTreeMap<String, Vec<(String, String)>>,
    /// A digest of what the barcodes' links are made of (with `by_barcode`).
    print: u64,
}

/// The mapping built, and the version of its parts it was built from.
type Built = Option<(u64, Arc<Mapping>)>;

/// The conflicts worked out, for the version and the number of names they were worked out
/// for.
type Worked = Option<((u64, usize), Arc<BTreeMap<String, String>>)>;

/// The mapping in force and what it is made of.
pub struct Mapper {
    endpoints: Vec<EndpointSpec>,
    /// The file in force, and where it is.
    file: Option<(FileInForce, PathBuf, PathBuf)>,
    /// Its lines, once needed.
    aliases: tokio::sync::OnceCell<Arc<Aliases>>,
    /// Where the lines of a file not read at start are.
    store: Store,
    by_barcode: bool,
    /// The catalogue targets whose barcodes `by_barcode` waits for.
    catalogue_targets: Vec<String>,
    /// Each Endless Aisles source's `products_refresh` (`None`: off).
    refresh: HashMap<String, Duration>,
    parts: Mutex<Parts>,
    current: RwLock<Built>,
    /// One build at a time.
    building: tokio::sync::Mutex<()>,
    /// Counts changes of what the mapping is built from.
    version: AtomicU64,
    /// Counts changes of anything `status` shows of the mapping (the version's, the sizes',
    /// the collisions').
    changes: AtomicU64,
    /// The mapping's own conflicts, as last worked out.
    conflicts: Mutex<Worked>,
    /// Per source, the SKUs two records of its last answer named (see [`held`]).
    collisions: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Mapper {
    /// The mapping of `config`, whose file (if any) is `file` (see [`file::prepare`]), its
    /// lines in `store` unless read now; barcodes and products come later.
    pub fn new(config: &Config, file: Option<FileInForce>, store: Store) -> Mapper {
        let spec = config.mapping.as_ref();
        let endpoints = endpoints(&config.sources, &config.targets, &config.feeds);
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
        let aliases = tokio::sync::OnceCell::new();
        if let Some(Proof::Fresh(lines)) = file.as_ref().map(|f| &f.proof) {
            // Just set: the cell is new.
            let _ = aliases.set(lines.clone());
        }
        let path = spec.and_then(|m| m.file.clone()).unwrap_or_default();
        Mapper {
            endpoints,
            file: file.map(|f| (f, config.path.clone(), path)),
            aliases,
            store,
            by_barcode: spec.is_some_and(|m| m.by_barcode),
            catalogue_targets,
            refresh,
            parts: Mutex::default(),
            current: RwLock::new(None),
            building: tokio::sync::Mutex::new(()),
            version: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            conflicts: Mutex::default(),
            collisions: Mutex::default(),
        }
    }

    /// No mapping at all: every SKU is its own name (for tests of the parts that read one).
    #[cfg(test)]
    pub(crate) async fn none() -> Mapper {
        // Tests only: an in-memory database cannot fail to open but for a bug.
        let store = Store::in_memory().await.expect("an in-memory database");
        Mapper {
            endpoints: Vec::new(),
            file: None,
            aliases: tokio::sync::OnceCell::new(),
            store,
            by_barcode: false,
            catalogue_targets: Vec::new(),
            refresh: HashMap::new(),
            parts: Mutex::default(),
            current: RwLock::new(None),
            building: tokio::sync::Mutex::new(()),
            version: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            conflicts: Mutex::default(),
            collisions: Mutex::default(),
        }
    }

    /// The mapping's content, summed up the same way in every process and without building it:
    /// the file's digest and (with `by_barcode`) what the barcodes' links are made of. A target
    /// settled under another mapping is planned again (see `targets::settled`).
    pub fn fingerprint(&self) -> String {
        let parts = if self.by_barcode {
            self.parts().print
        } else {
            0
        };
        match &self.file {
            // As it always was without a file or barcodes: nothing is read anew for a new
            // version of invsync.
            None if parts == 0 => "0:0000000000000000".to_owned(),
            None => format!("barcodes:{parts:016x}"),
            Some((file, ..)) => format!("file:{}:{parts:016x}", file.digest_hex()),
        }
    }

    /// How [`Mapper::prepare`] reads `source`'s records now: the mapping, and which of its sizes
    /// can be sold. The same answer read another way is a new answer (see
    /// `services::answer`).
    pub fn context(&self, source: &str) -> String {
        let sizes = {
            let parts = self.parts();
            match parts.sizes.get(source) {
                None => "-".to_owned(),
                Some(sizes) if self.waiting_for_catalogues(&parts) => sizes.print_waiting.clone(),
                Some(sizes) => sizes.print_ready.clone(),
            }
        };
        format!("mapping={} sizes={sizes}", self.fingerprint())
    }

    /// The mapping in force, built (and its file's lines read from the database) the first
    /// time it is needed, and again once what it is made of changed.
    pub async fn mapping(&self) -> Result<Arc<Mapping>, StoreError> {
        if let Some(built) = self.built() {
            return Ok(built);
        }
        let _turn = self.building.lock().await;
        loop {
            if let Some(built) = self.built() {
                return Ok(built);
            }
            let version = self.version();
            let aliases = self.aliases().await?;
            let started = std::time::Instant::now();
            let links = self.barcode_links();
            let endpoints = self.endpoints.clone();
            let mapping = tokio::task::spawn_blocking(move || {
                Arc::new(Mapping::build(&endpoints, aliases, links))
            })
            .await
            .map_err(|_| StoreError::Join)?;
            tracing::debug!(
                links = mapping.len(),
                ms = started.elapsed().as_millis() as u64,
                "the SKU mapping was built"
            );
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            // Parts that changed meanwhile make it stale already: built again.
            if self.version() == version {
                *current = Some((version, mapping.clone()));
                return Ok(mapping);
            }
        }
    }

    /// The mapping built for the version in force, if it is.
    fn built(&self) -> Option<Arc<Mapping>> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        match &*current {
            Some((version, mapping)) if *version == self.version() => Some(mapping.clone()),
            _ => None,
        }
    }

    /// The file's lines: read at start, or read now from the database.
    async fn aliases(&self) -> Result<Arc<Aliases>, StoreError> {
        let Some((file, config, path)) = &self.file else {
            return Ok(Arc::default());
        };
        self.aliases
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                let lines = file::load_lines(&self.store, file, config, path).await?;
                tracing::debug!(
                    lines = lines.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "the mapping file's lines were read from the database"
                );
                Ok(Arc::new(lines))
            })
            .await
            .cloned()
    }

    /// The barcodes' links, from the parts as they are.
    fn barcode_links(&self) -> Vec<Link> {
        if !self.by_barcode {
            return Vec::new();
        }
        let parts = self.parts();
        let products: Vec<(String, String)> =
            parts.catalogues.values().flatten().cloned().collect();
        let mut links = Vec::new();
        for (source, sizes) in &parts.sizes {
            links.extend(barcode_links(source, &sizes.barcodes, &products));
        }
        links
    }

    /// How many times what the mapping is made of changed.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// How many times anything `status` shows of the mapping changed.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Whether the mapping may give `endpoint` keys of its own: the file has lines for it, or
    /// (with `by_barcode`) it is an Endless Aisles source whose sizes may link by barcode.
    /// Nothing else needs the mapping built to read its records.
    pub fn may_map(&self, endpoint: &str) -> bool {
        let in_file =
            (self.file.as_ref()).is_some_and(|(f, ..)| f.named.iter().any(|n| n == endpoint));
        in_file || (self.by_barcode && self.refresh.contains_key(endpoint))
    }

    /// The digest of the mapping file in force, if there is one.
    pub fn file_digest(&self) -> Option<crate::config::mapping::FileDigest> {
        self.file.as_ref().map(|(f, ..)| f.digest)
    }

    /// Whether anything maps at all: a file, or barcodes.
    pub fn maps_anything(&self) -> bool {
        self.file.is_some() || self.by_barcode
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Parts> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the mapping is made of changed: built again when next needed.
    fn changed_parts(&self) {
        self.version.fetch_add(1, Ordering::SeqCst);
        self.changed();
    }

    /// Something `status` shows of the mapping changed.
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::SeqCst);
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
        let mut fresh = Sizes {
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
            print_waiting: String::new(),
            print_ready: String::new(),
        };
        fresh.print_waiting = sizes_print(&fresh, true);
        fresh.print_ready = sizes_print(&fresh, false);
        let changed = {
            let mut parts = self.parts();
            let changed = parts
                .sizes
                .get(source)
                .is_none_or(|old| old.barcodes != fresh.barcodes);
            parts.sizes.insert(source.to_owned(), fresh);
            if changed && self.by_barcode {
                parts.print = parts_print(&parts);
            }
            changed
        };
        if changed && self.by_barcode {
            self.changed_parts();
        } else {
            self.changed();
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
            if changed {
                parts.print = parts_print(&parts);
            }
            changed
        };
        if changed {
            self.changed_parts();
        }
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

    /// A source's answer as canonical records (see the module documentation). The mapping is
    /// built for it only when it may map the source.
    pub async fn prepare(&self, source: &str, stock: Stock) -> Result<Stock, StoreError> {
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
        if !self.may_map(source) {
            self.set_collisions(source, BTreeMap::new());
            return Ok(stock);
        }
        let translated = self.mapping().await?.translate(source, stock);
        self.set_collisions(source, translated.collisions);
        Ok(translated.stock)
    }

    /// The mapping's own conflicts given the SKUs known, worked out again only when the
    /// mapping or the number of names changed (names are only ever added).
    async fn own_conflicts(
        &self,
        known: &RwLock<SkuTable>,
    ) -> Result<Arc<BTreeMap<String, String>>, StoreError> {
        if !self.maps_anything() {
            return Ok(Arc::default());
        }
        let mapping = self.mapping().await?;
        let names = known.read().unwrap_or_else(|p| p.into_inner());
        let key = (self.version(), names.len());
        let mut worked = self.conflicts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((of, conflicts)) = &*worked
            && *of == key
        {
            return Ok(conflicts.clone());
        }
        let conflicts = Arc::new(mapping.conflicts(&names));
        *worked = Some((key, conflicts.clone()));
        Ok(conflicts)
    }

    /// What `status` shows of the conflicts (given the SKUs known) and of the sizes that cannot
    /// be sold, under their canonical SKUs.
    pub async fn notes(
        &self,
        known: &RwLock<SkuTable>,
    ) -> Result<(Vec<Note>, Vec<Note>), StoreError> {
        let own = self.own_conflicts(known).await?;
        let conflicts = self.conflict_notes(&own);
        let unsellable_any = self
            .parts()
            .sizes
            .values()
            .any(|s| !s.unsellable.is_empty());
        let mapping = if unsellable_any && self.maps_anything() {
            self.mapping().await?
        } else {
            Arc::default()
        };
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
        Ok((conflicts, unsellable))
    }

    /// Every key a barcode gives a SKU, for `status --sku` (the file's are read from its lines
    /// recorded).
    pub async fn key_notes(&self) -> Result<Vec<Note>, StoreError> {
        if !self.by_barcode {
            return Ok(Vec::new());
        }
        Ok(self
            .mapping()
            .await?
            .links()
            .filter(|(.., origin)| matches!(origin, crate::mapping::Origin::Barcode(_)))
            .map(|(sku, endpoint, key, origin)| Note {
                kind: "key".into(),
                sku: sku.to_owned(),
                endpoint: endpoint.to_owned(),
                detail: format!("{key} ({origin})"),
            })
            .collect())
    }

    /// The ids of every SKU in conflict that `known` has: the SKUs every target holds at what
    /// it acknowledged.
    pub async fn held(&self, known: &RwLock<SkuTable>) -> Result<Arc<HashSet<SkuId>>, StoreError> {
        let own = self.own_conflicts(known).await?;
        let names = known.read().unwrap_or_else(|p| p.into_inner());
        let mut held: HashSet<SkuId> = own.keys().filter_map(|sku| names.get(sku)).collect();
        held.extend(self.collided().iter().filter_map(|sku| names.get(sku)));
        Ok(Arc::new(held))
    }
}

/// A digest of how `sizes` read an answer: which sizes cannot be sold, and (`waiting`) which are
/// held for their barcode. SipHash with fixed keys: the same in every process.
fn sizes_print(sizes: &Sizes, waiting: bool) -> String {
    use std::hash::{Hash, Hasher};
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
    let mut hasher = std::hash::DefaultHasher::new();
    (unsellable, held).hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A digest of what the barcodes' links are made of: every size's barcode and every
/// catalogue's pairs (SipHash with fixed keys: the same in every process).
fn parts_print(parts: &Parts) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    for (source, sizes) in &parts.sizes {
        source.hash(&mut hasher);
        for size in &sizes.barcodes {
            (&size.key, &size.upc).hash(&mut hasher);
        }
    }
    parts.catalogues.hash(&mut hasher);
    // Never 0: that is "no barcodes" in the fingerprint.
    hasher.finish() | 1
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

pub mod file;
mod held;

#[cfg(test)]
mod tests;
