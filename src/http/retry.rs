//! How a failed request is tried again: capped, jittered exponential backoff (backon), bounded
//! both in attempts and in total time, stretched to honour a `Retry-After`, and cut short by
//! shutdown. *Whether* to retry is [`HttpError::is_retryable`]; this module only decides *how*.
//!
//! A `Retry-After` of up to [`LONGEST_WAIT`] is waited for within the request. A longer one
//! ends the request at once: the endpoint pauses the whole account until the time named (at
//! most [`PAUSE_CAP`] away, see [`super::limits`]), and its requests fail fast until then,
//! rather than a cycle sleeping for an hour where neither shutdown nor the watchdog expects it.

use std::future::Future;
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::HttpError;

/// Retry policy of every request: capped, jittered exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetrySettings {
    /// Attempts per request, the first included (1 = no retry).
    pub max_attempts: u32,
    /// Wait before the first retry.
    pub initial_backoff: Duration,
    /// Longest wait between attempts before jitter (a `Retry-After` may ask for up to
    /// [`RETRY_AFTER_CAP`]).
    pub max_backoff: Duration,
    /// No new attempt starts once this much time has passed since the first: this bounds how
    /// long one unreachable endpoint can hold up a cycle even when every attempt times out.
    pub max_elapsed: Duration,
}

/// The longest `Retry-After` invsync honours; a server asking for more is retried next cycle.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(15),
            max_elapsed: Duration::from_secs(90),
        }
    }
}

/// The longest pause a `Retry-After` can impose on an account: the contract's one hour. A
/// service asking for more is asked again after an hour.
pub const PAUSE_CAP: Duration = Duration::from_secs(60 * 60);

/// The longest a request waits for a `Retry-After` before giving up for now: as long as the
/// systemd watchdog's reasoning allows a request to wait (`WatchdogSec` in `systemd/`).
pub const LONGEST_WAIT: Duration = Duration::from_secs(60);

/// Runs `op` until it succeeds, fails for good, or the policy gives up; logs a WARN per retry
/// with the reason and the wait, and calls `on_retry` for the counters (the cycle's, the metrics).
pub async fn with_retries<T, F, Fut>(
    op: F,
    settings: &RetrySettings,
    label: &str,
    cancel: &CancellationToken,
    on_retry: impl Fn(),
) -> Result<T, HttpError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, HttpError>>,
{
    let started = Instant::now();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(settings.initial_backoff)
        .with_max_delay(settings.max_backoff)
        .with_max_times(settings.max_attempts.saturating_sub(1) as usize)
        .with_jitter();
    let sleep_cancel = cancel.clone();
    op.retry(backoff)
        // Shutdown ends a wait at once; the next attempt then sees the token and stops.
        .sleep(move |wait| {
            let cancel = sleep_cancel.clone();
            async move {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.cancelled() => {}
                }
            }
        })
        .when(|e: &HttpError| e.is_retryable() && !cancel.is_cancelled())
        .adjust(|e, next| {
            let wait = next_wait(e, next?)?;
            (started.elapsed() + wait <= settings.max_elapsed).then_some(wait)
        })
        .notify(|e, wait| {
            on_retry();
            let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(endpoint = label, error = %e, wait_ms, "request failed; retrying");
        })
        .await
}

/// The backoff's wait, or longer when the service asked for it; `None` when it asked for more
/// than [`LONGEST_WAIT`] (the account is paused instead, and the request ends).
fn next_wait(error: &HttpError, backoff: Duration) -> Option<Duration> {
    match error {
        HttpError::Status {
            retry_after: Some(asked),
            ..
        } => (*asked <= LONGEST_WAIT).then(|| backoff.max(*asked)),
        _ => Some(backoff),
    }
}

/// Reads `Retry-After`, as seconds or as an HTTP date; anything else is ignored.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use reqwest::StatusCode;
    use reqwest::header::HeaderValue;

    use super::*;

    fn settings() -> RetrySettings {
        RetrySettings {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(90),
        }
    }

    fn unavailable(retry_after: Option<Duration>) -> HttpError {
        HttpError::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            retry_after,
            message: "down".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_passing_failure_is_retried_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let retries = AtomicU32::new(0);
        let result = with_retries(
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(HttpError::Timeout),
                    _ => Ok("done"),
                }
            },
            &settings(),
            "test",
            &CancellationToken::new(),
            || {
                retries.fetch_add(1, Ordering::SeqCst);
            },
        )
        .await;
        assert_eq!(result.ok(), Some("done"));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(retries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_a_lasting_failure_is_returned() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(unavailable(None))
            },
            &settings(),
            "test",
            &CancellationToken::new(),
            || {},
        )
        .await;
        assert!(matches!(result, Err(HttpError::Status { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_error_is_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(HttpError::Status {
                    status: StatusCode::BAD_REQUEST,
                    retry_after: None,
                    message: String::new(),
                })
            },
            &settings(),
            "test",
            &CancellationToken::new(),
            || {},
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_within_a_minute_is_waited_for_and_a_longer_one_ends_the_request() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let result: Result<(), _> = with_retries(
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 => Err(unavailable(Some(Duration::from_secs(30)))),
                    _ => Err(unavailable(Some(Duration::from_secs(3600)))),
                }
            },
            &RetrySettings {
                max_elapsed: Duration::from_secs(600),
                ..settings()
            },
            "test",
            &CancellationToken::new(),
            || {},
        )
        .await;
        let waited = started.elapsed();
        assert!(
            matches!(result, Err(HttpError::Status { .. })),
            "{result:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2, "no attempt after the hour");
        // 30 s asked and waited (backoff jitter adds < 2 s), then an hour: not waited here.
        assert!(waited >= Duration::from_secs(30), "waited {waited:?}");
        assert!(waited < Duration::from_secs(33), "waited {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_after_the_time_budget() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                // Every attempt times out after 30 s, as a hung server makes it.
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(HttpError::Timeout)
            },
            &RetrySettings {
                max_attempts: 10,
                ..settings()
            },
            "test",
            &CancellationToken::new(),
            || {},
        )
        .await;
        assert!(result.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "30 s + wait + 30 s + wait + 30 s, then over 90 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_retrying() {
        let cancel = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                cancel.cancel();
                Err(HttpError::Timeout)
            },
            &settings(),
            "test",
            &cancel,
            || {},
        )
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("ascii"));
        let parsed = retry_after(&headers).expect("a date parses");
        assert!(parsed > Duration::from_secs(110) && parsed <= Duration::from_secs(120));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
