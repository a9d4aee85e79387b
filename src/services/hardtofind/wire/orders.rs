//! Seed `001`: orders, their states, the paged list, shipping providers and transitions.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::Date;
use crate::services::Quantity;

/// An order's state: the document's table, plus `PENDING`, which it leaves out but answers when
/// `GET /orders` is given no `status` (API_NOTES). A state the service adds later is kept as
/// written rather than failing the whole page, so a new state never hides the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderStatus {
    /// Not yet paid in full: never a state anyone asks for, only what no `status` answers.
    Pending,
    /// Paid, awaiting the seller.
    Ready,
    /// Picked up by the seller, being fulfilled.
    Processed,
    /// Fully shipped.
    Shipped,
    /// Returned in full.
    Returned,
    /// Refunded to the shopper.
    Refunded,
    /// Cancelled by customer support.
    Cancelled,
    /// A state the document does not name, as written.
    Other(String),
}

impl OrderStatus {
    /// The name the service uses, as sent in `status=`.
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Ready => "READY",
            OrderStatus::Processed => "PROCESSED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Returned => "RETURNED",
            OrderStatus::Refunded => "REFUNDED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Other(name) => name,
        }
    }

    /// The states of the document's table (`PENDING` is not in it).
    pub const TABLE: [OrderStatus; 6] = [
        OrderStatus::Ready,
        OrderStatus::Processed,
        OrderStatus::Shipped,
        OrderStatus::Returned,
        OrderStatus::Refunded,
        OrderStatus::Cancelled,
    ];

    /// The state named `name`, compared without regard to case (configuration files are written
    /// by hand; the service writes upper case).
    pub fn parse(name: &str) -> OrderStatus {
        std::iter::once(OrderStatus::Pending)
            .chain(OrderStatus::TABLE)
            .find(|s| s.as_str().eq_ignore_ascii_case(name.trim()))
            .unwrap_or_else(|| OrderStatus::Other(name.to_owned()))
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OrderStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| OrderStatus::parse(&s))
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The Standard Order structure. Only what invsync reads is required (`id`, `status`); the rest
/// is optional so that an order missing a field the document shows is still counted rather than
/// failing its page, which would hide every other order of the page.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    /// The order id; a string in the document, a number accepted too.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// Its state.
    pub status: OrderStatus,
    /// Links; `packing_slip` is the PDF every shipment must contain (API_NOTES).
    #[serde(rename = "_links", default)]
    pub links: OrderLinks,
    /// When it was created, last updated and is due for dispatch.
    #[serde(default)]
    pub dates: OrderDates,
    /// What was bought.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub lines: Vec<OrderLine>,
    /// Where it goes.
    #[serde(default)]
    pub shipping: Option<Shipping>,
    /// Shipments recorded so far.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub shipments: Vec<Shipment>,
    /// What the shopper paid, in the store's currency.
    #[serde(default)]
    pub payment_summary: Option<PaymentSummary>,
}

/// What the reservations read of an order in the open lists, and nothing else: a walk of ten
/// thousand open orders keeps these instead of whole orders (addresses, links, descriptions).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderSummary {
    /// The order id; a string in the document, a number accepted too.
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    /// Its state.
    pub status: OrderStatus,
    /// When it was created, last updated and is due for dispatch.
    #[serde(default)]
    pub dates: OrderDates,
    /// What was bought: SKU and quantity.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub lines: Vec<LineSummary>,
    /// What of the order could not be read (a line without a SKU, a quantity of `2.5`, a
    /// date that is not one), each said in a few words; `lines` holds the lines that could.
    /// Empty for an order read whole.
    #[serde(skip)]
    pub unreadable: Vec<String>,
}

/// A line's SKU and quantity.
#[derive(Debug, Clone, Deserialize)]
pub struct LineSummary {
    /// The variant's SKU.
    pub sku: String,
    /// How many were bought.
    pub quantity: Quantity,
}

impl From<&Order> for OrderSummary {
    fn from(order: &Order) -> OrderSummary {
        OrderSummary {
            id: order.id.clone(),
            status: order.status.clone(),
            dates: order.dates.clone(),
            lines: (order.lines.iter())
                .map(|l| LineSummary {
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            unreadable: Vec::new(),
        }
    }
}

/// An order's `_links`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderLinks {
    /// `self`: the order in the API.
    #[serde(rename = "self")]
    pub self_: Option<String>,
    /// The order in the seller's admin.
    pub manage: Option<String>,
    /// The packing slip (a PDF) that must travel with every shipment.
    pub packing_slip: Option<String>,
}

/// An order's `dates`, named as the document names them. A date written `null`, empty or as
/// MySQL's zero date (`0000-00-00 00:00:00`, what a PHP platform writes for "no date") is no
/// date; one that is not a date at all fails the order, which the list then names alone.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OrderDates {
    /// When the order was placed: absorption counts only drops after it.
    #[serde(default, deserialize_with = "optional_date")]
    pub created_at: Option<Date>,
    /// Last change: the order of `GET /orders`.
    #[serde(default, deserialize_with = "optional_date")]
    pub updated_at: Option<Date>,
    /// When it should leave: past this plus a grace period an open order is STUCK.
    #[serde(default, deserialize_with = "optional_date")]
    pub dispatch_due_at: Option<Date>,
}

