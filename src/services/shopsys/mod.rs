//! The catalogue (seed `003`): the Shopsys Framework backend API, a target that shows
//! availability through a flag rather than a quantity.
//!
//! - [`wire`]: requests and answers, named as in the document.
//! - [`config`]: the `[targets.NAME] type = "shopsys"` table and its checks.
//! - [`flag`]: when a flag is set and cleared (pure).
//! - [`sim`]: a stateful simulator of the shop's API, for tests and the demo.

pub mod config;
pub mod flag;
pub mod sim;
pub mod wire;
