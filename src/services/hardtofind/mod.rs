//! Hardtofind (seeds `000`, `001`): variant inventory, written as a target.
//!
//! - [`wire`]: the documents' requests and answers.
//! - [`auth`]: one account's session and token, shared by everything on that account.
//! - [`target`]: `POST /batch`.
//! - [`sim`]: the simulator.

pub mod auth;
pub mod config;
pub mod sim;
pub mod target;
pub mod wire;

pub use auth::Session;
pub use target::HardtofindTarget;
