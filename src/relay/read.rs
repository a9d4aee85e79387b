//! The relay's step reads its orders: the `READY` list through its memory ([`super::ready`]),
//! the open records' orders it does not show looked up by id, the new dropship orders recorded
//! as `seen` before anything else is done with them.

use std::collections::{HashMap, HashSet};

use tracing::{debug, error, warn};

use super::ready::Next;
use super::step::Run;
use super::{Record, decide};
use crate::services::hardtofind::incremental::Walked;
use crate::services::hardtofind::wire::Order;
use crate::store::{self, StoreError};

impl Run<'_> {
    /// The `READY` list read (see [`Memory::read`]), what did not read said, its whole orders
    /// put in `orders` (`self.kept` names those known from memory only); `None` when it could
    /// not be read (new orders wait for the next cycle; nothing is lost).
    async fn read_ready(&mut self, orders: &mut HashMap<String, Order>) -> Option<Next> {
        let feed_name = self.clients.feed_name;
        let read = self
            .memory
            .read(self.clients.feed, &self.meter, self.ask)
            .await;
        let ready = match read {
            Ok(ready) => ready,
            Err(e) => {
                error!(feed = feed_name, error = %e, "relay: READY orders could not be read; new orders wait for the next cycle");
                return None;
            }
        };
        self.walk = Some(ready.walk);
        let lists: Vec<String> = ready.walks.iter().map(Walked::to_string).collect();
        debug!(feed = feed_name, walk = if ready.walk.full { "full" } else { "incremental" }, pages = ready.walk.pages,
            lists = %lists.join(" "), kept = ready.kept.len(), "relay: READY orders read");
        for bad in &ready.unreadable {
            warn!(feed = feed_name, order = %bad.id.as_deref().unwrap_or("?"), place = %bad.place, error = %bad.reason, "relay: a READY order could not be read whole; it is not placed until it can be")
        }
        for (id, reason) in &ready.not_whole {
            warn!(feed = feed_name, order = %id, place = "the READY list", error = %reason, "relay: a READY order could not be read whole; it is not placed until it can be")
        }
        orders.extend(ready.orders);
        self.kept = ready.kept;
        Some(ready.next)
    }

    /// Takes in a look-up of an order the list no longer shows: the memory learns from it
    /// whether the service dates changes of state (see [`Next::looked_up`]).
    fn looked_up(&self, next: Option<&mut Next>, order: &Order) {
        let Some(next) = next else { return };
        let seen = next.looked_up(order);
        if let Some(seen) = seen {
            warn!(feed = self.clients.feed_name, order = %order.id, error = %seen, "Hardtofind does not move an order to the top of its list when its state changes; the relay's READY list is read in full every cycle from now on");
        }
    }

    /// Order `id` as Hardtofind has it now, read by id before an order this cycle knows only
    /// from memory is placed (see the module documentation); `None` when it cannot be read
    /// (the record waits for the next cycle).
    pub(super) async fn fresh(&mut self, record: &Record) -> Option<Order> {
        self.kept.remove(&record.order_id);
        match self.clients.feed.order(&self.meter, &record.order_id).await {
            Ok(Some(fresh)) => Some(fresh),
            Ok(None) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, "relay: Hardtofind has no such order now; it is left as it is");
                None
            }
            Err(e) => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, error = %e, "relay: the order could not be read before placing it; tried again next cycle");
                None
            }
        }
    }

    /// The `READY` orders (new dropship ones recorded as `seen`) and, for every open record
    /// not among them, its order looked up by id. An order that cannot be read is left for the
    /// next cycle: absence is no evidence.
    pub(super) async fn read_orders(&mut self) -> Result<HashMap<String, Order>, StoreError> {
        let mut orders: HashMap<String, Order> = HashMap::new();
        let mut next = self.read_ready(&mut orders).await;
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
                tracing::info!(order = %r.order_id, custom_order_id = %r.custom_order_id, state = "seen", "relay: order seen");
            }
        }
        let open = self.store.call(|c| store::relay_records(c)).await?;
        for record in open.iter().filter(|r| !r.state.is_final()) {
            if orders.contains_key(&record.order_id) {
                continue;
            }
            match self.clients.feed.order(&self.meter, &record.order_id).await {
                Ok(Some(order)) => {
                    self.looked_up(next.as_mut(), &order);
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
        // The new orders are recorded: the next read may go on from this one.
        if let Some(next) = next {
            let open: HashSet<&str> = (open.iter())
                .filter(|r| !r.state.is_final())
                .map(|r| r.order_id.as_str())
                .collect();
            self.memory.keep(next, &orders, |id| open.contains(id));
        }
        Ok(orders)
    }
}
