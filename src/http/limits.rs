//! Request budgets, one per remote account.
//!
//! Two endpoints with the same canonical `base_url` and account are one account to the remote service
//! (a Hako key used as a source and as a target), so they share one limiter, set to the smallest
//! `requests_per_minute` among them. The limiter lets one request through per `60 s / budget`
//! with no burst, so no 60-second window, the first included, sees more than the budget.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};

/// One account's limiter.
pub type Limiter = DefaultDirectRateLimiter;

/// Spacing is stretched by this fraction so that clock jitter between invsync and the server
/// never lets the budget+1st request land inside the server's 60-second window.
const SAFETY_MARGIN: f64 = 0.01;

/// Identifies an account: the service root and a fingerprint of its credential (the secret
/// itself is hashed in memory only and never kept here).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AccountKey {
    base_url: String,
    credential: u64,
}

impl AccountKey {
    /// The account an endpoint of `identity` uses (its warehouse apart: a Hako key is one
    /// budget whichever warehouse it writes).
    pub fn of(identity: &crate::config::Identity) -> AccountKey {
        let mut hasher = DefaultHasher::new();
        match &identity.account {
            crate::config::Account::Name(name) => name.hash(&mut hasher),
            crate::config::Account::Secret(secret) => {
                secrecy::ExposeSecret::expose_secret(secret).hash(&mut hasher)
            }
        }
        AccountKey {
            base_url: identity.base_url.clone(),
            credential: hasher.finish(),
        }
    }

    /// The account of `base_url` reached with the credential made of `parts`.
    pub fn new(base_url: &str, parts: &[&str]) -> AccountKey {
        let mut hasher = DefaultHasher::new();
        parts.hash(&mut hasher);
        AccountKey {
            base_url: base_url.trim_end_matches('/').to_owned(),
            credential: hasher.finish(),
        }
    }
}

/// The limiters of every account in the configuration.
#[derive(Debug, Default)]
pub struct Limiters {
    budgets: HashMap<AccountKey, u32>,
    built: HashMap<AccountKey, Arc<Limiter>>,
}

impl Limiters {
    /// Records that an endpoint of `account` wants `requests_per_minute`; the smallest wins.
    pub fn declare(&mut self, account: &AccountKey, requests_per_minute: u32) {
        self.budgets
            .entry(account.clone())
            .and_modify(|b| *b = (*b).min(requests_per_minute))
            .or_insert(requests_per_minute);
    }

    /// The shared limiter of `account` (declare every endpoint first).
    pub fn get(&mut self, account: &AccountKey) -> Arc<Limiter> {
        let budget = self.budgets.get(account).copied().unwrap_or(1);
        self.built
            .entry(account.clone())
            .or_insert_with(|| Arc::new(limiter(budget)))
            .clone()
    }
}

/// A limiter that spaces requests evenly: `budget` per minute, never a burst.
pub fn limiter(requests_per_minute: u32) -> Limiter {
    let per_minute = f64::from(requests_per_minute.max(1));
    let period = Duration::from_secs_f64(60.0 / per_minute * (1.0 + SAFETY_MARGIN));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN);
    Limiter::direct(quota)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_of_one_account_share_the_smallest_budget() {
        let mut limiters = Limiters::default();
        let hako = AccountKey::new("https://api.withhako.com/v0/", &["key"]);
        let same = AccountKey::new("https://api.withhako.com/v0", &["key"]);
        let other = AccountKey::new("https://api.withhako.com/v0", &["other key"]);
        limiters.declare(&hako, 120);
        limiters.declare(&same, 90);
        limiters.declare(&other, 120);
        let a = limiters.get(&hako);
        let b = limiters.get(&same);
        let c = limiters.get(&other);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(limiters.budgets[&hako], 90);
    }

    #[test]
    fn a_fresh_limiter_allows_one_request_and_no_burst() {
        let limiter = limiter(120);
        assert!(limiter.check().is_ok());
        assert!(
            limiter.check().is_err(),
            "a second request at once would be a burst"
        );
    }
}
