//! Backoffs counted in cycles ("the next cycle, then 2, 4, … cycles, at most so far apart"),
//! kept as times so that they survive a restart and a schedule change. Pure.

use std::time::Duration;

/// When to try again after the `failures`-th failure in a row at `now` (ms since the epoch):
/// 1, 2, 4, … `period`s later, never more than `cap` later. Half a period is taken off so that
/// the cycle due at that time, starting a little early, qualifies.
pub fn retry_at(now: i64, failures: i64, period: Duration, cap: Duration) -> i64 {
    let cycles = 1u32 << failures.clamp(1, 20).saturating_sub(1) as u32;
    let wait = period
        .saturating_mul(cycles)
        .min(cap)
        .saturating_sub(period / 2)
        .max(Duration::from_millis(1));
    now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

/// Logins refused in a row, and when the next may be tried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthBackoff {
    /// Refused in a row.
    pub failures: i64,
    /// Not before this (ms since the epoch).
    pub retry_at: Option<i64>,
}

impl AuthBackoff {
    /// The longest wait between two logins with a refused password: an account lock-out is
    /// worse than an hour's delay, but a fixed password should work again within the hour.
    pub const CAP: Duration = Duration::from_secs(60 * 60);

    /// Whether a login must wait at `now`; `Some(when)` it may be tried again.
    pub fn waiting(&self, now: i64) -> Option<i64> {
        self.retry_at.filter(|&at| now < at)
    }

    /// One more refusal at `now`.
    pub fn refused(self, now: i64, period: Duration) -> AuthBackoff {
        let failures = self.failures + 1;
        AuthBackoff {
            failures,
            retry_at: Some(retry_at(now, failures, period, Self::CAP)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_in_cycles_up_to_its_cap() {
        let minute = Duration::from_secs(60);
        let waits: Vec<i64> = (1..=9)
            .map(|n| retry_at(0, n, minute, Duration::from_secs(3600)) / 1000)
            .collect();
        assert_eq!(waits, [30, 90, 210, 450, 930, 1890, 3570, 3570, 3570]);
        assert!(
            retry_at(0, i64::MAX, minute, Duration::from_secs(86_400)) > 0,
            "no overflow"
        );
    }

    #[test]
    fn a_refused_login_waits_one_cycle_then_two_then_four() {
        let period = Duration::from_secs(300);
        let once = AuthBackoff::default().refused(0, period);
        assert_eq!(once.waiting(0), Some(150_000));
        assert_eq!(once.waiting(150_000), None);
        let twice = once.refused(300_000, period);
        assert_eq!(twice.waiting(300_000), Some(300_000 + 450_000));
    }
}
