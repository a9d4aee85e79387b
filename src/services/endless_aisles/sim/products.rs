//! The simulated `GET /api/products`: products with sizes, in Laravel pages, shaped like the
//! document's sample (UPCs always strings, as the service writes them).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::laravel_page;

/// One size (option) of a simulated product.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSize {
    /// The option id (the SKU of `/api/stock`).
    pub id: u64,
    /// The barcode, served exactly as given (e.g. with a leading apostrophe).
    pub upc: String,
    /// The size's name.
    pub description: String,
    /// The retail price.
    pub price: f64,
    /// What the retailer pays.
    pub wholesale: f64,
    /// Whether orders for it are taken; a `PUT /api/orders` for it is refused when false.
    pub purchasability: bool,
    /// Whether it is gone; a `PUT /api/orders` for it is refused when true.
    pub discontinued: bool,
}

impl SimSize {
    /// A purchasable, current size with made-up prices.
    pub fn new(id: u64, upc: &str) -> SimSize {
        SimSize {
            id,
            upc: upc.to_owned(),
            description: format!("size {id}"),
            price: 19.99,
            wholesale: 9.99,
            purchasability: true,
            discontinued: false,
        }
    }

    /// Why an order for it is refused, if it is.
    pub(super) fn refusal(&self) -> Option<&'static str> {
        if self.discontinued {
            Some("is discontinued")
        } else if !self.purchasability {
            Some("is not available for purchase")
        } else {
            None
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "upc": self.upc,
            "description": self.description,
            "price": self.price,
            "wholesale": self.wholesale,
            "purchasability": self.purchasability,
            "discontinued": self.discontinued,
            "minimum_advertised_price": self.price,
            "wholesale_source": "endless_aisles",
            "msrp": format!("{:.2}", self.price),
            "shipping_weight_lbs": 5,
        })
    }
}

/// A product: its title and sizes.
struct SimProduct {
    title: String,
    sizes: Vec<SimSize>,
}

/// Every simulated product, by product id.
#[derive(Default)]
pub(super) struct Catalogue {
    products: BTreeMap<u64, SimProduct>,
    /// Option id → its product's id, so a catalogue of a million sizes finds one at once.
    product_of: HashMap<u64, u64>,
}

impl Catalogue {
    /// Adds (or replaces) product `id`.
    pub(super) fn add(&mut self, id: u64, title: &str, sizes: Vec<SimSize>) {
        let title = title.to_owned();
        for size in &sizes {
            self.product_of.insert(size.id, id);
        }
        let replaced = self.products.insert(id, SimProduct { title, sizes });
        for gone in replaced.into_iter().flat_map(|p| p.sizes) {
            if self.product_of.get(&gone.id) == Some(&id) && self.size(gone.id).is_none() {
                self.product_of.remove(&gone.id);
            }
        }
    }

    /// The size with this option id and its product id.
    pub(super) fn size(&self, option_id: u64) -> Option<(u64, &SimSize)> {
        let product = *self.product_of.get(&option_id)?;
        let sizes = &self.products.get(&product)?.sizes;
        let size = sizes.iter().find(|s| s.id == option_id)?;
        Some((product, size))
    }

    /// The size with this option id, to change it.
    pub(super) fn size_mut(&mut self, option_id: u64) -> Option<&mut SimSize> {
        let product = *self.product_of.get(&option_id)?;
        let sizes = &mut self.products.get_mut(&product)?.sizes;
        sizes.iter_mut().find(|s| s.id == option_id)
    }

    /// One page of the listing, products by id ascending.
    pub(super) fn page(&self, page: usize, per_page: usize) -> Value {
        let start = page.saturating_sub(1).saturating_mul(per_page);
        let data = self
            .products
            .iter()
            .skip(start)
            .take(per_page)
            .map(|(&id, p)| {
                json!({
                    "id": id,
                    "title": p.title,
                    "brand": "PHIDO",
                    "description": format!("{} for the simulator", p.title),
                    "analysis": [{"nutrient": "Electrolytes", "guaranteed_units": "99% min"}],
                    "image_url": format!("https://image.hosting.net/images/products/{id}-1.jpg"),
                    "additional_image_urls": [],
                    "metadata": {"species": "Dog", "category": "Food", "type": []},
                    "sizes": p.sizes.iter().map(SimSize::to_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        laravel_page("/api/products", page, per_page, self.products.len(), data)
    }
}
