//! The states a relayed Hardtofind order goes through, and what each means (the dropship relay's
//! records, see `relay`: pure, so that `store` keeps them without importing the relay).

use std::fmt;

/// Where one Hardtofind order stands in the relay. The happy path is
/// seen → eligible → approved → placing → placed → processing → shipped → done; `waiting`,
/// `rejected`, `cancelled` and `manual` carry their reason beside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Read in `READY`; not checked yet.
    Seen,
    /// The pre-flight passed; waits for its approval (`mode = "approve"`) or, in a dry run,
    /// is only logged.
    Eligible,
    /// Approved (by `relay approve` or `mode = "auto"`): placed at the next chance.
    Approved,
    /// The intent is committed and `PUT /api/orders` may have been sent: the outcome is
    /// unknown until it is resolved (by the same `custom_order_id` or by finding the order).
    Placing,
    /// Endless Aisles holds the order (its id is known).
    Placed,
    /// Hardtofind was told (`process`).
    Processing,
    /// Hardtofind was told the tracking (`ship`).
    Shipped,
    /// Hardtofind shows the order shipped: nothing left to do.
    Done,
    /// Not placed yet, for the reason beside it (a pre-flight failure, the value cap, the
    /// per-cycle cap); checked again every cycle.
    Waiting,
    /// Endless Aisles refused it, or it left `READY` before it was placed; `relay approve`
    /// gives it another try.
    Rejected,
    /// Cancelled or refunded at Hardtofind (and at Endless Aisles, if it was placed).
    Cancelled,
    /// invsync cannot tell or cannot do what comes next; a person must look (ERROR logged).
    Manual,
}

impl State {
    /// Every state, in the order of the lifecycle.
    pub const ALL: [State; 12] = [
        State::Seen,
        State::Eligible,
        State::Approved,
        State::Placing,
        State::Placed,
        State::Processing,
        State::Shipped,
        State::Done,
        State::Waiting,
        State::Rejected,
        State::Cancelled,
        State::Manual,
    ];

    /// The word stored in the database, shown by `relay list` and used as the metric label.
    pub fn word(self) -> &'static str {
        match self {
            State::Seen => "seen",
            State::Eligible => "eligible",
            State::Approved => "approved",
            State::Placing => "placing",
            State::Placed => "placed",
            State::Processing => "processing",
            State::Shipped => "shipped",
            State::Done => "done",
            State::Waiting => "waiting",
            State::Rejected => "rejected",
            State::Cancelled => "cancelled",
            State::Manual => "manual",
        }
    }

    /// The state stored as `word`.
    pub fn parse(word: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.word() == word)
    }

    /// Whether the relay has nothing more to do with the order by itself.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Done | State::Rejected | State::Cancelled | State::Manual
        )
    }

    /// Whether an Endless Aisles order exists (or may exist) for it.
    pub fn is_placed(self) -> bool {
        matches!(
            self,
            State::Placed | State::Processing | State::Shipped | State::Done
        )
    }

    /// Whether `relay approve` means something now.
    pub fn approvable(self) -> bool {
        matches!(
            self,
            State::Seen | State::Eligible | State::Waiting | State::Rejected
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            State::Manual => f.write_str("MANUAL"),
            other => f.write_str(other.word()),
        }
    }
}

/// The relay's one record of a Hardtofind order, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The Hardtofind order id.
    pub order_id: String,
    /// The `[orders.NAME]` it was read from.
    pub feed: String,
    /// `htf-<order id>`, fixed forever.
    pub custom_order_id: String,
    /// Where it stands.
    pub state: State,
    /// Why it is where it is (waiting, rejected, cancelled, MANUAL), or a note.
    pub reason: Option<String>,
    /// Whether it was approved (by `relay approve` or `mode = "auto"`); kept while it waits.
    pub approved: bool,
    /// Endless Aisles' order id, once known.
    pub supplier_order_id: Option<u64>,
    /// The order as sent (JSON of `PUT /api/orders`): fixed once `placing`, so every resend
    /// and every search is of the same order.
    pub payload: Option<String>,
    /// The order's value in the supplier's prices.
    pub value: Option<f64>,
    /// Cycles spent trying to resolve an unknown outcome.
    pub attempts: u32,
    /// When it was first seen (ms since the epoch).
    pub seen_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When the intent was committed.
    pub placing_at: Option<i64>,
}

/// `htf-<order id>`: the `custom_order_id` of a Hardtofind order at Endless Aisles, the same on
/// every attempt, in every process, for ever.
pub fn custom_order_id(order_id: &str) -> String {
    format!("htf-{order_id}")
}

impl Record {
    /// A record of an order just read.
    pub fn seen(order_id: &str, feed: &str, now: i64) -> Record {
        Record {
            order_id: order_id.to_owned(),
            feed: feed.to_owned(),
            custom_order_id: custom_order_id(order_id),
            state: State::Seen,
            reason: None,
            approved: false,
            supplier_order_id: None,
            payload: None,
            value: None,
            attempts: 0,
            seen_at: now,
            updated_at: now,
            placing_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_word() {
        for state in State::ALL {
            assert_eq!(State::parse(state.word()), Some(state));
        }
        assert_eq!(State::parse("MANUAL"), None);
        assert_eq!(State::Manual.to_string(), "MANUAL");
        assert_eq!(custom_order_id("10001"), "htf-10001");
    }
}
