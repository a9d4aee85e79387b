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
    c: &mut rusqlite::Connection,
    configured: Configured<'_>,
    read_only: bool,
    guard_window_ms: i64,
) -> Result<Loaded, StoreError> {
    let Configured {
        sources,
        targets,
        feeds,
    } = configured;
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
    let credentials = |list: &[Endpoint]| -> Vec<String> {
        list.iter()
            .map(|(_, _, secret)| fingerprint(&key, secret))
            .collect()
    };
    let (source_credentials, target_credentials) = (credentials(sources), credentials(targets));
    let (sources, targets) = (stored(sources), stored(targets));
    let had_history = store::has_history(c)?;
    let mut reconciled = Vec::new();
    let (source_ids, target_ids) = if read_only {
        (
            store::inspect(c, Side::Source, &sources)?,
            store::inspect(c, Side::Target, &targets)?,
        )
    } else {
        let mut ids = Vec::new();
        for (side, list) in [(Side::Source, &sources), (Side::Target, &targets)] {
            let (side_ids, changes) = store::reconcile(c, side, list)?;
            reconciled.extend(changes.into_iter().map(|change| (side, change)));
            ids.push(side_ids.into_iter().map(Some).collect::<Vec<_>>());
        }
        let targets = ids.pop().unwrap_or_default();
        let sources = ids.pop().unwrap_or_default();
        // Changed credentials end a login backoff: the operator fixed the password.
        for (side, ids, fingerprints) in [
            (Side::Source, &sources, &source_credentials),
            (Side::Target, &targets, &target_credentials),
        ] {
            for (id, fingerprint) in ids.iter().zip(fingerprints) {
                if let Some(id) = id {
                    store::credentials_now(c, side, *id, fingerprint)?;
                }
            }
        }
        (sources, targets)
    };
    let removed_feeds = if read_only {
        Vec::new()
    } else {
        store::prune_feeds(c, feeds)?
    };
    // Here, before any name is loaded (see `store::prune_sku_names`), and only at a start: a
    // reload that failed after pruning would leave the running engine with names the file no
    // longer has.
    if !read_only && !PRUNED_SINCE_START.swap(true, std::sync::atomic::Ordering::SeqCst) {
        let pruned = store::prune_sku_names_when_due(c, store::now_ms(), guard_window_ms)?;
        if let Some(forgotten) = pruned.filter(|&n| n > 0) {
            info!(
                skus = forgotten,
                "forgot the names of SKUs that no source reports, no target shows and nothing else holds any more"
            );
        }
    }
    let memory = |side: Side, id: Option<i64>| match id {
        Some(id) => store::load_memory(c, side, id),
        None => Ok(Memory::default()),
    };
    let mut loaded_sources = Vec::new();
    for &id in &source_ids {
        loaded_sources.push((id, memory(Side::Source, id)?));
    }
    let mut loaded_targets = Vec::new();
    for &id in &target_ids {
        let failed = match id {
            Some(id) => store::load_failed(c, id)?,
            None => HashMap::new(),
        };
        let memory = memory(Side::Target, id)?;
        loaded_targets.push((id, failed, memory));
    }
    let mut answers = Vec::new();
    for id in &source_ids {
        answers.push(match id {
            Some(id) => store::load_answer(c, *id)?,
            None => Default::default(),
        });
    }
    let mut settled = Vec::new();
    let mut in_doubt = Vec::new();
    for id in &target_ids {
        settled.push(match id {
            Some(id) => store::load_settled(c, *id)?,
            None => None,
        });
        in_doubt.push(match id {
            Some(id) => store::load_in_doubt(c, *id)?,
            None => BTreeSet::new(),
        });
    }
    Ok(Loaded {
        answers,
        settled,
        in_doubt,
        generation: store::load_generation(c)?,
        last_fetch_at: store::last_fetch_times(c, &source_ids)?,
        first_cycle_at: store::first_cycle_at(c)?,
        sources: loaded_sources,
        targets: loaded_targets,
        reconciled,
        had_history,
        removed_feeds,
    })
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
