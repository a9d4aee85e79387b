//! The catalogue and SKU mapping: a Shopsys catalogue simulator (`[targets.shop]`) whose
//! products carry the warehouse's SKUs as catnums. `invsync sim` serves just that; the demo adds
//! ten products that are Endless Aisles sizes under another name (linked by barcode), a product
//! that claims a SKU another has, a variant, and a mapping file with an alias and, on purpose,
//! one conflict, so that `status` has something to show.

use std::path::Path;

use super::simulators::{Simulators, WAREHOUSE, cannot_listen};
use super::skus::{Skus, barcodes};
use crate::commands::Failure;
use crate::services::shopsys::sim::{ShopsysSim, ShopsysSimConfig, SimProduct};

/// Catalogue products that are Endless Aisles sizes (`CAT-0001`… ↔ items 1…).
const LINKED: usize = 10;

/// The catalogue simulator, running.
pub(crate) struct Catalogue {
    /// The shop.
    pub sim: ShopsysSim,
}

impl Catalogue {
    /// Starts the shop on `port` (0: a free one) with a product for every warehouse SKU (product
    /// `i` has catnum `HK-…i`), as `invsync sim` serves it.
    pub async fn start_on(
        skus: Skus,
        dialect: crate::sim::Dialect,
        port: u16,
    ) -> Result<Catalogue, Failure> {
        let sim = ShopsysSim::start_on(ShopsysSimConfig::default(), port)
            .await
            .map_err(|e| cannot_listen("catalogue (Shopsys)", port, e))?;
        sim.set_dialect(dialect);
        let shop = sim.clone();
        // A million products take a second or two: off the runtime, beside the others' seeding.
        tokio::task::spawn_blocking(move || {
            shop.add_products(
                (1..=skus.count())
                    .map(|i| SimProduct::with_catnum(i as u64, skus.warehouse_sku(i))),
            )
        })
        .await
        .map_err(|e| Failure::Other(format!("cannot give the catalogue its products: {e}")))?;
        Ok(Catalogue { sim })
    }

    /// The demo's shop, on a free loopback port: every warehouse SKU's product, ten products
    /// linked to Endless Aisles sizes by barcode, a SKU claimed twice and a variant; Hardtofind
    /// is readied for the names the mapping gives.
    pub async fn start(simulators: &Simulators) -> Result<Catalogue, Failure> {
        let catalogue = Catalogue::start_on(simulators.skus, simulators.dialect, 0).await?;
        let count = simulators.skus.count();
        let mut products: Vec<SimProduct> = (1..=LINKED)
            .map(|i| SimProduct {
                catnum: Some(format!("CAT-{i:04}")),
                ean: Some(barcodes(i).1),
                ..SimProduct::numbered((count + i) as u64)
            })
            .collect();
        // Two products claim one SKU (listed as matched twice; both are flagged when it runs
        // out), and one is a variant, which the API cannot change (listed under its own
        // heading once it runs out).
        products.push(SimProduct {
            catnum: Some(simulators.skus.warehouse_sku(count)),
            ean: None,
            ..SimProduct::numbered((count + LINKED + 1) as u64)
        });
        catalogue.sim.add_products(products);
        catalogue
            .sim
            .update(&SimProduct::numbered(5).uuid, |p| p.variant = true);
        // Sold out from the start, so the first cycle asks to flag the variant.
        let sold_out = simulators.skus.warehouse_sku(5);
        simulators.hako.set_quantity(WAREHOUSE, &sold_out, 0);
        let hardtofind = &simulators.hardtofind;
        hardtofind.add_variants((1..=LINKED).map(|i| format!("CAT-{i:04}")));
        hardtofind.add_variants(["HTF-ONE", "HTF-THREE-A", "HTF-THREE-B"]);
        Ok(catalogue)
    }

    /// `[targets.shop]`: the flag target on this shop, fed by `inputs` (TOML array items).
    pub fn target_toml(&self, inputs: &str) -> String {
        format!(
            "[targets.shop]\n\
             type = \"shopsys\"\n\
             base_url = \"{}\"\n\
             client_id = \"{}\"\n\
             client_secret = \"{}\"\n\
             inputs = [{inputs}]\n",
            self.sim.base_url(),
            self.sim.client_id(),
            self.sim.client_secret(),
        )
    }

    /// `[targets.shop]` and `[mapping]` for the demo's configuration.
    pub fn demo_toml(&self) -> String {
        format!(
            "\n{}catalogue_refresh = \"1m\"\n\n\
             [mapping]\n\
             file = \"skus.csv\"\n\
             by_barcode = true\n",
            self.target_toml("\"warehouse\", \"dropship\"")
        )
    }
}

/// The demo's mapping file: `HK-0001` is `HTF-ONE` at Hardtofind, and `HK-0003` is given two
/// names there (a conflict: held at every target and listed in `status`).
pub(crate) fn write_mapping(dir: &Path, skus: Skus) -> std::io::Result<()> {
    let text = format!(
        "sku,endpoint,key\n{one},hardtofind,HTF-ONE\n{three},hardtofind,HTF-THREE-A\n{three},hardtofind,HTF-THREE-B\n",
        one = skus.warehouse_sku(1),
        three = skus.warehouse_sku(3),
    );
    std::fs::write(dir.join("skus.csv"), text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::endless_aisles::gtin14;

    #[test]
    fn the_demo_barcodes_are_gtins_that_link_across_their_two_spellings() {
        for i in [1, LINKED, 150, 5_000_000] {
            let (ea, shop) = barcodes(i);
            assert_eq!(ea.len(), 13);
            assert!(gtin14(&ea).is_some(), "{ea}");
            assert_eq!(gtin14(&ea), gtin14(&shop));
        }
        assert_ne!(barcodes(1).1, barcodes(2).1);
    }
}
