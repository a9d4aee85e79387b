//! Orders: the payload of `PUT /api/orders` ([`NewOrder`]) and an order as `GET /api/orders`
//! and `GET /api/orders/{id}` answer it ([`Order`]).

use serde::{Deserialize, Serialize, Serializer};

use super::{money, opt_u64, req_u64, upc};

/// The payload of `PUT /api/orders` (read back too: the relay keeps what it sent). `custom_order_id` is not optional here (it is in the
/// document): it is unique within the account (API_NOTES), and it is what lets an order whose
/// answer was lost be recognised instead of placed again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewOrder {
    /// invsync's own id for the order, e.g. `htf-<Hardtofind order id>`, fixed forever.
    pub custom_order_id: String,
    /// Where it goes.
    pub shipping: NewShipping,
    /// The buyer, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<NewCustomer>,
    /// What is ordered.
    pub line_items: Vec<NewLineItem>,
    /// Optional amounts, in the supplier's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_cost: Option<f64>,
    /// Optional tax rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax_rate: Option<f64>,
    /// Optional discount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discount: Option<f64>,
}

/// The shipping address, with the document's field names (`address_line_1`, not `line_1`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NewShipping {
    /// Required.
    pub first_name: String,
    /// Required; also what `GET /api/orders?query=` searches by.
    pub last_name: String,
    /// Optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Required.
    pub address_line_1: String,
    /// Optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address_line_2: Option<String>,
    /// Required.
    pub city: String,
    /// Required, at most 2 characters (a US state code).
    pub state: String,
    /// Required.
    pub zip: String,
    /// Optional.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The buyer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewCustomer {
    /// Optional in the document; `GET /api/orders?query=` finds orders by it.
    pub email: String,
}

/// One line of a new order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewLineItem {
    /// The option id (size id).
    pub id: u64,
    /// The size's UPC as read from `/api/products`. Sent as a string (never a number, which
    /// would lose leading zeros) without the apostrophe or spaces some answers carry, because
    /// the document validates it as numeric.
    #[serde(serialize_with = "bare_upc")]
    pub upc: String,
    /// How many.
    pub quantity: u32,
    /// The price per unit as the catalogue lists it (the size's `price`; Endless Aisles
    /// charges its `wholesale`).
    pub price: f64,
}

/// A UPC without a leading apostrophe or any whitespace, still a string.
pub fn bare_upc_text(raw: &str) -> String {
    raw.trim()
        .trim_start_matches('\'')
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

fn bare_upc<S: Serializer>(raw: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&bare_upc_text(raw))
}

/// An order as the service answers it. Everything but `id` is optional because the listing
/// and the single order show different subsets (the listing has no lines and no shipments).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Order {
    /// Endless Aisles' order id.
    #[serde(deserialize_with = "req_u64")]
    pub id: u64,
    /// `Scheduled`, `Shipped`, … (the listing's filter also names PENDING, CANCELED, FAILED).
    #[serde(default)]
    pub status: Option<String>,
    /// Not in the document's answers; read in case the service echoes it.
    #[serde(default)]
    pub custom_order_id: Option<String>,
    /// The buyer.
    #[serde(default)]
    pub customer: Option<Customer>,
    /// The address, with the answer's field names (`line_1`).
    #[serde(default)]
    pub shipping: Option<Shipping>,
    /// The lines; the last is often a shipping line (`is_shipping`, `upc: null`).
    #[serde(default)]
    pub line_items: Vec<LineItem>,
    /// Tracking: `[{url, number}]`, no carrier name (API_NOTES).
    #[serde(default)]
    pub shipments: Vec<Shipment>,
    /// The order's total in the supplier's currency.
    #[serde(default, deserialize_with = "money")]
    pub total: Option<f64>,
    /// `m-d-Y`, as the listing's `since` takes it.
    #[serde(default)]
    pub created_at: Option<String>,
    /// `Y-m-d`.
    #[serde(default)]
    pub ship_date: Option<String>,
}

/// The buyer in an answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Customer {
    /// May be `null`.
    #[serde(default)]
    pub email: Option<String>,
}

