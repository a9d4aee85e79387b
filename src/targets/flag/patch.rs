//! Sends each decided `PATCH` and settles what the shop answered, product by product:
//! - written: the state is acknowledged, and the SKU's quantity once every product of it is;
//! - no such product (404 on Shopsys 8.x, 410 on 9): deleted since the list was read. Not a
//!   refusal: the list is read again at the next cycle, where the SKU is then unmapped;
//! - the API cannot change it (a variant or main variant: a 400 without `errors`): recorded
//!   with the product's digest and listed in `status` under its own heading, never counted as
//!   the target refusing everything, and tried again only when the product changes or a week
//!   later. Its state goes back to what it was: nothing was written;
//! - any other refusal (a validation error): set apart on the refusal schedule every target
//!   follows.

use std::collections::HashSet;

use tracing::warn;

use super::super::settle::Stop;
use super::super::{Core, REFUSES_EVERYTHING, TargetResult, settle};
use super::{FlagMemory, Flags, Step, stopped_by};
use crate::http::Meter;
use crate::plan::Change;
use crate::plan::ledger::SkuId;
use crate::services::shopsys::catalogue::Catalogue;
use crate::services::shopsys::flag::Unchangeable;
use crate::services::shopsys::target::{Patched, Refusal as Refused};
use crate::store::{self, Refusal, Store, StoreError};

/// What the `PATCH`es of a cycle came to.
pub(super) struct Done {
    /// Why the target stopped before the end, if it did.
    pub stop: Option<Stop>,
    /// The refusals to put on the refusal schedule.
    pub refusals: Vec<Refusal>,
    /// SKUs whose every product took its `PATCH`.
    pub in_line: usize,
    /// SKUs set aside without being a failure: a product gone, or one the API cannot change.
    pub set_aside: usize,
}

/// Sends each decided `PATCH`, in order, recording each acknowledged state as the shop answers
/// it, and at the end the quantities of the SKUs whose every product took its write. Stops at
/// the first failure that is not about the product alone.
pub(super) async fn patch_all(
    target: &mut Core,
    flags: &mut Flags,
    store: &Store,
    meter: &Meter,
    steps: Vec<Step>,
    result: &mut TargetResult,
    now: i64,
) -> Result<Done, StoreError> {
    let (mut refusals, mut fresh_refusals, mut stop) = (Vec::new(), 0, None);
    let (mut written, mut not_written, mut set_aside) =
        (Vec::new(), HashSet::new(), HashSet::new());
    let mut unchangeable = Vec::new();
    for step in steps.into_iter().filter(|s| s.patch.is_some()) {
        let value = step.patch.unwrap_or_default();
        if stop.is_some() {
            not_written.insert(step.change.sku);
            continue;
        }
        let refused = match flags.client.set_flag(meter, &step.uuid, value).await {
            Ok(Patched::Done) => {
                written_now(&mut flags.memory, target.id, store, &step, value).await?;
                written.push(step.change);
                result.report.pushed += 1;
                continue;
            }
            Ok(Patched::Refused(refused)) => refused,
            Err(e) => {
                stop = Some(stopped_by(e));
                not_written.insert(step.change.sku);
                continue;
            }
        };
        not_written.insert(step.change.sku);
        match refused {
            Refused::Gone(message) => {
                warn!(target = %target.name, sku = %step.sku, product = %step.uuid, error = %message, "the product no longer exists in the catalogue (deleted since the list was read); the list is read again at the next cycle");
                flags.memory.reread = true;
                set_aside.insert(step.change.sku);
            }
            Refused::Unchangeable(message) => {
                let record = Unchangeable {
                    sku: step.sku.clone(),
                    message,
                    digest: step.digest.clone(),
                    refused_at: now,
                };
                unchangeable.push((step.uuid.clone(), step.before, record));
                set_aside.insert(step.change.sku);
            }
            Refused::Other(message) => {
                // Only products never refused before say anything about the shop as a whole.
                if !target.failed.contains_key(&step.change.sku) {
                    fresh_refusals += 1;
                }
                refusals.push(Refusal {
                    sku: step.change.sku,
                    quantity: step.change.new,
                    message: message.clone(),
                    attempts: 0,
                    next_attempt_at: 0,
                });
                if fresh_refusals >= REFUSES_EVERYTHING && result.report.pushed == 0 {
                    stop = Some(Stop::Unreachable(format!(
                        "the target refuses every product: {message}"
                    )));
                }
            }
        }
    }
    record_unchangeable(target, &mut flags.memory, store, unchangeable).await?;
    let in_line = acknowledge_whole(target, store, written, &not_written).await?;
    let set_aside = set_aside
        .iter()
        .filter(|s| !refusals.iter().any(|r| r.sku == **s))
        .count();
    Ok(Done {
        stop,
        refusals,
        in_line,
        set_aside,
    })
}

