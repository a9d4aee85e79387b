//! One fleet worker: it holds its fair share of the lease groups and runs, for each shop of a
//! group it holds, the same daemon a single shop runs (`daemon::run`), on that shop's schema,
//! every write fenced by the lease.
//!
//! Every third of a lease's time to live the worker says it is alive, renews what it holds (a
//! lease it cannot renew is gone: its shops stop, with a WARN), hands over what is beyond its
//! share, and claims free or expired groups up to its share. The shops' folder is read again on
//! SIGHUP and every minute: a shop added is offered, a shop removed is stopped and its lease
//! retired (by the worker holding it, when that worker reads its folder: see `lease`), a shop
//! whose file changed is restarted on its new file. On SIGTERM every
//! shop stops (a push in flight finishes its request) and every lease is handed over at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, warn};

use super::lease::{Lease, Leases};
use super::settings::FleetSettings;
use super::shops::{self, Shop, Shops};
use crate::daemon::{self, Daemon};
use crate::ops::notify::Notifier;
use crate::store::db::pool::{DbError, pool};
use crate::store::db::postgres::Fence;
use crate::store::{Store, StoreError};

/// How often the shops' folder is read again without a SIGHUP.
const RESCAN_EVERY: Duration = Duration::from_secs(60);
/// How long a shop's daemon may take to finish its request in flight when the worker lets the
/// shop go (a hand-over, SIGTERM): the same grace a single daemon has.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Why the worker could not serve.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The shops' folder cannot be read.
    #[error("fleet.shops {dir}: {source}")]
    Shops {
        /// The folder.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A shop running under a lease this worker holds.
struct Running {
    /// The file's text it runs on (a changed file restarts it).
    text: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    store: Store,
}

/// A lease held, and its shops.
struct Held {
    lease: Lease,
    shops: BTreeMap<String, Running>,
}

/// The worker's state.
struct Worker {
    settings: FleetSettings,
    leases: Leases,
    pool: deadpool_postgres::Pool,
    shops: Shops,
    held: BTreeMap<String, Held>,
}

/// Serves shops until `cancel`; `reloads` asks for the shops' folder to be read again.
pub async fn serve(
    settings: FleetSettings,
    cancel: CancellationToken,
    mut reloads: mpsc::Receiver<()>,
    notifier: &mut Notifier,
) -> Result<(), FleetError> {
    crate::http::name_worker(&settings.worker);
    // A connection for each shop's calls and the leases' own, shared.
    let pool = pool(settings.database.expose_secret(), 16)?;
    let leases = Leases::new(pool.clone(), &settings.worker, settings.lease_ttl);
    leases.migrate().await?;
    let mut worker = Worker {
        shops: Shops::default(),
        held: BTreeMap::new(),
        leases,
        pool,
        settings,
    };
    worker.rescan().await?;
    info!(
        worker = %worker.settings.worker,
        shops = worker.shops.shops.len(),
        groups = worker.shops.groups.len(),
        lease_ttl_ms = worker.settings.lease_ttl.as_millis() as u64,
        "fleet worker started"
    );
    // Ready: the database answers, its lease tables are made, the shops' folder was read.
    notifier.ready();
    let mut tick = tokio::time::interval(worker.settings.lease_ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scanned = Instant::now();
    loop {
        let mut rescan = false;
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
            Some(()) = reloads.recv() => rescan = true,
        }
        if rescan || scanned.elapsed() >= RESCAN_EVERY {
            scanned = Instant::now();
            if let Err(e) = worker.rescan().await {
                warn!(error = %e, "fleet: the shops could not be read again; serving those known");
            }
        }
        if let Err(e) = worker.step().await {
            warn!(error = %e, "fleet: the database did not answer; trying again");
            // A lease that could not be renewed in time is gone for this worker, whatever the
            // database says later: its shops stop acting now.
            worker.drop_lapsed().await;
        }
    }
    worker.stop_all().await;
    Ok(())
}

impl Worker {
    /// Reads the shops' folder; offers new groups, retires removed ones, restarts shops whose
    /// file changed.
    async fn rescan(&mut self) -> Result<(), FleetError> {
        let dir = self.settings.shops.clone();
        let scanned = tokio::task::spawn_blocking(move || shops::scan(&dir))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(|source| FleetError::Shops {
                dir: self.settings.shops.display().to_string(),
                source,
            })?;
        for (path, why) in &scanned.refused {
            error!(file = %path.display(), "fleet: this shop is not served: {why}");
        }
        self.shops = scanned;
        // What runs must be what the files say now.
        let held: Vec<String> = self.held.keys().cloned().collect();
        for group in held {
            let wanted = self.shops.groups.get(&group).cloned().unwrap_or_default();
            let running: Vec<String> = self.held[&group].shops.keys().cloned().collect();
            for name in running {
                let same = self.shops.shops.get(&name).is_some_and(|shop| {
                    wanted.contains(&name) && shop.text == self.held[&group].shops[&name].text
                });
                if !same
                    && let Some(h) = self.held.get_mut(&group)
                    && let Some(running) = h.shops.remove(&name)
                {
                    info!(shop = %name, "fleet: the shop's file changed or went: stopping it");
                    stop(running).await;
                }
            }
            self.start_missing(&group).await;
        }
        // A group that went (its shops stopped above) is let go with its row.
        let gone: Vec<String> = (self.held.keys())
            .filter(|group| !self.shops.groups.contains_key(*group))
            .cloned()
            .collect();
        for group in gone {
            self.held.remove(&group);
            info!(group = %group, "fleet: the group is no longer in the shops' folder: its lease is retired");
        }
        // Only once the shops that went are stopped: a row retired, or a group's shops changed,
        // lets another worker claim them.
        let groups: Vec<String> = self.shops.groups.keys().cloned().collect();
        self.leases.retire(&groups).await?;
        self.leases.offer(&self.shops.groups).await?;
        Ok(())
    }

    /// One round: heartbeat, renewals, hand-overs, claims.
    async fn step(&mut self) -> Result<(), DbError> {
        let began = Instant::now();
        self.leases.heartbeat().await?;
        // Every lease held, renewed in one statement.
        let groups: Vec<String> = self.held.keys().cloned().collect();
        let mut leases: Vec<Lease> = self.held.values().map(|h| h.lease.clone()).collect();
        let renewed = self.leases.renew_all(&mut leases).await?;
        for ((group, lease), renewed) in groups.into_iter().zip(leases).zip(renewed) {
            if renewed && let Some(h) = self.held.get_mut(&group) {
                h.lease = lease;
            }
            if renewed {
                let h = &self.held[&group];
                for running in h.shops.values() {
                    if let Some(pg) = running.store.postgres() {
                        pg.act_until(Some(h.lease.act_until));
                    }
                }
            } else if let Some(h) = self.held.remove(&group) {
                warn!(
                    group = %group,
                    epoch = h.lease.epoch,
                    "fleet: the lease is no longer this worker's (it expired or moved): letting its shops go"
                );
                for (_, running) in h.shops {
                    stop(running).await;
                }
            }
        }
        let held: Vec<Lease> = self.held.values().map(|h| h.lease.clone()).collect();
        let plan = self.leases.rebalance(&held).await?;
        for lease in plan.release {
            if let Some(h) = self.held.remove(&lease.group) {
                for (_, running) in h.shops {
                    stop(running).await;
                }
            }
            self.leases.release(&lease).await?;
            info!(group = %lease.group, "fleet: handed over to even the shares out");
        }
        for group in plan.claim {
            // Starting a shop makes and migrates its schema the first time: a worker claiming
            // hundreds at once must not hold up its renewals past a lease, so it claims for a
            // sixth of the time to live and takes the rest at its next rounds.
            if began.elapsed() > self.settings.lease_ttl / 6 {
                break;
            }
            if !self.shops.groups.contains_key(&group) {
                continue;
            }
            if let Some(lease) = self.leases.claim(&group).await? {
                info!(group = %group, epoch = lease.epoch, "fleet: claimed");
                self.held.insert(
                    group.clone(),
                    Held {
                        lease,
                        shops: BTreeMap::new(),
                    },
                );
                self.start_missing(&group).await;
            }
        }
        Ok(())
    }

    /// Lets go of every lease whose time to act has passed.
    async fn drop_lapsed(&mut self) {
        let now = Instant::now();
        let lapsed: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| !h.lease.may_act(now))
            .map(|(g, _)| g.clone())
            .collect();
        for group in lapsed {
            if let Some(h) = self.held.remove(&group) {
                warn!(group = %group, epoch = h.lease.epoch, "fleet: the lease could not be renewed in time: letting its shops go");
                for (_, running) in h.shops {
                    stop(running).await;
                }
            }
        }
    }

    /// Starts the shops of `group` (held) that do not run yet.
    async fn start_missing(&mut self, group: &str) {
        let Some(names) = self.shops.groups.get(group).cloned() else {
            return;
        };
        for name in names {
            let Some(h) = self.held.get(group) else {
                return;
            };
            if h.shops.contains_key(&name) {
                continue;
            }
            let Some(shop) = self.shops.shops.get(&name) else {
                continue;
            };
            let fence = Fence {
                group: group.to_owned(),
                owner: self.settings.worker.clone(),
                epoch: h.lease.epoch,
            };
            match start(shop, self.pool.clone(), fence, h.lease.act_until).await {
                Ok(running) => {
                    if let Some(h) = self.held.get_mut(group) {
                        h.shops.insert(name, running);
                    }
                }
                Err(e) => {
                    error!(shop = %name, error = %e, "fleet: the shop could not be started");
                }
            }
        }
    }

    /// SIGTERM: every shop stops, every lease is handed over at once.
    async fn stop_all(&mut self) {
        let held = std::mem::take(&mut self.held);
        let stops = held.into_values().map(|h| {
            let leases = self.leases.clone();
            async move {
                futures_util::future::join_all(h.shops.into_values().map(stop)).await;
                if let Err(e) = leases.release(&h.lease).await {
                    warn!(group = %h.lease.group, error = %e, "fleet: could not hand over; it expires within its time to live");
                }
            }
        });
        futures_util::future::join_all(stops).await;
        if let Err(e) = self.leases.leave().await {
            warn!(error = %e, "fleet: could not say goodbye; the others notice within a lease's time to live");
        }
        info!("fleet worker stopped; its shops are handed over");
    }
}

