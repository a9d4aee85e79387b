//! How a target's cycle settles, whatever kind of target it is: refusals put on their schedule
//! and recorded, a refused login backed off, a stop said in one line. The push loop and the
//! flag owner both end here, so a refused SKU or a wrong password reads the same in both.

use tracing::{error, warn};

use super::report::TargetState;
use super::{Core, Inputs, REFUSAL_BACKOFF_CAP, TargetResult, names};
use crate::plan::backoff::{self, AuthBackoff};
use crate::plan::ledger::{SkuId, SkuTable};
use crate::plan::{Change, Guard};
use crate::store::{self, Refusal, Retry, Side, Store, StoreError, TargetOutcome, rfc3339};

/// Why a target's pushing stopped before its plan was done.
pub(super) enum Stop {
    /// Shutdown.
    Cancelled,
    /// The target refused the credentials.
    AuthRefused(String),
    /// Unreachable, or refusing everything.
    Unreachable(String),
}

/// The target took a request: a login backoff is over.
pub(super) async fn auth_accepted(target: &mut Core, store: &Store) -> Result<(), StoreError> {
    if target.auth.failures > 0 {
        target.auth = AuthBackoff::default();
        let id = target.id;
        store
            .call(move |c| store::auth_accepted(c, Side::Target, id))
            .await?;
    }
    Ok(())
}

/// Writes the acknowledgement of `part` (the quantities the target now shows, the SKUs among
/// them whose refusal is over, and that none of them is in doubt any more), then applies it to
/// memory: the database first, so a
/// crash never leaves memory ahead of the file.
pub(super) async fn acknowledge(
    target: &mut Core,
    store: &Store,
    part: &[Change],
    force: bool,
) -> Result<(), StoreError> {
    let rows: Vec<(SkuId, i64)> = part.iter().map(|c| (c.sku, c.new)).collect();
    let healed: Vec<SkuId> = part
        .iter()
        .map(|c| c.sku)
        .filter(|s| target.failed.contains_key(s))
        .collect();
    let at = store::now_ms();
    // A forced cycle is the new baseline: its zeroings are not held against later ones.
    let zeroings = if force {
        Vec::new()
    } else {
        Guard::zeroings(part, at)
    };
    let mut in_doubt = target.in_doubt.clone();
    for c in part {
        in_doubt.remove(&c.sku);
    }
    let (id, db_healed, blob) = (target.id, healed.clone(), store::in_doubt_blob(&in_doubt));
    let (db_rows, db_zeroings) = (rows.clone(), zeroings.clone());
    store
        .call(move |c| store::acknowledge(c, id, &db_rows, &db_zeroings, &db_healed, blob, at))
        .await?;
    target.in_doubt = in_doubt;
    for &(sku, quantity) in &rows {
        target.acked.set(sku, quantity);
    }
    target.guard.remember(&zeroings);
    for sku in healed {
        target.failed.remove(&sku);
    }
    Ok(())
}

/// Puts this cycle's refusals on their schedule (the next cycle, then 2, 4, … cycles apart, at
/// most a day), records them with the target's words, and marks the target failed.
pub(super) async fn refusals(
    target: &mut Core,
    inputs: &Inputs,
    mut refusals: Vec<Refusal>,
    now: i64,
    result: &mut TargetResult,
    outcome: &mut TargetOutcome,
) -> Result<(), StoreError> {
    if refusals.is_empty() {
        return Ok(());
    }
    for refusal in &mut refusals {
        let before = target.failed.get(&refusal.sku).map_or(0, |r| r.attempts);
        refusal.attempts = before + 1;
        refusal.next_attempt_at =
            backoff::retry_at(now, refusal.attempts, inputs.period, REFUSAL_BACKOFF_CAP);
    }
    report_refusals(target, &names(&inputs.skus), &refusals);
    let (id, at, rows) = (target.id, store::now_ms(), refusals.clone());
    inputs
        .store
        .call(move |c| store::record_refusals(c, id, &rows, at))
        .await?;
    target.failed.extend(refusals.iter().map(|r| {
        let retry = Retry {
            attempts: r.attempts,
            next_attempt_at: Some(r.next_attempt_at),
        };
        (r.sku, retry)
    }));
    result.report.failures += refusals.len();
    let example = names(&inputs.skus).name(refusals[0].sku).to_owned();
    let error = format!(
        "{} SKUs refused, e.g. {example}: {}",
        refusals.len(),
        refusals[0].message
    );
    outcome.error = Some(error.clone());
    result.report.state = TargetState::Failed { error };
    Ok(())
}

/// Says why the target stopped before its plan was done, and backs a refused login off.
pub(super) async fn stopped(
    target: &mut Core,
    inputs: &Inputs,
    stop: Option<Stop>,
    result: &mut TargetResult,
    outcome: &mut TargetOutcome,
) -> Result<(), StoreError> {
    match stop {
        None => {}
        Some(Stop::Cancelled) => {
            warn!(target = %target.name, "shutting down; the remaining changes are pushed at the next start");
            result.report.state = TargetState::Interrupted;
        }
        Some(Stop::AuthRefused(e)) => {
            target.auth = target.auth.refused(store::now_ms(), inputs.period);
            let (id, backoff) = (target.id, target.auth);
            let at = backoff.retry_at.unwrap_or_default();
            inputs
                .store
                .call(move |c| store::auth_refused(c, Side::Target, id, backoff.failures, at))
                .await?;
            error!(target = %target.name, error = %e, failures = backoff.failures, next_attempt_at = %rfc3339(at), "the target refused the credentials; no login is tried before the next attempt, so a wrong password never hammers the account");
            let error = format!("{e}; next login at {}", rfc3339(at));
            outcome.error = Some(error.clone());
            result.report.state = TargetState::Failed { error };
        }
        Some(Stop::Unreachable(e)) => {
            error!(target = %target.name, error = %e, "target could not be brought in sync; it is left for this cycle and retried at the next");
            outcome.error = Some(e.clone());
            result.report.state = TargetState::Failed { error: e };
        }
    }
    Ok(())
}

/// One ERROR per cycle per target, with a few examples: enough to act on, never a flood.
fn report_refusals(target: &Core, skus: &SkuTable, refusals: &[Refusal]) {
    let examples: Vec<String> = refusals
        .iter()
        .take(5)
        .map(|r| format!("{} ({})", skus.name(r.sku), r.message))
        .collect();
    error!(
        target = %target.name, skus = refusals.len(), examples = %examples.join("; "),
        "the target refused some SKUs; the rest were pushed, and these are tried again every cycle until it takes them"
    );
}
