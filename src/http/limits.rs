//! Request budgets, one per remote account.
//!
//! Two endpoints with the same canonical `base_url` and account are one account to the remote service
//! (a Hako key used as a source and as a target), so they share one limiter, set to the smallest
//! `requests_per_minute` among them. The limiter lets one request through per `60 s / budget`
//! with no burst, so no 60-second window, the first included, sees more than the budget.
//!
//! An account also remembers a **pause**: a `Retry-After` that one endpoint met holds every
//! endpoint of the account until the time it names (capped by the caller). Pauses live in a
//! process-wide table keyed by account, not in the limiter itself, so that rebuilding the
//! connectors (a reload of the configuration) does not forget "come back tomorrow".
//!
//! The limiters in use are in a process-wide table too: every engine of the process that
//! spends one account at one budget shares its limiter (the shops of a fleet worker that share
//! a login, or the old and the new engine of a reload while a cycle of the old one finishes),
//! so the account's budget is spent once, not once per engine. A limiter goes when the last
//! engine that used it does.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::time::Instant;

/// One account's budget: its rate limit and its pause.
#[derive(Debug)]
pub struct Limiter {
    rate: DefaultDirectRateLimiter,
    /// The requests a minute it lets through.
    budget: u32,
    pause: Arc<Pause>,
}

impl Limiter {
    /// Waits until the rate limit lets the next request through.
    pub async fn until_ready(&self) {
        self.rate.until_ready().await;
    }

    /// Pauses every endpoint of the account for `wait` from now, unless it is paused for longer
    /// already. Returns the end of the pause now in force.
    pub fn pause_for(&self, wait: Duration) -> PausedUntil {
        self.pause.extend(wait)
    }

    /// The pause in force, if the account is paused now.
    pub fn paused(&self) -> Option<PausedUntil> {
        self.pause.current()
    }
}

/// When a pause ends: on the monotonic clock to wait on, and on the wall clock to tell people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PausedUntil {
    /// The end, to wait for.
    pub at: Instant,
    /// The same end as a time of day, for messages.
    pub wall: SystemTime,
}

impl PausedUntil {
    /// How long is left from now.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The end as RFC 3339, to the second.
    pub fn rfc3339(&self) -> String {
        humantime::format_rfc3339_seconds(self.wall).to_string()
    }
}

/// One account's pause, shared by its endpoints.
#[derive(Debug, Default)]
struct Pause {
    until: Mutex<Option<PausedUntil>>,
}

impl Pause {
    fn lock(&self) -> MutexGuard<'_, Option<PausedUntil>> {
        // A panic elsewhere while holding this cannot leave it half-written: it is one value.
        self.until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn extend(&self, wait: Duration) -> PausedUntil {
        let proposed = PausedUntil {
            at: Instant::now() + wait,
            wall: SystemTime::now() + wait,
        };
        let mut until = self.lock();
        match *until {
            Some(current) if current.at >= proposed.at => current,
            _ => {
                *until = Some(proposed);
                proposed
            }
        }
    }

    fn current(&self) -> Option<PausedUntil> {
        let mut until = self.lock();
        match *until {
            Some(p) if p.at > Instant::now() => Some(p),
            Some(_) => {
                *until = None;
                None
            }
            None => None,
        }
    }
}

/// Every account's pause, for as long as the process lives (see the module's doc).
static PAUSES: LazyLock<Mutex<HashMap<AccountKey, Arc<Pause>>>> = LazyLock::new(Default::default);

/// Every limiter in use, by account (see the module's doc).
static IN_USE: LazyLock<Mutex<HashMap<AccountKey, Weak<Limiter>>>> =
    LazyLock::new(Default::default);

/// The limiter in use for `account` at `budget`, or a new one (which later engines of the
/// process at the same budget then share).
fn shared_limiter(account: &AccountKey, budget: u32) -> Arc<Limiter> {
    let mut in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(limiter) = in_use.get(account).and_then(Weak::upgrade)
        && limiter.budget == budget
    {
        return limiter;
    }
    let limiter = Arc::new(Limiter {
        rate: rate_limiter(budget),
        budget,
        pause: pause_of(account),
    });
    in_use.insert(account.clone(), Arc::downgrade(&limiter));
    // Forget the accounts no engine uses any more.
    in_use.retain(|_, weak| weak.strong_count() > 0);
    limiter
}

