//! The staleness alarm: a source without a complete fetch for longer than `daemon.stale_after`.
//!
//! Every cycle fetches every source, so a source goes stale only by failing for that long, and
//! all that while the targets that read it are skipped and show older and older figures. A
//! failed fetch is an ERROR already; this one says that the failures have lasted.
//!
//! One rule, [`overdue`], serves both the daemon ([`Watch`]: an ERROR every cycle until the
//! source answers) and `invsync status` (from the database alone), so the two always agree.

use std::time::Duration;

use tracing::error;

use crate::ops::report::SourceReport;
use crate::ops::rfc3339;

/// How long a source has gone without a complete fetch at `now`, when that is longer than
/// `stale_after`; `None` while it is fresh. Times are ms since the epoch.
///
/// A source that never completed a fetch is measured from `first_cycle_at`, the first cycle the
/// database recorded: it has been failing for as long as invsync has been trying. That is known
/// to the database, not to one process, so a daemon restarted every few minutes (a crash loop, a
/// deploy) or `invsync once` from a timer still raises the alarm, and `status` says the same as
/// the daemon. The cost: a source added to an old installation is stale at its first failed
/// fetch, which is fair, as the targets that read it have never been served.
pub fn overdue(
    last_fetch_at: Option<i64>,
    first_cycle_at: Option<i64>,
    now: i64,
    stale_after: Duration,
) -> Option<Duration> {
    let since = last_fetch_at.or(first_cycle_at)?;
    // A clock stepped back makes the age negative: call that fresh rather than alarm on it.
    let age = Duration::from_millis(u64::try_from(now.saturating_sub(since)).unwrap_or(0));
    (age > stale_after).then_some(age)
}

/// A duration for a log field: humantime without spaces (`2h3m4s`, which humantime parses
/// back), so a text log line keeps one word per value; to the second, or to the millisecond
/// under a minute (where seconds alone would read `age=1s stale_after=1s`).
pub fn format_age(age: Duration) -> String {
    let shown = if age >= Duration::from_secs(60) {
        Duration::from_secs(age.as_secs())
    } else {
        Duration::from_millis(u64::try_from(age.as_millis()).unwrap_or(u64::MAX))
    };
    humantime::format_duration(shown)
        .to_string()
        .replace(' ', "")
}

/// The daemon's side of the alarm: each source's last complete fetch, kept in memory from one
/// read at start-up, so a cycle reads nothing more from SQLite.
#[derive(Debug)]
pub struct Watch {
    stale_after: Duration,
    /// Where never-fetched sources are measured from (see [`overdue`]).
    first_cycle_at: i64,
    /// Per source, in the engine's order.
    last_fetch_at: Vec<Option<i64>>,
}

impl Watch {
    /// Reads the last complete fetch of `sources` (their ids in `sources`) and the first cycle.
    /// On a new database the first cycle is the one about to start, at `now`.
    /// The alarm's state from what the database says: each source's last complete fetch and
    /// the first cycle's start (see [`overdue`]).
    pub fn new(
        last_fetch_at: Vec<Option<i64>>,
        first_cycle_at: Option<i64>,
        stale_after: Duration,
        now: i64,
    ) -> Watch {
        Watch {
            stale_after,
            first_cycle_at: first_cycle_at.unwrap_or(now),
            last_fetch_at,
        }
    }

    /// After a cycle's fetches (`reports` in the engine's order): notes the complete ones, then
    /// logs one ERROR per stale source. Returns the stale sources' names.
    pub fn after_fetch(&mut self, reports: &[SourceReport], now: i64) -> Vec<String> {
        let mut stale = Vec::new();
        for (last, report) in self.last_fetch_at.iter_mut().zip(reports) {
            if report.outcome.is_ok() {
                *last = Some(now);
            }
            let Some(age) = overdue(*last, Some(self.first_cycle_at), now, self.stale_after) else {
                continue;
            };
            let last_complete_fetch = last.map_or_else(|| "never".to_owned(), rfc3339);
            error!(
                source = %report.name, age = %format_age(age), stale_after = %format_age(self.stale_after), last_complete_fetch = %last_complete_fetch,
                "source is stale: no complete fetch for longer than daemon.stale_after; the targets that read it keep being skipped until it answers"
            );
            stale.push(report.name.clone());
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::report::SourceCounts;

    const HOUR: Duration = Duration::from_secs(3600);
    const NOW: i64 = 10 * 3_600_000;

    fn report(name: &str, ok: bool) -> SourceReport {
        SourceReport {
            name: name.into(),
            outcome: if ok {
                Ok(SourceCounts::default())
            } else {
                Err("down".into())
            },
            requests: 1,
            retries: 0,
        }
    }

    #[test]
    fn a_source_is_stale_only_once_its_last_complete_fetch_is_older_than_stale_after() {
        let an_hour_ago = NOW - 3_600_000;

        let exactly = overdue(Some(an_hour_ago), None, NOW, HOUR);
        let later = overdue(Some(an_hour_ago), None, NOW + 1, HOUR);
        let back_in_time = overdue(Some(NOW + 60_000), None, NOW, HOUR);

        assert_eq!(exactly, None, "an hour is not more than an hour");
        assert_eq!(later, Some(HOUR + Duration::from_millis(1)));
        assert_eq!(back_in_time, None, "a clock stepped back is not an alarm");
    }

    #[test]
    fn a_source_that_never_answered_is_measured_from_the_first_cycle() {
        let first_cycle = NOW - 2 * 3_600_000;

        let never_answered = overdue(None, Some(first_cycle), NOW, HOUR);
        let answered_lately = overdue(Some(NOW - 1000), Some(first_cycle), NOW, HOUR);
        let no_cycle_yet = overdue(None, None, NOW, HOUR);

        assert_eq!(never_answered, Some(2 * HOUR));
        assert_eq!(
            answered_lately, None,
            "its last fetch counts, not the first cycle"
        );
        assert_eq!(no_cycle_yet, None);
    }

    #[test]
    fn the_watch_flags_failing_sources_past_stale_after_and_forgives_one_that_answers() {
        let mut watch = Watch {
            stale_after: HOUR,
            first_cycle_at: NOW - 5 * 3_600_000,
            last_fetch_at: vec![Some(NOW - 2 * 3_600_000), Some(NOW - 2 * 3_600_000), None],
        };
        let reports = [
            report("warehouse", true),
            report("dropship", false),
            report("new", false),
        ];

        let stale = watch.after_fetch(&reports, NOW);

        assert_eq!(stale, vec!["dropship".to_owned(), "new".to_owned()]);
        assert_eq!(
            watch.last_fetch_at[0],
            Some(NOW),
            "a complete fetch is noted"
        );
    }

    #[test]
    fn ages_read_to_the_second_or_below_a_minute_to_the_millisecond() {
        assert_eq!(format_age(Duration::from_millis(1534)), "1s534ms");
        assert_eq!(format_age(Duration::from_millis(7_384_250)), "2h3m4s");
        assert_eq!(
            humantime::parse_duration("2h3m4s").ok(),
            Some(Duration::from_secs(7384)),
            "it reads back"
        );
    }
}
