//! The rules a simulated `PUT /api/orders` is checked by: the document's validation table
//! and the sim's own rule that a size it knows must be sellable. Every problem is returned at
//! once, as Laravel does; how they are answered is the dialect's (see [`super::speak`]), and so
//! is a `custom_order_id` already in use (API_NOTES), checked by the caller.

use serde_json::Value;

use super::products::Catalogue;
use super::speak::Problem;

/// Laravel's `numeric`: a number, or a string that reads as one (an apostrophe does not).
pub(super) fn numeric(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    }
}

fn blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The document's validation table, plus the sim's own rule that a size it knows must be
/// sellable. Returns every problem, as Laravel does.
pub(super) fn validate(body: &Value, catalogue: &Catalogue) -> Vec<Problem> {
    let mut errors = Problems(Vec::new());
    let shipping = body.get("shipping");
    let field = |name: &str| shipping.and_then(|s| s.get(name));
    for name in [
        "first_name",
        "last_name",
        "address_line_1",
        "city",
        "state",
        "zip",
    ] {
        match field(name) {
            v if blank(v) => errors.push(format!("The shipping.{name} field is required.")),
            Some(Value::String(_)) => {}
            _ => errors.push(format!("The shipping.{name} must be a string.")),
        }
    }
    for name in ["phone", "address_line_2", "country"] {
        if !matches!(field(name), None | Some(Value::Null | Value::String(_))) {
            errors.push(format!("The shipping.{name} must be a string."));
        }
    }
    if let Some(Value::String(state)) = field("state")
        && state.chars().count() > 2
    {
        errors.push("The shipping.state may not be greater than 2 characters.".to_owned());
    }
    match body.pointer("/customer/email") {
        None | Some(Value::Null) => {}
        Some(Value::String(e)) if e.contains('@') => {}
        Some(_) => errors.push("The customer.email must be a valid email address.".to_owned()),
    }
    let lines = body.get("line_items").and_then(Value::as_array);
    if lines.is_none_or(|l| l.is_empty()) {
        errors.push("The line_items field is required.".to_owned());
    }
    for (i, line) in lines.into_iter().flatten().enumerate() {
        for name in ["id", "upc", "price", "quantity"] {
            match line.get(name) {
                v if blank(v) => {
                    errors.push(format!("The line_items.{i}.{name} field is required."))
                }
                Some(v) if numeric(v).is_none() => {
                    errors.push(format!("The line_items.{i}.{name} must be a number."));
                }
                _ => {}
            }
        }
        let size = line
            .get("id")
            .and_then(numeric)
            .and_then(|id| catalogue.size(id as u64));
        if let Some(why) = size.and_then(|(_, s)| s.refusal()) {
            errors.push(format!("The line_items.{i}.id {why}."));
        }
    }
    for name in ["tax_rate", "shipping_cost", "discount"] {
        if !blank(body.get(name)) && body.get(name).and_then(numeric).is_none() {
            errors.push(format!("The {name} must be a number."));
        }
    }
    if !matches!(
        body.get("custom_order_id"),
        None | Some(Value::Null | Value::String(_))
    ) {
        errors.push("The custom order id must be a string.".to_owned());
    }
    errors.0
}

/// Problems keyed by the field their message names, as Laravel's `errors` are.
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, message: String) {
        let field = match message.split_whitespace().nth(1) {
            Some("custom") => "custom_order_id".to_owned(),
            Some(field) => field.to_owned(),
            None => "order".to_owned(),
        };
        self.0.push((field, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(body: Value) -> Vec<String> {
        let problems = validate(&body, &Catalogue::default());
        problems.into_iter().map(|(_, message)| message).collect()
    }

    #[test]
    fn an_order_is_checked_by_the_documented_rules() {
        let good = json!({"custom_order_id": "htf-1",
            "shipping": {"first_name": "T", "last_name": "C", "address_line_1": "1 St", "city": "H",
                         "state": "NC", "zip": "27511", "phone": null},
            "line_items": [{"id": 42117, "upc": "064992103132", "quantity": 1, "price": 25.0}]});
        assert_eq!(errors(good.clone()), Vec::<String>::new());
        let mut bad = good.clone();
        bad["shipping"]["state"] = json!("NSW");
        bad["shipping"]["zip"] = json!(27511);
        bad["line_items"][0]["upc"] = json!("'064992103132");
        bad["custom_order_id"] = json!(7);
        assert_eq!(
            errors(bad),
            vec![
                "The shipping.zip must be a string.",
                "The shipping.state may not be greater than 2 characters.",
                "The line_items.0.upc must be a number.",
                "The custom order id must be a string.",
            ]
        );
        assert_eq!(errors(json!({})).len(), 7);
    }
}
