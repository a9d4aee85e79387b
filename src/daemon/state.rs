//! Loading the engine's state at start, after reconciling the database's endpoints with the
//! configured ones (see [`store::reconcile`]).

use std::collections::{BTreeSet, HashMap};

use tracing::{info, warn};

use secrecy::SecretString;

use crate::config::identity::fingerprint;
use crate::config::{Config, Identity};
use crate::plan::ledger::SkuId;
use crate::store::{self, Memory, Reconciled, Retry, Side, StoreError};

/// Whether this process has had its chance to forget names (see [`load_state`]).
static PRUNED_SINCE_START: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// What [`Engine::new`] reads from the database.
/// A target's row id (if it has one yet), refusals and memory. What it acknowledged is loaded
/// when it first plans, and every SKU's name and each source's snapshot when a cycle first needs
/// them (see [`super::per_sku`]).
pub(super) type LoadedTarget = (Option<i64>, HashMap<SkuId, Retry>, Memory);

pub(super) struct Loaded {
    pub sources: Vec<(Option<i64>, Memory)>,
    pub targets: Vec<LoadedTarget>,
    pub last_fetch_at: Vec<Option<i64>>,
    pub first_cycle_at: Option<i64>,
    pub reconciled: Vec<(Side, Reconciled)>,
    pub had_history: bool,
    /// Each source's last recorded answer (page digests) and how many SKUs it reported.
    pub answers: Vec<(Vec<u8>, usize)>,
    /// Each target's `settled` mark.
    pub settled: Vec<Option<String>>,
    /// Each target's SKUs in doubt (see `store::doubt`).
    pub in_doubt: Vec<BTreeSet<SkuId>>,
    /// The world's generation.
    pub generation: u64,
    /// The order feeds no longer configured whose state was deleted.
    pub removed_feeds: Vec<String>,
}

/// What the database is told of one configured source or target: its name, where it is, and the
/// secret it logs in with (only ever stored as a keyed fingerprint).
pub(super) type Endpoint = (String, Identity, SecretString);

/// Everything configured whose state the database may hold.
pub(super) struct Configured<'a> {
    pub sources: &'a [Endpoint],
    pub targets: &'a [Endpoint],
    /// The names in `[orders.NAME]`.
    pub feeds: &'a [String],
}

/// Reconciles the database with what is configured (unless `read_only`: a dry run changes
/// nothing) and loads the engine's state. State of sources, targets and order feeds no longer
/// configured is deleted here, at start (and at a reload), and [`Loaded`] says which.
pub(super) fn load_state(
    c: &mut crate::store::db::Connection,
    configured: Configured<'_>,
    read_only: bool,
    guard_window_ms: i64,
) -> Result<Loaded, StoreError> {
    let had_history = store::has_history(c)?;
    let (ids, reconciled) = reconcile(c, &configured, read_only)?;
    let removed_feeds = if read_only {
        Vec::new()
    } else {
        store::prune_feeds(c, configured.feeds)?
    };
    if !read_only {
        forget_names_once(c, guard_window_ms)?;
    }
    let Ids { sources, targets } = ids;
    Ok(Loaded {
        sources: load_sources(c, &sources)?,
        targets: load_targets(c, &targets)?,
        answers: per_id(&sources, |id| store::load_answer(c, id))?,
        settled: per_id(&targets, |id| store::load_settled(c, id))?,
        in_doubt: per_id(&targets, |id| store::load_in_doubt(c, id))?,
        generation: store::load_generation(c)?,
        last_fetch_at: store::last_fetch_times(c, &sources)?,
        first_cycle_at: store::first_cycle_at(c)?,
        reconciled,
        had_history,
        removed_feeds,
    })
}

/// Each configured source's and target's row id, in the configuration's order (`None`: the
/// database has no row for it yet, which only a read-only start leaves so).
struct Ids {
    sources: Vec<Option<i64>>,
    targets: Vec<Option<i64>>,
}

