//! One order of a `GET /orders` page, read alone: one order that does not read is one bad
//! record, never the whole feed.
//!
//! A shop platform answers what its database holds: a line whose variant was deleted has
//! `"sku": null`, a quantity can be `2.5` or `"2"`, a date can be MySQL's zero date. The
//! reservations' reading ([`OrderSummary`]) keeps whatever of such an order reads and says what
//! did not, so that the caller can name it and decide what it holds; the relay's reading
//! ([`Order`], the whole order) takes an order whole or not at all, and its walk of the `READY`
//! list ([`WholeOrder`]) keeps, of an order that is not whole, what the reservations' reading
//! makes of it, so that one such order does not make every walk a full one.

use serde::Deserialize;
use serde_json::Value;

use super::wire::{LineSummary, Order, OrderDates, OrderStatus, OrderSummary, string_or_number};
use crate::services::{Quantity, RecordQuantity};

/// An order of a list that could not be read at all (not even its id), or, for the relay's
/// whole-order reading, not whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its id, when that much could be read.
    pub id: Option<String>,
    /// Where it was: `GET /orders?status=READY&page_number=3`, item 4.
    pub place: String,
    /// What could not be read.
    pub reason: String,
}

/// What a walk keeps of each listed order: the whole order, or only its summary.
pub trait Listed: serde::de::DeserializeOwned {
    /// The order id.
    fn id(&self) -> &str;
    /// Its `dates`.
    fn dates(&self) -> &OrderDates;
    /// Reads one item of a page of the `asked` state's list; `Err` with what could not be read.
    fn read(value: Value, asked: &OrderStatus) -> Result<Self, String>;
    /// Whether it was read whole (one that was not is named again at every read, see
    /// `incremental`).
    fn whole(&self) -> bool {
        true
    }
}

impl Listed for Order {
    fn id(&self) -> &str {
        &self.id
    }
    fn dates(&self) -> &OrderDates {
        &self.dates
    }
    fn read(value: Value, _asked: &OrderStatus) -> Result<Order, String> {
        Order::deserialize(value).map_err(|e| e.to_string())
    }
}

impl Listed for OrderSummary {
    fn id(&self) -> &str {
        &self.id
    }
    fn dates(&self) -> &OrderDates {
        &self.dates
    }
    fn read(value: Value, asked: &OrderStatus) -> Result<OrderSummary, String> {
        match OrderSummary::deserialize(&value) {
            Ok(order) => Ok(order),
            Err(_) => loosely(&value, asked),
        }
    }
    fn whole(&self) -> bool {
        self.unreadable.is_empty()
    }
}

/// The relay's reading of an order of the `READY` list: the whole order, or, when it does not
/// read whole, what the reservations' reading makes of it (its id and dates, so that the walk
/// still knows where it is) and why it is not whole. Only an order without an id is
/// [`Unreadable`].
#[derive(Debug, Clone)]
pub enum WholeOrder {
    /// Read whole.
    Whole(Box<Order>),
    /// Not read whole: not to be acted on until it is.
    Not {
        /// What did read.
        summary: OrderSummary,
        /// Why it is not whole.
        reason: String,
    },
}

impl<'de> Deserialize<'de> for WholeOrder {
    /// A page read in one pass is a page of whole orders.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<WholeOrder, D::Error> {
        Order::deserialize(d).map(|o| WholeOrder::Whole(Box::new(o)))
    }
}

impl Listed for WholeOrder {
    fn id(&self) -> &str {
        match self {
            WholeOrder::Whole(order) => &order.id,
            WholeOrder::Not { summary, .. } => &summary.id,
        }
    }
    fn dates(&self) -> &OrderDates {
        match self {
            WholeOrder::Whole(order) => &order.dates,
            WholeOrder::Not { summary, .. } => &summary.dates,
        }
    }
    fn read(value: Value, asked: &OrderStatus) -> Result<WholeOrder, String> {
        match Order::deserialize(&value) {
            Ok(order) => Ok(WholeOrder::Whole(Box::new(order))),
            Err(e) => {
                let summary = OrderSummary::read(value, asked)?;
                let mut reasons = summary.unreadable.clone();
                if reasons.is_empty() {
                    reasons.push(e.to_string());
                }
                let reason = reasons.join("; ");
                Ok(WholeOrder::Not { summary, reason })
            }
        }
    }
    fn whole(&self) -> bool {
        matches!(self, WholeOrder::Whole(_))
    }
}

/// An order that did not read as the document writes it, field by field: what reads is kept,
/// what does not is said. Only an order without an id fails: nothing could hold it.
fn loosely(value: &Value, asked: &OrderStatus) -> Result<OrderSummary, String> {
    let id = match value.get("id") {
        Some(id) => string_or_number(id).map_err(|e| format!("id: {e}"))?,
        None => return Err("no id".to_owned()),
    };
    let mut unreadable = Vec::new();
    // The list asked for one state: an order whose own state does not read is in that one.
    let status = match value.get("status").map(OrderStatus::deserialize) {
        Some(Ok(status)) => status,
        _ => {
            unreadable.push(format!("status (taken as {asked}, the list it is in)"));
            asked.clone()
        }
    };
    let dates = dates(value.get("dates"), &mut unreadable);
    let lines = match value.get("lines") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(lines)) => (lines.iter().enumerate())
            .filter_map(|(i, line)| read_line(i + 1, line, &mut unreadable))
            .collect(),
        Some(other) => {
            unreadable.push(format!("lines: not a list ({})", shown(other)));
            Vec::new()
        }
    };
    Ok(OrderSummary {
        id,
        status,
        dates,
        lines,
        unreadable,
    })
}

