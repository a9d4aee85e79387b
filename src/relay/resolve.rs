//! What an answer to `PUT /api/orders` means for its record, and resolving an unknown outcome
//! (a lost answer, a crash in `placing`): the order is looked for at Endless Aisles, and only
//! when it is not there is it sent again, with the same `custom_order_id` (which Endless Aisles
//! refuses twice). A refusal of that id means the order is there: it is looked for again, and
//! never called `rejected`. What cannot be told after [`super::step::MAX_RESOLVE_ATTEMPTS`]
//! cycles is MANUAL; nothing is ever placed anew.

use chrono::{NaiveDate, TimeZone, Utc};
use tracing::{info, warn};

use super::decide;
use super::step::{MAX_RESOLVE_ATTEMPTS, Moved, Run};
use super::{Record, State};
use crate::services::ConnectorError;
use crate::services::endless_aisles::{NewOrder, PlaceOutcome};
use crate::services::hardtofind::wire::Order;
use crate::store::StoreError;

impl Run<'_> {
    /// An order in `placing` after a crash or an unknown answer: find it, or send the same
    /// `custom_order_id` again. An order Hardtofind closed meanwhile is only looked for.
    pub(super) async fn resolve(
        &mut self,
        record: &mut Record,
        order: &Order,
    ) -> Result<Moved, StoreError> {
        let sent = record
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<NewOrder>(p).ok());
        let Some(sent) = sent else {
            let why = "placing without the order as sent; cannot tell whether it was placed";
            self.set(record, State::Manual, Some(why.into())).await?;
            return Ok(Moved::Stop);
        };
        // A Hardtofind order closed meanwhile is only looked for: `find` never sends it again.
        let _ = order;
        self.find(record, &sent, None).await
    }

    /// What a `PUT /api/orders` answer means for `record` (in `placing`); `resent`: it answers
    /// the same `custom_order_id` sent again after an unknown outcome, so the order may exist.
    pub(super) async fn after_place(
        &mut self,
        record: &mut Record,
        sent: &NewOrder,
        outcome: PlaceOutcome,
        resent: bool,
    ) -> Result<Moved, StoreError> {
        let custom = record.custom_order_id.clone();
        match outcome {
            PlaceOutcome::Placed { id } => {
                record.supplier_order_id = Some(id);
                self.claimed.insert(id);
                self.set(record, State::Placed, None).await?;
                Ok(Moved::On)
            }
            PlaceOutcome::AlreadyExists { message } => {
                let said = format!(
                    "Endless Aisles refused {custom} as already used ({message}), so the order probably exists at Endless Aisles"
                );
                self.taken(record, sent, said).await
            }
            // A production install's bare refusal of the same id sent again: taken, most likely.
            PlaceOutcome::Unexplained { status, message } if resent => {
                let said = format!(
                    "Endless Aisles refused the resend of {custom} without saying why (HTTP {status}: {message}), so the order probably exists at Endless Aisles"
                );
                self.taken(record, sent, said).await
            }
            // Validation may come before the unique key: the first send may still have placed it.
            PlaceOutcome::Refused { status, message } if resent => {
                let said = format!(
                    "Endless Aisles refused the resend of {custom} (HTTP {status}: {message}); the first send may have placed it, so the order may exist at Endless Aisles"
                );
                self.taken(record, sent, said).await
            }
            PlaceOutcome::Refused { status, message } => {
                let why = format!("Endless Aisles refused it (HTTP {status}): {message}");
                self.reject(record, why).await
            }
            PlaceOutcome::Unexplained { status, message } => {
                let why = format!(
                    "Endless Aisles refused it without saying why (HTTP {status}: {message}); its dashboard may say more"
                );
                self.reject(record, why).await
            }
            PlaceOutcome::NotPlaced { reason } if resent => self.unresolved(record, reason).await,
            PlaceOutcome::NotPlaced { reason } => {
                warn!(order = %record.order_id, custom_order_id = %custom, reason = %reason, "relay: the order was not sent; tried again next cycle");
                record.payload = None;
                let why = format!("not sent ({reason}); tried again next cycle");
                self.set(record, State::Approved, Some(why)).await?;
                Ok(Moved::Stop)
            }
            PlaceOutcome::Unknown { reason } if resent => self.unresolved(record, reason).await,
            PlaceOutcome::Unknown { reason } => {
                warn!(order = %record.order_id, custom_order_id = %custom, reason = %reason, "relay: the outcome of placing the order is unknown; resolving it with the same custom_order_id");
                Box::pin(self.find(record, sent, None)).await
            }
        }
    }

    /// A first send Endless Aisles judged and refused: nothing of it exists there.
    async fn reject(&mut self, record: &mut Record, why: String) -> Result<Moved, StoreError> {
        record.payload = None;
        self.set(record, State::Rejected, Some(why)).await?;
        Ok(Moved::Stop)
    }

    /// Endless Aisles `said` the order (probably) exists: looked for again now (its search may
    /// lag behind its orders), and while it is not found the record stays `placing`, looked for
    /// again each cycle and MANUAL after [`MAX_RESOLVE_ATTEMPTS`]. Never `rejected`.
    async fn taken(
        &mut self,
        record: &mut Record,
        sent: &NewOrder,
        said: String,
    ) -> Result<Moved, StoreError> {
        warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, answer = %said, "relay: the order exists already at Endless Aisles; finding it");
        Box::pin(self.find(record, sent, Some(said))).await
    }

    /// Looks for the order at Endless Aisles (`query` by last name, `since` the day before the
    /// intent, matched on name, zip and lines, never one another record holds). Not found: sent
    /// again with the same `custom_order_id`, unless Endless Aisles `said` it exists (then the
    /// outcome stays unknown), or Hardtofind closed the order.
    pub(super) async fn find(
        &mut self,
        record: &mut Record,
        sent: &NewOrder,
        said: Option<String>,
    ) -> Result<Moved, StoreError> {
        let since = record
            .placing_at
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .map(|t| t.date_naive().pred_opt().unwrap_or(t.date_naive()));
        let found = self.search(sent, since).await;
        let matches = match found {
            Ok(matches) => matches,
            Err(e) => return self.unresolved(record, format!("searching: {e}")).await,
        };
        match matches.as_slice() {
            [id] => {
                info!(order = %record.order_id, custom_order_id = %record.custom_order_id, supplier_order = id, "relay: found the order at Endless Aisles");
                record.supplier_order_id = Some(*id);
                self.claimed.insert(*id);
                self.set(record, State::Placed, None).await?;
                Ok(Moved::On)
            }
            [] if said.is_some() => {
                let said = said.unwrap_or_default();
                let why = format!("{said}, but searching for it does not find it yet");
                self.unresolved(record, why).await
            }
            // Never placed again, and not taken as never placed at once either: the search
            // may lag behind an order the lost answer did place, which would then ship for an
            // order the shopper no longer has. Looked for again each cycle, then a person.
            [] if self.closed(record).await => self.closed_unfound(record).await,
            [] => {
                warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, "relay: the order is not at Endless Aisles; sending it again with the same custom_order_id");
                let outcome = self.clients.orders.place(&self.meter, sent).await;
                Box::pin(self.after_place(record, sent, outcome, true)).await
            }
            many => {
                let why = format!(
                    "{} orders at Endless Aisles match it ({}); which one is its own cannot be told",
                    many.len(),
                    many.iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.set(record, State::Manual, Some(why)).await?;
                Ok(Moved::Stop)
            }
        }
    }

    /// Whether the record's Hardtofind order is closed (read again: it may have changed while
    /// the order was placing).
    async fn closed(&self, record: &Record) -> bool {
        matches!(self.clients.feed.order(&self.meter, &record.order_id).await,
            Ok(Some(order)) if decide::closed_at_hardtofind(&order.status))
    }

    /// The ids of unclaimed orders at Endless Aisles that are `sent`.
    async fn search(
        &self,
        sent: &NewOrder,
        since: Option<NaiveDate>,
    ) -> Result<Vec<u64>, ConnectorError> {
        let orders = &self.clients.orders;
        let listed = orders
            .find(&self.meter, &sent.shipping.last_name, since)
            .await?;
        let mut matches = Vec::new();
        for candidate in listed {
            if self.claimed.contains(&candidate.id) {
                continue;
            }
            if let Some(full) = orders.get(&self.meter, candidate.id).await?
                && decide::is_our_order(&full, sent)
            {
                matches.push(full.id);
            }
        }
        Ok(matches)
    }

    /// An outcome still unknown: stays `placing` (WARN) until [`MAX_RESOLVE_ATTEMPTS`] cycles
    /// have tried, then MANUAL.
    /// A record whose Hardtofind order was closed while its placing was unknown, and that no
    /// search finds yet: looked for again each cycle; after [`MAX_RESOLVE_ATTEMPTS`], `MANUAL`
    /// (whether an order exists at Endless Aisles, to be cancelled there, cannot be told).
    async fn closed_unfound(&mut self, record: &mut Record) -> Result<Moved, StoreError> {
        record.attempts += 1;
        let custom = record.custom_order_id.clone();
        if record.attempts >= MAX_RESOLVE_ATTEMPTS {
            let why = format!(
                "closed at Hardtofind while its placing was unknown, and no search found it after {} attempts; find {custom} among Endless Aisles' orders and cancel it there if it is; invsync will not place it",
                record.attempts
            );
            self.set(record, State::Manual, Some(why)).await?;
            return Ok(Moved::Stop);
        }
        warn!(order = %record.order_id, custom_order_id = %custom, attempt = record.attempts, "relay: closed at Hardtofind while its placing was unknown, and not found at Endless Aisles yet (the search may lag); looked for again next cycle");
        let why =
            "closed at Hardtofind; not found at Endless Aisles yet, looked for again next cycle";
        record.reason = None;
        self.set(record, State::Placing, Some(why.into())).await?;
        Ok(Moved::Stop)
    }

    pub(super) async fn unresolved(
        &mut self,
        record: &mut Record,
        reason: String,
    ) -> Result<Moved, StoreError> {
        record.attempts += 1;
        if record.attempts >= MAX_RESOLVE_ATTEMPTS {
            let custom = &record.custom_order_id;
            let why = format!(
                "whether it was placed cannot be told after {} attempts ({reason}); find {custom} among Endless Aisles' orders: if it is there, move the Hardtofind order to process and ship it by hand with its tracking; if it is not, place it there by hand. invsync will not place it again",
                record.attempts
            );
            self.set(record, State::Manual, Some(why)).await?;
            return Ok(Moved::Stop);
        }
        warn!(order = %record.order_id, custom_order_id = %record.custom_order_id, attempt = record.attempts, reason = %reason, "relay: the outcome is still unknown; tried again next cycle");
        let why = format!("outcome unknown ({reason}); resolved next cycle");
        record.reason = None;
        self.set(record, State::Placing, Some(why)).await?;
        Ok(Moved::Stop)
    }
}
