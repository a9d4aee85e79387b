//! The relay's part of a cycle: read the `READY` orders, then move every open record as far as
//! it can go (see [`super::State`]), writing each transition before the next request. The one
//! request that moves money, `PUT /api/orders`, is sent only after its intent (`placing`, with
//! the order exactly as it will be sent) is committed; an outcome that is not known is resolved
//! by finding the order or sending the same `custom_order_id` again, never by a new order.

use std::collections::{HashMap, HashSet};

use tracing::{error, info, warn};

use super::config::{Mode, RelaySpec};
use super::decide::{self, Prepared};
use super::ready::{Memory, ReadAs, Walk};
use super::{Record, State};
use crate::http::Meter;
use crate::services::endless_aisles::{Orders, Products, SizeInfo};
use crate::services::hardtofind::OrderFeed;
use crate::services::hardtofind::wire::{Order, OrderStatus, ShippingProvider};
use crate::store::{self, Store, StoreError};

/// Cycles an unknown outcome is tried before it is handed to a person.
pub const MAX_RESOLVE_ATTEMPTS: u32 = 5;

/// The services the relay talks to.
pub struct Clients<'a> {
    /// The `from` feed's name.
    pub feed_name: &'a str,
    /// The `from` feed.
    pub feed: &'a OrderFeed,
    /// The `to` source's orders.
    pub orders: Orders,
    /// The `to` source's catalogue.
    pub products: Products,
    /// The Endless Aisles option id of a Hardtofind line's SKU, through the SKU mapping (see
    /// [`decide::supplier_key`] for the default).
    pub supplier_key: &'a (dyn Fn(&str) -> Option<u64> + Send + Sync),
}

/// What the step came to: every record's state counted, for the summary line and the metric.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayDone {
    /// Records per state (states with none left out).
    pub counts: Vec<(State, i64)>,
    /// Orders whose intent was committed this cycle.
    pub placed: usize,
    /// How the `READY` list was read (`None`: it could not be).
    pub walk: Option<Walk>,
}

impl RelayDone {
    /// `placed=2 waiting=1`, for the summary line.
    pub fn field(&self) -> String {
        let parts: Vec<String> = (self.counts.iter())
            .map(|(state, n)| format!("{}={n}", state.word()))
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(" ")
        }
    }

    /// Records per state, every state named (none: 0), for the metric.
    pub fn every_state(&self) -> Vec<(&'static str, i64)> {
        (State::ALL.iter())
            .map(|s| {
                let n = (self.counts.iter())
                    .find(|(c, _)| c == s)
                    .map_or(0, |(_, n)| *n);
                (s.word(), n)
            })
            .collect()
    }
}

/// Runs the step (see the module's doc): the `READY` list read from where `memory` left it
/// (see [`super::ready`]), as `ask` says. Only a database failure is an `Err`.
pub async fn step(
    spec: &RelaySpec,
    clients: Clients<'_>,
    store: &Store,
    memory: &mut Memory,
    ask: ReadAs,
) -> Result<RelayDone, StoreError> {
    let mut run = Run {
        spec,
        clients,
        store,
        meter: Meter::default(),
        catalogue: None,
        providers: None,
        placed: 0,
        claimed: HashSet::new(),
        memory,
        ask,
        kept: HashSet::new(),
        walk: None,
    };
    let mut htf = run.read_orders().await?;
    let records = store.call(|c| store::relay_records(c)).await?;
    run.claimed = records.iter().filter_map(|r| r.supplier_order_id).collect();
    for mut record in records.into_iter().filter(|r| !r.state.is_final()) {
        let Some(order) = htf.remove(&record.order_id) else {
            continue;
        };
        run.advance(&mut record, &order).await?;
    }
    let counts = store.call(|c| store::relay_counts(c)).await?;
    Ok(RelayDone {
        counts,
        placed: run.placed,
        walk: run.walk,
    })
}

