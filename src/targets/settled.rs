//! When a target's plan is empty without being made.
//!
//! A target left wholly in sync (every planned change acknowledged or refused onto its
//! schedule, nothing held, nothing stopped) is marked *settled* with the world's generation it
//! planned from and its own rules (its inputs, safety stock and cap, invsync's version). The
//! generation moves on with every recorded change of a snapshot or of the reservations. While
//! the mark still holds, nothing it is computed from changed, so its plan would be empty: the
//! cycle says so without loading or walking a single SKU. A full sync, a refused SKU whose next
//! attempt is due, and a SKU a request may have carried to the target without its
//! acknowledgement (see `store::doubt`) always plan. A catalogue target is settled only when
//! its flags are at rest (nothing written and no clearing streak moved on in its cycle), and
//! is quiet only while its product list is in memory and not due to be read again: a `once`
//! always reads it.

use super::{CycleOptions, TargetSlot};

/// The mark a target gets when it is left in sync at `generation` with the rules `settles_as`.
pub fn mark(generation: u64, settles_as: &str) -> String {
    format!("{generation} {settles_as}")
}

/// The rules part of a target's mark: what, besides its inputs' snapshots and the reservations,
/// decides what it is pushed.
pub fn rules(inputs: &[String], safety_stock: i64, max_quantity: Option<i64>) -> String {
    format!(
        "invsync={} inputs={inputs:?} safety_stock={safety_stock} max_quantity={max_quantity:?}",
        env!("CARGO_PKG_VERSION")
    )
}

/// Whether the target's plan is known to be empty this cycle (see the module documentation).
pub fn is_quiet(target: &TargetSlot, mark: &str, options: CycleOptions, now: i64) -> bool {
    let (core, kind) = (&target.core, &target.kind);
    !options.full
        && !options.dry_run
        && kind.at_rest()
        && core.settled.as_deref() == Some(mark)
        && core.in_doubt.is_empty()
        && core
            .failed
            .values()
            .all(|retry| retry.next_attempt_at.is_some_and(|at| now < at))
}
