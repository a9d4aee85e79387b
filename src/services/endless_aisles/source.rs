//! Endless Aisles as a source: `GET /api/stock` with no `sku` parameter answers every item.

use reqwest::Method;
use secrecy::SecretString;

use super::api::{Api, MAX_PAGES};
use super::orders::Orders;
use super::products::Products;
use super::wire::parse_stock_page;
use crate::http::{Endpoint, Meter};
use crate::services::answer::{Fetched, Known, Next, Pages};
use crate::services::{ConnectorError, Stock, warn_unusable};

/// Endless Aisles as a source.
pub struct EndlessAislesSource {
    api: Api,
    sku_prefix: String,
}

impl EndlessAislesSource {
    /// A source whose canonical SKUs are `sku_prefix` + option id.
    pub fn new(endpoint: Endpoint, token: SecretString, sku_prefix: String) -> EndlessAislesSource {
        EndlessAislesSource {
            api: Api::new(endpoint, token),
            sku_prefix,
        }
    }

    /// What it puts before every option id.
    pub fn sku_prefix(&self) -> &str {
        &self.sku_prefix
    }

    /// The account's catalogue, sharing this source's endpoint and rate limit.
    pub fn products(&self) -> Products {
        Products::from_api(self.api.clone())
    }

    /// The account's orders, sharing this source's endpoint and rate limit.
    pub fn orders(&self) -> Orders {
        Orders::from_api(self.api.clone())
    }

    /// Reads the stock of every item, following pages if the answer has them. An answer whose
    /// every page is the one recorded last time (`known`) is not parsed (see [`Pages`]).
    pub async fn fetch(
        &self,
        meter: &Meter,
        context: &[u8],
        known: Known<'_>,
    ) -> Result<Fetched, ConnectorError> {
        let mut records = Stock::default();
        let mut pages = Pages::new(context, known);
        let mut page = 1;
        loop {
            let query = if page == 1 {
                Vec::new()
            } else {
                vec![("page", page.to_string())]
            };
            let (body, digest) = self
                .api
                .send_digested(meter, "/api/stock", &query, &pages.salt())
                .await?;
            let bodies = match pages.arrived_digested(body, digest).await {
                Next::Same => return Ok(Fetched::Same),
                Next::Ask => {
                    page += 1;
                    continue;
                }
                Next::Parse(bodies) => bodies,
            };
            // Pages kept because they matched are parsed for their records only: what follows
            // them is known, since they are what they were.
            let mut meta = None;
            for body in &bodies {
                meta = parse_stock_page(body, &self.sku_prefix, self.api.label(), &mut records)?;
            }
            match meta {
                Some((current, last)) if current < last => {
                    if current != page || current >= MAX_PAGES {
                        return Err(ConnectorError::Malformed(format!(
                            "GET /api/stock: asked for page {page}, got page {current} of {last}"
                        )));
                    }
                    page += 1;
                }
                _ => {
                    warn_unusable(self.api.label(), &records);
                    return Ok(Fetched::New(records, pages.digest()));
                }
            }
        }
    }

    /// Checks the token with the smallest read there is: the stock of one item id.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        let query = [("sku", "0".to_owned())];
        let body = self
            .api
            .send(meter, Method::GET, "/api/stock", &query)
            .await?;
        parse_stock_page(&body, "", self.api.label(), &mut Stock::default())?;
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
        assert!(parse_answer(r#"{"nodata": {}}"#).is_err());
        assert!(parse_answer(r#"{"data": {"1": 5,"#).is_err());
    }

    #[test]
    fn an_endless_aisles_quantity_that_is_not_a_whole_number_holds_that_sku_and_the_rest_is_used() {
        let mut stock = Stock::default();
        let body = r#"{"data": {"1": 1.5, "2": "7.5", "3": null, "4": 6, "5": {"n": 1}, "6": 2.0,
                       "7": "seven", "8": ""}}"#;
        parse_stock_page(body.as_bytes(), "EA-", "source test", &mut stock).expect("used");
        let records: Vec<(&str, i64)> = stock.iter().collect();
        assert_eq!(records, vec![("EA-4", 6), ("EA-6", 2)]);
        assert_eq!(
            stock.held(),
            ["EA-1", "EA-2", "EA-3", "EA-5", "EA-7", "EA-8"]
        );
    }

    #[test]
    fn an_endless_aisles_answer_with_numbers_written_as_strings_of_digits_is_read_as_those_numbers()
    {
        let mut stock = Stock::default();
        let body = r#"{"data": {"1": "7", "2": " 12 ", "3": "4.00", "4": "-2"},
                       "current_page": "2", "last_page": "3", "per_page": "10"}"#;
        let pages = parse_stock_page(body.as_bytes(), "EA-", "source test", &mut stock);
        assert_eq!(pages.ok(), Some(Some((2, 3))));
        let records: Vec<(&str, i64)> = stock.iter().collect();
        assert_eq!(
            records,
            vec![("EA-1", 7), ("EA-2", 12), ("EA-3", 4), ("EA-4", 0)]
        );
        assert!(stock.held().is_empty());
    }

    #[test]
    fn an_endless_aisles_id_that_is_empty_or_carries_control_characters_is_dropped_and_counted() {
        let mut stock = Stock::default();
        let body = r#"{"data": {"": 4, "10\t99": 5, "7\n": 1.5, "8": 3}}"#;
        parse_stock_page(body.as_bytes(), "EA-", "source test", &mut stock).expect("used");
        assert_eq!(stock.iter().collect::<Vec<_>>(), vec![("EA-8", 3)]);
        assert_eq!(stock.dropped(), 3);
        assert!(stock.held().is_empty());
    }
}