/// One cycle's relay work.
pub(super) struct Run<'a> {
    pub(super) spec: &'a RelaySpec,
    pub(super) clients: Clients<'a>,
    pub(super) store: &'a Store,
    pub(super) meter: Meter,
    /// Endless Aisles' sizes, read once per cycle when an order needs them.
    pub(super) catalogue: Option<Result<HashMap<u64, SizeInfo>, String>>,
    /// Hardtofind's shipping providers, read once per cycle when an order ships.
    pub(super) providers: Option<Result<Vec<ShippingProvider>, String>>,
    /// Orders whose intent was committed this cycle.
    pub(super) placed: usize,
    /// Endless Aisles orders already known to be some record's: never another's.
    pub(super) claimed: HashSet<u64>,
    /// What the `READY` read goes on from.
    pub(super) memory: &'a mut Memory,
    /// What this cycle asks of the `READY` read.
    pub(super) ask: ReadAs,
    /// Orders this cycle knows from memory only (unchanged since they were read), not read
    /// again yet.
    pub(super) kept: HashSet<String>,
    /// How the `READY` list was read.
    pub(super) walk: Option<Walk>,
}

/// What moving a record by one step came to.
pub(super) enum Moved {
    /// It moved: try the next step now.
    On,
    /// Nothing more this cycle.
    Stop,
}

