//! The shop's products in list order, with an index by uuid, so that a catalogue of a million
//! products (`invsync sim --skus 1000000`) answers a page or a `PATCH` without a walk over all
//! of them.

use std::collections::HashMap;

use super::SimProduct;

/// Products in the order the list shows them (by internal id), and where each uuid is.
#[derive(Default)]
pub(super) struct Products {
    list: Vec<SimProduct>,
    at: HashMap<String, usize>,
}

impl Products {
    /// Room for `more` products.
    pub(super) fn reserve(&mut self, more: usize) {
        self.list.reserve(more);
        self.at.reserve(more);
    }

    /// Adds `product` at the end, or replaces the product with its uuid where it stands.
    pub(super) fn put(&mut self, product: SimProduct) {
        match self.at.get(&product.uuid) {
            Some(&i) => self.list[i] = product,
            None => {
                self.at.insert(product.uuid.clone(), self.list.len());
                self.list.push(product);
            }
        }
    }

    pub(super) fn get(&self, uuid: &str) -> Option<&SimProduct> {
        self.at.get(uuid).map(|&i| &self.list[i])
    }

    pub(super) fn get_mut(&mut self, uuid: &str) -> Option<&mut SimProduct> {
        self.at.get(uuid).map(|&i| &mut self.list[i])
    }

    /// Keeps the products `keep` says yes to; false when none went.
    pub(super) fn retain(&mut self, keep: impl FnMut(&SimProduct) -> bool) -> bool {
        let before = self.list.len();
        self.list.retain(keep);
        if self.list.len() == before {
            return false;
        }
        self.at = (self.list.iter().enumerate())
            .map(|(i, p)| (p.uuid.clone(), i))
            .collect();
        true
    }

    /// The products with these uuids, each once, in list order.
    pub(super) fn in_order(&self, uuids: &[&str]) -> Vec<&SimProduct> {
        let mut at: Vec<usize> = uuids
            .iter()
            .filter_map(|u| self.at.get(*u).copied())
            .collect();
        at.sort_unstable();
        at.dedup();
        at.into_iter().map(|i| &self.list[i]).collect()
    }

    /// Every product, in list order.
    pub(super) fn all(&self) -> &[SimProduct] {
        &self.list
    }
}
