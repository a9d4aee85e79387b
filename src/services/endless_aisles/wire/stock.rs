//! The Endless Aisles document's (seed `004`) stock answer, read straight into a [`Stock`]:
//! `data` is an object of option id → quantity, or `[]` when there is nothing.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::services::{ConnectorError, RecordQuantity, Stock, non_negative, usable_sku, warn_held};
//
// The answer is `{"data": {id: quantity, …}, "current_page": …, "last_page": …}` (page fields
// only on paginated listings), with `"data": []` when empty. It is read with serde visitors
// straight into a [`Stock`], each id appended behind the SKU prefix without a string of its own:
// a million-SKU answer must not cost a million allocations.

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
                "current_page" => current = map.next_value::<Option<u64>>()?,
                "last_page" => last = map.next_value::<Option<u64>>()?,
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
            let quantity: RecordQuantity = map.next_value()?;
            let name = self.stock.pending_name();
            // The id is what follows the prefix: an empty id names nothing, prefix or not.
            if name.len() == self.prefix.len() || !usable_sku(name) {
                self.stock.discard_pending();
                self.stock.count_dropped();
                continue;
            }
            match quantity {
                RecordQuantity::Whole(quantity) => {
                    let quantity = non_negative(self.label, name, quantity);
                    self.stock.seal(quantity);
                }
                RecordQuantity::Unusable(written) => {
                    let sku = name.to_owned();
                    self.stock.discard_pending();
                    self.stock.hold(&sku);
                    warn_held(self.label, &sku, &written, self.stock.held().len());
                }
            }
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
