//! The scanner against serde_json: the same records, holds, drops, page fields and refusals for
//! any answer, and the usual shape read by the scanner itself.

use proptest::prelude::*;

use super::super::stock::{parse_stock_page, read_with_serde};
use super::read;
use crate::services::{ConnectorError, Stock};

/// A page reader: [`parse_stock_page`] or [`read_with_serde`].
type Reader = fn(&[u8], &str, &str, &mut Stock) -> Result<Option<(u64, u64)>, ConnectorError>;

/// What a reader made of one page behind `prefix`, read after a page already in `stock`.
fn outcome(
    reader: Reader,
    body: &[u8],
    prefix: &str,
) -> (Result<Option<(u64, u64)>, String>, Stock) {
    let mut stock = Stock::default();
    stock.push("EA-earlier", 4);
    let result = reader(body, prefix, "source test", &mut stock).map_err(|e| e.to_string());
    (result, stock)
}

/// A SKU prefix: the usual, none, or one with a control character (every record dropped).
fn prefix() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just("EA-"), 1 => Just(""), 1 => Just("\u{85}X-"), 1 => Just("\tP")]
}

fn whitespace() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        4 => Just(""),
        2 => Just(" "),
        1 => Just("\n  "),
        1 => Just("\t"),
        1 => Just("\r\n"),
        // Not whitespace to JSON.
        1 => Just("\u{a0}"),
        1 => Just("\u{c}"),
    ]
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => scanned_id(),
        1 => Just(r#"12\"3"#.to_owned()),
        1 => Just(r"4\u00e95".to_owned()),
        1 => Just(r"7\n".to_owned()),
        1 => Just(r"\\".to_owned()),
        1 => Just("1\t2".to_owned()),
    ]
}

/// An id the scanner reads itself (no escape, no raw control below 0x20), usable or not.
fn scanned_id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[0-9]{1,7}",
        1 => Just(String::new()),
        1 => Just("data".to_owned()),
        1 => Just("é日本".to_owned()),
        1 => Just("1\u{85}2".to_owned()),
        1 => Just("\u{7f}".to_owned()),
        1 => "[ -~]{0,6}".prop_map(|s| s.replace(['"', '\\'], "")),
    ]
}

fn quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0u32..100_000).prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just("999999999999999999".to_owned()),
        1 => Just("1000000000000000000".to_owned()),
        1 => Just("99999999999999999999999".to_owned()),
        1 => Just("-0".to_owned()),
        1 => Just("-3".to_owned()),
        1 => Just("0".to_owned()),
        1 => Just("007".to_owned()),
        1 => Just("1.5".to_owned()),
        1 => Just("2.0".to_owned()),
        1 => Just("1e3".to_owned()),
        1 => Just("5E0".to_owned()),
        1 => Just("-".to_owned()),
        1 => Just(r#""7""#.to_owned()),
        1 => Just(r#"" 12 ""#.to_owned()),
        1 => Just("null".to_owned()),
        1 => Just("true".to_owned()),
        1 => Just(r#"{"n": 1}"#.to_owned()),
        1 => Just("[1]".to_owned()),
        1 => Just("5x".to_owned()),
    ]
}

/// JSON's own whitespace.
fn json_whitespace() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t"), Just("\r\n")]
}

/// A whole number of at least 0 as JSON writes it, up to the most digits the scanner adds up.
fn plain_quantity() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0u32..100_000).prop_map(|n| n.to_string()),
        1 => (0i64..=999_999_999_999_999_999).prop_map(|n| n.to_string()),
    ]
}

type Entry = (
    &'static str,
    String,
    &'static str,
    &'static str,
    String,
    &'static str,
);

