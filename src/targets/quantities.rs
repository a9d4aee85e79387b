//! The owner of a quantity target (Hardtofind variants, a Hako warehouse): it pushes the plan
//! in batches (see [`super::push`]), then settles what the target answered: its refusals, a
//! refused login, SKUs a 2xx answer left out, a re-plan the mass-zero guard held.

use super::push::Pusher;
use super::report::TargetState;
use super::{Core, Cycle, TargetResult, dry_plan, finish, settle};
use crate::plan::Change;
use crate::services::QuantityTarget;
use crate::store::StoreError;

/// What a quantity target has besides what every target has.
pub(super) struct Quantities {
    /// Its connector.
    client: QuantityTarget,
    /// Entities per request.
    batch_size: usize,
}

impl Quantities {
    /// A target of `client`, pushed `batch_size` entities per request.
    pub(super) fn new(client: QuantityTarget, batch_size: usize) -> Quantities {
        Quantities { client, batch_size }
    }
}

/// Runs a quantity target's part of a cycle, after the mass-zero guard passed its plan.
pub(super) async fn sync(
    target: &mut Core,
    quantities: &Quantities,
    cycle: Cycle,
) -> Result<TargetResult, StoreError> {
    let Cycle {
        mut inputs,
        planned,
        changes,
        mut result,
        mut outcome,
        meter,
        options,
        now,
        mark,
    } = cycle;
    if options.dry_run {
        let changes: Vec<Change> = planned.changes(target, &changes).collect();
        result.plan = dry_plan(target, &inputs, &planned, &changes);
        return finish(target, &inputs.store, result, outcome, &meter, options).await;
    }
    let store = inputs.store.clone();
    let mut pusher = Pusher {
        target: &mut *target,
        client: &quantities.client,
        batch_size: quantities.batch_size,
        inputs: &mut inputs,
        meter: &meter,
        result: &mut result,
        refusals: Vec::new(),
        options,
        held: None,
        unconfirmed: 0,
    };
    let (stop, left) = pusher.push_all(planned, changes).await?;
    let refusals = std::mem::take(&mut pusher.refusals);
    let unconfirmed = pusher.unconfirmed;
    let held = pusher.held.take();
    // What voiding looked up by id served this push; a daemon does not keep it for the next.
    inputs.mapping.forget_by_id(&target.name);
    if result.report.pushed > 0 {
        settle::auth_accepted(target, &store).await?;
    }
    let refused = refusals.len();
    settle::refusals(target, &inputs, refusals, now, &mut result, &mut outcome).await?;
    let stopped_early = stop.is_some();
    settle::stopped(target, &inputs, stop, &mut result, &mut outcome).await?;
    if unconfirmed > 0 && result.report.state == TargetState::InSync {
        let error = format!(
            "{unconfirmed} SKUs were answered 2xx but left out of the answer; they are not acknowledged and are pushed again"
        );
        outcome.error = Some(error.clone());
        result.report.state = TargetState::Failed { error };
    }
    if let Some((state, reason)) = held {
        result.report.state = state;
        outcome.held = Some(reason);
    }
    result.report.failures += left.saturating_sub(refused);
    outcome.pending = left;
    if !stopped_early && left == 0 && result.report.state == TargetState::InSync {
        outcome.settled = Some(mark);
    }
    finish(target, &store, result, outcome, &meter, options).await
}
