//! Hardtofind as an order feed (seed `001`): the open orders that reserve stock, one order by
//! id, the shipping providers, and the `process` and `ship` transitions the relay makes.
//!
//! `GET /orders` is paged ten at a time, newest-updated first (API_NOTES), so an order updated
//! while we page moves to page 1 and every order above it shifts down one: a walk can miss an
//! order and see another twice. Orders are therefore collected by id, their count compared with
//! `total_results`, and the list walked once more when the two differ ([`super::pages`]); the
//! reservations' reading goes on from the last complete one ([`super::incremental`]).
//! `status=` is always given: without it the service answers `PENDING` orders, which hold no
//! stock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use reqwest::{Method, StatusCode};

use super::auth::{Session, json_body, undocumented_answer};
pub use super::listed::{Listed, Unreadable};
use super::wire::{
    Date, Order, OrderStatus, ShipData, ShippingProvider, ShippingProviders, TransitionRequest,
};
use crate::http::Meter;
use crate::services::{ConnectorError, parse};

/// No seller has this many pages of open orders in one state (100,000 orders); a service that
/// keeps saying there are more pages is broken, and a walk must end.
pub const MAX_PAGES: u64 = 10_000;

/// A move of an order through its lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// The seller has picked the order up (`READY` → `PROCESSED`).
    Process,
    /// Every line has left (→ `SHIPPED`).
    Ship {
        /// The carrier's tracking number.
        tracking_number: String,
        /// A `provider_name` from [`OrderFeed::shipping_providers`]; the service refuses others.
        shipping_provider_name: String,
        /// When it left.
        shipment_date: Date,
    },
}

impl Transition {
    fn action(&self) -> &'static str {
        match self {
            Transition::Process => "process",
            Transition::Ship { .. } => "ship",
        }
    }

    /// Whether an order in `status` has already made this move, so a refusal to make it again
    /// means it is done (API_NOTES: treat "already shipped" as done).
    fn done_at(&self, status: &OrderStatus) -> bool {
        match self {
            Transition::Process => matches!(status, OrderStatus::Processed | OrderStatus::Shipped),
            Transition::Ship { .. } => *status == OrderStatus::Shipped,
        }
    }
}

/// How a transition ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transitioned {
    /// The service accepted it now.
    Done,
    /// The service refused it, and the order shows it was made before (by an earlier attempt
    /// whose answer was lost, or by the seller by hand).
    AlreadyDone,
}

/// The open lists as read: every order that could be read, and those that could not.
#[derive(Debug)]
pub struct Listing<T> {
    /// Each order once, sorted by id.
    pub orders: Vec<T>,
    /// Orders of the lists that could not be read (see [`Listed::read`]), each once.
    pub unreadable: Vec<Unreadable>,
    /// The lists that could not be read at all, each with the page and why (the others were):
    /// an order missing from `orders` may be in one of them.
    pub failed: Vec<String>,
}

impl<T: Listed> Listing<T> {
    /// The lists' orders, each once, sorted by id. An order read in one list is not also
    /// unreadable because another list showed it differently; an unreadable one is named once.
    pub(super) fn of(
        found: HashMap<String, T>,
        mut unreadable: Vec<Unreadable>,
        failed: Vec<String>,
    ) -> Listing<T> {
        let mut named = HashSet::new();
        unreadable.retain(|u| match &u.id {
            Some(id) => !found.contains_key(id) && named.insert(id.clone()),
            None => true,
        });
        let mut orders: Vec<T> = found.into_values().collect();
        orders.sort_unstable_by(|a, b| (a.id().len(), a.id()).cmp(&(b.id().len(), b.id())));
        Listing {
            orders,
            unreadable,
            failed,
        }
    }
}

/// `states` without repeats, in their order.
pub(super) fn each_once(states: &[OrderStatus]) -> Vec<&OrderStatus> {
    let mut asked = HashSet::new();
    states.iter().filter(|s| asked.insert(*s)).collect()
}

/// Keeps `order` in `found` unless the one there was updated more recently (an order that moved
/// between two lists during the read is kept as last updated).
pub(super) fn keep_newer<T: Listed>(found: &mut HashMap<String, T>, id: String, order: T) {
    if !found.get(&id).is_some_and(|seen| newer(seen, &order)) {
        found.insert(id, order);
    }
}

/// A Hardtofind account's orders.
pub struct OrderFeed {
    pub(super) session: Arc<Session>,
}

impl OrderFeed {
    /// A feed reading through `session`: the same session as a target on the same account, so
    /// one token and one rate budget.
    pub fn new(session: Arc<Session>) -> OrderFeed {
        OrderFeed { session }
    }

    /// Every order in any of `states`, each once, as the lists showed it (each with its own
    /// status: an order that moved between two of `states` during the read is kept as last
    /// updated), whole; an order that is not whole is listed apart. Fails when any page fails,
    /// so a partial list is never taken for the whole.
    pub async fn open_orders(
        &self,
        meter: &Meter,
        states: &[OrderStatus],
    ) -> Result<Listing<Order>, ConnectorError> {
        self.open(meter, states).await
    }