/// A date that may be absent: `null`, `""`, or a zero date (all digits zero).
fn optional_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Date>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(text) if is_no_date(&text) => Ok(None),
        value => Date::deserialize(value)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

/// Whether `text` says "no date": blank, or every digit in it a zero (`0000-00-00 00:00:00`,
/// `0000-00-00T00:00:00+0000`).
fn is_no_date(text: &str) -> bool {
    let text = text.trim();
    let digits = || text.chars().filter(char::is_ascii_digit);
    text.is_empty() || (digits().count() >= 8 && digits().all(|c| c == '0'))
}

/// One line of an order.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderLine {
    /// The variant's SKU: what a reservation holds.
    pub sku: String,
    /// How many were bought.
    pub quantity: Quantity,
    /// The product's title.
    #[serde(default)]
    pub description: Option<String>,
    /// The product id, a string in the document.
    #[serde(default, deserialize_with = "optional_string_or_number")]
    pub product_id: Option<String>,
    /// The unit price.
    #[serde(default)]
    pub price: Option<f64>,
}

/// An order's `shipping`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Shipping {
    /// The delivery address.
    #[serde(default)]
    pub address: Option<Address>,
    /// The shopper's note to the courier.
    #[serde(default)]
    pub instructions: Option<String>,
}

/// A delivery address; every field optional because the relay's pre-flight, not parsing,
/// decides what an address lacks.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct Address {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub line_one: Option<String>,
    pub line_two: Option<String>,
    pub suburb: Option<String>,
    pub state: Option<String>,
    /// A string in the document; a number accepted too (leading zeros are then lost upstream).
    #[serde(default, deserialize_with = "optional_string_or_number")]
    pub postcode: Option<String>,
    pub country: Option<String>,
    pub company: Option<String>,
}

/// One shipment of an order.
#[derive(Debug, Clone, Deserialize)]
pub struct Shipment {
    #[serde(default, deserialize_with = "optional_date")]
    pub shipment_date: Option<Date>,
    pub tracking_number: Option<String>,
    pub shipping_provider_name: Option<String>,
}

/// An order's `payment_summary`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaymentSummary {
    pub price: Option<f64>,
    pub shipping: Option<f64>,
    pub total: Option<f64>,
}

/// The "standard paged data structure" (API_NOTES): ten to a page, pages counted from 1. What
/// an empty list says in `pages` and `page_number` is not documented (0 or 1): the walk reads an
/// empty `data` as the end of the list whatever they say. `page_size` is never used, so it may
/// be missing; `data` may be `null` when empty.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub struct Paged<T> {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "optional_count")]
    pub page_size: Option<u64>,
    #[serde(deserialize_with = "count")]
    pub page_number: u64,
    #[serde(deserialize_with = "count")]
    pub total_results: u64,
    #[serde(deserialize_with = "count")]
    pub pages: u64,
}

/// One of `GET /shipping-providers`: `ship` needs a `provider_name` from this list.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ShippingProvider {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub provider_name: String,
    /// Where its tracking pages live: the relay matches a supplier's tracking URL by host.
    #[serde(default)]
    pub tracking_url: Option<String>,
    #[serde(default)]
    pub accepts_tracking_id_in_url: Option<bool>,
}

/// `GET /shipping-providers`: a bare array in the document; the paged structure is accepted too,
/// since every other list of this API is paged.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ShippingProviders {
    Bare(Vec<ShippingProvider>),
    Paged { data: Vec<ShippingProvider> },
}

/// `POST /order/{id}/transition`.
#[derive(Debug, Serialize)]
pub struct TransitionRequest<'a> {
    /// `process` or `ship`.
    pub action: &'static str,
    /// Only `ship` carries data; `process` is documented as the action alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<ShipData<'a>>,
}

/// The `data` of a `ship` transition.
#[derive(Debug, Serialize)]
pub struct ShipData<'a> {
    pub tracking_number: &'a str,
    /// A `provider_name` from `GET /shipping-providers`.
    pub shipping_provider_name: &'a str,
    /// Written as the document writes dates (`2016-09-15T14:41:25+1000`).
    pub shipment_date: Date,
}

/// An id the document writes as a string; a number is taken as its decimal text, so an API that
/// changes its mind does not fail every order.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

fn optional_string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        serde_json::Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(de::Error::custom(format!(
            "expected a string or a number, got {other}"
        ))),
    }
}

/// A list that may be written `null` when empty (PHP's habit).
fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// [`count`], where the field may be absent or `null`.
fn optional_count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Null => Ok(None),
        value => count(value).map(Some).map_err(de::Error::custom),
    }
}

/// A count of the paged structure: a number, or a string of digits.
fn count<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = string_or_number(deserializer)?;
    text.trim()
        .parse()
        .map_err(|_| de::Error::custom(format!("{text:?} is not a count")))
}
