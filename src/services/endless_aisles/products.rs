//! Endless Aisles' catalogue (`GET /api/products`, every page): for each size its option id,
//! barcode, price and whether it can be sold. The stock endpoint shows a figure for sizes that
//! Endless Aisles will not sell (`purchasability: false`, `discontinued: true`); an order for
//! one can never be filled, so such a size must count as 0 and never be relayed.

use std::fmt;

use super::api::Api;
use super::wire::products::{Product, Size};
use crate::http::{Endpoint, Meter};
use crate::services::ConnectorError;
use secrecy::SecretString;

/// One size of the catalogue, with what it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeInfo {
    /// The option id: the SKU of `/api/stock` (canonical SKU = `sku_prefix` + this).
    pub option_id: u64,
    /// The product it is a size of.
    pub product_id: u64,
    /// The product's title and the size's name, for people (`status --sku`).
    pub title: String,
    /// The barcode exactly as written (see [`crate::mapping::gtin::gtin14`] to compare it).
    pub upc: Option<String>,
    /// Whether Endless Aisles takes orders for it; `None` when the answer did not say.
    pub purchasability: Option<bool>,
    /// Whether it is discontinued; `None` when the answer did not say.
    pub discontinued: Option<bool>,
    /// What the retailer pays per unit (`wholesale`): what an order costs the shop.
    pub wholesale: Option<f64>,
    /// The listed (retail) price: what an order line's `price` carries (the document's order
    /// samples show a line's `price` equal to its size's `price`, beside a lower `wholesale`).
    pub price: Option<f64>,
}

/// Why a size cannot be sold; its `Display` is what `status --sku` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSellable {
    /// `purchasability` is false, or the answer did not say it is true.
    NotPurchasable,
    /// `discontinued` is true.
    Discontinued,
}

impl fmt::Display for NotSellable {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            NotSellable::NotPurchasable => "not purchasable",
            NotSellable::Discontinued => "discontinued",
        })
    }
}

impl SizeInfo {
    /// Whether the size can be sold: `Ok` or the reason it cannot. Discontinued wins (it is
    /// for good, not purchasable may pass). A purchasability the answer did not state counts
    /// as not purchasable: an order placed on a guess moves money.
    pub fn sellable(&self) -> Result<(), NotSellable> {
        if self.discontinued == Some(true) {
            Err(NotSellable::Discontinued)
        } else if self.purchasability != Some(true) {
            Err(NotSellable::NotPurchasable)
        } else {
            Ok(())
        }
    }

    /// The canonical SKU of this size, as the stock source names it.
    pub fn sku(&self, sku_prefix: &str) -> String {
        format!("{sku_prefix}{}", self.option_id)
    }

    fn from_wire(product: &Product, size: Size) -> SizeInfo {
        let title = [product.title.as_deref(), size.description.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        SizeInfo {
            option_id: size.id,
            product_id: product.id,
            title,
            upc: size.upc,
            purchasability: size.purchasability,
            discontinued: size.discontinued,
            wholesale: size.wholesale,
            price: size.price,
        }
    }
}

/// Reads Endless Aisles' product list.
#[derive(Clone)]
pub struct Products {
    api: Api,
}

impl Products {
    /// The catalogue of the account at `endpoint`.
    pub fn new(endpoint: Endpoint, token: SecretString) -> Products {
        Products::from_api(Api::new(endpoint, token))
    }

    pub(super) fn from_api(api: Api) -> Products {
        Products { api }
    }

    /// Every size of every product, by option id ascending. The whole list or an error: a
    /// partial catalogue would make the sizes it missed look unknown.
    pub async fn fetch(&self, meter: &Meter) -> Result<Vec<SizeInfo>, ConnectorError> {
        let products: Vec<Product> = self
            .api
            .get_all(meter, "/api/products", &[], |p: &Product| p.id)
            .await?;
        let mut sizes: Vec<SizeInfo> = products
            .into_iter()
            .flat_map(|mut p| {
                let sizes = std::mem::take(&mut p.sizes);
                sizes.into_iter().map(move |s| SizeInfo::from_wire(&p, s))
            })
            .collect();
        sizes.sort_by_key(|s| s.option_id);
        // A size listed under two products is one size; keep the first.
        sizes.dedup_by_key(|s| s.option_id);
        Ok(sizes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::gtin::gtin14;
    use crate::services::endless_aisles::api::test_api;
    use crate::services::endless_aisles::sim::{EndlessAislesSim, EndlessAislesSimConfig, SimSize};

    #[tokio::test]
    async fn every_page_of_products_is_read_with_why_a_size_cannot_be_sold() {
        let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
            .await
            .expect("start");
        for product in 1..=5u64 {
            let sizes = (0..2)
                .map(|i| SimSize::new(product * 100 + i, &format!("00000000{product}{i}")))
                .collect();
            sim.add_product(product, &format!("Product {product}"), sizes);
        }
        sim.add_product(
            6,
            "Taste Of The Wild",
            vec![SimSize::new(22397, "'074198609628")],
        );
        assert!(sim.set_purchasability(301, false));
        assert!(sim.set_discontinued(401, true));
        assert!(sim.set_purchasability(401, false));
        sim.set_max_per_page(2);
        let meter = Meter::default();

        let sizes = Products::from_api(test_api(&sim))
            .fetch(&meter)
            .await
            .expect("a catalogue");

        assert_eq!(sizes.len(), 11);
        assert_eq!(meter.requests(), 3, "6 products, 2 a page");
        let size = |id: u64| sizes.iter().find(|s| s.option_id == id).expect("listed");
        assert_eq!(size(300).sellable(), Ok(()));
        assert_eq!(size(301).sellable(), Err(NotSellable::NotPurchasable));
        assert_eq!(size(401).sellable(), Err(NotSellable::Discontinued));
        assert_eq!(
            size(401).sellable().err().map(|r| r.to_string()).as_deref(),
            Some("discontinued")
        );
        assert_eq!(
            size(100).upc.as_deref(),
            Some("0000000010"),
            "leading zeros kept"
        );
        assert_eq!(size(301).sku("EA-"), "EA-301");
        assert_eq!(size(301).title, "Product 3, size 301");

        let odd = size(22397);
        assert_eq!(odd.upc.as_deref(), Some("'074198609628"), "kept as written");
        let linked = odd.upc.as_deref().and_then(gtin14);
        assert!(linked.is_some());
        assert_eq!(linked, gtin14("0074198609628"));
        assert_eq!(odd.wholesale, Some(9.99));
    }

    #[test]
    fn a_size_whose_purchasability_is_not_stated_is_not_sold() {
        let size = SizeInfo {
            option_id: 1,
            product_id: 1,
            title: String::new(),
            upc: None,
            purchasability: None,
            discontinued: None,
            wholesale: None,
            price: None,
        };
        assert_eq!(size.sellable(), Err(NotSellable::NotPurchasable));
    }
}
