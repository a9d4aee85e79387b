//! The dropship relay (opt-in, `[relay]`): a Hardtofind order in `READY` whose every line maps
//! to a sellable Endless Aisles size is placed there **at most once**, Hardtofind is told
//! (`process`), and the tracking comes back (`ship`).
//!
//! - `plan::relay`: the states of a relayed order and its record (pure, below `store`, which
//!   keeps them).
//! - [`decide`]: pure decisions: the order to place or why not ([`decide::prepare`], with
//!   [`decide::supplier_key`], the one place a SKU becomes an Endless Aisles option id),
//!   whether an order found is ours, which shipping provider a tracking URL names.
//! - [`step`]: the cycle's part: reading orders (the `READY` list in proportion to what
//!   changed, [`ready`]), moving each record, placing;
//!   `resolve`: an unknown outcome found or sent again; `fulfil`: after placing (process,
//!   ship, cancel).
//! - [`ends`]: the relay's two ends as a configuration wires them (a Hardtofind feed, an
//!   Endless Aisles source) and the SKU mapping between them: what the daemon calls.
//! - [`config`]: the `[relay]` table.
//!
//! Placing is the one request that moves money, so its intent (`placing`, with the order
//! exactly as sent and `custom_order_id = "htf-<order id>"`) is committed before the request,
//! and an unknown outcome is resolved by finding the order or by the same `custom_order_id`
//! again; what cannot be told is `MANUAL`, never a second order. The records live in
//! `store::relay` and are never deleted.

/// The `[relay]` table, checked with the rest of the file ([`crate::config::relay`]).
pub use crate::config::relay as config;
pub mod decide;
pub mod ends;
mod fulfil;
mod read;
pub mod ready;
mod resolve;
pub mod step;

pub use crate::plan::relay::{Record, State, custom_order_id};
pub use step::{Clients, RelayDone};
