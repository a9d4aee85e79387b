//! Endless Aisles (seed `004`): dropship stock, read as a source.
//!
//! Auth is the `X-EA-REQUEST-TOKEN` header. `GET /api/stock` with no `sku` parameter answers
//! every item: `data` is an object of option id → quantity, or `[]` when there is nothing. The
//! document says GET endpoints paginate; the stock sample shows no page fields, so pages are
//! followed when an answer carries them and one answer is complete when it does not.
//!
//! - [`wire`]: the stock answer, parsed without a String per SKU.
//! - [`source`]: `GET /api/stock`, every page.
//! - [`gtin`]: barcodes compared as GTIN-14 strings.
//! - [`sim`]: the simulator.

pub mod gtin;
pub mod sim;
pub mod source;
pub mod wire;

pub use gtin::{Gtin14, gtin14};
pub use source::EndlessAislesSource;
pub use wire::parse_stock_page;
