//! The simulated `GET /api/stock`: every item at once, a `sku` filter, or Laravel pages.
//! Rendered by hand and cached, because a benchmark of a million SKUs must measure invsync,
//! not the simulator.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use crate::harness::dialect::{Spoken, StockPages};
use crate::harness::server::{push_int, push_json_str};

/// Items per page when the dialect pages `/api/stock` and the simulator was not given a size:
/// the document's default `per_page`.
const DIALECT_PAGE_SIZE: usize = 10;

/// The page size of an unfiltered `GET /api/stock`: the configured one, else the dialect's
/// (`stock_pages`: the document shows no page fields; a Laravel service may add them).
pub(super) fn page_size(dialect: &Spoken, configured: Option<usize>) -> Option<usize> {
    configured.or_else(|| {
        let paged = dialect.answer("stock_pages").stock_pages == StockPages::Laravel;
        paged.then_some(DIALECT_PAGE_SIZE)
    })
}

/// The answer when there is nothing to return, byte for byte as documented.
const EMPTY: &str = "{\"data\": []}";

/// The stock of every option id.
#[derive(Default)]
pub(super) struct StockBook {
    pub(super) stock: HashMap<String, i64>,
    /// Option ids in page order; rebuilt lazily when the set of ids changes.
    pub(super) order: Option<Vec<String>>,
    /// The whole-stock answer, rendered once per change of stock: the simulator must never be
    /// what a benchmark of a million SKUs measures.
    pub(super) rendered: Option<bytes::Bytes>,
}

impl StockBook {
    pub(super) fn set(&mut self, id: String, quantity: i64) {
        self.rendered = None;
        match self.stock.entry(id) {
            Entry::Occupied(mut current) => *current.get_mut() = quantity,
            Entry::Vacant(slot) => {
                slot.insert(quantity);
                self.order = None;
            }
        }
    }
}

/// Ids in a stable page order (numeric ids ascending, then longer ids),
/// sorted only when the set of ids changed since the last call.
fn ordered<'a>(stock: &HashMap<String, i64>, order: &'a mut Option<Vec<String>>) -> &'a [String] {
    order.get_or_insert_with(|| {
        let mut ids: Vec<String> = stock.keys().cloned().collect();
        ids.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        ids
    })
}

/// Writes `{"data": {...}}`, or the documented empty answer.
fn render<'a>(entries: impl Iterator<Item = (&'a str, i64)>, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + capacity.saturating_mul(24));
    out.extend_from_slice(b"{\"data\":");
    if !push_entries(&mut out, entries) {
        return EMPTY.as_bytes().to_vec();
    }
    out.push(b'}');
    out
}

/// Writes the `data` value: an object of id → quantity, or `[]` when empty
/// (then returns false).
fn push_entries<'a>(out: &mut Vec<u8>, entries: impl Iterator<Item = (&'a str, i64)>) -> bool {
    let start = out.len();
    for (id, quantity) in entries {
        out.push(if out.len() == start { b'{' } else { b',' });
        push_json_str(out, id);
        out.push(b':');
        push_int(out, quantity);
    }
    if out.len() == start {
        out.extend_from_slice(b"[]");
        return false;
    }
    out.push(b'}');
    true
}

