//! One folder per remote service, each with the same parts: `wire` (the document's types),
//! `config` (its table, validated), its source and/or target, and `sim` (its simulator). They
//! know their service's requests and answers and nothing of cycles, SQLite, retries or rate
//! limits.
//!
//! [`kinds`] is the one list of the kinds of service, by role, from which [`Source`], [`Target`]
//! (a [`QuantityTarget`] or a [`FlagTarget`]) and [`Feed`] are made, dispatching over the kinds
//! with a `match`; a service takes a role by implementing its trait ([`roles`]) in its folder's
//! `kind.rs`. One line per role there and its `pub mod` line here are the only lines a new
//! service adds outside its folder. [`session`] is the login every service that logs in shares;
//! [`table`] what every service's table shares.

pub mod answer;
mod dispatch;
pub mod endless_aisles;
pub mod hako;
pub mod hardtofind;
pub mod kinds;
pub mod roles;
pub mod session;
pub mod shopsys;
pub mod table;

pub use answer::{AnswerDigest, Fetched, Known};
pub use kinds::{Clients, Feed, FlagTarget, QuantityTarget, Source, Target};

pub use crate::plan::stock::Stock;

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};

use crate::http::HttpError;

/// What went wrong talking to a service.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The request failed (after retries).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The service answered 2xx with a body that does not follow its documented shape.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The service refused the credentials.
    #[error("authentication refused: {0}")]
    Auth(String),
    /// Something the configuration names does not exist at the service.
    #[error("{0}")]
    NotFound(String),
}

impl ConnectorError {
    /// Whether the service refused the request itself: a 4xx that is not about authentication
    /// (401, 403), rate (429) or time (408). The one place this is decided: the push loop sets
    /// such SKUs apart, and a Hako target reads it as "that pair exists (or does not)".
    pub fn is_refusal(&self) -> bool {
        matches!(self, ConnectorError::Http(e) if e.status().is_some_and(crate::http::is_refusal_status))
    }

    /// The HTTP status the service answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectorError::Http(e) => e.status().map(|s| s.as_u16()),
            _ => None,
        }
    }

    /// Whether shutdown stopped the request (before it started or while it waited to retry):
    /// a stop, not a failure, so it is neither an ERROR nor anybody's last error.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ConnectorError::Http(HttpError::Cancelled))
    }
}

/// Which SKUs of a pushed batch the target's answer confirms. Only these may be acknowledged:
/// the rest are pushed again by the next cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmed {
    /// The answer covers the whole batch (or, as with Hardtofind, says nothing per SKU).
    All,
    /// Only these SKUs (canonical names) are in the answer.
    Only(HashSet<String>),
}

impl Confirmed {
    /// Whether `sku` may be acknowledged.
    pub fn covers(&self, sku: &str) -> bool {
        match self {
            Confirmed::All => true,
            Confirmed::Only(skus) => skus.contains(sku),
        }
    }
}

/// One SKU to write to a target.
#[derive(Debug, Clone, Copy)]
pub struct PushItem<'a> {
    /// The canonical SKU.
    pub sku: &'a str,
    /// The absolute quantity to set.
    pub quantity: i64,
    /// Whether the target acknowledged this SKU before (so it exists there).
    pub known: bool,
}

/// Parses a 2xx answer body as `T`, naming the service's document shape on failure.
pub fn parse<'a, T: serde::Deserialize<'a>>(
    body: &'a [u8],
    what: &str,
) -> Result<T, ConnectorError> {
    serde_json::from_slice(body).map_err(|e| ConnectorError::Malformed(format!("{what}: {e}")))
}

/// A record's quantity as the service wrote it: a whole number (possibly written `15.0`;
/// negative values pass through so the caller can log them before counting them as 0), or
/// anything else (`1.5`, `"7"`, `null`, missing), kept as text for the WARN that names it.
///
/// Reading never fails on the quantity: one bad record must not fail the whole answer. Its SKU
/// is held at its last snapshot quantity instead ([`Stock::hold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordQuantity {
    /// A whole number.
    Whole(i64),
    /// Not a whole number, as written (cut short).
    Unusable(String),
}

/// A whole-number quantity where nothing else will do (an order line): anything else is an error
/// of the whole record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(pub i64);

impl<'de> serde::Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match RecordQuantity::deserialize(deserializer)? {
            RecordQuantity::Whole(v) => Ok(Quantity(v)),
            // An order line's count written as a string of digits (`"2"`): no document says it
            // cannot be, and nothing about the figure is in doubt.
            RecordQuantity::Unusable(text) => (text.strip_prefix('"'))
                .and_then(|t| t.strip_suffix('"'))
                .and_then(|t| t.trim().parse::<i64>().ok())
                .map(Quantity)
                .ok_or_else(|| de::Error::custom(format!("quantity {text} is not a whole number"))),
        }
    }
}

