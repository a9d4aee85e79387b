//! The wire parsers against whatever a broken or hostile service might answer: malformed JSON,
//! wrong types, negative, fractional and out-of-range quantities, duplicate SKUs, huge strings,
//! non-UTF-8. Each answer is a typed error or a clear decision, never a panic.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{endless_aisles, hako};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::hash_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A quantity as a service might write it.
fn any_quantity() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-1_000i64..1_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1.0e20f64..1.0e20).prop_map(|f| json!(f)),
        (0i64..1000).prop_map(|n| json!(n as f64)),
        ".{0,8}".prop_map(Value::from),
        "-?[0-9]{1,6}(\\.0{0,2})?".prop_map(Value::from),
        Just(Value::Null),
    ]
}

fn ea(body: &[u8]) -> Result<Vec<(String, i64)>, super::ConnectorError> {
    let mut stock = super::Stock::default();
    endless_aisles::parse_stock_page(body, "EA-", "source test", &mut stock)?;
    Ok(stock.iter().map(|(sku, q)| (sku.to_owned(), q)).collect())
}

fn hako_stock(body: &[u8]) -> Result<Vec<(String, i64)>, super::ConnectorError> {
    let stock = hako::source::parse_stock(body, None, "source test")?;
    Ok(stock.iter().map(|(sku, q)| (sku.to_owned(), q)).collect())
}

fn whole(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        _ => None,
    }
}

/// What Endless Aisles' reader takes for a whole number: [`whole`], or a string that spells
/// one (`"7"`, `" 7.00"`), as a PHP service writes numbers.
fn ea_whole(value: &Value) -> Option<i64> {
    let Value::String(text) = value else {
        return whole(value);
    };
    let text = text.trim();
    let (int, zeros) = text.split_once('.').unwrap_or((text, ""));
    let digits = int.strip_prefix('-').unwrap_or(int);
    let spelled = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && zeros.chars().all(|c| c == '0');
    if spelled { int.parse().ok() } else { None }
}

proptest! {
    #[test]
    fn endless_aisles_survives_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ea(&body);
    }

    #[test]
    fn endless_aisles_survives_any_json(data in any_json(), extra in any_json()) {
        let body = serde_json::to_vec(&json!({"data": data, "last_page": extra})).expect("serialises");
        if let Ok(records) = ea(&body) {
            prop_assert!(records.iter().all(|(sku, q)| sku.starts_with("EA-") && *q >= 0));
        }
    }

    #[test]
    fn endless_aisles_uses_the_whole_quantities_floors_negatives_and_holds_the_rest(
        stock in prop::collection::hash_map("[0-9]{1,7}", any_quantity(), 0..20),
    ) {
        let body = serde_json::to_vec(&json!({"data": stock})).expect("serialises");
        let mut parsed = super::Stock::default();
        endless_aisles::parse_stock_page(&body, "EA-", "source test", &mut parsed).expect("never fails on a quantity");
        let got: HashMap<String, i64> = parsed.iter().map(|(sku, q)| (sku.to_owned(), q)).collect();
        let held: std::collections::HashSet<&str> = parsed.held().iter().map(String::as_str).collect();
        prop_assert_eq!(got.len() + held.len(), stock.len());
        for (id, value) in &stock {
            let sku = format!("EA-{id}");
            match ea_whole(value) {
                Some(q) => prop_assert_eq!(got.get(&sku).copied(), Some(q.max(0))),
                None => prop_assert!(held.contains(sku.as_str())),
            }
        }
    }

    #[test]
    fn hako_survives_any_bytes_and_any_json(body in prop::collection::vec(any::<u8>(), 0..512), value in any_json()) {
        let _ = hako_stock(&body);
        let body = serde_json::to_vec(&value).expect("serialises");
        if let Ok(records) = hako_stock(&body) {
            prop_assert!(records.iter().all(|(_, q)| *q >= 0));
        }
    }

    #[test]
    fn hako_sums_warehouses_and_counts_a_repeated_pair_once_at_its_smaller_quantity(
        objects in prop::collection::vec(("[ab]", "[xyz]", -5i64..50), 0..30),
    ) {
        let body = serde_json::to_vec(&objects.iter().map(|(sku, w, q)| json!({"sku": sku, "warehouseID": w, "quantity": q})).collect::<Vec<_>>())
            .expect("serialises");
        let records = hako_stock(&body).expect("well-formed");
        let mut pairs: HashMap<(&str, &str), i64> = HashMap::new();
        for (sku, w, q) in &objects {
            let q = (*q).max(0);
            pairs.entry((sku, w)).and_modify(|kept| *kept = (*kept).min(q)).or_insert(q);
        }
        let mut expected: HashMap<String, i64> = HashMap::new();
        for ((sku, _), q) in pairs {
            *expected.entry(sku.to_owned()).or_default() += q;
        }
        let got: HashMap<String, i64> = records.into_iter().collect();
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn a_huge_sku_and_non_utf8_are_errors_or_data_never_panics() {
    let huge = "S".repeat(1 << 20);
    let body = serde_json::to_vec(&json!({"data": {huge.clone(): 3}})).expect("serialises");
    assert_eq!(
        ea(&body).expect("a long id is still an id")[0].0.len(),
        huge.len() + 3
    );
    let mut invalid = br#"{"data": {"1"#.to_vec();
    invalid.extend_from_slice(&[0xff, 0xfe]);
    invalid.extend_from_slice(br#"": 3}}"#);
    assert!(ea(&invalid).is_err());
    assert!(hako_stock(&invalid).is_err());
}
