//! How the simulated Endless Aisles says what it says where seed 004 is silent (see
//! [`crate::harness::dialect`]): its error bodies (`errors`), fields beyond the document's and
//! optional ones left out (`fields`), and numbers written as strings of digits (`numbers`).
//!
//! Endless Aisles is a Laravel service. A debug install answers a refusal with the document's
//! texts; a production one hides what it can (`{"message": "Not Found"}`), keeps only
//! validation messages, and a unique key that the database refuses comes back as a bare
//! `409 {"message": "Conflict"}`. A PHP service reading MySQL without native types writes every
//! column as a string (`"id": "10030"`, `"price": "19.99"`).

use serde_json::{Map, Value, json};

use crate::harness::dialect::{Errors, Fields, Numbers, Spoken};
use crate::harness::server::SimResponse;

/// The generic text a production Laravel install answers for `status`.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthenticated.",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        _ => "Server Error",
    }
}

/// A refusal: the document's `{"error": text}` on a debug install, the generic
/// `{"message": …}` on a production one.
pub(super) fn error(dialect: &Spoken, status: u16, text: impl AsRef<str>) -> SimResponse {
    match dialect.answer("errors").errors {
        Errors::Debug => SimResponse::error(status, text),
        Errors::Production => SimResponse::json(status, &json!({"message": reason(status)})),
    }
}

/// One validation problem of a `PUT /api/orders`: the field and Laravel's message for it.
pub(super) type Problem = (String, String);

/// The refusal of an order that breaks `problems` (`taken`: its `custom_order_id` is in use).
/// Debug: every message in the document's shape, 422, as the seed's error sample. Production:
/// Laravel's validation answer (422 with `errors`, which production keeps); a `custom_order_id`
/// in use passes validation and is refused by the database's unique key: a bare 409.
pub(super) fn refuse_order(dialect: &Spoken, problems: &[Problem], taken: bool) -> SimResponse {
    let debug = dialect.answer("errors").errors == Errors::Debug;
    if debug {
        let mut messages: Vec<&str> = problems.iter().map(|(_, m)| m.as_str()).collect();
        if taken {
            messages.push("The custom order id has already been taken.");
        }
        let list = serde_json::to_string(&messages).unwrap_or_default();
        return SimResponse::error(422, format!(" {list}"));
    }
    if problems.is_empty() {
        return SimResponse::json(409, &json!({"message": reason(409)}));
    }
    let mut errors: Map<String, Value> = Map::new();
    for (field, message) in problems {
        let list = errors.entry(field.clone()).or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut() {
            list.push(json!(message));
        }
    }
    SimResponse::json(
        422,
        &json!({"message": "The given data was invalid.", "errors": errors}),
    )
}

/// A 2xx JSON answer as the dialect writes it (its `fields` and `numbers` noted as spoken).
pub(super) fn answer(dialect: &Spoken, mut value: Value) -> SimResponse {
    let loose = dialect.answer("fields").fields == Fields::Loose;
    let strings = dialect.answer("numbers").numbers == Numbers::Strings;
    if loose {
        loosen(&mut value, true);
    }
    if strings {
        stringify(&mut value);
    }
    SimResponse::json(200, &value)
}

/// Fields the document does not show added (an `updated_at` beside every `id`, Laravel 8's
/// `links` and a `success` flag at the top), and optional ones left out: a `null`, an empty
/// list (no shipments yet), `discontinued: false` (the order lines' `sizes` never carry it).
/// `data` stays whatever it is: `[]` is the documented empty stock.
fn loosen(value: &mut Value, top: bool) {
    match value {
        Value::Object(fields) => {
            fields.retain(|name, v| {
                name == "data"
                    || !(v.is_null()
                        || v.as_array().is_some_and(Vec::is_empty)
                        || (name == "discontinued" && *v == json!(false)))
            });
            for v in fields.values_mut() {
                loosen(v, false);
            }
            if fields.contains_key("id") {
                fields.insert("updated_at".into(), json!("2018-04-20 15:04:45"));
            }
            if top {
                fields.insert("success".into(), json!(true));
                if fields.contains_key("current_page") {
                    fields.insert("links".into(), json!([{"url": null, "label": "1"}]));
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| loosen(v, false)),
        _ => {}
    }
}

/// Every number written as a string of its digits (ids, counts, page fields, prices).
fn stringify(value: &mut Value) {
    match value {
        Value::Number(n) => *value = Value::String(n.to_string()),
        Value::Object(fields) => fields.values_mut().for_each(stringify),
        Value::Array(items) => items.iter_mut().for_each(stringify),
        _ => {}
    }
}

/// A rendered stock answer in the dialect: untouched (and uncopied) when it is the
/// document's own, else read and written again.
pub(super) fn stock(dialect: &Spoken, body: bytes::Bytes) -> SimResponse {
    let d = dialect.get();
    if d.fields == Fields::Documented && d.numbers == Numbers::Numbers {
        dialect.answer("fields");
        dialect.answer("numbers");
        return SimResponse::raw(200, body);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(value) => answer(dialect, value),
        Err(_) => SimResponse::raw(200, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::Dialect;

    fn spoken(dialect: Dialect) -> Spoken {
        let spoken = Spoken::default();
        spoken.set(dialect);
        spoken
    }

    fn body(response: &SimResponse) -> Value {
        serde_json::from_slice(&response.body).expect("JSON")
    }

    #[test]
    fn a_duplicate_custom_order_id_is_a_named_422_in_debug_and_a_bare_409_in_production() {
        let debug = refuse_order(&spoken(Dialect::documented()), &[], true);
        assert_eq!(debug.status, 422);
        assert!(
            body(&debug)["error"]
                .as_str()
                .unwrap_or("")
                .contains("custom order id")
        );
        let production = refuse_order(&spoken(Dialect::production()), &[], true);
        assert_eq!(
            (production.status, body(&production)),
            (409, json!({"message": "Conflict"}))
        );
        let state = [("shipping.state".to_owned(), "too long".to_owned())];
        let invalid = refuse_order(&spoken(Dialect::production()), &state, true);
        assert_eq!(invalid.status, 422);
        assert_eq!(
            body(&invalid)["errors"]["shipping.state"],
            json!(["too long"])
        );
    }

    #[test]
    fn a_loose_answer_in_strings_adds_fields_drops_empty_ones_and_quotes_numbers() {
        let value = json!({"data": {"id": 7, "quantity": 2, "phone": null, "shipments": [],
                           "discontinued": false, "price": 19.99}, "current_page": 1});
        let spoken = spoken(Dialect::production());
        let written = body(&answer(&spoken, value));
        assert_eq!(
            written["data"],
            json!({"id": "7", "quantity": "2", "price": "19.99",
                   "updated_at": "2018-04-20 15:04:45"})
        );
        assert_eq!(written["current_page"], json!("1"));
        assert_eq!(written["success"], json!(true));
        let used = spoken.used();
        assert!(used.contains(&("fields", "loose")) && used.contains(&("numbers", "strings")));
    }
}
