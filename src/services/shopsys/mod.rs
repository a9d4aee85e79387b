//! The catalogue (seed `003`): the Shopsys Framework backend API, a target that shows
//! availability through a flag rather than a quantity.
//!
//! invsync reads the product list ([`target::ShopsysTarget::read_catalogue`]) at start and every
//! `catalogue_refresh` to map SKUs to product uuids by the `match` field, then each cycle decides
//! per product with the pure rule in [`flag`] whether to set or clear the flag
//! (`sellingDenied` or `hidden`) and sends one `PATCH` per change
//! ([`target::ShopsysTarget::set_flag`]). Requests carry an OAuth2 client-credentials token
//! ([`auth`]).
//!
//! - [`wire`]: requests and answers, named as in the document.
//! - [`config`]: the `[targets.NAME] type = "shopsys"` table and its checks.
//! - [`auth`]: the token: issued, kept until shortly before it expires, renewed on a 401.
//! - [`catalogue`]: SKU → uuid, SKUs two products claim, the `Link` header (pure).
//! - [`flag`]: when a flag is set and cleared (pure).
//! - [`target`]: the requests.
//! - [`sim`]: a stateful simulator of the shop's API, for tests and the demo.
//! - `kind`: its role in the list of kinds ([`crate::services::roles`]).

pub mod auth;
pub mod catalogue;
pub mod config;
pub mod flag;
mod kind;
pub mod sim;
pub mod target;
pub mod wire;

#[cfg(test)]
mod tests;
