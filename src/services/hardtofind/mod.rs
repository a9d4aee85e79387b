//! Hardtofind (seeds `000`, `001`): variant inventory, written as a target, and orders, read as
//! an order feed and moved by the relay.
//!
//! - [`wire`]: the documents' requests and answers.
//! - [`auth`]: one account's session and token, shared by everything on that account.
//! - [`target`]: `POST /batch`.
//! - [`orders`]: the open orders, one order, shipping providers, transitions; [`pages`]: one
//!   list read page by page; [`incremental`]: the lists read from where the last read left them;
//!   [`reserving`]: the open orders and looked-up ones in the reservations' terms, an order's
//!   [`order_state`] read as what it means for the stock it holds.
//! - [`config`]: its `[targets.NAME]` table.
//! - [`sim`]: the simulator.

pub mod auth;
pub mod config;
pub mod incremental;
mod kind;
pub mod listed;
pub mod order_state;
pub mod orders;
pub mod pages;
pub mod reserving;
pub mod sim;
pub mod target;
pub mod wire;

pub use auth::Session;
pub use order_state::OrderState;
pub use orders::{OrderFeed, Transition, Transitioned};
pub use target::HardtofindTarget;