fn pause_of(account: &AccountKey) -> Arc<Pause> {
    let mut pauses = PAUSES.lock().unwrap_or_else(|e| e.into_inner());
    pauses.entry(account.clone()).or_default().clone()
}

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
    /// The account of `base_url` reached with `credential` (a username, or a secret that is
    /// the credential itself): see `config::Identity::budget_key`.
    pub fn of_credential(base_url: &str, credential: &str) -> AccountKey {
        let mut hasher = DefaultHasher::new();
        credential.hash(&mut hasher);
        AccountKey {
            base_url: base_url.to_owned(),
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
            .or_insert_with(|| shared_limiter(account, budget))
            .clone()
    }
}

/// A limiter of its own (no account shares it, no pause carries over): for tests and tools.
pub fn limiter(requests_per_minute: u32) -> Limiter {
    Limiter {
        rate: rate_limiter(requests_per_minute),
        budget: requests_per_minute,
        pause: Arc::default(),
    }
}

/// A rate limiter that spaces requests evenly: `budget` per minute, never a burst.
fn rate_limiter(requests_per_minute: u32) -> DefaultDirectRateLimiter {
    let per_minute = f64::from(requests_per_minute.max(1));
    let period = Duration::from_secs_f64(60.0 / per_minute * (1.0 + SAFETY_MARGIN));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN);
    DefaultDirectRateLimiter::direct(quota)
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
        assert!(limiter.rate.check().is_ok());
        assert!(
            limiter.rate.check().is_err(),
            "a second request at once would be a burst"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_endpoint_of_the_account_survives_a_rebuild_and_then_ends() {
        let account = AccountKey::new("https://pause.example/v0", &["paused key"]);
        let other = AccountKey::new("https://pause.example/v0", &["other key"]);
        let mut limiters = Limiters::default();
        limiters.declare(&account, 120);
        limiters.declare(&other, 120);
        let until = limiters.get(&account).pause_for(Duration::from_secs(600));
        // A shorter pause never shortens the one in force.
        assert_eq!(
            limiters.get(&account).pause_for(Duration::from_secs(5)),
            until
        );
        assert!(
            limiters.get(&other).paused().is_none(),
            "other accounts go on"
        );

        let mut rebuilt = Limiters::default();
        rebuilt.declare(&account, 60);
        assert_eq!(
            rebuilt.get(&account).paused(),
            Some(until),
            "a reload remembers it"
        );

        tokio::time::advance(Duration::from_secs(601)).await;
        assert!(rebuilt.get(&account).paused().is_none(), "and then it ends");
    }

    #[test]
    fn engines_spending_one_account_at_one_budget_share_its_limiter_until_none_uses_it() {
        let account = AccountKey::of_credential("http://127.0.0.1:1/shared-test", "login");
        let (mut shop_a, mut shop_b) = (Limiters::default(), Limiters::default());
        shop_a.declare(&account, 60);
        shop_b.declare(&account, 60);
        let (a, b) = (shop_a.get(&account), shop_b.get(&account));
        assert!(Arc::ptr_eq(&a, &b), "two engines, one budget");
        assert!(a.rate.check().is_ok());
        assert!(b.rate.check().is_err(), "the other engine's request counts");

        let mut other_budget = Limiters::default();
        other_budget.declare(&account, 120);
        assert!(
            !Arc::ptr_eq(&a, &other_budget.get(&account)),
            "a new budget (a reload) gets a limiter of its own"
        );
        drop((a, b, shop_a, shop_b, other_budget));
        let mut later = Limiters::default();
        later.declare(&account, 60);
        assert!(
            later.get(&account).rate.check().is_ok(),
            "none kept once unused"
        );
    }
}
