//! The relay's part of a cycle: read the `READY` orders, then move every open record as far as
//! it can go (see [`super::State`]), writing each transition before the next request. The one
//! request that moves money, `PUT /api/orders`, is sent only after its intent (`placing`, with
//! the order exactly as it will be sent) is committed; an outcome that is not known is resolved
//! by finding the order or sending the same `custom_order_id` again, never by a new order.

use std::collections::{HashMap, HashSet};

use tracing::{error, info, warn};

use super::config::{Mode, RelaySpec};
use super::decide::{self, Prepared};
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
}

/// Runs the step (see the module's doc). Only a database failure is an `Err`.
pub async fn step(
    spec: &RelaySpec,
    clients: Clients<'_>,
    store: &Store,
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
}

/// What moving a record by one step came to.
pub(super) enum Moved {
    /// It moved: try the next step now.
    On,
    /// Nothing more this cycle.
    Stop,
}

impl Run<'_> {
    /// The `READY` orders (new ones recorded as `seen`) and, for every open record not among
    /// them, its order looked up by id. An order that cannot be read is left for the next
    /// cycle: absence is no evidence.
    async fn read_orders(&mut self) -> Result<HashMap<String, Order>, StoreError> {
        let feed = self.clients.feed;
        let mut orders: HashMap<String, Order> = HashMap::new();
        match feed.open_orders(&self.meter, &[OrderStatus::Ready]).await {
            Ok(ready) => {
                for failed in &ready.failed {
                    error!(feed = self.clients.feed_name, error = %failed, "relay: an order list could not be read; new orders in it wait for the next cycle")
                }
                for bad in &ready.unreadable {
                    warn!(feed = self.clients.feed_name, order = %bad.id.as_deref().unwrap_or("?"), place = %bad.place, error = %bad.reason, "relay: a READY order could not be read whole; it is not placed until it can be")
                }
                orders.extend(ready.orders.into_iter().map(|o| (o.id.clone(), o)))
            }
            Err(e) => {
                error!(feed = self.clients.feed_name, error = %e, "relay: READY orders could not be read; new orders wait for the next cycle")
            }
        }
        let known: HashSet<String> = self
            .store
            .call(|c| store::relay_records(c))
            .await?
            .into_iter()
            .map(|r| r.order_id)
            .collect();
        let now = store::now_ms();
        let key_of = self.clients.supplier_key;
        let mut new: Vec<Record> = orders
            .iter()
            .filter(|(id, order)| !known.contains(*id) && decide::is_dropship(order, key_of))
            .map(|(id, _)| Record::seen(id, self.clients.feed_name, now))
            .collect();
        new.sort_by(|a, b| (a.order_id.len(), &a.order_id).cmp(&(b.order_id.len(), &b.order_id)));
        if !new.is_empty() {
            let rows = new.clone();
            self.store
                .call(move |c| store::relay_insert_seen(c, &rows))
                .await?;
            for r in &new {
                info!(order = %r.order_id, custom_order_id = %r.custom_order_id, state = "seen", "relay: order seen");
            }
        }
        let open = self.store.call(|c| store::relay_records(c)).await?;
        for record in open.iter().filter(|r| !r.state.is_final()) {
            if orders.contains_key(&record.order_id) {
                continue;
            }
            match feed.order(&self.meter, &record.order_id).await {
                Ok(Some(order)) => {
                    orders.insert(order.id.clone(), order);
                }
                Ok(None) => {
                    warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, "relay: Hardtofind has no such order now; it is left as it is")
                }
                Err(e) => {
                    warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: the order could not be read; tried again next cycle")
                }
            }
        }
        Ok(orders)
    }

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

    /// An order not placed yet: checked, approved per `mode`, and placed.
    async fn unplaced(&mut self, record: &mut Record, order: &Order) -> Result<Moved, StoreError> {
        if decide::closed_at_hardtofind(&order.status) {
            let why = format!("{} at Hardtofind before it was placed", order.status);
            self.set(record, State::Cancelled, Some(why)).await?;
            return Ok(Moved::Stop);
        }
        if order.status != OrderStatus::Ready {
            let why = format!(
                "left READY (now {}) before it was placed; relay approve to place it anyway",
                order.status
            );
            self.set(record, State::Rejected, Some(why)).await?;
            return Ok(Moved::Stop);
        }
        let key_of = self.clients.supplier_key;
        let custom = record.custom_order_id.clone();
        let prepared = match self.catalogue().await {
            Ok(sizes) => decide::prepare(order, &custom, sizes, key_of),
            Err(e) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: Endless Aisles' catalogue could not be read; the order waits");
                return Ok(Moved::Stop);
            }
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(why) => {
                self.set(record, State::Waiting, Some(why)).await?;
                return Ok(Moved::Stop);
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
            return Ok(Moved::Stop);
        }
        match self.spec.mode {
            Mode::Off => return Ok(Moved::Stop),
            Mode::DryRun => {
                self.set(record, State::Eligible, Some("dry_run: not placed".into()))
                    .await?;
                let lines: Vec<String> = (prepared.order.line_items.iter())
                    .map(|l| format!("{}x{}@{:.2}", l.quantity, l.id, l.price))
                    .collect();
                info!(order = %record.order_id, custom_order_id = %record.custom_order_id, lines = %lines.join(","), value = prepared.value, ship_to = %format!("{} {}, {} {}", prepared.order.shipping.first_name, prepared.order.shipping.last_name, prepared.order.shipping.state, prepared.order.shipping.zip), "relay: dry run: would place this order at Endless Aisles");
                return Ok(Moved::Stop);
            }
            Mode::Approve if !record.approved => {
                let why = format!("waiting for relay approve {}", record.order_id);
                self.set(record, State::Eligible, Some(why)).await?;
                return Ok(Moved::Stop);
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
            return Ok(Moved::Stop);
        }
        self.place(record, prepared).await
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
