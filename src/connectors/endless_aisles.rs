//! Endless Aisles (seed `004`): dropship stock, read as a source.
//!
//! Auth is the `X-EA-REQUEST-TOKEN` header. `GET /api/stock` with no `sku` parameter answers
//! every item: `data` is an object of option id → quantity, or `[]` when there is nothing. The
//! document says GET endpoints paginate; the stock sample shows no page fields, so pages are
//! followed when an answer carries them and one answer is complete when it does not.

use std::fmt;

use bytes::Bytes;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{ConnectorError, Quantity, StockRecord, non_negative, parse};
use crate::http::{Endpoint, HttpError, Meter};

/// No catalogue is this many pages long; a service that keeps saying "next" is broken.
const MAX_PAGES: u64 = 100_000;

// ---- wire types, as the document names them ----

/// The answer of `GET /api/stock`, with the pagination fields of the document's listings.
#[derive(Deserialize)]
struct StockAnswer {
    data: StockData,
    current_page: Option<u64>,
    last_page: Option<u64>,
}

/// `data`: option id → quantity, or `[]` when empty.
struct StockData(Vec<(String, Quantity)>);

impl<'de> Deserialize<'de> for StockData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StockDataVisitor)
    }
}

struct StockDataVisitor;

impl<'de> Visitor<'de> for StockDataVisitor {
    type Value = StockData;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of option id to quantity, or []")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StockData, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry::<String, Quantity>()? {
            entries.push(entry);
        }
        Ok(StockData(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StockData, A::Error> {
        match seq.next_element::<de::IgnoredAny>()? {
            None => Ok(StockData(Vec::new())),
            Some(_) => Err(de::Error::custom(
                "data is a non-empty array; expected an object or []",
            )),
        }
    }
}

/// Parses one `GET /api/stock` answer into `records` (canonical SKUs, negative quantities
/// counted as 0 with a WARN); returns `(current_page, last_page)` when the answer has them.
pub fn parse_stock_page(
    body: &[u8],
    sku_prefix: &str,
    label: &str,
    records: &mut Vec<StockRecord>,
) -> Result<Option<(u64, u64)>, ConnectorError> {
    let answer: StockAnswer = parse(body, "GET /api/stock: expected {\"data\": {id: quantity}}")?;
    records.reserve(answer.data.0.len());
    for (id, quantity) in answer.data.0 {
        let sku = format!("{sku_prefix}{id}");
        let quantity = non_negative(label, &sku, quantity.0);
        records.push((sku, quantity));
    }
    Ok(answer.current_page.zip(answer.last_page))
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
    pub async fn fetch(&self, meter: &Meter) -> Result<Vec<StockRecord>, ConnectorError> {
        let mut records = Vec::new();
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
        let _: StockAnswer = parse(&body, "GET /api/stock: expected {\"data\": ...}")?;
        Ok("token accepted".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_answer(body: &str) -> Result<Vec<(String, i64)>, serde_json::Error> {
        serde_json::from_str::<StockAnswer>(body)
            .map(|a| a.data.0.into_iter().map(|(k, q)| (k, q.0)).collect())
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
