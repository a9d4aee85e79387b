//! A Hardtofind order's state in the terms an order feed's settings and the reservations read
//! it: `[orders.NAME] reserve` names these, and [`super::reserving::phase`] says what each
//! means for the stock an order holds. The reservations' book keeps only its name (for
//! `status`), as the API writes it.

use std::fmt;

/// A Hardtofind order's state, as its orders document names it (plus `PENDING`, which
/// `GET /orders` answers when no `status` is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderState {
    /// Not fully paid yet.
    Pending,
    /// Paid, awaiting fulfilment.
    Ready,
    /// Picked up by the seller, being fulfilled.
    Processed,
    /// Shipped in full.
    Shipped,
    /// Returned in full (after shipping).
    Returned,
    /// Refunded to the shopper.
    Refunded,
    /// Cancelled by customer support.
    Cancelled,
}

/// The states whose orders hold stock when `[orders.NAME] reserve` is not given.
pub const DEFAULT_RESERVE: [OrderState; 2] = [OrderState::Ready, OrderState::Processed];

impl OrderState {
    /// Every state, in the document's order.
    pub const ALL: [OrderState; 7] = [
        OrderState::Pending,
        OrderState::Ready,
        OrderState::Processed,
        OrderState::Shipped,
        OrderState::Returned,
        OrderState::Refunded,
        OrderState::Cancelled,
    ];

    /// The state named `text` (any case, surrounding blanks ignored); `None` for a name the
    /// document does not list, which the caller must treat as no answer rather than guess.
    pub fn parse(text: &str) -> Option<OrderState> {
        let text = text.trim();
        Self::ALL
            .into_iter()
            .find(|state| state.as_str().eq_ignore_ascii_case(text))
    }

    /// The name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Pending => "PENDING",
            OrderState::Ready => "READY",
            OrderState::Processed => "PROCESSED",
            OrderState::Shipped => "SHIPPED",
            OrderState::Returned => "RETURNED",
            OrderState::Refunded => "REFUNDED",
            OrderState::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_states_parse_in_any_case_and_unknown_names_are_no_answer() {
        assert_eq!(OrderState::parse("READY"), Some(OrderState::Ready));
        assert_eq!(
            OrderState::parse(" processed "),
            Some(OrderState::Processed)
        );
        assert_eq!(OrderState::parse("ON_HOLD"), None);
        for state in OrderState::ALL {
            assert_eq!(OrderState::parse(state.as_str()), Some(state));
        }
    }
}
