//! The flag rule, pure: when invsync sets a product's flag (`sellingDenied` or `hidden`) and when
//! it clears it again. No I/O; the caller keeps one [`FlagState`] per product and stores it.
//!
//! - The flag is set at once when the computed quantity is at or below `deny_at`.
//! - It is cleared only when the quantity is at or above `allow_at` in two consecutive cycles,
//!   so a quantity that flickers around the threshold does not flip the product every cycle.
//! - invsync clears only flags it set. A product already flagged when invsync first saw it
//!   belongs to someone else (a person, the shop's own rules) and is left alone for good.
//! - What to send is decided against invsync's own acknowledged writes, never against what `GET`
//!   shows: the shop shows a *calculated* `sellingDenied` that may stay `true` after invsync
//!   cleared its raw flag, and re-sending on that difference would patch the product forever.

/// The thresholds of one target (validated: `allow_at > deny_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// The flag is set when the quantity is at or below this.
    pub deny_at: i64,
    /// And cleared again only at or above this, in two consecutive cycles.
    pub allow_at: i64,
}

impl Default for Thresholds {
    /// The contract's defaults: flagged at 0, cleared from 1.
    fn default() -> Self {
        Thresholds {
            deny_at: 0,
            allow_at: 1,
        }
    }
}

/// Cycles in a row at or above `allow_at` before invsync clears its flag.
pub const CLEAR_AFTER_CYCLES: u8 = 2;

/// What invsync knows of one product's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlagState {
    /// The flag was set when invsync first saw the product: never touched.
    pub foreign: bool,
    /// invsync wants the flag set: it set it, or is setting it. Only such a flag is ever cleared
    /// (and one whose setting was never confirmed is cleared too: the write may have landed).
    pub ours: bool,
    /// The value the shop last acknowledged (204) from invsync; `None` when invsync never wrote
    /// one (the product showed the flag clear when first seen).
    pub acked: Option<bool>,
    /// Consecutive cycles at or above `allow_at` while `ours` is set.
    pub allow_streak: u8,
}

/// The outcome of one cycle for one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The flag value to `PATCH`, when invsync's wish differs from what the shop acknowledged.
    pub patch: Option<bool>,
    /// The state to keep now (whether or not the `PATCH` succeeds; after a 204 keep
    /// [`FlagState::acknowledged`] of it instead).
    pub state: FlagState,
}

impl FlagState {
    /// The state of a product seen for the first time, from the flag `GET` showed then.
    pub fn first_seen(flagged: bool) -> FlagState {
        FlagState {
            foreign: flagged,
            ..FlagState::default()
        }
    }

    /// The state once the shop acknowledged a `PATCH` writing `value`.
    #[must_use]
    pub fn acknowledged(self, value: bool) -> FlagState {
        FlagState {
            acked: Some(value),
            ..self
        }
    }

    /// The value the shop holds from invsync, as far as invsync knows: what it acknowledged,
    /// else clear (as the product showed when first seen).
    fn written(self) -> bool {
        self.acked.unwrap_or(false)
    }
}

