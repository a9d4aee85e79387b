//! The Endless Aisles document's (seed `004`) requests and answers, named as it names them.
//!
//! - [`stock`]: `GET /api/stock`, read without a String per SKU; `plain_stock` reads its usual
//!   shape faster and leaves every other to [`stock`].
//! - [`products`]: `GET /api/products`: products and their sizes (options).
//! - [`orders`]: `PUT /api/orders`, `GET /api/orders[/{id}]`.
//!
//! The answers come from a PHP (Laravel) service whose documents show one form of each field;
//! the readers here accept the forms such services are known to mix (a number as a string, a
//! flag as `0`/`1`), because a refusal to read one field would lose a whole page. A barcode is
//! never read as a number: see [`upc`].

pub mod orders;
mod plain_stock;
pub mod products;
mod record;
pub mod stock;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, de::DeserializeOwned};

pub use stock::parse_stock_page;

/// One page of a Laravel listing: `data` plus the page fields (API_NOTES: `current_page`,
/// `last_page`, `next_page_url`, `per_page`, `total`). Every page field is optional because
/// `/api/stock` is documented without them.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub struct Page<T> {
    /// The records of this page.
    pub data: Vec<T>,
    /// The page this is (1-based).
    #[serde(default, deserialize_with = "opt_u64")]
    pub current_page: Option<u64>,
    /// The last page there is.
    #[serde(default, deserialize_with = "opt_u64")]
    pub last_page: Option<u64>,
    /// Where the next page is; `null` on the last page. Only its presence is used: the sample
    /// shows `"/?page=2"`, a path that is not the listing's own.
    #[serde(default)]
    pub next_page_url: Option<String>,
}

impl<T> Page<T> {
    /// Whether a page follows this one: by `last_page` when given, else by `next_page_url`.
    pub fn has_next(&self) -> bool {
        match (self.current_page, self.last_page) {
            (Some(current), Some(last)) => current < last,
            _ => self.next_page_url.is_some(),
        }
    }
}

struct U64Visitor;

impl Visitor<'_> for U64Visitor {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number, as a number or a string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom(format!("{v} is negative")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // 3.0 is 3; anything with a fraction is not a count or an id.
        if v.fract() == 0.0 && (0.0..=9.0e15).contains(&v) {
            Ok(Some(v as u64))
        } else {
            Err(E::custom(format!("{v} is not a whole number")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.trim()
            .parse()
            .map(Some)
            .map_err(|_| E::custom(format!("{v:?} is not a whole number")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A whole number given as a number or a numeric string; `null` is `None`.
pub fn opt_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    deserializer.deserialize_any(U64Visitor)
}

/// A whole number given as a number or a numeric string; `null` is an error.
pub fn req_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    opt_u64(deserializer)?.ok_or_else(|| de::Error::custom("a whole number, not null"))
}

struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = Option<bool>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("true/false, 0/1 or their strings")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match v {
            0 => Ok(Some(false)),
            1 => Ok(Some(true)),
            _ => Err(E::custom(format!("{v} is not a flag"))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(E::custom(format!("{v} is not a flag")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(Some(true)),
            "0" | "false" => Ok(Some(false)),
            _ => Err(E::custom(format!("{v:?} is not a flag"))),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A flag given as a boolean, `0`/`1`, or a string of either; `null` is `None` (unknown).
pub fn opt_flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    deserializer.deserialize_any(BoolVisitor)
}

struct UpcVisitor;

impl Visitor<'_> for UpcVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a barcode string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    // A number can only have lost its leading zeros already; its digits are kept as text so
    // that GTIN padding can restore them, never re-read as a number downstream.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// A UPC exactly as the service wrote it (leading zeros, a leading apostrophe, spaces, all
/// kept): API_NOTES says UPCs are strings and one example starts with `'`. A JSON number is
/// taken as its digits; `null` (a shipping line) is `None`.
pub fn upc<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(UpcVisitor)
}

struct MoneyVisitor;

impl Visitor<'_> for MoneyVisitor {
    type Value = Option<f64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an amount, as a number or a string")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v as f64))
    }

    // `msrp` is a string in the document ("9.99"); prices may be too.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or_else(|| E::custom(format!("{v:?} is not an amount")))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// An amount in the supplier's currency (USD), as a number or a numeric string.
pub fn money<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    deserializer.deserialize_any(MoneyVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Fields {
        #[serde(default, deserialize_with = "opt_u64")]
        n: Option<u64>,
        #[serde(default, deserialize_with = "opt_flag")]
        f: Option<bool>,
        #[serde(default, deserialize_with = "upc")]
        u: Option<String>,
        #[serde(default, deserialize_with = "money")]
        m: Option<f64>,
    }

    type Read = (Option<u64>, Option<bool>, Option<String>, Option<f64>);

    fn read(json: &str) -> Option<Read> {
        let f: Fields = serde_json::from_str(json).ok()?;
        Some((f.n, f.f, f.u, f.m))
    }

    #[test]
    fn fields_are_read_in_the_forms_a_php_service_mixes() {
        assert_eq!(
            read(r#"{"n": "42", "f": 1, "u": "'074198609628", "m": "9.99"}"#),
            Some((
                Some(42),
                Some(true),
                Some("'074198609628".into()),
                Some(9.99)
            ))
        );
        assert_eq!(
            read(r#"{"n": 42.0, "f": "false", "u": 74198609628, "m": 3}"#),
            Some((Some(42), Some(false), Some("74198609628".into()), Some(3.0)))
        );
        assert_eq!(
            read(r#"{"n": null, "f": null, "u": null, "m": null}"#),
            Some((None, None, None, None))
        );
        assert_eq!(read("{}"), Some((None, None, None, None)));
        for bad in [
            r#"{"n": -1}"#,
            r#"{"n": 1.5}"#,
            r#"{"f": 2}"#,
            r#"{"f": "yes"}"#,
            r#"{"m": "free"}"#,
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_page_says_whether_another_follows() {
        let page = |json: &str| serde_json::from_str::<Page<u64>>(json).ok();
        let next = |json: &str| page(json).map(|p| p.has_next());
        assert_eq!(
            next(r#"{"data": [1], "current_page": 1, "last_page": 3}"#),
            Some(true)
        );
        assert_eq!(
            next(
                r#"{"data": [1], "current_page": "3", "last_page": 3, "next_page_url": "/?page=4"}"#
            ),
            Some(false)
        );
        assert_eq!(
            next(r#"{"data": [], "next_page_url": "/?page=2"}"#),
            Some(true)
        );
        assert_eq!(next(r#"{"data": []}"#), Some(false));
        assert!(page(r#"{"current_page": 1}"#).is_none());
    }
}