/// Each date alone: one that does not read is no date, and said.
fn dates(value: Option<&Value>, unreadable: &mut Vec<String>) -> OrderDates {
    let Some(Value::Object(fields)) = value else {
        if value.is_some_and(|v| !v.is_null()) {
            unreadable.push("dates: not an object".to_owned());
        }
        return OrderDates::default();
    };
    let mut one = |name: &str| {
        let field = serde_json::json!({ name: fields.get(name).cloned().unwrap_or(Value::Null) });
        match OrderDates::deserialize(&field) {
            Ok(dates) => dates,
            Err(_) => {
                let text = fields.get(name).map(shown).unwrap_or_default();
                unreadable.push(format!("dates.{name}: {text} is not a date"));
                OrderDates::default()
            }
        }
    };
    OrderDates {
        created_at: one("created_at").created_at,
        updated_at: one("updated_at").updated_at,
        dispatch_due_at: one("dispatch_due_at").dispatch_due_at,
    }
}

/// Line `n`, if it says which SKU and how many; a quantity written as a string of digits is
/// that number (nothing about it is in doubt).
fn read_line(n: usize, line: &Value, unreadable: &mut Vec<String>) -> Option<LineSummary> {
    let sku = match line.get("sku") {
        Some(Value::String(sku)) if !sku.trim().is_empty() => sku.clone(),
        Some(other) => {
            unreadable.push(format!("line {n}: SKU {}", shown(other)));
            return None;
        }
        None => {
            unreadable.push(format!("line {n}: no SKU"));
            return None;
        }
    };
    let quantity = line.get("quantity").unwrap_or(&Value::Null);
    let whole = match quantity {
        Value::String(text) => text.trim().parse::<i64>().ok(),
        other => match RecordQuantity::deserialize(other) {
            Ok(RecordQuantity::Whole(q)) => Some(q),
            _ => None,
        },
    };
    match whole {
        Some(q) if q >= 0 => Some(LineSummary {
            sku,
            quantity: Quantity(q),
        }),
        _ => {
            unreadable.push(format!(
                "line {n} ({sku}): quantity {} is not a whole number",
                shown(quantity)
            ));
            None
        }
    }
}

/// A value as written, cut short for a log line.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<OrderSummary, String> {
        OrderSummary::read(value, &OrderStatus::Ready)
    }

    #[test]
    fn an_order_read_whole_says_nothing_is_unreadable() {
        let order = read(json!({"id": 7, "status": "READY",
            "dates": {"created_at": "2016-08-18T14:43:22+1000", "dispatch_due_at": "0000-00-00 00:00:00"},
            "lines": [{"sku": "A", "quantity": 2}]}))
        .expect("reads");
        assert_eq!(order.id, "7");
        assert!(order.unreadable.is_empty(), "{:?}", order.unreadable);
        assert_eq!(order.dates.dispatch_due_at, None, "a zero date is no date");
        assert!(order.dates.created_at.is_some());
    }

    #[test]
    fn a_line_without_a_sku_or_with_half_a_unit_is_left_out_and_said_the_rest_is_kept() {
        let order = read(json!({"id": "9", "status": "READY",
            "lines": [{"sku": null, "quantity": 1}, {"sku": "B", "quantity": 2.5},
                      {"sku": "C", "quantity": "3"}, {"sku": "D", "quantity": 4}]}))
        .expect("reads");
        let lines: Vec<(&str, i64)> = (order.lines.iter())
            .map(|l| (l.sku.as_str(), l.quantity.0))
            .collect();
        assert_eq!(lines, vec![("C", 3), ("D", 4)]);
        assert_eq!(
            order.unreadable,
            vec![
                "line 1: SKU null",
                "line 2 (B): quantity 2.5 is not a whole number"
            ]
        );
    }

    #[test]
    fn a_date_that_is_not_one_is_said_and_the_state_falls_back_to_the_list_asked_for() {
        let order = read(json!({"id": "9", "status": null,
            "dates": {"created_at": "yesterday", "updated_at": "2016-08-18T14:43:22+1000"},
            "lines": [{"sku": "A", "quantity": 1}]}))
        .expect("reads");
        assert_eq!(order.status, OrderStatus::Ready);
        assert_eq!(order.dates.created_at, None);
        assert!(order.dates.updated_at.is_some());
        assert_eq!(order.lines.len(), 1);
        assert_eq!(
            order.unreadable,
            vec![
                "status (taken as READY, the list it is in)",
                "dates.created_at: \"yesterday\" is not a date"
            ]
        );
    }

    #[test]
    fn only_an_order_without_an_id_cannot_be_read_at_all() {
        assert_eq!(
            read(json!({"status": "READY"})).err(),
            Some("no id".to_owned())
        );
        assert!(read(json!({"id": {"x": 1}})).is_err());
    }
}
