//! What the book keeps and reports: reservations, the units the sources showed of them, the
//! drops no reservation took, and what changed.

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use super::{BACKFILL_WINDOW_MS, Reservations};
use super::{Millis, STUCK_AFTER_DUE_MS};

/// Units of a drop, with the time of the fetch that showed them: given to a reservation (its
/// allotments; the time is kept so that, if the guess proves wrong, they go back first to
/// orders that existed then) or to none yet (a SKU's unallotted drops, kept
/// [`BACKFILL_WINDOW_MS`] for orders seen later).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shown {
    /// When the fetch that showed the drop was made.
    pub at: Millis,
    /// Units.
    pub quantity: i64,
}

/// What identifies a reservation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReservationKey {
    /// `[orders.NAME]`.
    pub feed: String,
    /// The feed's order id.
    pub order_id: String,
    /// The canonical SKU.
    pub sku: String,
}

/// One order's hold on one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// `[orders.NAME]`.
    pub feed: String,
    /// The feed's order id.
    pub order_id: String,
    /// The canonical SKU.
    pub sku: String,
    /// The order's quantity of this SKU, lines summed.
    pub quantity: i64,
    /// What the sources have shown of it so far, by fetch (`release = "absorb"` only).
    pub allotments: Vec<Shown>,
    /// The order's state when last seen, as the feed names it (e.g. `READY`).
    pub state: String,
    /// The order's `created_at`, as first seen (allotments were decided on it).
    pub created_at: Millis,
    /// The order's `dispatch_due_at`, if given.
    pub dispatch_due_at: Option<Millis>,
    /// When invsync first saw this reservation.
    pub first_seen_at: Millis,
    /// When invsync first saw the order outside its `reserve` states (not cancelled): the
    /// settle clock starts here.
    pub dispatched_seen_at: Option<Millis>,
}

impl Reservation {
    /// Units the sources have shown.
    pub fn allotted(&self) -> i64 {
        super::pool::total(&self.allotments)
    }

    /// Units still subtracted: ordered and not yet shown.
    pub fn outstanding(&self) -> i64 {
        self.quantity.saturating_sub(self.allotted()).max(0)
    }

    /// Its identity.
    pub fn key(&self) -> ReservationKey {
        ReservationKey {
            feed: self.feed.clone(),
            order_id: self.order_id.clone(),
            sku: self.sku.clone(),
        }
    }

    /// Whether the order is still open past its `dispatch_due_at` plus [`STUCK_AFTER_DUE_MS`].
    /// Such a reservation is never released by time: an operator must look.
    pub fn is_stuck(&self, now: Millis) -> bool {
        self.dispatched_seen_at.is_none()
            && self
                .dispatch_due_at
                .is_some_and(|due| now > due.saturating_add(STUCK_AFTER_DUE_MS))
    }
}

/// Counts for the cycle's summary line (and the WARN for settled units).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Reservations seen for the first time.
    pub made: usize,
    /// Reservations the sources have now shown in full.
    pub absorbed: usize,
    /// Reservations ended without being shown in full: cancelled, settled, released by status,
    /// or a line removed from its order.
    pub released: usize,
    /// Units of fresh drops allotted.
    pub allotted: i64,
    /// Units matched against past drops for reservations seen for the first time (or grown).
    pub backfilled: i64,
    /// Units handed back by cancelled orders and cut lines, and given again.
    pub returned: i64,
    /// Units a settled order took back from other reservations the sources had shown it as.
    pub reclaimed: i64,
    /// Units of shipped orders released by `settle_after` though no drop showed them: the WARN.
    /// If this keeps happening the source never shows these sales, and `release = "status"` fits.
    pub settled_unseen: i64,
}

/// What changed since the last [`Reservations::take_changes`], so the caller persists only that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Reservations made or changed: write them as they are now.
    pub upserted: Vec<Reservation>,
    /// Reservations that ended: delete them.
    pub removed: Vec<ReservationKey>,
    /// SKUs whose unallotted drops changed, with all of them now (empty: delete the SKU's).
    pub unallotted: Vec<(String, Vec<Shown>)>,
    /// The counts for the summary line.
    pub summary: Summary,
}
