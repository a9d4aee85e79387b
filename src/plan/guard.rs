//! The mass-zero guard: no cycle may zero too much of what an endpoint shows, whether in one
//! empty answer or sliding a little every cycle.
//!
//! For every endpoint it guards (a target's acknowledged quantities, a source's snapshot) the
//! guard remembers when each SKU last went from positive to 0 (`zeroed_at`, ms since the epoch).
//! Within the window (`daemon.guard_window`, restarted by `once --force`) the SKUs that were
//! positive are those positive now plus those zeroed in the window; a plan that would leave at 0
//! more than `max_zeroed_fraction` of them (and at least [`MASS_ZERO_MIN_SKUS`]) trips it. Only
//! transitions are remembered, so keeping this memory costs writes only when a SKU goes to 0.
//! Pure: no I/O, no clock.

use crate::plan::Change;
use crate::plan::ledger::{Column, SkuId};

/// SKUs fewer than this are never held: a small shop selling out is normal.
pub const MASS_ZERO_MIN_SKUS: usize = 10;

/// The guard tripped: the plan would zero too much of what the endpoint shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MassZero {
    /// SKUs at 0 after the plan that were positive within the window.
    pub zeroed: usize,
    /// SKUs positive within the window.
    pub positive: usize,
}

/// One endpoint's guard: its memory and its settings.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// When each SKU last went from positive to 0.
    pub zeroed_at: Column,
    /// Zeroings before this (ms) no longer count: the window's start (`now - guard_window`,
    /// or the last `--force` when later).
    pub since: i64,
    /// `daemon.max_zeroed_fraction`.
    pub max_fraction: f64,
}

impl Guard {
    /// Whether applying `changes` to `current` (the acknowledged quantities or the snapshot)
    /// would zero too much within the window.
    pub fn check(&self, changes: &[Change], current: &Column) -> Option<MassZero> {
        self.check_each(changes.iter().copied(), current)
    }

    /// [`Guard::check`] over changes made one at a time: a plan need not be held whole.
    pub fn check_each(
        &self,
        changes: impl Iterator<Item = Change>,
        current: &Column,
    ) -> Option<MassZero> {
        let zeroed_now = changes
            .filter(|c| c.new == 0 && c.old.is_some_and(|q| q > 0))
            .count();
        // Zeroed within the window and still at 0 (a SKU back in stock is positive now).
        let zeroed_before = self
            .zeroed_at
            .iter()
            .filter(|&(sku, at)| at >= self.since && current.get(sku).is_some_and(|q| q <= 0))
            .count();
        let zeroed = zeroed_now + zeroed_before;
        if zeroed < MASS_ZERO_MIN_SKUS {
            return None;
        }
        let positive = current.iter().filter(|(_, q)| *q > 0).count() + zeroed_before;
        (zeroed as f64 > self.max_fraction * positive as f64)
            .then_some(MassZero { zeroed, positive })
    }

    /// The zeroings `changes` make, to remember once they are applied: each SKU going from
    /// positive to 0, with the time.
    pub fn zeroings(changes: &[Change], at: i64) -> Vec<(SkuId, i64)> {
        changes
            .iter()
            .filter(|c| c.new == 0 && c.old.is_some_and(|q| q > 0))
            .map(|c| (c.sku, at))
            .collect()
    }

