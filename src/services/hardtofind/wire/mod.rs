//! The Hardtofind documents' (seeds `000`, `001`) requests and answers, named as they name them.
//! Where API_NOTES says the service has been seen to answer in two forms, both are accepted.

mod date;
mod orders;

pub use date::{Date, parse_date};
pub(crate) use orders::string_or_number;
pub use orders::{
    Address, LineSummary, Order, OrderDates, OrderLine, OrderLinks, OrderStatus, OrderSummary,
    Paged, PaymentSummary, ShipData, Shipment, Shipping, ShippingProvider, ShippingProviders,
    TransitionRequest,
};

use serde::{Deserialize, Serialize};

/// `POST /authenticate`.
#[derive(Serialize)]
pub struct AuthenticateRequest<'a> {
    pub username: &'a str,
    pub password: &'a str,
}

/// Its answer; only the token is used.
#[derive(Deserialize)]
pub struct AuthenticateAnswer {
    pub token: String,
}

/// `GET /info`; `created` and `expires` are documented as date strings, and API_NOTES says a
/// number (Unix seconds) is seen too, so both are accepted.
#[derive(Deserialize)]
pub struct Info {
    pub created: Option<serde_json::Value>,
    pub expires: Option<serde_json::Value>,
    pub seller_account_id: Option<serde_json::Value>,
}

/// `POST /batch`.
#[derive(Serialize)]
pub struct BatchRequest<'a> {
    pub action: &'static str,
    pub entity_type: &'static str,
    pub entities: Vec<Entity<'a>>,
}

/// One variant of a batch.
#[derive(Serialize)]
pub struct Entity<'a> {
    pub sku: &'a str,
    pub inventory: i64,
}

/// The claims of a JWT that matter here: when it was issued and when it expires, in the
/// issuer's clock (Unix seconds).
#[derive(Deserialize)]
pub struct Claims {
    pub iat: Option<f64>,
    pub exp: Option<f64>,
}

#[cfg(test)]
mod tests;