    async fn open<T: Listed>(
        &self,
        meter: &Meter,
        states: &[OrderStatus],
    ) -> Result<Listing<T>, ConnectorError> {
        let mut found: HashMap<String, T> = HashMap::new();
        let mut unreadable: Vec<Unreadable> = Vec::new();
        let mut failed = Vec::new();
        let states = each_once(states);
        for &status in &states {
            // One list that does not read (a page the service garbled) does not hide what the
            // others said; an error of the account (login, network) is every list's.
            let (orders, bad) = match self.read_in_full(meter, status).await {
                Ok(read) => (read.orders, read.unreadable),
                Err(e @ ConnectorError::Malformed(_)) if failed.len() + 1 < states.len() => {
                    failed.push(format!("the {status} list: {e}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (id, order) in orders {
                keep_newer(&mut found, id, order);
            }
            unreadable.extend(bad);
        }
        Ok(Listing::of(found, unreadable, failed))
    }

    /// One order by id; `None` when the service says there is no such order (404, or 410: the
    /// document names neither). That is the service's word, not proof the order was cancelled:
    /// the caller decides what it means.
    pub async fn order(&self, meter: &Meter, id: &str) -> Result<Option<Order>, ConnectorError> {
        let path = order_path(id)?;
        let gone = [StatusCode::NOT_FOUND.as_u16(), StatusCode::GONE.as_u16()];
        let body = match self.session.send(meter, |r| r, Method::GET, &path).await {
            Err(e) if e.status().is_some_and(|s| gone.contains(&s)) => return Ok(None),
            other => other?,
        };
        let order: Order = parse(&body, &format!("GET {path}"))?;
        if order.id != id {
            return Err(ConnectorError::Malformed(format!(
                "GET {path}: answered order {:?}",
                order.id
            )));
        }
        Ok(Some(order))
    }

    /// The providers `ship` accepts.
    pub async fn shipping_providers(
        &self,
        meter: &Meter,
    ) -> Result<Vec<ShippingProvider>, ConnectorError> {
        let what = "GET /shipping-providers";
        let body = self
            .session
            .send(meter, |r| r, Method::GET, "/shipping-providers")
            .await?;
        Ok(match parse(&body, what)? {
            ShippingProviders::Bare(providers) | ShippingProviders::Paged { data: providers } => {
                providers
            }
        })
    }

    /// Moves order `id`. A refusal whose order shows the move already made is
    /// [`Transitioned::AlreadyDone`], so sending a transition again after a lost answer is safe.
    pub async fn transition(
        &self,
        meter: &Meter,
        id: &str,
        transition: &Transition,
    ) -> Result<Transitioned, ConnectorError> {
        let path = format!("{}/transition", order_path(id)?);
        let body = Bytes::from(
            serde_json::to_vec(&request(transition))
                .map_err(|e| ConnectorError::Malformed(e.to_string()))?,
        );
        let sent = (self.session)
            .send(meter, |r| json_body(r, body.clone()), Method::POST, &path)
            .await;
        match sent {
            Ok(answer) => {
                undocumented_answer(&answer, &format!("POST {path}"))?;
                Ok(Transitioned::Done)
            }
            // A refusal the order's state may explain; a missing order is not one.
            Err(e) if e.is_refusal() && e.status() != Some(404) => {
                match self.order(meter, id).await {
                    Ok(Some(order)) if transition.done_at(&order.status) => {
                        tracing::info!(endpoint = %self.session.endpoint.label, order = id,
                        action = transition.action(), error = %e, "transition refused; the order already shows it");
                        Ok(Transitioned::AlreadyDone)
                    }
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Logs in and reads `/info`.
    pub async fn check(&self, meter: &Meter) -> Result<String, ConnectorError> {
        self.session.check(meter).await
    }
}

/// Whether `later` (read after `seen`) should not replace it: `seen` was updated more recently.
fn newer<T: Listed>(seen: &T, later: &T) -> bool {
    match (seen.dates().updated_at, later.dates().updated_at) {
        (Some(seen), Some(later)) => seen > later,
        _ => false,
    }
}

fn request(transition: &Transition) -> TransitionRequest<'_> {
    TransitionRequest {
        action: transition.action(),
        data: match transition {
            Transition::Process => None,
            Transition::Ship {
                tracking_number,
                shipping_provider_name,
                shipment_date,
            } => Some(ShipData {
                tracking_number,
                shipping_provider_name,
                shipment_date: *shipment_date,
            }),
        },
    }
}

/// `/order/{id}`, the id written as one path segment: ids are digits in the document, but one
/// that is not must not reach another path (an id of dots would, even encoded).
fn order_path(id: &str) -> Result<String, ConnectorError> {
    if id.bytes().all(|b| b == b'.') {
        return Err(ConnectorError::NotFound(format!(
            "no order has the id {id:?}"
        )));
    }
    let segment: String = id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    Ok(format!("/order/{segment}"))
}

#[cfg(test)]
#[path = "orders_tests.rs"]
mod tests;