/// The address in an answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[allow(missing_docs)]
pub struct Shipping {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub line_1: Option<String>,
    #[serde(default)]
    pub line_2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub zip: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

/// One line of an order in an answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LineItem {
    /// The option id (the samples show a line's `id` equal to its size's id).
    #[serde(default, deserialize_with = "opt_u64")]
    pub id: Option<u64>,
    /// The product.
    #[serde(default, deserialize_with = "opt_u64")]
    pub product_id: Option<u64>,
    /// The barcode as written; `null` on a shipping line.
    #[serde(default, deserialize_with = "upc")]
    pub upc: Option<String>,
    /// How many were ordered.
    #[serde(default, deserialize_with = "opt_u64")]
    pub quantity: Option<u64>,
    /// How many have shipped; `null` before anything has.
    #[serde(default, deserialize_with = "opt_u64")]
    pub quantity_shipped: Option<u64>,
    /// The price per unit.
    #[serde(default, deserialize_with = "money")]
    pub price: Option<f64>,
    /// The line that carries the shipping cost, not goods.
    #[serde(default)]
    pub is_shipping: bool,
}

impl LineItem {
    /// Whether every unit of this line has shipped (a shipping line has nothing to ship).
    pub fn is_shipped(&self) -> bool {
        self.is_shipping || self.quantity_shipped.unwrap_or(0) >= self.quantity.unwrap_or(0)
    }
}

impl Order {
    /// Whether every line of goods has shipped in full: when tracking can be sent back.
    pub fn is_fully_shipped(&self) -> bool {
        let goods = || self.line_items.iter().filter(|l| !l.is_shipping);
        goods().next().is_some() && goods().all(LineItem::is_shipped)
    }
}

/// One shipment's tracking.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Shipment {
    /// The carrier's tracking page; its host names the carrier.
    #[serde(default)]
    pub url: Option<String>,
    /// The tracking number, kept as text.
    #[serde(default, deserialize_with = "upc")]
    pub number: Option<String>,
}

/// `{"data": …}`, the envelope of a single order.
#[derive(Debug, Deserialize)]
pub struct Data<T> {
    /// The record.
    pub data: T,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_order_sends_the_upc_as_digits_in_a_string() {
        let order = NewOrder {
            custom_order_id: "htf-1".into(),
            shipping: NewShipping {
                state: "NC".into(),
                ..NewShipping::default()
            },
            customer: None,
            line_items: vec![NewLineItem {
                id: 42117,
                upc: " '064992103132".into(),
                quantity: 1,
                price: 25.0,
            }],
            shipping_cost: None,
            tax_rate: None,
            discount: None,
        };
        let json = serde_json::to_value(&order).expect("serialises");
        assert_eq!(json["line_items"][0]["upc"], "064992103132");
        assert_eq!(json["custom_order_id"], "htf-1");
        assert!(json.get("customer").is_none() && json["shipping"].get("phone").is_none());
    }

    #[test]
    fn a_shipped_order_is_read_with_its_tracking() {
        let body = r#"{"data": {"id": 13560, "status": "Shipped", "customer": {"email": "t@p.io"},
            "line_items": [{"id": 43308, "product_id": 39957, "upc": "655199036110", "quantity": 1,
              "quantity_shipped": 1, "price": 0.89, "is_shipping": false, "sizes": []},
              {"id": 1, "product_id": 1, "upc": null, "quantity": 1, "price": 5.95, "is_shipping": true}],
            "shipping": {"id": 3319, "first_name": "Test", "last_name": "User", "line_1": "989 6th Ave.",
              "line_2": "", "city": "New York", "zip": "10018", "state": "NY", "phone": null},
            "total": 0, "created_at": "01-31-2018", "ship_date": "2018-01-31",
            "shipments": [{"url": "https://www.fedex.com/apps/fedextrack/?trackingnumber=123456789012",
              "number": "123456789012"}]}}"#;
        let order = serde_json::from_str::<Data<Order>>(body)
            .expect("the documented sample")
            .data;
        assert!(order.is_fully_shipped());
        assert_eq!(order.shipments[0].number.as_deref(), Some("123456789012"));
        assert_eq!(order.line_items[1].upc, None);
        let unshipped =
            r#"{"id": 1, "line_items": [{"id": 5, "quantity": 2, "quantity_shipped": null}]}"#;
        let order: Order = serde_json::from_str(unshipped).expect("parses");
        assert!(!order.is_fully_shipped());
    }
}
