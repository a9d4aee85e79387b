//! The demo's catalogue and SKU mapping: a Shopsys catalogue simulator (`[targets.shop]`) whose
//! products carry the warehouse's SKUs as catnums, ten products that are Endless Aisles sizes
//! under another name (linked by barcode), and a mapping file with an alias and, on purpose,
//! one conflict, so that `status` has something to show.

use std::path::Path;

use super::simulators::{
    DROPSHIP_SKUS, Simulators, WAREHOUSE, WAREHOUSE_SKUS, dropship_id, warehouse_sku,
};
use crate::commands::Failure;
use crate::services::endless_aisles::gtin14;
use crate::services::endless_aisles::sim::SimSize;
use crate::services::shopsys::sim::{ShopsysSim, ShopsysSimConfig, SimProduct};

/// Catalogue products that are Endless Aisles sizes (`CAT-0001`… ↔ items 1…).
const LINKED: usize = 10;

/// A valid 12-digit UPC for dropship item `i`, as Endless Aisles writes it (13 digits, with a
/// leading zero), and the same code as the shop writes it (12 digits).
fn barcodes(i: usize) -> (String, String) {
    let body = format!("0{:010}", 7_419_860_000 + i);
    let upc = (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|code| gtin14(code).is_some())
        .unwrap_or_default();
    (format!("0{upc}"), upc)
}

/// Gives every Endless Aisles item a size in a product (three sizes a product), a few of them
/// not for sale, so the products the source reads look like the document's.
pub(crate) fn add_sizes(simulators: &Simulators) {
    let ea = &simulators.endless_aisles;
    for product in 0..DROPSHIP_SKUS.div_ceil(3) {
        let sizes = (1..=3)
            .map(|n| product * 3 + n)
            .filter(|&i| i <= DROPSHIP_SKUS)
            .map(|i| {
                let id: u64 = dropship_id(i).parse().unwrap_or_default();
                SimSize::new(id, &barcodes(i).0)
            })
            .collect();
        ea.add_product(
            product as u64 + 1,
            &format!("Dog food {}", product + 1),
            sizes,
        );
    }
    for i in (25..=DROPSHIP_SKUS).step_by(25) {
        ea.set_purchasability(dropship_id(i).parse().unwrap_or_default(), false);
    }
    for i in (40..=DROPSHIP_SKUS).step_by(40) {
        ea.set_discontinued(dropship_id(i).parse().unwrap_or_default(), true);
    }
}

/// The catalogue simulator, running.
pub(crate) struct Catalogue {
    /// The shop.
    pub sim: ShopsysSim,
}

impl Catalogue {
    /// Starts the shop on a free loopback port with its products, and readies Hardtofind for
    /// the names the mapping gives.
    pub async fn start(simulators: &Simulators) -> Result<Catalogue, Failure> {
        let sim = ShopsysSim::start(ShopsysSimConfig::default())
            .await
            .map_err(|e| Failure::Other(format!("cannot start the catalogue simulator: {e}")))?;
        sim.set_dialect(simulators.dialect);
        let mut products: Vec<SimProduct> = (1..=WAREHOUSE_SKUS)
            .map(|i| SimProduct {
                catnum: Some(warehouse_sku(i)),
                ean: None,
                ..SimProduct::numbered(i as u64)
            })
            .collect();
        products.extend((1..=LINKED).map(|i| SimProduct {
            catnum: Some(format!("CAT-{i:04}")),
            ean: Some(barcodes(i).1),
            ..SimProduct::numbered((WAREHOUSE_SKUS + i) as u64)
        }));
        // Two products claim one SKU (listed as matched twice; both are flagged when it runs
        // out), and one is a variant, which the API cannot change (listed under its own
        // heading once it runs out).
        products.push(SimProduct {
            catnum: Some(warehouse_sku(WAREHOUSE_SKUS)),
            ean: None,
            ..SimProduct::numbered((WAREHOUSE_SKUS + LINKED + 1) as u64)
        });
        if let Some(variant) = products.get_mut(4) {
            variant.variant = true;
        }
        // Sold out from the start, so the first cycle asks to flag the variant.
        simulators
            .hako
            .set_quantity(WAREHOUSE, &warehouse_sku(5), 0);
        sim.add_products(products);
        let hardtofind = &simulators.hardtofind;
        hardtofind.add_variants((1..=LINKED).map(|i| format!("CAT-{i:04}")));
        hardtofind.add_variants(["HTF-ONE", "HTF-THREE-A", "HTF-THREE-B"]);
        Ok(Catalogue { sim })
    }

    /// `[targets.shop]` and `[mapping]` for the demo's configuration.
    pub fn toml(&self) -> String {
        format!(
            "\n[targets.shop]\n\
             type = \"shopsys\"\n\
             base_url = \"{}\"\n\
             client_id = \"{}\"\n\
             client_secret = \"{}\"\n\
             inputs = [\"warehouse\", \"dropship\"]\n\
             catalogue_refresh = \"1m\"\n\n\
             [mapping]\n\
             file = \"skus.csv\"\n\
             by_barcode = true\n",
            self.sim.base_url(),
            self.sim.client_id(),
            self.sim.client_secret(),
        )
    }
}

/// The demo's mapping file: `HK-0001` is `HTF-ONE` at Hardtofind, and `HK-0003` is given two
/// names there (a conflict: held at every target and listed in `status`).
pub(crate) fn write_mapping(dir: &Path) -> std::io::Result<()> {
    let text = format!(
        "sku,endpoint,key\n{one},hardtofind,HTF-ONE\n{three},hardtofind,HTF-THREE-A\n{three},hardtofind,HTF-THREE-B\n",
        one = warehouse_sku(1),
        three = warehouse_sku(3),
    );
    std::fs::write(dir.join("skus.csv"), text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_barcodes_are_gtins_that_link_across_their_two_spellings() {
        for i in [1, LINKED, DROPSHIP_SKUS] {
            let (ea, shop) = barcodes(i);
            assert_eq!(ea.len(), 13);
            assert!(gtin14(&ea).is_some(), "{ea}");
            assert_eq!(gtin14(&ea), gtin14(&shop));
        }
        assert_ne!(barcodes(1).1, barcodes(2).1);
    }
}