/// An object of `entries`, whitespace between every token.
fn object(entries: Vec<Entry>) -> String {
    let body: Vec<String> = entries
        .into_iter()
        .map(|(a, id, b, c, q, d)| format!("{a}\"{id}\"{b}:{c}{q}{d}"))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A `data` object (or something in its place): one the scanner reads itself whatever its
/// ids, or one with anything in it.
fn data() -> impl Strategy<Value = String> {
    let plain = (
        json_whitespace(),
        scanned_id(),
        json_whitespace(),
        json_whitespace(),
        plain_quantity(),
        json_whitespace(),
    );
    let entry = (
        whitespace(),
        id(),
        whitespace(),
        whitespace(),
        quantity(),
        whitespace(),
    );
    prop_oneof![
        8 => prop::collection::vec(plain, 0..12).prop_map(object),
        8 => prop::collection::vec(entry, 0..12).prop_map(object),
        1 => Just("[]".to_owned()),
        1 => Just("[1]".to_owned()),
        1 => Just("{}".to_owned()),
        1 => Just("{ }".to_owned()),
        1 => Just(r#"{"1": 2,}"#.to_owned()),
        1 => Just("null".to_owned()),
    ]
}

/// A whole answer: mostly the plain shape, sometimes with page fields, another field, `data`
/// twice or not at all, something after it; whitespace anywhere; sometimes cut short.
fn answer() -> impl Strategy<Value = Vec<u8>> {
    let shape = prop_oneof![
        10 => Just("{W\"data\"W:W#W}W"),
        1 => Just("{\"data\":#,\"current_page\":2,\"last_page\":\"3\"}"),
        1 => Just("{\"current_page\": \"1\", \"data\": #, \"last_page\": 1}"),
        1 => Just("{\"data\":#,\"data\":#}"),
        1 => Just("{\"other\":#}"),
        1 => Just("{\"d\\u0061ta\":#}"),
        1 => Just("[#]"),
        1 => Just("{\"data\":#}x"),
        1 => Just("{\"data\":#}{}"),
    ];
    (
        shape,
        data(),
        whitespace(),
        prop::option::weighted(0.2, any::<prop::sample::Index>()),
    )
        .prop_map(|(shape, data, ws, cut)| {
            let mut body = shape.replace('W', ws).replace('#', &data).into_bytes();
            if let Some(cut) = cut {
                body.truncate(cut.index(body.len() + 1));
            }
            body
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn any_answer_is_read_as_serde_json_alone_reads_it(body in answer(), prefix in prefix()) {
        prop_assert_eq!(outcome(parse_stock_page, &body, prefix), outcome(read_with_serde, &body, prefix));
    }

    #[test]
    fn any_bytes_are_read_as_serde_json_alone_reads_them(body in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(outcome(parse_stock_page, &body, "EA-"), outcome(read_with_serde, &body, "EA-"));
    }

    #[test]
    fn a_plain_answer_is_read_by_the_scanner_as_serde_json_reads_it(
        entries in prop::collection::vec(("[0-9A-Za-z_.-]{1,9}", 0i64..1_000_000_000), 0..40),
        ws in whitespace().prop_filter("JSON whitespace", |w| w.trim_matches([' ', '\n', '\t', '\r']).is_empty()),
    ) {
        let data: Vec<String> = entries.iter().map(|(id, q)| format!("{ws}\"{id}\"{ws}:{ws}{q}{ws}")).collect();
        let body = format!("{ws}{{{ws}\"data\"{ws}:{ws}{{{}}}{ws}}}{ws}", data.join(","));
        let mut scanned = Stock::default();
        prop_assert!(read(body.as_bytes(), "EA-", "source test", &mut scanned));
        let mut parsed = Stock::default();
        prop_assert_eq!(read_with_serde(body.as_bytes(), "EA-", "source test", &mut parsed).ok(), Some(None));
        prop_assert_eq!(scanned, parsed);
    }
}

#[test]
fn the_simulators_answer_is_read_by_the_scanner() {
    let body = br#"{"data":{"24752":149,"24751":0,"":3,"9":18}}"#;
    let mut stock = Stock::default();

    assert!(read(body, "EA-", "source test", &mut stock));

    assert_eq!(
        stock.iter().collect::<Vec<_>>(),
        vec![("EA-24752", 149), ("EA-24751", 0), ("EA-9", 18)]
    );
    assert_eq!(stock.dropped(), 1);
}

#[test]
fn an_answer_the_scanner_gives_up_on_part_way_is_left_as_it_was() {
    let body = br#"{"data":{"1":5,"2":6,"3":-1}}"#;
    let mut stock = Stock::default();
    stock.push("EA-earlier", 4);
    let before = stock.clone();

    assert!(!read(body, "EA-", "source test", &mut stock));

    assert_eq!(stock, before);
}
