//! Cron expressions with seconds, read in the zone of `daemon.timezone`.
//!
//! Each next start is worked out in that zone from the wall clock of the moment, so `0 30 3 * * *`
//! stays at 03:30 local time across a change to or from summer time (a scheduler that keeps a
//! fixed UTC offset, as tokio-cron-scheduler does, drifts by an hour until the next restart).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron as Pattern;
use croner::parser::{CronParser, Seconds};

/// A parsed cron expression (seconds, minutes, hours, day of month, month, day of week), in a
/// zone.
#[derive(Clone)]
pub struct Cron {
    text: String,
    /// Boxed: a parsed pattern is a few hundred bytes, and [`super::Trigger`] holds one.
    pattern: Box<Pattern>,
    zone: Tz,
}

impl Cron {
    /// Reads `text` (six fields, seconds first) as times in `zone`.
    pub fn parse(text: &str, zone: Tz) -> Result<Cron, String> {
        let pattern = CronParser::builder()
            .seconds(Seconds::Required)
            // Day of month and day of week must both match, as they did under
            // tokio-cron-scheduler: a schedule written for it keeps its meaning.
            .dom_and_dow(true)
            .build()
            .parse(text.trim())
            .map_err(|e| {
                format!(
                    "{text:?} is not a cron expression with seconds, e.g. \"0 */5 * * * *\" ({e})"
                )
            })?;
        Ok(Cron {
            text: text.trim().to_owned(),
            pattern: Box::new(pattern),
            zone,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The zone its times are in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first start strictly after `after`; `None` if it never starts again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.pattern
            .find_next_occurrence(&after.with_timezone(&self.zone), false)
            .ok()
            .map(|at| at.with_timezone(&Utc))
    }

    /// The longest time between two starts over the next `starts` starts from `from`: how long
    /// a source may go without a fetch between two cycles when all is well.
    pub fn longest_gap(&self, from: DateTime<Utc>, starts: usize) -> Option<Duration> {
        let mut at = self.next_after(from)?;
        let mut longest = Duration::ZERO;
        for _ in 0..starts {
            let next = self.next_after(at)?;
            longest = longest.max((next - at).to_std().unwrap_or_default());
            at = next;
        }
        Some(longest)
    }
}

impl fmt::Debug for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cron({:?} in {})", self.text, self.zone.name())
    }
}

impl PartialEq for Cron {
    fn eq(&self, other: &Cron) -> bool {
        self.text == other.text && self.zone == other.zone
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_schedule_runs_at_local_time_in_its_timezone_across_summer_time() {
        let sydney: Tz = "Australia/Sydney".parse().expect("a zone");
        let cron = Cron::parse("0 30 3 * * *", sydney).expect("valid");
        // Sydney leaves summer time on 2026-04-05: UTC+11 before, UTC+10 after.
        let before = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 4, 10, 0, 0, 0).unwrap();

        let summer = cron.next_after(before).expect("a start");
        let winter = cron.next_after(after).expect("a start");

        println!("summer {summer}, winter {winter}");
        assert_eq!(summer, Utc.with_ymd_and_hms(2026, 4, 1, 16, 30, 0).unwrap());
        assert_eq!(
            winter,
            Utc.with_ymd_and_hms(2026, 4, 10, 17, 30, 0).unwrap()
        );
        let utc = Cron::parse("0 30 3 * * *", Tz::UTC).expect("valid");
        assert_eq!(
            utc.next_after(before),
            Some(Utc.with_ymd_and_hms(2026, 4, 1, 3, 30, 0).unwrap())
        );
    }

    #[test]
    fn the_longest_gap_of_an_hourly_schedule_is_an_hour() {
        let cron = Cron::parse("0 0 * * * *", Tz::UTC).expect("valid");
        let gap = cron.longest_gap(Utc::now(), 5);
        assert_eq!(gap, Some(Duration::from_secs(3600)));
        assert!(Cron::parse("every day", Tz::UTC).is_err());
        assert!(
            Cron::parse("0 */5 * * *", Tz::UTC).is_err(),
            "seconds are required"
        );
    }
}
