//! Dates as Hardtofind writes them, and as API_NOTES says it has also been seen writing them.

use std::fmt;

use chrono::{DateTime, FixedOffset};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A Hardtofind date. The document writes `2016-08-18T14:43:22+1000`; RFC 3339 (`+10:00`, `Z`)
/// is accepted too, and so is a number of Unix seconds, since API_NOTES has seen dates sent
/// that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub DateTime<FixedOffset>);

impl Date {
    /// Unix seconds, fractions included.
    pub fn unix_seconds(&self) -> f64 {
        self.0.timestamp() as f64 + f64::from(self.0.timestamp_subsec_nanos()) / 1e9
    }
}

impl fmt::Display for Date {
    /// The document's form, `2016-09-15T14:41:25+1000`.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S%z"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DateVisitor)
    }
}

struct DateVisitor;

impl Visitor<'_> for DateVisitor {
    type Value = Date;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a date like 2016-08-18T14:43:22+1000, or Unix seconds")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Date, E> {
        parse_date(v.trim())
            .map(Date)
            .ok_or_else(|| E::custom(format!("{v:?} is not a date")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Date, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Date, E> {
        self.visit_f64(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Date, E> {
        let (secs, nanos) = (v.floor(), ((v - v.floor()) * 1e9) as u32);
        // Out of range (or not finite) is refused rather than clamped: a date we cannot trust
        // must not decide when an order is stuck.
        (secs.is_finite() && secs.abs() < 1e14)
            .then(|| DateTime::from_timestamp(secs as i64, nanos))
            .flatten()
            .map(|at| Date(at.fixed_offset()))
            .ok_or_else(|| E::custom(format!("{v} is not a date")))
    }
}

/// A Hardtofind date: RFC 3339, or with the offset written `+1000` as the document's samples do.
pub fn parse_date(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
}
