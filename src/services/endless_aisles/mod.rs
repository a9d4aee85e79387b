//! Endless Aisles (seed `004`): dropship stock, read as a source.
//!
//! Auth is the `X-EA-REQUEST-TOKEN` header. `GET /api/stock` with no `sku` parameter answers
//! every item: `data` is an object of option id → quantity, or `[]` when there is nothing. The
//! document says GET endpoints paginate; the stock sample shows no page fields, so pages are
//! followed when an answer carries them and one answer is complete when it does not.

pub mod sim;

use std::fmt;

use bytes::Bytes;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{ConnectorError, Quantity, Stock, non_negative};
use crate::http::{Endpoint, HttpError, Meter};

/// No catalogue is this many pages long; a service that keeps saying "next" is broken.
const MAX_PAGES: u64 = 100_000;

// ---- wire types, as the document names them ----
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
            let quantity: Quantity = map.next_value()?;
            let quantity = non_negative(self.label, self.stock.pending_name(), quantity.0);
            self.stock.seal(quantity);
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
/// as 0 with a WARN); returns `(current_page, last_page)` when the answer has them.
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

// ---- auth and requests ----

/// Endless Aisles as a source.
pub struct EndlessAislesSource {
    endpoint: Endpoint,
    token: SecretString,
    sku_prefix: String,
}

impl EndlessAislesSource {
    /// A source whose canonical SKUs are `sku_prefix` + option id.
    pub fn new(endpoint: Endpoint, token: SecretString, sku_prefix: String) -> EndlessAislesSource {
        EndlessAislesSource {
            endpoint,
            token,
            sku_prefix,
        }
    }

    async fn get(
        &self,
        meter: &Meter,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Bytes, HttpError> {
        self.endpoint
            .send(meter, || {
                self.endpoint
                    .request(Method::GET, path)
                    .header("X-EA-REQUEST-TOKEN", self.token.expose_secret())
                    .query(query)
            })
            .await
    }

    /// Reads the stock of every item, following pages if the answer has them.
    pub async fn fetch(&self, meter: &Meter) -> Result<Stock, ConnectorError> {
        let mut records = Stock::default();
        let mut page = 1;
        loop {
            let query = if page == 1 {
                Vec::new()
            } else {
                vec![("page", page.to_string())]
            };
            let body = self.get(meter, "/api/stock", &query).await?;
            match parse_stock_page(&body, &self.sku_prefix, &self.endpoint.label, &mut records)? {
                Some((current, last)) if current < last => {
                    if current != page || current >= MAX_PAGES {
                        return Err(ConnectorError::Malformed(format!(
                            "GET /api/stock: asked for page {page}, got page {current} of {last}"
                        )));
                    }
                    page += 1;
                }
                _ => return Ok(records),
            }
        }
    }

    /// Checks the token with the smallest read there is: the stock of one item id.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        let body = self
            .get(meter, "/api/stock", &[("sku", "0".to_owned())])
            .await?;
        parse_stock_page(&body, "", &self.endpoint.label, &mut Stock::default())?;
        Ok("token accepted".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_answer(body: &str) -> Result<Vec<(String, i64)>, ConnectorError> {
        let mut stock = Stock::default();
        parse_stock_page(body.as_bytes(), "", "source test", &mut stock)?;
        Ok(stock.iter().map(|(k, q)| (k.to_owned(), q)).collect())
    }

    #[test]
    fn stock_is_an_object_of_ids_or_an_empty_array() {
        assert_eq!(
            parse_answer(r#"{"data": {"24752": 149, "24751": 74}}"#).ok(),
            Some(vec![("24752".into(), 149), ("24751".into(), 74)])
        );
        assert_eq!(parse_answer(r#"{"data": []}"#).ok(), Some(vec![]));
        assert!(parse_answer(r#"{"data": [1]}"#).is_err());
        assert!(parse_answer(r#"{"data": {"1": "many"}}"#).is_err());
        assert!(parse_answer(r#"{"nodata": {}}"#).is_err());
        assert!(parse_answer(r#"{"data": {"1": 5,"#).is_err());
    }
}