/// Records the acknowledged state of `step`'s product, and that it can be changed after all.
async fn written_now(
    flags: &mut FlagMemory,
    id: i64,
    store: &Store,
    step: &Step,
    value: bool,
) -> Result<(), StoreError> {
    let state = step.state.acknowledged(value);
    let uuid = step.uuid.clone();
    let was_unchangeable = flags.unchangeable.remove(&step.uuid).is_some();
    store
        .call(move |c| {
            store::write_flags(c, id, &[(uuid.clone(), state)])?;
            if was_unchangeable {
                store::forget_unchangeable(c, id, &[uuid])?;
            }
            Ok(())
        })
        .await?;
    if let Some(states) = flags.states.as_mut() {
        states.insert(step.uuid.clone(), state);
    }
    Ok(())
}

/// Acknowledges the quantity of each SKU of `written` none of whose products was left
/// unwritten: a SKU matched twice is in line only when both products are. Answers how many.
async fn acknowledge_whole(
    target: &mut Core,
    store: &Store,
    written: Vec<Change>,
    not_written: &HashSet<SkuId>,
) -> Result<usize, StoreError> {
    let mut whole: Vec<Change> = Vec::new();
    for change in written {
        if !not_written.contains(&change.sku) && !whole.iter().any(|c| c.sku == change.sku) {
            whole.push(change);
        }
    }
    if !whole.is_empty() {
        settle::acknowledge(target, store, &whole, false).await?;
    }
    Ok(whole.len())
}

/// Records the products the API cannot change, puts their states back to what they were
/// (nothing was written), and says so in one WARN.
async fn record_unchangeable(
    target: &Core,
    memory: &mut FlagMemory,
    store: &Store,
    refused: Vec<(
        String,
        crate::services::shopsys::flag::FlagState,
        Unchangeable,
    )>,
) -> Result<(), StoreError> {
    if refused.is_empty() {
        return Ok(());
    }
    let examples: Vec<String> = (refused.iter().take(5))
        .map(|(uuid, _, u)| format!("{} (product {uuid}: {})", u.sku, u.message))
        .collect();
    warn!(
        target = %target.name, products = refused.len(), examples = %examples.join("; "),
        "the catalogue API cannot change these products (a variant or main variant); they are listed in status and tried again when they change, or in a week"
    );
    let id = target.id;
    let states: Vec<_> = refused
        .iter()
        .map(|(uuid, before, _)| (uuid.clone(), *before))
        .collect();
    let rows: Vec<_> = refused
        .iter()
        .map(|(uuid, _, u)| (uuid.clone(), u.clone()))
        .collect();
    let (db_states, db_rows) = (states.clone(), rows.clone());
    store
        .call(move |c| {
            store::write_flags(c, id, &db_states)?;
            store::write_unchangeable(c, id, &db_rows)
        })
        .await?;
    memory.states.get_or_insert_default().extend(states);
    memory.unchangeable.extend(rows);
    Ok(())
}

/// Forgets the unchangeable products that a freshly read list no longer has.
pub(super) async fn forget_departed(
    target: &Core,
    memory: &mut FlagMemory,
    store: &Store,
    catalogue: &Catalogue,
) -> Result<(), StoreError> {
    let departed: Vec<String> = (memory.unchangeable.keys())
        .filter(|uuid| !catalogue.has_product(uuid))
        .cloned()
        .collect();
    if departed.is_empty() {
        return Ok(());
    }
    for uuid in &departed {
        memory.unchangeable.remove(uuid);
    }
    let id = target.id;
    store
        .call(move |c| store::forget_unchangeable(c, id, &departed))
        .await
}
