//! What a target is and has between cycles: a core every target has (who it is, what it
//! acknowledged, holds in doubt, refused, and remembers of its guard and logins, its settled
//! mark) and its kind's own part: quantities pushed in batches, or a catalogue's flags. Only
//! `target` changes any of it; the rest of the engine builds a slot with [`TargetSlot::load`],
//! reads it, and voids acknowledgements with [`TargetSlot::void`].

use std::collections::{BTreeSet, HashMap};

use super::flag::Flags;
use super::quantities::Quantities;
use crate::plan::backoff::AuthBackoff;
use crate::plan::ledger::{Column, SkuId};
use crate::plan::{Guard, Rules};
use crate::services::{FlagTarget, Target};
use crate::store::{self, Memory, Retry, Side, Store, StoreError};

/// One target, as the cycle sees it.
pub struct TargetSlot {
    /// What every target has.
    pub(super) core: Core,
    /// What its kind has besides.
    pub(super) kind: Kind,
}

/// What every target is and has, whatever it shows.
pub(super) struct Core {
    /// `[targets.NAME]`.
    pub(super) name: String,
    /// Its row in the database.
    pub(super) id: i64,
    /// What it acknowledged (once `acked_loaded`).
    pub(super) acked: Column,
    /// Whether `acked` was loaded from the database (it is, the first time the target plans).
    pub(super) acked_loaded: bool,
    /// SKUs it refused and has not taken since, with when each is tried again.
    pub(super) failed: HashMap<SkuId, Retry>,
    /// SKUs it may or may not have taken: sent, and neither acknowledged nor refused (see
    /// `store::doubt`). They are pushed again whatever the plan says.
    pub(super) in_doubt: BTreeSet<SkuId>,
    /// Indices of its input sources.
    pub(super) inputs: Vec<usize>,
    /// Safety stock and cap.
    pub(super) rules: Rules,
    /// The mass-zero guard and its memory.
    pub(super) guard: Guard,
    /// When `--force` last restarted the guard's window.
    pub(super) guard_since: Option<i64>,
    /// Refused logins.
    pub(super) auth: AuthBackoff,
    /// What it was last left wholly in sync with (see [`super::settled`]), as the database has
    /// it.
    pub(super) settled: Option<String>,
    /// Its rules, as its `settled` mark names them (see [`super::settled`]).
    pub(super) settles_as: String,
}

/// How a target shows availability, with what that way needs of its own. A service that shows
/// it one of these ways is a variant of its connector ([`Target`]); another way would be a
/// kind here.
pub(super) enum Kind {
    /// Quantities, pushed in batches (Hardtofind variants, a Hako warehouse).
    Quantities(Quantities),
    /// A catalogue's availability flag, one `PATCH` per product (Shopsys).
    Flags(Flags),
}

/// What a target is, from its configuration.
pub struct Setup {
    /// `[targets.NAME]`.
    pub name: String,
    /// Its row in the database (0 for a dry run's target without one).
    pub id: i64,
    /// Its connector.
    pub client: Target,
    /// Indices of its input sources.
    pub inputs: Vec<usize>,
    /// Safety stock and cap.
    pub rules: Rules,
    /// Entities per request (of a target that takes batches).
    pub batch_size: usize,
    /// Its rules, as its `settled` mark names them (see [`super::settled::rules`]).
    pub settles_as: String,
}

/// What the database held of a target at start (see `daemon::state`). What it acknowledged is
/// loaded when it first plans (see [`TargetSlot::load_acknowledged`]).
pub struct Stored {
    /// Its refusals, with when each is tried again.
    pub failed: HashMap<SkuId, Retry>,
    /// Its SKUs in doubt.
    pub in_doubt: BTreeSet<SkuId>,
    /// Its `settled` mark.
    pub settled: Option<String>,
    /// Its guard's memory and login backoff.
    pub memory: Memory,
}

impl TargetSlot {
    /// A target as configured, with what the database held of it; `max_zeroed_fraction`: its
    /// mass-zero guard's limit.
    pub fn load(setup: Setup, stored: Stored, max_zeroed_fraction: f64) -> TargetSlot {
        let (guard, guard_since, auth) = stored.memory.into_parts(max_zeroed_fraction);
        let kind = match setup.client {
            Target::Quantities(client) => {
                Kind::Quantities(Quantities::new(client, setup.batch_size))
            }
            Target::Flags(client) => Kind::Flags(Flags::new(client)),
        };
        let core = Core {
            name: setup.name,
            id: setup.id,
            acked: Column::default(),
            acked_loaded: false,
            failed: stored.failed,
            in_doubt: stored.in_doubt,
            inputs: setup.inputs,
            rules: setup.rules,
            guard,
            guard_since,
            auth,
            settled: stored.settled,
            settles_as: setup.settles_as,
        };
        TargetSlot { core, kind }
    }

    /// `[targets.NAME]`.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// Its row in the database.
    pub fn id(&self) -> i64 {
        self.core.id
    }

    /// Its catalogue, when it shows availability through flags rather than quantities.
    pub fn catalogue(&self) -> Option<&FlagTarget> {
        match &self.kind {
            Kind::Flags(flags) => Some(flags.client()),
            Kind::Quantities(_) => None,
        }
    }

    /// Indices of its input sources.
    pub fn inputs(&self) -> &[usize] {
        &self.core.inputs
    }

    /// Its rules, as its `settled` mark names them (see [`super::settled`]).
    pub fn settles_as(&self) -> &str {
        &self.core.settles_as
    }

    /// What it acknowledged: empty until [`TargetSlot::load_acknowledged`].
    pub fn acknowledged(&self) -> &Column {
        &self.core.acked
    }

    /// Reads what it acknowledged from the database, the first time only.
    pub async fn load_acknowledged(&mut self, store: &Store) -> Result<(), StoreError> {
        self.core.load_acknowledged(store).await
    }

    /// Forgets what it acknowledged of `skus` (in memory: the caller writes the voids, as
    /// none, with `store::write_voids`): they are planned as never pushed.
    pub fn void(&mut self, skus: &[SkuId]) {
        for &sku in skus {
            self.core.acked.clear(sku);
        }
    }
}

impl Core {
    /// Reads what it acknowledged from the database, the first time only.
    pub(super) async fn load_acknowledged(&mut self, store: &Store) -> Result<(), StoreError> {
        if self.acked_loaded {
            return Ok(());
        }
        let id = self.id;
        // A dry run's target without a row has acknowledged nothing (row ids start at 1).
        if id > 0 {
            self.acked = store
                .call(move |c| store::load_column(c, Side::Target, id))
                .await?;
        }
        self.acked_loaded = true;
        Ok(())
    }
}

impl Kind {
    /// Whether its own part lets the target's plan be known empty without being made (see
    /// [`super::settled`]): a catalogue's only while its product list is in memory and not due
    /// to be read again.
    pub(super) fn at_rest(&self) -> bool {
        match self {
            Kind::Quantities(_) => true,
            Kind::Flags(flags) => flags.catalogue_is_fresh(),
        }
    }
}
