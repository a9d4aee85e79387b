//! A source's answer under canonical SKUs, and the collisions only an answer can show: two
//! records under different names that are one SKU (an alias's key and a record under the
//! SKU's own name, or two keys of one SKU). Which of the two figures is the SKU's, invsync
//! cannot tell; counting the smaller one would push a guess, so the SKU is a conflict.

use std::collections::{BTreeMap, HashMap};

use super::{Inbound, Keys, Mapping};
use crate::plan::stock::Stock;

/// What [`Mapping::translate`] made of an answer.
#[derive(Debug, Default)]
pub struct Translated {
    /// The records under their canonical SKUs; a SKU in doubt is held (at its last snapshot
    /// quantity), never counted absent.
    pub stock: Stock,
    /// SKU → why: the SKUs that two records of the answer name, each held at every target
    /// until an answer names it once.
    pub collisions: BTreeMap<String, String>,
}

impl Mapping {
    /// A source's records under their canonical SKUs. A key that maps to two SKUs holds both
    /// at their last snapshot quantity (neither can be told), and so does a SKU that two
    /// records name (see the module documentation), in whichever order they come. A source
    /// without links is given back untouched, at no cost.
    pub fn translate(&self, source: &str, stock: Stock) -> Translated {
        let Some(keys) = self.keys(source) else {
            return Translated {
                stock,
                collisions: BTreeMap::new(),
            };
        };
        let collisions = self.collisions(source, keys, &stock);
        let mut out = Stock::with_capacity(stock.len(), 0);
        for (raw, quantity) in stock.iter() {
            match self.inbound_at(keys, raw) {
                Inbound::Same if !collisions.contains_key(raw) => out.push(raw, quantity),
                Inbound::Sku(sku) if !collisions.contains_key(sku) => out.push(sku, quantity),
                // Held once below, whichever of its records comes.
                Inbound::Same | Inbound::Sku(_) => {}
                Inbound::Conflict(skus) => skus.into_iter().for_each(|s| out.hold(s)),
            }
        }
        for sku in collisions.keys() {
            out.hold(sku);
        }
        for raw in stock.held() {
            match self.inbound_at(keys, raw) {
                Inbound::Same => out.hold(raw),
                Inbound::Sku(sku) => out.hold(sku),
                Inbound::Conflict(skus) => skus.into_iter().for_each(|s| out.hold(s)),
            }
        }
        for _ in 0..stock.dropped() {
            out.count_dropped();
        }
        Translated {
            stock: out,
            collisions,
        }
    }

    /// The SKUs that two records of `stock` name under different names, with why. Only a SKU
    /// a link names can be reached from two names (without links every name is its own), so
    /// only those are watched. The same name twice is the source's own duplicate, not a
    /// mapping's (recording counts it once, at the smaller figure, with a WARN).
    fn collisions(&self, source: &str, keys: &Keys, stock: &Stock) -> BTreeMap<String, String> {
        let mut first: HashMap<&str, &str> = HashMap::new();
        let mut collisions = BTreeMap::new();
        for (raw, _) in stock.iter() {
            let sku = match self.inbound_at(keys, raw) {
                Inbound::Same => raw,
                Inbound::Sku(sku) => sku,
                Inbound::Conflict(_) => continue,
            };
            if !self.links_sku(keys, sku) {
                continue;
            }
            let earlier = *first.entry(sku).or_insert(raw);
            if earlier != raw {
                collisions.entry(sku.to_owned()).or_insert_with(|| {
                    format!(
                        "at {source}: two records are this SKU: {earlier:?} ({}) and {raw:?} ({})",
                        self.named_by(keys, earlier),
                        self.named_by(keys, raw)
                    )
                });
            }
        }
        collisions
    }
}

impl Mapping {
    /// Why a record named `raw` is the SKU it is: a link's origin, or its own name.
    fn named_by(&self, keys: &Keys, raw: &str) -> String {
        let key = raw.strip_prefix(keys.prefix.as_str()).unwrap_or(raw);
        match self.by_key(keys, key) {
            Some(id) if !keys.shared.contains_key(key) => self.origin(id).to_string(),
            _ => "its own name".to_owned(),
        }
    }
}
