//! What `status` shows of the dropship relay: its orders per state, those that wait for a
//! person's approval (with how long), and those that need a person (`MANUAL`, with why).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::store::db::Connection;
use serde::Serialize;

use crate::plan::relay::State;
use crate::store::{self, StoreError};

/// The relay as the database holds it.
#[derive(Debug, Default, Serialize)]
pub struct RelayStatus {
    /// Orders per state (`MANUAL` as `manual`).
    pub states: BTreeMap<String, usize>,
    /// Orders that wait for `invsync relay approve`, oldest first.
    pub awaiting_approval: Vec<AwaitingOrder>,
    /// Orders a person must look at.
    pub manual: Vec<ManualOrder>,
}

/// An order waiting for its approval.
#[derive(Debug, Serialize)]
pub struct AwaitingOrder {
    /// The Hardtofind order id.
    pub order_id: String,
    /// Since it was first seen.
    pub waiting_ms: i64,
    /// Why it waits (`mode = "approve"`, or over `max_order_value`).
    pub reason: String,
    /// Longer than `[relay] approval_alert_after`: `--check` warns.
    pub overdue: bool,
}

/// An order in `MANUAL`.
#[derive(Debug, Serialize)]
pub struct ManualOrder {
    /// The Hardtofind order id.
    pub order_id: String,
    /// Why, and what to do.
    pub reason: String,
    /// When it became `MANUAL` (its last change).
    pub since_ms: i64,
}

/// Reads the relay's records; `alert_after` is `[relay] approval_alert_after`.
pub fn read(conn: &Connection, now: i64, alert_after: Duration) -> Result<RelayStatus, StoreError> {
    let exists = conn.has_table("relay_orders")?;
    let mut status = RelayStatus::default();
    if !exists {
        return Ok(status);
    }
    let alert_ms = i64::try_from(alert_after.as_millis()).unwrap_or(i64::MAX);
    for record in store::relay_records(conn)? {
        *status
            .states
            .entry(record.state.word().to_owned())
            .or_default() += 1;
        let reason = record.reason.clone().unwrap_or_default();
        let awaits = !record.approved
            && matches!(record.state, State::Eligible | State::Waiting)
            && reason.contains("relay approve");
        if awaits {
            let waiting_ms = now.saturating_sub(record.seen_at);
            status.awaiting_approval.push(AwaitingOrder {
                order_id: record.order_id,
                waiting_ms,
                reason,
                overdue: waiting_ms > alert_ms,
            });
        } else if record.state == State::Manual {
            status.manual.push(ManualOrder {
                order_id: record.order_id,
                reason,
                since_ms: record.updated_at,
            });
        }
    }
    Ok(status)
}

/// The relay's part of `status`, when it has orders.
pub fn render(out: &mut String, relay: &RelayStatus) {
    if relay.states.is_empty() {
        return;
    }
    let counts: Vec<String> = (relay.states.iter())
        .map(|(state, n)| match State::parse(state) {
            Some(state) => format!("{n} {state}"),
            None => format!("{n} {state}"),
        })
        .collect();
    let _ = writeln!(out, "relay:\n  {}", counts.join(", "));
    for a in &relay.awaiting_approval {
        let _ = writeln!(
            out,
            "  order {} awaits approval for {}{}: {}",
            a.order_id,
            super::to_the_minute(a.waiting_ms),
            if a.overdue {
                " (longer than approval_alert_after)"
            } else {
                ""
            },
            a.reason
        );
    }
    for m in &relay.manual {
        let _ = writeln!(out, "  MANUAL order {}: {}", m.order_id, m.reason);
    }
}
