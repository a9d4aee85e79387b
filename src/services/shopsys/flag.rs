//! The flag rule, pure: when invsync sets a product's flag (`sellingDenied` or `hidden`) and when
//! it clears it again. No I/O; the caller keeps one [`FlagState`] per product and stores it.
//!
//! - The flag is set at once when the computed quantity is at or below `deny_at`.
//! - It is cleared only when the quantity is at or above `allow_at` in two consecutive cycles,
//!   so a quantity that flickers around the threshold does not flip the product every cycle.
//! - invsync clears only flags it set. A product that invsync did not flag and that `GET` shows
//!   flagged belongs to someone else (a person, the shop's own stock rule, its main variant)
//!   and is left alone *while it stays flagged*: once a freshly read list shows it clear,
//!   invsync manages it ([`FlagState::seen`]).
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
    /// The last product list read showed the flag set, and invsync had not set it: someone
    /// else's, never touched while it stays so.
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

    /// The state after a freshly read list showed the product `flagged` (for `sellingDenied`,
    /// the calculated value). Only a product on which the shop holds nothing from invsync (not
    /// wanted, and no flag of invsync's written) can be someone else's: a flag that invsync set,
    /// or whose clearing is not acknowledged yet, shows on `GET` too and is still invsync's.
    #[must_use]
    pub fn seen(self, flagged: bool) -> FlagState {
        if self.ours || self.written() {
            return FlagState {
                foreign: false,
                ..self
            };
        }
        FlagState {
            foreign: flagged,
            ..self
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

/// How long a product the API could not change waits before it is tried again, unless it
/// changes first.
pub const UNCHANGEABLE_RETRY_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// A product the catalogue API refused to change with a 400 that carries no `errors` (a variant
/// or main variant): not the shop refusing invsync, and nothing a retry next cycle would
/// change. It is tried again when the product list shows it changed, or a week later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unchangeable {
    /// The SKU it was matched to, for `status`.
    pub sku: String,
    /// What the shop said (`HTTP 400: Bad Request` on a production install).
    pub message: String,
    /// The product's digest when it was refused (see `CatalogueProduct::digest`).
    pub digest: String,
    /// When (ms since the epoch).
    pub refused_at: i64,
}

impl Unchangeable {
    /// When it is tried again at the latest.
    pub fn retry_at(&self) -> i64 {
        self.refused_at.saturating_add(UNCHANGEABLE_RETRY_MS)
    }

    /// Whether to try the product again now, whose digest is now `digest`.
    pub fn is_due(&self, digest: &str, now: i64) -> bool {
        self.digest != digest || now >= self.retry_at()
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
    fn someone_elses_flag_is_theirs_only_while_it_stays_set() {
        let theirs = FlagState::first_seen(true);
        let cleared = theirs.seen(false);
        assert!(!cleared.foreign, "shown clear: invsync manages it");
        assert_eq!(decide(cleared, 0, T).patch, Some(true));
        assert!(
            FlagState::first_seen(false).seen(true).foreign,
            "flagged later"
        );
        let (_, ours) = run(FlagState::first_seen(false), &[0]);
        assert!(!ours.seen(true).foreign, "invsync's own flag shows on GET");
        let clearing = decide(ours, 5, T).state;
        let clearing = decide(clearing, 5, T).state;
        assert!(
            !clearing.seen(true).foreign,
            "a clear not yet acknowledged is invsync's too"
        );
        let cleared = clearing.acknowledged(false);
        assert!(
            cleared.seen(true).foreign,
            "shown flagged after invsync cleared it"
        );
    }

    #[test]
    fn an_unchangeable_product_waits_for_a_change_or_a_week() {
        let refused = Unchangeable {
            sku: "A".into(),
            message: "HTTP 400: Bad Request".into(),
            digest: "d1".into(),
            refused_at: 1_000,
        };
        assert!(!refused.is_due("d1", 1_000 + UNCHANGEABLE_RETRY_MS - 1));
        assert!(refused.is_due("d1", 1_000 + UNCHANGEABLE_RETRY_MS));
        assert!(refused.is_due("d2", 1_001));
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