/// One cycle of the rule for one product whose computed quantity is `quantity`.
pub fn decide(state: FlagState, quantity: i64, thresholds: Thresholds) -> Decision {
    if state.foreign {
        return Decision { patch: None, state };
    }
    let mut next = state;
    if !state.ours {
        if quantity <= thresholds.deny_at {
            next.ours = true;
        }
        next.allow_streak = 0;
    } else if quantity >= thresholds.allow_at {
        next.allow_streak = state.allow_streak.saturating_add(1);
        if next.allow_streak >= CLEAR_AFTER_CYCLES {
            next.ours = false;
            next.allow_streak = 0;
        }
    } else {
        next.allow_streak = 0;
    }
    let patch = (next.ours != next.written()).then_some(next.ours);
    Decision { patch, state: next }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        deny_at: 0,
        allow_at: 3,
    };

    /// Runs `decide` over `quantities`, acknowledging every PATCH; returns the PATCHes sent.
    fn run(mut state: FlagState, quantities: &[i64]) -> (Vec<Option<bool>>, FlagState) {
        let mut patches = Vec::new();
        for &quantity in quantities {
            let decision = decide(state, quantity, T);
            state = match decision.patch {
                Some(value) => decision.state.acknowledged(value),
                None => decision.state,
            };
            patches.push(decision.patch);
        }
        (patches, state)
    }

    #[test]
    fn the_flag_is_set_at_once_at_deny_at() {
        let (patches, state) = run(FlagState::first_seen(false), &[5, 0]);
        assert_eq!(patches, [None, Some(true)]);
        assert!(state.ours);
        let below = decide(FlagState::first_seen(false), -2, T);
        assert_eq!(below.patch, Some(true), "below deny_at counts too");
    }

    #[test]
    fn the_flag_is_cleared_only_after_two_cycles_at_allow_at() {
        let (patches, state) = run(FlagState::first_seen(false), &[0, 3, 3]);
        assert_eq!(patches, [Some(true), None, Some(false)]);
        assert_eq!((state.ours, state.acked), (false, Some(false)));
    }

    #[test]
    fn a_cycle_below_allow_at_restarts_the_count() {
        let (patches, _) = run(FlagState::first_seen(false), &[0, 3, 2, 3, 1, 4, 5]);
        assert_eq!(
            patches,
            [Some(true), None, None, None, None, None, Some(false)]
        );
    }

    #[test]
    fn between_the_thresholds_nothing_changes() {
        let (patches, _) = run(FlagState::first_seen(false), &[2, 1, 2]);
        assert_eq!(patches, [None, None, None], "never flagged: stays clear");
        let (patches, state) = run(FlagState::first_seen(false), &[0, 1, 2, 1]);
        assert_eq!(patches, [Some(true), None, None, None], "flagged: stays");
        assert!(state.ours);
    }

    #[test]
    fn a_product_flagged_before_invsync_saw_it_is_never_touched() {
        let (patches, state) = run(FlagState::first_seen(true), &[10, 10, 10, 0, 0, 10, 10]);
        assert!(patches.iter().all(Option::is_none));
        assert_eq!(state, FlagState::first_seen(true));
    }

    #[test]
    fn an_acknowledged_flag_is_not_sent_again_over_many_cycles() {
        // GET may keep showing the calculated flag; the rule never looks at it.
        let (patches, _) = run(FlagState::first_seen(false), &[0; 50]);
        assert_eq!(patches.iter().flatten().count(), 1);
        let (patches, _) = run(FlagState::first_seen(false), &[0, 5, 5, 5, 5, 5, 5, 5]);
        assert_eq!(patches.iter().flatten().count(), 2);
    }

    #[test]
    fn a_patch_that_was_not_acknowledged_is_sent_again_next_cycle() {
        let first = decide(FlagState::first_seen(false), 0, T);
        assert_eq!(first.patch, Some(true));
        let again = decide(first.state, 0, T);
        assert_eq!(again.patch, Some(true), "the failed write is retried");
        assert!(again.state.ours);
    }

    #[test]
    fn a_set_whose_outcome_is_unknown_is_cleared_when_stock_returns() {
        // The PATCH setting the flag timed out: it may have landed, so invsync still owns it,
        // sends it until the shop confirms, and clears it by the usual rule.
        let set = decide(FlagState::first_seen(false), 0, T);
        let (patches, state) = run(set.state, &[3, 3]);
        assert_eq!(patches, [Some(true), Some(false)]);
        assert_eq!(state.acked, Some(false));
    }

    #[test]
    fn a_clear_that_fails_is_sent_again_while_stock_stays() {
        let (_, flagged) = run(FlagState::first_seen(false), &[0, 3]);
        let clear = decide(flagged, 3, T);
        assert_eq!(clear.patch, Some(false));
        let again = decide(clear.state, 3, T);
        assert_eq!(again.patch, Some(false));
        let dropped = decide(clear.state, 0, T);
        assert_eq!(
            dropped.patch, None,
            "the shop still holds the flag invsync wants"
        );
        assert!(dropped.state.ours);
    }

    #[test]
    fn the_defaults_flag_at_zero_and_clear_from_one() {
        let t = Thresholds::default();
        let set = decide(FlagState::first_seen(false), 0, t);
        assert_eq!(set.patch, Some(true));
        let state = set.state.acknowledged(true);
        let once = decide(state, 1, t);
        assert_eq!(decide(once.state, 1, t).patch, Some(false));
    }
}
