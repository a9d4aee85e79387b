//! What the caller hands the book: orders as a feed answered them, the feed's rules, and the
//! drops a complete fetch showed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MINUTE, Millis};

/// When a reservation ends (`[orders.NAME] release`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseMode {
    /// When the sources show the sale (their total falls), or the order is cancelled, or it
    /// shipped and the sources had `settle_after` to show it. For a source that counts sales on
    /// its own schedule.
    #[default]
    Absorb,
    /// When the order ships or reaches a final state: for a source that counts exactly at
    /// dispatch.
    Status,
    /// Never reserve: for a source that already subtracts this channel's orders.
    None,
}

/// One order feed's rules (`[orders.NAME]`): which states hold stock is the feed's service's
/// to say (each order comes with its [`Phase`]); the book does not read states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedRules {
    /// When a reservation ends.
    pub release: ReleaseMode,
    /// How long a shipped order's unabsorbed remainder waits for the sources to show it.
    pub settle_after_ms: Millis,
}

impl Default for FeedRules {
    fn default() -> FeedRules {
        FeedRules {
            release: ReleaseMode::Absorb,
            settle_after_ms: 30 * MINUTE,
        }
    }
}

/// What an order's state means for the stock it holds: all the book reads of its state. The
/// feed's service says it (for Hardtofind, from `[orders.NAME] reserve`:
/// `services::hardtofind::reserving::phase`), so that the book knows no service's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// In a state that holds stock (a `reserve` state).
    Holding,
    /// Shipped, returned, or moved on to any other state outside `reserve` without being
    /// cancelled: its goods have left or are leaving, so the sources should show it soon.
    Dispatched,
    /// Cancelled or refunded: nothing more will leave for it.
    Cancelled,
}

impl FeedRules {
    pub(super) fn absorbs(&self) -> bool {
        self.release == ReleaseMode::Absorb
    }
}

/// One order as a feed answered it (the caller has parsed and mapped it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The feed's order id.
    pub id: String,
    /// Its state, as the feed names it (kept for `status`; the book reads only its `phase`).
    pub state: String,
    /// What its state means for the stock it holds.
    pub phase: Phase,
    /// `dates.created_at`.
    pub created_at: Millis,
    /// `dates.dispatch_due_at`, if given.
    pub dispatch_due_at: Option<Millis>,
    /// Its lines, SKUs already mapped to canonical SKUs.
    pub lines: Vec<OrderLine>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// The canonical SKU.
    pub sku: String,
    /// Units ordered (a negative quantity counts as 0).
    pub quantity: i64,
}

impl Order {
    /// The order's quantity of each SKU, lines summed; SKUs with nothing ordered left out.
    pub(super) fn quantities(&self) -> BTreeMap<&str, i64> {
        let mut sums = BTreeMap::new();
        for line in &self.lines {
            let sum: &mut i64 = sums.entry(line.sku.as_str()).or_default();
            *sum = sum.saturating_add(line.quantity.max(0));
        }
        sums.retain(|_, q| *q > 0);
        sums
    }
}

/// A fall in a SKU's total over the sources between two complete fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drop {
    /// The SKU.
    pub sku: String,
    /// How many units the total fell by (anything below 1 is ignored: rises never un-allot).
    pub quantity: i64,
}