impl Default for RecordQuantity {
    /// A record without a quantity.
    fn default() -> Self {
        RecordQuantity::Unusable("missing".to_owned())
    }
}

impl<'de> serde::Deserialize<'de> for RecordQuantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(QuantityVisitor)
    }
}

pub(crate) struct QuantityVisitor;

/// Longest piece of an unusable quantity repeated in a WARN.
const SHOWN: usize = 40;

impl<'de> Visitor<'de> for QuantityVisitor {
    type Value = RecordQuantity;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a quantity")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RecordQuantity, E> {
        Ok(RecordQuantity::Whole(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RecordQuantity, E> {
        Ok(i64::try_from(v).map_or_else(
            |_| RecordQuantity::Unusable(v.to_string()),
            RecordQuantity::Whole,
        ))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RecordQuantity, E> {
        Ok(if v.fract() == 0.0 && v.abs() < 9.0e15 {
            RecordQuantity::Whole(v as i64)
        } else {
            RecordQuantity::Unusable(v.to_string())
        })
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RecordQuantity, E> {
        Ok(RecordQuantity::Unusable(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RecordQuantity, E> {
        let shown: String = v.chars().take(SHOWN).collect();
        Ok(RecordQuantity::Unusable(format!("{shown:?}")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<RecordQuantity, E> {
        Ok(RecordQuantity::Unusable("null".to_owned()))
    }
    fn visit_none<E: de::Error>(self) -> Result<RecordQuantity, E> {
        self.visit_unit()
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<RecordQuantity, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(RecordQuantity::Unusable("an array".to_owned()))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RecordQuantity, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(RecordQuantity::Unusable("an object".to_owned()))
    }
}

/// Whether `sku` can be pushed anywhere: an empty SKU names nothing, and a control character
/// (a tab, a newline) breaks every line-based output and is accepted by no channel.
pub fn usable_sku(sku: &str) -> bool {
    !sku.is_empty() && !sku.chars().any(char::is_control)
}

/// How many held records a fetch names one by one; beyond that one WARN counts the rest, so
/// that an answer of a million bad records is not a million log lines.
const NAMED_HELD: usize = 20;

/// The WARN naming one record whose quantity is unusable; `held` is how many the fetch has held
/// so far, this one included.
pub fn warn_held(source: &str, sku: &str, quantity: &str, held: usize) {
    if held <= NAMED_HELD {
        tracing::warn!(
            source,
            sku = %sku,
            quantity = %quantity,
            "quantity is not a whole number; this SKU is held at its last snapshot quantity and the rest of the answer is used"
        );
    }
}

/// After a fetch: one WARN counting the records dropped for an unusable SKU, and one counting
/// the held records beyond those named.
pub fn warn_unusable(source: &str, stock: &Stock) {
    if stock.dropped() > 0 {
        tracing::warn!(
            source,
            records = stock.dropped(),
            "records with an empty SKU or one with control characters are dropped; they are never pushed"
        );
    }
    if let Some(more) = stock
        .held()
        .len()
        .checked_sub(NAMED_HELD)
        .filter(|&n| n > 0)
    {
        tracing::warn!(
            source,
            more,
            "more records with a quantity that is not a whole number; their SKUs are held too"
        );
    }
}

/// Logs a negative quantity and counts it as 0: a source cannot have less than nothing, and
/// showing 0 never oversells.
pub fn non_negative(source: &str, sku: &str, quantity: i64) -> i64 {
    if quantity < 0 {
        tracing::warn!(source, sku, quantity, "negative quantity counts as 0");
        0
    } else {
        quantity
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantity_is_a_whole_number_or_unusable_and_never_fails_the_answer() {
        let parse = |s: &str| serde_json::from_str::<RecordQuantity>(s).ok();
        let whole = |n| Some(RecordQuantity::Whole(n));
        let unusable = |t: &str| Some(RecordQuantity::Unusable(t.to_owned()));
        assert_eq!(parse("15"), whole(15));
        assert_eq!(parse("15.0"), whole(15));
        assert_eq!(parse("-3"), whole(-3));
        assert_eq!(parse("1.5"), unusable("1.5"));
        assert_eq!(parse("\"7\""), unusable("\"7\""));
        assert_eq!(
            parse("18446744073709551615"),
            unusable("18446744073709551615")
        );
        assert_eq!(parse("null"), unusable("null"));
        assert_eq!(parse("[1, [2]]"), unusable("an array"));
        assert_eq!(parse("{\"a\": {\"b\": 1}}"), unusable("an object"));
    }

    #[test]
    fn a_sku_that_is_empty_or_carries_control_characters_is_unusable() {
        assert!(usable_sku("EA-24752"));
        assert!(usable_sku("ünï ☃"));
        for bad in ["", "A\tB", "A\nB", "\r", "A\u{7f}", "A\u{85}"] {
            assert!(!usable_sku(bad), "{bad:?}");
        }
    }
}