fn push_field(out: &mut Vec<u8>, name: &str, value: Option<usize>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match value {
        Some(v) => out.extend_from_slice(v.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_url(out: &mut Vec<u8>, name: &str, page: Option<usize>) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    match page {
        Some(p) => out.extend_from_slice(format!("\"/api/stock?page={p}\"").as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

impl StockBook {
    /// One Laravel page of every item.
    pub(super) fn page(&mut self, page: usize, per_page: usize) -> Vec<u8> {
        let total = self.stock.len();
        let last_page = total.div_ceil(per_page).max(1);
        let start = page.saturating_sub(1).saturating_mul(per_page).min(total);
        let end = start.saturating_add(per_page).min(total);
        let mut out = Vec::with_capacity(400 + (end - start) * 24);
        out.extend_from_slice(b"{\"current_page\":");
        out.extend_from_slice(page.to_string().as_bytes());
        out.extend_from_slice(b",\"data\":");
        let StockBook { stock, order, .. } = self;
        let ids = ordered(stock, order).get(start..end).unwrap_or_default();
        let entries = ids
            .iter()
            .map(|id| (id.as_str(), stock.get(id).copied().unwrap_or(0)));
        let _ = push_entries(&mut out, entries);
        let (from, to) = if end > start {
            (Some(start + 1), Some(end))
        } else {
            (None, None)
        };
        push_url(&mut out, "first_page_url", Some(1));
        push_field(&mut out, "from", from);
        push_field(&mut out, "last_page", Some(last_page));
        push_url(&mut out, "last_page_url", Some(last_page));
        push_url(
            &mut out,
            "next_page_url",
            (page < last_page).then_some(page + 1),
        );
        out.extend_from_slice(b",\"path\":\"/api/stock\"");
        push_field(&mut out, "per_page", Some(per_page));
        let previous = (page > 1).then(|| (page - 1).min(last_page));
        push_url(&mut out, "prev_page_url", previous);
        push_field(&mut out, "to", to);
        push_field(&mut out, "total", Some(total));
        out.push(b'}');
        out
    }

    /// The answer to `GET /api/stock`: the items named by `skus` (comma-separated), one page,
    /// or everything (rendered once per change).
    pub(super) fn answer(
        &mut self,
        skus: Option<&str>,
        page: usize,
        page_size: Option<usize>,
    ) -> bytes::Bytes {
        match (skus, page_size) {
            (Some(skus), _) => {
                let mut seen = HashSet::new();
                let wanted = skus.split(',').map(str::trim).filter(|id| seen.insert(*id));
                let found = wanted.filter_map(|id| self.stock.get(id).map(|&q| (id, q)));
                render(found, 0).into()
            }
            (None, Some(per_page)) => self.page(page, per_page.max(1)).into(),
            (None, None) => {
                let StockBook {
                    stock, rendered, ..
                } = self;
                rendered
                    .get_or_insert_with(|| {
                        let all = stock.iter().map(|(id, &q)| (id.as_str(), q));
                        render(all, stock.len()).into()
                    })
                    .clone()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EndlessAislesSim, EndlessAislesSimConfig};
    use super::*;
    use serde_json::{Value, json};

    async fn get(sim: &EndlessAislesSim, path_and_query: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .get(format!("{}{path_and_query}", sim.base_url()))
            .header("X-EA-REQUEST-TOKEN", sim.token())
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    fn parse(body: &str) -> Value {
        serde_json::from_str(body).expect("valid JSON")
    }

    #[tokio::test]
    async fn endless_aisles_answers_an_empty_array_when_it_has_no_stock() {
        let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
            .await
            .expect("start");
        assert_eq!(get(&sim, "/api/stock").await, (200, EMPTY.to_string()));
        sim.set_stock("24752", 149);
        assert_eq!(
            get(&sim, "/api/stock?sku=1,2").await,
            (200, EMPTY.to_string())
        );
    }

    #[tokio::test]
    async fn endless_aisles_serves_stock_and_filters_by_sku() {
        let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
            .await
            .expect("start");
        sim.set_stocks([("24752", 149), ("24751", 74), ("24750", 104)]);
        let (status, all) = get(&sim, "/api/stock").await;
        assert_eq!(status, 200);
        assert_eq!(
            parse(&all),
            json!({"data": {"24752": 149, "24751": 74, "24750": 104}})
        );
        let (_, some) = get(&sim, "/api/stock?sku=24752%2C24750,99999,24752").await;
        assert_eq!(parse(&some), json!({"data": {"24752": 149, "24750": 104}}));
        assert_eq!(sim.remove("24752"), Some(149));
        assert_eq!(sim.stock().len(), 2);
        assert_eq!(sim.count("GET", "/api/stock"), 2);
    }

    #[tokio::test]
    async fn endless_aisles_requires_its_token() {
        let sim = EndlessAislesSim::start(EndlessAislesSimConfig::default())
            .await
            .expect("start");
        let response = reqwest::Client::new()
            .get(format!("{}/api/stock", sim.base_url()))
            .header("X-EA-REQUEST-TOKEN", "wrong")
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body, json!({"error": "Unauthenticated."}));
    }

    #[tokio::test]
    async fn endless_aisles_paginates_when_configured() {
        let config = EndlessAislesSimConfig {
            page_size: Some(2),
            ..EndlessAislesSimConfig::default()
        };
        let sim = EndlessAislesSim::start(config).await.expect("start");
        sim.set_stocks((1..=5).map(|i| (format!("{}", 100 - i), i)));
        let mut seen = HashMap::new();
        let mut next = Some("/api/stock".to_string());
        while let Some(url) = next.take() {
            let (status, body) = get(&sim, &url).await;
            let page = parse(&body);
            assert_eq!(
                (status, page["total"].as_u64(), page["last_page"].as_u64()),
                (200, Some(5), Some(3))
            );
            let data = page["data"].as_object().expect("an object");
            assert!(data.len() <= 2);
            seen.extend(
                data.iter()
                    .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(-1))),
            );
            next = page["next_page_url"].as_str().map(str::to_string);
        }
        assert_eq!(seen, sim.stock());
        let first = parse(&get(&sim, "/api/stock?page=1").await.1);
        assert_eq!(first["data"], json!({"95": 5, "96": 4}));
        let beyond = parse(&get(&sim, "/api/stock?page=9").await.1);
        assert_eq!(
            (beyond["data"].clone(), beyond["from"].clone()),
            (json!([]), Value::Null)
        );
        let filtered = parse(&get(&sim, "/api/stock?sku=99,95").await.1);
        assert_eq!(filtered, json!({"data": {"99": 1, "95": 5}}));
    }
}