/// Runs `shop`'s daemon on its schema, its writes fenced by `fence`.
async fn start(
    shop: &Shop,
    pool: deadpool_postgres::Pool,
    fence: Fence,
    act_until: Instant,
) -> Result<Running, StoreError> {
    let store = Store::open_postgres(pool, &shop.schema).await?;
    if let Some(pg) = store.postgres() {
        pg.set_fence(Some(fence));
        pg.act_until(Some(act_until));
    }
    let cancel = CancellationToken::new();
    let config = shop.config.clone();
    // At ERROR level, so that every line of the shop names it whatever the log level (a span
    // at INFO is off under `log_level = "warn"`, and its lines would lose `shop=`).
    let span = tracing::error_span!("shop", shop = %shop.name);
    let task = tokio::spawn(run_shop(config, store.clone(), cancel.clone()).instrument(span));
    info!(shop = %shop.name, schema = %shop.schema, "fleet: serving the shop");
    Ok(Running {
        text: shop.text.clone(),
        cancel,
        task,
        store,
    })
}

/// The shop's daemon, as `invsync run` runs it (no signals of its own, no systemd).
async fn run_shop(config: Arc<crate::config::Config>, store: Store, cancel: CancellationToken) {
    let prepared = match crate::mapper::file::prepare_with(config.clone(), Some(&store)).await {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(errors)) => {
            error!(error = %errors, "the shop's mapping file is not valid: the shop is not synced");
            return;
        }
        Err(e) => {
            error!(error = %e, "the shop's state could not be read: the shop is not synced");
            return;
        }
    };
    let engine = match daemon::cycle::Engine::with_mapping(
        config.clone(),
        prepared,
        store.clone(),
        &cancel,
        false,
    )
    .await
    {
        Ok(engine) => engine,
        Err(e) => {
            error!(error = %e, "the shop could not be started: it is not synced");
            return;
        }
    };
    daemon::refresh_metrics(&store, engine.metrics());
    // Reloads are the worker's: a changed file restarts the shop.
    let (_reload, reloads) = mpsc::channel(1);
    let running = Daemon {
        engine,
        config,
        store,
        cancel,
        reloads,
    };
    if let Err(e) = daemon::run(running, &Notifier::disabled()).await {
        error!(error = %e, "the shop's daemon stopped");
    }
}

/// Stops a shop: its request in flight finishes (within the grace), nothing new starts.
async fn stop(running: Running) {
    running.cancel.cancel();
    if let Some(pg) = running.store.postgres() {
        // Nothing more goes out, whatever is still running.
        pg.act_until(Some(Instant::now()));
    }
    let mut task = running.task;
    if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
        task.abort();
    }
}
