//! `GET /api/products`: products, each with its sizes (the document also calls them options;
//! a size's `id` is the option id, the SKU of `/api/stock`). Only what invsync uses is read;
//! the rest of a product (analysis, images, metadata) is skipped.

use serde::Deserialize;

use super::{money, opt_flag, req_u64, upc};

/// One product of the listing.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    /// The product id.
    #[serde(deserialize_with = "req_u64")]
    pub id: u64,
    /// Its title, for people reading `status`.
    #[serde(default)]
    pub title: Option<String>,
    /// Its brand.
    #[serde(default)]
    pub brand: Option<String>,
    /// Its sizes; a product without the field has none to sell.
    #[serde(default)]
    pub sizes: Vec<Size>,
}

/// One size (option) of a product.
#[derive(Debug, Clone, Deserialize)]
pub struct Size {
    /// The option id: the SKU of `/api/stock` and the `id` of an order line.
    #[serde(deserialize_with = "req_u64")]
    pub id: u64,
    /// The barcode as written (see [`super::upc`]).
    #[serde(default, deserialize_with = "upc")]
    pub upc: Option<String>,
    /// The size's name, e.g. `5-lb` (`name` in an order line's `sizes`).
    #[serde(default, alias = "name")]
    pub description: Option<String>,
    /// The retail price.
    #[serde(default, deserialize_with = "money")]
    pub price: Option<f64>,
    /// What the retailer pays per unit.
    #[serde(default, deserialize_with = "money")]
    pub wholesale: Option<f64>,
    /// Whether Endless Aisles takes orders for it now; `None` when not given.
    #[serde(default, deserialize_with = "opt_flag")]
    pub purchasability: Option<bool>,
    /// Whether it is gone for good; `None` when not given (an order line's `sizes` omit it).
    #[serde(default, deserialize_with = "opt_flag")]
    pub discontinued: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::super::Page;
    use super::*;

    #[test]
    fn the_documented_listing_is_read_with_its_sizes() {
        let body = r#"{"current_page": 1, "data": [{"id": 32154, "title": "Phundamental Puppy Phood",
            "brand": "PHIDO", "analysis": [{"nutrient": "Odor"}], "metadata": {"type": []},
            "sizes": [{"id": 66543, "upc": "1877527745411", "description": "1-lb", "price": 12.99,
              "wholesale": 3.57, "purchasability": true, "discontinued": false, "msrp": "9.99"},
              {"id": 66541, "upc": "'1877527745433", "description": "75-lb", "price": 182.99,
              "wholesale": 61.85, "purchasability": false, "discontinued": true}]}],
            "from": 1, "last_page": 3, "next_page_url": "\/?page=2", "path": "\/", "per_page": 10,
            "prev_page_url": null, "to": 10, "total": 27}"#;
        let page: Page<Product> = serde_json::from_str(body).expect("the documented sample");
        assert!(page.has_next());
        let sizes = &page.data[0].sizes;
        assert_eq!(sizes.len(), 2);
        assert_eq!(sizes[1].upc.as_deref(), Some("'1877527745433"));
        assert_eq!(
            (sizes[1].purchasability, sizes[1].discontinued),
            (Some(false), Some(true))
        );
        assert_eq!(sizes[0].wholesale, Some(3.57));
    }
}