    /// Remembers zeroings (already written to the database).
    pub fn remember(&mut self, zeroings: &[(SkuId, i64)]) {
        for &(sku, at) in zeroings {
            self.zeroed_at.set(sku, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn column(pairs: &[(SkuId, i64)]) -> Column {
        let mut column = Column::default();
        for &(sku, q) in pairs {
            column.set(sku, q);
        }
        column
    }

    fn zero(skus: std::ops::Range<u32>, current: &Column) -> Vec<Change> {
        skus.map(|sku| Change {
            sku,
            old: current.get(sku),
            new: 0,
        })
        .collect()
    }

    fn guard() -> Guard {
        Guard {
            max_fraction: 0.25,
            ..Guard::default()
        }
    }

    #[test]
    fn zeroing_most_of_a_catalogue_trips_the_guard_but_a_few_sell_outs_do_not() {
        let acked = column(&(0..40).map(|i| (i, 5)).collect::<Vec<_>>());
        assert_eq!(
            guard().check(&zero(0..10, &acked), &acked),
            None,
            "10 of 40 is exactly 25%"
        );
        assert_eq!(
            guard().check(&zero(0..11, &acked), &acked),
            Some(MassZero {
                zeroed: 11,
                positive: 40
            })
        );
        let small = column(&(0..12).map(|i| (i, 5)).collect::<Vec<_>>());
        assert_eq!(
            guard().check(&zero(0..9, &small), &small),
            None,
            "fewer than 10 SKUs never trip it"
        );
    }

    #[test]
    fn a_slow_slide_within_the_window_trips_it_as_surely_as_one_empty_answer() {
        let mut current = column(&(0..1000).map(|i| (i, 5)).collect::<Vec<_>>());
        let mut guard = guard();
        let mut tripped_at = None;
        // 20% of what is left, every cycle: each step alone is under 25%.
        for cycle in 0..8u32 {
            let positive: Vec<SkuId> = current
                .iter()
                .filter(|(_, q)| *q > 0)
                .map(|(s, _)| s)
                .collect();
            let take = positive.len() / 5;
            let changes: Vec<Change> = positive[..take]
                .iter()
                .map(|&sku| Change {
                    sku,
                    old: Some(5),
                    new: 0,
                })
                .collect();
            if guard.check(&changes, &current).is_some() {
                tripped_at = Some(cycle);
                break;
            }
            guard.remember(&Guard::zeroings(&changes, i64::from(cycle)));
            for c in &changes {
                current.set(c.sku, 0);
            }
        }
        assert_eq!(
            tripped_at,
            Some(1),
            "the second 20% makes 36% within the window"
        );
    }

    #[test]
    fn zeroings_before_the_window_no_longer_count() {
        let mut current = column(&(0..100).map(|i| (i, 5)).collect::<Vec<_>>());
        let mut guard = guard();
        let first = zero(0..20, &current);
        guard.remember(&Guard::zeroings(&first, 1_000));
        for c in &first {
            current.set(c.sku, 0);
        }
        let second = zero(20..35, &current);
        assert!(
            guard.check(&second, &current).is_some(),
            "35 of 100 within the window"
        );
        guard.since = 2_000;
        assert_eq!(
            guard.check(&second, &current),
            None,
            "15 of 80 once the window moved on"
        );
    }

    proptest! {
        /// Whatever the sequence of answers, what the guard lets through never zeroes more than
        /// the allowed fraction of what was positive within the window.
        #[test]
        fn accepted_plans_never_zero_more_than_the_fraction_within_the_window(
            steps in prop::collection::vec(prop::collection::vec((0u32..60, 0i64..4), 0..40), 1..12)
        ) {
            let mut current = column(&(0..60).map(|i| (i, 3)).collect::<Vec<_>>());
            let mut guard = guard();
            let positive_at_start: std::collections::HashSet<SkuId> = (0..60).collect();
            let mut ever_positive = positive_at_start.clone();
            for (at, step) in steps.iter().enumerate() {
                let mut changes: Vec<Change> = Vec::new();
                for &(sku, q) in step {
                    if changes.iter().any(|c| c.sku == sku) { continue; }
                    changes.push(Change { sku, old: current.get(sku), new: q });
                }
                if guard.check(&changes, &current).is_some() {
                    continue; // held: nothing applied
                }
                guard.remember(&Guard::zeroings(&changes, at as i64));
                for c in &changes {
                    current.set(c.sku, c.new);
                    if c.new > 0 { ever_positive.insert(c.sku); }
                }
                let zeroed = ever_positive.iter().filter(|&&s| current.get(s) == Some(0)).count();
                prop_assert!(
                    zeroed < MASS_ZERO_MIN_SKUS || zeroed as f64 <= 0.25 * ever_positive.len() as f64,
                    "{zeroed} of {} zeroed", ever_positive.len()
                );
            }
        }
    }
}
