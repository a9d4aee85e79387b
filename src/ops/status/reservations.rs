//! `status`'s reservations: how many open orders hold stock, which are STUCK (an operator must
//! look), and which SKUs they hold that no source knows.

use std::collections::BTreeSet;

use crate::store::db::Connection;
use serde::Serialize;

use super::rfc3339;
use crate::store::{self, StoreError};

/// What open orders hold, from the database.
#[derive(Debug, Default, Serialize)]
pub struct ReservationsStatus {
    /// Reservations still subtracted (ordered and not yet shown by the sources).
    pub open: usize,
    /// Their units.
    pub units: i64,
    /// Orders open a week past their dispatch date: never released by time.
    pub stuck: Vec<StuckOrder>,
    /// SKUs open orders hold that no source ever reported (counted, never dropped silently).
    pub unknown_skus: Vec<String>,
}

/// One STUCK order.
#[derive(Debug, Serialize)]
pub struct StuckOrder {
    /// `[orders.NAME]`.
    pub feed: String,
    /// The feed's order id.
    pub order_id: String,
    /// The SKUs it holds.
    pub skus: Vec<String>,
    /// Its `dispatch_due_at`.
    pub dispatch_due_at: Option<String>,
    /// How long past its dispatch date it is.
    pub overdue_ms: i64,
}

/// Reads the reservations' part of the status at `now`.
pub fn read(conn: &Connection, now: i64) -> Result<ReservationsStatus, StoreError> {
    let all = store::all_reservations(conn)?;
    let mut status = ReservationsStatus::default();
    if all.is_empty() {
        return Ok(status);
    }
    for r in all.iter().filter(|r| r.outstanding() > 0) {
        status.open += 1;
        status.units += r.outstanding();
    }
    for r in all.iter().filter(|r| r.is_stuck(now)) {
        // Rows come ordered by feed and order: an order's SKUs are neighbours.
        match status.stuck.last_mut() {
            Some(last) if last.feed == r.feed && last.order_id == r.order_id => {
                last.skus.push(r.sku.clone())
            }
            _ => status.stuck.push(StuckOrder {
                feed: r.feed.clone(),
                order_id: r.order_id.clone(),
                skus: vec![r.sku.clone()],
                dispatch_due_at: r.dispatch_due_at.and_then(rfc3339),
                overdue_ms: r.dispatch_due_at.map_or(0, |due| now.saturating_sub(due)),
            }),
        }
    }
    // Only read when there are reservations: a million names cost a moment.
    let names = store::load_skus(conn)?;
    let unknown: BTreeSet<&str> = all
        .iter()
        .filter(|r| r.outstanding() > 0 && names.get(&r.sku).is_none())
        .map(|r| r.sku.as_str())
        .collect();
    store::names_once(&names)?;
    status.unknown_skus = unknown.into_iter().map(str::to_owned).collect();
    Ok(status)
}