/// The configured endpoints' row ids: read as they are (`read_only`), or after the rows were
/// made to match the configuration, with what that changed; changed credentials end a login
/// backoff.
fn reconcile(
    c: &mut crate::store::db::Connection,
    configured: &Configured<'_>,
    read_only: bool,
) -> Result<(Ids, Vec<(Side, Reconciled)>), StoreError> {
    let key = if read_only {
        store::existing_fingerprint_key(c)?.unwrap_or_default()
    } else {
        store::fingerprint_key(c)?
    };
    let stored = |list: &[Endpoint]| -> Vec<(String, String)> {
        list.iter()
            .map(|(name, identity, _)| (name.clone(), identity.stored(&key)))
            .collect()
    };
    let (sources, targets) = (stored(configured.sources), stored(configured.targets));
    if read_only {
        let ids = Ids {
            sources: store::inspect(c, Side::Source, &sources)?,
            targets: store::inspect(c, Side::Target, &targets)?,
        };
        return Ok((ids, Vec::new()));
    }
    let mut reconciled = Vec::new();
    let mut ids = Vec::new();
    for (side, list) in [(Side::Source, &sources), (Side::Target, &targets)] {
        let (side_ids, changes) = store::reconcile(c, side, list)?;
        reconciled.extend(changes.into_iter().map(|change| (side, change)));
        ids.push(side_ids.into_iter().map(Some).collect::<Vec<_>>());
    }
    let targets = ids.pop().unwrap_or_default();
    let sources = ids.pop().unwrap_or_default();
    // Changed credentials end a login backoff: the operator fixed the password.
    let credentials = |list: &[Endpoint]| -> Vec<String> {
        list.iter()
            .map(|(_, _, secret)| fingerprint(&key, secret))
            .collect()
    };
    for (side, ids, fingerprints) in [
        (Side::Source, &sources, credentials(configured.sources)),
        (Side::Target, &targets, credentials(configured.targets)),
    ] {
        for (id, fingerprint) in ids.iter().zip(&fingerprints) {
            if let Some(id) = id {
                store::credentials_now(c, side, *id, fingerprint)?;
            }
        }
    }
    Ok((Ids { sources, targets }, reconciled))
}

/// Forgets the names no one holds any more, when that is due, once per process. Here, before
/// any name is loaded (see `store::prune_sku_names`), and only at a start: a reload that failed
/// after pruning would leave the running engine with names the file no longer has.
fn forget_names_once(
    c: &mut crate::store::db::Connection,
    guard_window_ms: i64,
) -> Result<(), StoreError> {
    if PRUNED_SINCE_START.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    let pruned = store::prune_sku_names_when_due(c, store::now_ms(), guard_window_ms)?;
    if let Some(forgotten) = pruned.filter(|&n| n > 0) {
        info!(
            skus = forgotten,
            "forgot the names of SKUs that no source reports, no target shows and nothing else holds any more"
        );
    }
    Ok(())
}

/// `load` of each row id; an endpoint without a row has the default.
fn per_id<T: Default>(
    ids: &[Option<i64>],
    mut load: impl FnMut(i64) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    ids.iter()
        .map(|id| id.map_or_else(|| Ok(T::default()), &mut load))
        .collect()
}

/// Each source's row id and memory.
fn load_sources(
    c: &crate::store::db::Connection,
    ids: &[Option<i64>],
) -> Result<Vec<(Option<i64>, Memory)>, StoreError> {
    let memories = per_id(ids, |id| store::load_memory(c, Side::Source, id))?;
    Ok(ids.iter().copied().zip(memories).collect())
}

/// Each target's row id, refusals and memory.
fn load_targets(
    c: &crate::store::db::Connection,
    ids: &[Option<i64>],
) -> Result<Vec<LoadedTarget>, StoreError> {
    let failed = per_id(ids, |id| store::load_failed(c, id))?;
    let memories = per_id(ids, |id| store::load_memory(c, Side::Target, id))?;
    Ok((ids.iter().copied().zip(failed).zip(memories))
        .map(|((id, failed), memory)| (id, failed, memory))
        .collect())
}

/// Says what reconciling the database with the configuration did: a target that must be pushed
/// every SKU is a WARN that says why.
pub(super) fn log_reconciled(
    config: &Config,
    reconciled: &[(Side, Reconciled)],
    removed_feeds: &[String],
    had_history: bool,
) {
    for name in removed_feeds {
        info!(endpoint = %name, kind = "order feed", "no longer configured: its state is deleted from the database");
    }
    for (side, change) in reconciled {
        let kind = match side {
            Side::Source | Side::SourceZeroedAt => "source",
            Side::Target | Side::TargetZeroedAt => "target",
        };
        match change {
            Reconciled::Removed { name } => {
                info!(endpoint = %name, kind, "no longer configured: its state is deleted from the database");
            }
            Reconciled::Changed { name } => {
                let place = describe(config, *side, name);
                warn!(endpoint = %name, kind, now = %place, "its identity changed (base_url, account or warehouse): none of its old state is trusted, so every SKU is read or pushed afresh");
            }
            Reconciled::New { name } if had_history && matches!(side, Side::Target) => {
                let place = describe(config, *side, name);
                warn!(endpoint = %name, kind, now = %place, "target new to this database (or removed and added again): nothing it acknowledged before is trusted, so every SKU is pushed to it");
            }
            Reconciled::New { .. } => {}
        }
    }
}

fn describe(config: &Config, side: Side, name: &str) -> String {
    let identity = match side {
        Side::Source | Side::SourceZeroedAt => config
            .sources
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.identity()),
        Side::Target | Side::TargetZeroedAt => config
            .targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.identity()),
    };
    identity.map(|i| i.describe()).unwrap_or_default()
}