impl Run<'_> {
    /// Moves `record` as far as it goes this cycle.
    async fn advance(&mut self, record: &mut Record, order: &Order) -> Result<(), StoreError> {
        // Every state can be passed at most once in a cycle.
        for _ in 0..State::ALL.len() {
            let moved = match record.state {
                State::Seen | State::Eligible | State::Waiting | State::Approved => {
                    self.unplaced(record, order).await?
                }
                State::Placing => self.resolve(record, order).await?,
                // Closed at Hardtofind while the Endless Aisles order is open: cancelled there.
                State::Placed | State::Processing
                    if decide::closed_at_hardtofind(&order.status) =>
                {
                    self.cancel(record, order).await?
                }
                State::Placed => self.placed(record, order).await?,
                State::Processing => self.processing(record, order).await?,
                State::Shipped => {
                    if order.status == OrderStatus::Shipped {
                        self.set(record, State::Done, None).await?;
                    }
                    Moved::Stop
                }
                State::Done | State::Rejected | State::Cancelled | State::Manual => Moved::Stop,
            };
            if matches!(moved, Moved::Stop) {
                break;
            }
        }
        Ok(())
    }

    /// Writes a transition (or a new reason) and logs it: one INFO per transition, an ERROR
    /// for MANUAL. Nothing is written when nothing changed.
    pub(super) async fn set(
        &self,
        record: &mut Record,
        state: State,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        if record.state == state && record.reason == reason {
            return Ok(());
        }
        let from = record.state;
        record.state = state;
        record.reason = reason;
        record.updated_at = store::now_ms();
        let row = record.clone();
        self.store
            .call(move |c| store::relay_write(c, &row))
            .await?;
        let reason = record.reason.as_deref().unwrap_or("");
        let supplier = record.supplier_order_id.map(|id| id.to_string());
        let supplier = supplier.as_deref().unwrap_or("");
        if state == State::Manual {
            error!(order = %record.order_id, custom_order_id = %record.custom_order_id, from = from.word(), state = "MANUAL", supplier_order = supplier, reason, "relay: order needs a person");
        } else {
            info!(order = %record.order_id, custom_order_id = %record.custom_order_id, from = from.word(), state = state.word(), supplier_order = supplier, reason, "relay: order moved");
        }
        Ok(())
    }

    /// Endless Aisles' sizes by option id, read once per cycle.
    async fn catalogue(&mut self) -> Result<&HashMap<u64, SizeInfo>, String> {
        if self.catalogue.is_none() {
            let read = self.clients.products.fetch(&self.meter).await;
            self.catalogue = Some(
                read.map(|sizes| sizes.into_iter().map(|s| (s.option_id, s)).collect())
                    .map_err(|e| e.to_string()),
            );
        }
        match self.catalogue.as_ref() {
            Some(Ok(sizes)) => Ok(sizes),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not read".to_owned()),
        }
    }

    /// An order not placed yet: checked, approved per `mode`, and placed. One this cycle knows
    /// only from memory is read again first, and checked again as it is now.
    async fn unplaced(&mut self, record: &mut Record, order: &Order) -> Result<Moved, StoreError> {
        let Some(prepared) = self.ready_to_place(record, order).await? else {
            return Ok(Moved::Stop);
        };
        if !self.kept.contains(&record.order_id) {
            return self.place(record, prepared).await;
        }
        let Some(fresh) = self.fresh(record).await else {
            return Ok(Moved::Stop);
        };
        match self.ready_to_place(record, &fresh).await? {
            Some(prepared) => self.place(record, prepared).await,
            None => Ok(Moved::Stop),
        }
    }

    /// The order to place now, or `None` (the record moved, or waits, with why).
    async fn ready_to_place(
        &mut self,
        record: &mut Record,
        order: &Order,
    ) -> Result<Option<Prepared>, StoreError> {
        if decide::closed_at_hardtofind(&order.status) {
            let why = format!("{} at Hardtofind before it was placed", order.status);
            self.set(record, State::Cancelled, Some(why)).await?;
            return Ok(None);
        }
        if order.status != OrderStatus::Ready {
            let why = format!(
                "left READY (now {}) before it was placed; relay approve to place it anyway",
                order.status
            );
            self.set(record, State::Rejected, Some(why)).await?;
            return Ok(None);
        }
        let key_of = self.clients.supplier_key;
        let custom = record.custom_order_id.clone();
        let prepared = match self.catalogue().await {
            Ok(sizes) => decide::prepare(order, &custom, sizes, key_of),
            Err(e) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: Endless Aisles' catalogue could not be read; the order waits");
                return Ok(None);
            }
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(why) => {
                self.set(record, State::Waiting, Some(why)).await?;
                return Ok(None);
            }
        };
        record.value = Some(prepared.value);
        // The order as it would be sent, for `relay show` while it waits: lines, quantities,
        // prices and address are what an approver checks. `place` writes it again, as sent.
        record.payload = serde_json::to_string(&prepared.order).ok();
        if let Some(max) = self.spec.max_order_value
            && prepared.value > max
            && !record.approved
        {
            let why = format!(
                "value {:.2} is over max_order_value {max:.2}: relay approve {} to place it",
                prepared.value, record.order_id
            );
            self.set(record, State::Waiting, Some(why)).await?;
            return Ok(None);
        }
        match self.spec.mode {
            Mode::Off => return Ok(None),
            Mode::DryRun => {
                self.set(record, State::Eligible, Some("dry_run: not placed".into()))
                    .await?;
                let lines: Vec<String> = (prepared.order.line_items.iter())
                    .map(|l| format!("{}x{}@{:.2}", l.quantity, l.id, l.price))
                    .collect();
                info!(order = %record.order_id, custom_order_id = %record.custom_order_id, lines = %lines.join(","), value = prepared.value, ship_to = %format!("{} {}, {} {}", prepared.order.shipping.first_name, prepared.order.shipping.last_name, prepared.order.shipping.state, prepared.order.shipping.zip), "relay: dry run: would place this order at Endless Aisles");
                return Ok(None);
            }
            Mode::Approve if !record.approved => {
                let why = format!("waiting for relay approve {}", record.order_id);
                self.set(record, State::Eligible, Some(why)).await?;
                return Ok(None);
            }
            Mode::Auto if !record.approved => {
                let id = record.order_id.clone();
                self.store
                    .call(move |c| store::relay_auto_approve(c, &id))
                    .await?;
                record.approved = true;
            }
            Mode::Approve | Mode::Auto => {}
        }
        if self.placed >= self.spec.max_orders_per_cycle {
            let why = format!(
                "max_orders_per_cycle ({}) reached: placed at a later cycle",
                self.spec.max_orders_per_cycle
            );
            self.set(record, State::Approved, Some(why)).await?;
            return Ok(None);
        }
        Ok(Some(prepared))
    }

    /// Commits the intent, then sends `PUT /api/orders` once.
    async fn place(
        &mut self,
        record: &mut Record,
        prepared: Prepared,
    ) -> Result<Moved, StoreError> {
        let payload = serde_json::to_string(&prepared.order).map_err(|e| {
            StoreError::Corrupt(format!("the order to place does not serialise: {e}"))
        })?;
        record.payload = Some(payload);
        record.placing_at = Some(store::now_ms());
        record.attempts = 0;
        self.set(record, State::Placing, None).await?;
        self.store.may_act()?;
        self.placed += 1;
        let outcome = self
            .clients
            .orders
            .place(&self.meter, &prepared.order)
            .await;
        self.after_place(record, &prepared.order, outcome, false)
            .await
    }
}
