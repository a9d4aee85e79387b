//! Endless Aisles (seed `004`): dropship stock read as a source, its catalogue of sizes, and
//! its orders (for the dropship relay).
//!
//! Auth is the `X-EA-REQUEST-TOKEN` header. `GET /api/stock` with no `sku` parameter answers
//! every item: `data` is an object of option id → quantity, or `[]` when there is nothing. The
//! document says GET endpoints paginate; the stock sample shows no page fields, so pages are
//! followed when an answer carries them and one answer is complete when it does not.
//!
//! - [`wire`]: the requests and answers, named as in the document.
//! - [`api`]: one account: the token header, listings walked page by page, the one request
//!   never retried.
//! - [`source`]: `GET /api/stock`, every page.
//! - [`products`]: `GET /api/products`, every page: each size's barcode and whether it can be
//!   sold; [`crate::mapping::gtin`] compares barcodes.
//! - [`orders`]: placing an order at most once, reading, finding and cancelling it.
//! - [`config`]: its `[sources.NAME]` table.
//! - [`sim`]: the simulator.
//! - `kind`: its role in the list of kinds ([`crate::services::roles`]).

pub mod api;
pub mod config;
mod kind;
pub mod orders;
pub mod products;
pub mod sim;
pub mod source;
pub mod wire;

pub use crate::mapping::gtin::{Gtin14, gtin14};
pub use orders::{CancelMethod, CancelOutcome, Orders, PlaceOutcome};
pub use products::{NotSellable, Products, SizeInfo};
pub use source::EndlessAislesSource;
pub use wire::orders::{NewCustomer, NewLineItem, NewOrder, NewShipping, Order};
pub use wire::parse_stock_page;
