//! The one list of the kinds of service, by role: the `type = "…"` of `[sources.NAME]`,
//! `[targets.NAME]` and `[orders.NAME]`, and the client type that takes the role (it implements
//! the role's trait, [`super::roles`], in its folder's `kind.rs`). From this list `kinds!`
//! (`dispatch.rs`) makes the enums of their settings ([`SourceKind`], [`TargetKind`],
//! [`FeedKind`]) and of their clients ([`Source`], [`QuantityTarget`], [`FlagTarget`],
//! [`Feed`]) and dispatches over them.
//!
//! A new service is its folder under `services/` (with its `pub mod` line in `services/mod.rs`)
//! and one line here for each role it takes. The order of each list is the order the `type`s are
//! named in a configuration error.

use super::{endless_aisles, hako, hardtofind, shopsys};

super::dispatch::kinds! {
    sources: [
        /// Hako warehouses: `GET /inventory`.
        Hako => hako::HakoSource,
        /// Endless Aisles stock: `GET /api/stock`.
        EndlessAisles => endless_aisles::EndlessAislesSource,
    ],
    quantity_targets: [
        /// Hardtofind variants: `POST /batch`.
        Hardtofind => hardtofind::HardtofindTarget,
        /// One Hako warehouse: `PUT`/`POST /inventory`.
        Hako => hako::HakoTarget,
    ],
    flag_targets: [
        /// A Shopsys catalogue: one `PATCH /api/v1/products/{uuid}` per change.
        Shopsys => shopsys::target::ShopsysTarget,
    ],
    feeds: [
        /// Hardtofind orders: `GET /orders`.
        Hardtofind => hardtofind::OrderFeed,
    ],
}

/// A channel to keep in sync, by how it shows availability.
pub enum Target {
    /// Quantities, set in batches.
    Quantities(QuantityTarget),
    /// A catalogue's availability flag, set one product at a time (by `targets::flag`).
    Flags(FlagTarget),
}

impl Target {
    /// Proves the credentials work without changing anything; says what it saw.
    pub async fn check(&self, meter: &crate::http::Meter) -> Result<String, super::ConnectorError> {
        match self {
            Target::Quantities(t) => t.check(meter).await,
            Target::Flags(t) => t.check(meter).await,
        }
    }
}

/// Every client of `config`: sources, targets and order feeds.
pub struct Clients {
    /// In the order of `config.sources`.
    pub sources: Vec<Source>,
    /// In the order of `config.targets`.
    pub targets: Vec<Target>,
    /// In the order of `config.feeds`.
    pub feeds: Vec<Feed>,
}
