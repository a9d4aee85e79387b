//! The Endless Aisles document's (seed `004`) stock answer, read straight into a [`Stock`]:
//! `data` is an object of option id → quantity, or `[]` when there is nothing.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::opt_u64;
use super::record::take_record;
use crate::services::{ConnectorError, QuantityVisitor, RecordQuantity, Stock};
//
// The answer is `{"data": {id: quantity, …}, "current_page": …, "last_page": …}` (page fields
// only on paginated listings), with `"data": []` when empty. It is read with serde visitors
// straight into a [`Stock`], each id appended behind the SKU prefix without a string of its own:
// a million-SKU answer must not cost a million allocations. The usual shape is read first by
// the scanner in [`super::plain_stock`], which leaves anything else to these visitors.

/// Reads one answer into `stock`, returning its `(current_page, last_page)` if present.
struct AnswerSeed<'a> {
    stock: &'a mut Stock,
    prefix: &'a str,
    label: &'a str,
}

impl<'de> DeserializeSeed<'de> for AnswerSeed<'_> {
    type Value = Option<(u64, u64)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed<'_> {
    type Value = Option<(u64, u64)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with data")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut data, mut current, mut last) = (false, None, None);
        let AnswerSeed {
            stock,
            prefix,
            label,
        } = self;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "data" if data => return Err(de::Error::duplicate_field("data")),
                "data" => {
                    map.next_value_seed(DataSeed {
                        stock: &mut *stock,
                        prefix,
                        label,
                    })?;
                    data = true;
                }
                "current_page" => current = map.next_value::<PageField>()?.0,
                "last_page" => last = map.next_value::<PageField>()?.0,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        if !data {
            return Err(de::Error::missing_field("data"));
        }
        Ok(current.zip(last))
    }
}

/// `data`: option id → quantity, or `[]` when empty.
struct DataSeed<'a> {
    stock: &'a mut Stock,
    prefix: &'a str,
    label: &'a str,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DataSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of option id to quantity, or []")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        loop {
            self.stock.open().push_str(self.prefix);
            if map.next_key_seed(AppendKey(self.stock.open()))?.is_none() {
                self.stock.discard_pending();
                return Ok(());
            }
            let quantity = map.next_value::<StockQuantity>()?.0;
            take_record(self.stock, self.prefix, self.label, quantity);
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match seq.next_element::<de::IgnoredAny>()? {
            None => Ok(()),
            Some(_) => Err(de::Error::custom(
                "data is a non-empty array; expected an object or []",
            )),
        }
    }
}

/// A page field, as a number or a string of digits (a PHP service may write either).
struct PageField(Option<u64>);

impl<'de> serde::Deserialize<'de> for PageField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        opt_u64(deserializer).map(PageField)
    }
}

/// A stock quantity. A string of digits (`"7"`, `"7.00"`) is the number it spells: a Laravel
/// service reading MySQL without native types writes every column so, and API_NOTES asks to
/// read the forms such services mix. Reading it cannot make a figure wrong (the digits are the
/// figure); holding it would freeze the SKU at its last figure for as long as the service
/// writes strings. Anything else that is not a whole number is held, as before.
struct StockQuantity(RecordQuantity);

impl<'de> serde::Deserialize<'de> for StockQuantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(StockQuantityVisitor)
            .map(StockQuantity)
    }
}

/// The whole number a string spells, if it spells one: digits, an optional sign, and a
/// fraction of zeros only.
fn spelled(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    (plain && fraction.bytes().all(|b| b == b'0'))
        .then(|| whole.parse().ok())
        .flatten()
}

struct StockQuantityVisitor;

impl<'de> Visitor<'de> for StockQuantityVisitor {
    type Value = RecordQuantity;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a quantity")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<RecordQuantity, E> {
        match spelled(v) {
            Some(n) => Ok(RecordQuantity::Whole(n)),
            None => QuantityVisitor.visit_str(v),
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RecordQuantity, E> {
        QuantityVisitor.visit_i64(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RecordQuantity, E> {
        QuantityVisitor.visit_u64(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RecordQuantity, E> {
        QuantityVisitor.visit_f64(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<RecordQuantity, E> {
        QuantityVisitor.visit_bool(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<RecordQuantity, E> {
        QuantityVisitor.visit_unit()
    }
    fn visit_none<E: de::Error>(self) -> Result<RecordQuantity, E> {
        QuantityVisitor.visit_none()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RecordQuantity, A::Error> {
        QuantityVisitor.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RecordQuantity, A::Error> {
        QuantityVisitor.visit_map(map)
    }
}

/// Appends a map key to a buffer instead of allocating it.
struct AppendKey<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for AppendKey<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for AppendKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an option id")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<(), E> {
        self.0.push_str(id);
        Ok(())
    }
}

/// Parses one `GET /api/stock` answer into `stock` (canonical SKUs, negative quantities counted
/// as 0 with a WARN, a quantity that is not a whole number held with a WARN naming it, an empty
/// id or one with control characters dropped and counted); returns `(current_page, last_page)`
/// when the answer has them.
pub fn parse_stock_page(
    body: &[u8],
    sku_prefix: &str,
    label: &str,
    stock: &mut Stock,
) -> Result<Option<(u64, u64)>, ConnectorError> {
    if super::plain_stock::read(body, sku_prefix, label, stock) {
        // The plain shape has no page fields.
        return Ok(None);
    }
    read_with_serde(body, sku_prefix, label, stock)
}

/// [`parse_stock_page`] with serde_json alone: any answer, whatever its shape.
pub(super) fn read_with_serde(
    body: &[u8],
    sku_prefix: &str,
    label: &str,
    stock: &mut Stock,
) -> Result<Option<(u64, u64)>, ConnectorError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let seed = AnswerSeed {
        stock: &mut *stock,
        prefix: sku_prefix,
        label,
    };
    let pages = seed
        .deserialize(&mut deserializer)
        .and_then(|pages| deserializer.end().map(|()| pages));
    pages.map_err(|e| {
        // The fetch fails as a whole; only the half-appended name needs tidying.
        stock.discard_pending();
        ConnectorError::Malformed(format!(
            "GET /api/stock: expected {{\"data\": {{id: quantity}}}}: {e}"
        ))
    })
}
