//! Leases on lease groups (the shops sharing a remote account), kept in PostgreSQL and timed by
//! its clock: claims, renewals, hand-overs, the fencing of every state write, and each worker's
//! fair share of the groups.
//!
//! Every time is the database's `clock_timestamp()` (not `now()`, which is when a transaction
//! began: a transaction that waited would read an old time), so workers whose clocks disagree
//! still agree on who holds what.
//!
//! A lease fences a *group*, and a shop can change groups (the first shop of a shared login's
//! group removed renames the group; a login changed moves a shop to another). So each row also
//! says which shops it covers, and a group is claimed only while no live lease of another group
//! covers one of its shops: a shop is never run under two leases at once. Only the holder (or
//! anyone, once a row is free or expired) changes a row's shops or retires it: a worker whose
//! folder is behind, or ahead, takes nothing from another's running shops.

use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool, Transaction};

use crate::store::db::pool::DbError;

/// The lease table and the workers' heartbeats, in a schema of their own (every statement
/// names it: a connection of the pool may be in a shop's schema).
pub const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS invsync_fleet;
CREATE TABLE IF NOT EXISTS invsync_fleet.fleet_leases (
    lease_group TEXT PRIMARY KEY,
    owner TEXT,
    epoch BIGINT NOT NULL DEFAULT 0,
    expires_at TIMESTAMPTZ NOT NULL DEFAULT 'epoch'
);
ALTER TABLE invsync_fleet.fleet_leases ADD COLUMN IF NOT EXISTS shops TEXT[] NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS invsync_fleet.fleet_workers (
    worker TEXT PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);
";

/// A lease this worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease group.
    pub group: String,
    /// Its epoch: every claim moves it on.
    pub epoch: i64,
    /// Until when this worker may act on it, by its own clock: the lease's time to live less a
    /// margin, counted from *before* the claim or renewal was sent, so that it ends before the
    /// database lets another worker claim the group, whatever the network's delay.
    pub act_until: Instant,
}

impl Lease {
    /// Whether this worker may still act on the group (push, place an order) now.
    pub fn may_act(&self, now: Instant) -> bool {
        now < self.act_until
    }
}

/// A state write refused because its lease moved on (or expired): the worker lets the group go.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The lease is not this worker's any more, under this epoch.
    #[error("the lease of {group} (epoch {epoch}) has moved on: the write is refused")]
    Fenced {
        /// The group.
        group: String,
        /// The epoch that was held.
        epoch: i64,
    },
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for FenceError {
    fn from(e: tokio_postgres::Error) -> FenceError {
        FenceError::Db(DbError::Sql(e))
    }
}

/// One worker's view of the leases.
#[derive(Clone)]
pub struct Leases {
    pool: Pool,
    worker: String,
    ttl: Duration,
}

/// What a worker should do to hold its fair share: claim these groups, hand these leases over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rebalance {
    /// How many groups this worker should hold.
    pub share: usize,
    /// Free or expired groups to claim.
    pub claim: Vec<String>,
    /// Leases held beyond the share, to hand over.
    pub release: Vec<Lease>,
}

impl Leases {
    /// The leases as `worker` (unique among the workers: host name and process id, say) sees
    /// them, each living `ttl` from its last renewal.
    pub fn new(pool: Pool, worker: &str, ttl: Duration) -> Leases {
        Leases {
            pool,
            worker: worker.to_owned(),
            ttl,
        }
    }

    /// This worker's name.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Makes the tables if they are missing.
    pub async fn migrate(&self) -> Result<(), DbError> {
        // Workers starting together take turns: `IF NOT EXISTS` alone races (two creations of
        // one schema, and the second fails on PostgreSQL's catalogue).
        self.client()
            .await?
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtext('invsync fleet tables')); {SCHEMA} COMMIT;"
            ))
            .await?;
        Ok(())
    }

    async fn client(&self) -> Result<Object, DbError> {
        Ok(self.pool.get().await?)
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// How long before the database's expiry this worker stops acting: a third of the time to
    /// live, which is also how often a lease is renewed at most.
    fn act_until(&self, sent: Instant) -> Instant {
        sent + self.ttl - self.ttl / 3
    }

    /// Makes sure every group in `groups` (its name and its shops) has a row (free, when new),
    /// covering the shops this worker's folder says; a row another worker holds keeps what its
    /// holder said (the holder's folder is what its running shops follow).
    pub async fn offer(
        &self,
        groups: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<(), DbError> {
        let (names, shops): (Vec<&str>, Vec<&str>) = groups
            .iter()
            .flat_map(|(group, shops)| {
                shops
                    .iter()
                    .map(move |shop| (group.as_str(), shop.as_str()))
            })
            .unzip();
        self.client()
            .await?
            .execute(
                "INSERT INTO invsync_fleet.fleet_leases AS l (lease_group, shops) \
                 SELECT g, array_agg(s ORDER BY s) FROM unnest($1::text[], $2::text[]) AS t(g, s) GROUP BY g \
                 ON CONFLICT (lease_group) DO UPDATE SET shops = EXCLUDED.shops \
                 WHERE l.shops IS DISTINCT FROM EXCLUDED.shops \
                 AND (l.owner IS NULL OR l.owner = $3 OR l.expires_at <= clock_timestamp())",
                &[&names, &shops, &self.worker],
            )
            .await?;
        Ok(())
    }

    /// Forgets the groups no longer configured (their shops' files were removed, or the shops
    /// went to other groups): those free, expired or this worker's. One another worker holds is
    /// left to it: its folder still has the shops, and it retires the row when it reads its
    /// folder again (on its SIGHUP, or within a minute).
    pub async fn retire(&self, groups: &[String]) -> Result<u64, DbError> {
        Ok(self
            .client()
            .await?
            .execute(
                "DELETE FROM invsync_fleet.fleet_leases WHERE NOT (lease_group = ANY($1::text[])) \
                 AND (owner IS NULL OR owner = $2 OR expires_at <= clock_timestamp())",
                &[&groups, &self.worker],
            )
            .await?)
    }

    /// Says this worker is alive (the fair shares count the workers seen within a time to
    /// live).
    pub async fn heartbeat(&self) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO invsync_fleet.fleet_workers (worker, seen_at) VALUES ($1, clock_timestamp()) \
                 ON CONFLICT (worker) DO UPDATE SET seen_at = EXCLUDED.seen_at",
                &[&self.worker],
            )
            .await?;
        Ok(())
    }

    /// Says this worker is gone (a worker stopping hands its share over at once).
    pub async fn leave(&self) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "DELETE FROM invsync_fleet.fleet_workers WHERE worker = $1",
                &[&self.worker],
            )
            .await?;
        Ok(())
    }

    /// Claims `group` if it is free or its lease expired, and no live lease of another group
    /// covers one of its shops: the lease, under a new epoch.
    pub async fn claim(&self, group: &str) -> Result<Option<Lease>, DbError> {
        let sent = Instant::now();
        let mut client = self.client().await?;
        // Claims take turns, so that two claims of groups sharing a shop (one renamed while
        // its shops still run under the old name) cannot both see the other's row free.
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('invsync fleet claims'))",
            &[],
        )
        .await?;
        let row = tx
            .query_opt(
                "UPDATE invsync_fleet.fleet_leases AS l SET owner = $1, epoch = epoch + 1, \
                 expires_at = clock_timestamp() + $3 * interval '1 millisecond' \
                 WHERE l.lease_group = $2 AND (l.owner IS NULL OR l.expires_at <= clock_timestamp()) \
                 AND NOT EXISTS (SELECT 1 FROM invsync_fleet.fleet_leases o \
                     WHERE o.lease_group <> l.lease_group AND o.owner IS NOT NULL \
                     AND o.expires_at > clock_timestamp() AND o.shops && l.shops) \
                 RETURNING epoch",
                &[&self.worker, &group, &(self.ttl_ms() as f64)],
            )
            .await?;
        tx.commit().await?;
        Ok(row.map(|row| Lease {
            group: group.to_owned(),
            epoch: row.get(0),
            act_until: self.act_until(sent),
        }))
    }

    /// Extends `lease` by a time to live; `false` when it is not this worker's any more (it
    /// expired, or another worker holds it): the worker lets the group go.
    pub async fn renew(&self, lease: &mut Lease) -> Result<bool, DbError> {
        let sent = Instant::now();
        let renewed = self
            .client()
            .await?
            .execute(
                "UPDATE invsync_fleet.fleet_leases SET expires_at = clock_timestamp() + $4 * interval '1 millisecond' \
                 WHERE lease_group = $1 AND owner = $2 AND epoch = $3 \
                 AND expires_at > clock_timestamp()",
                &[&lease.group, &self.worker, &lease.epoch, &(self.ttl_ms() as f64)],
            )
            .await?;
        if renewed == 1 {
            lease.act_until = self.act_until(sent);
        }
        Ok(renewed == 1)
    }

    /// Extends every lease of `leases` still this worker's by a time to live, in one statement
    /// (a worker holding a thousand groups renews them with one round trip); returns whether
    /// each was renewed, in order. One not renewed is gone: the worker lets its group go.
    pub async fn renew_all(&self, leases: &mut [Lease]) -> Result<Vec<bool>, DbError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let sent = Instant::now();
        let groups: Vec<&str> = leases.iter().map(|l| l.group.as_str()).collect();
        let epochs: Vec<i64> = leases.iter().map(|l| l.epoch).collect();
        let renewed: std::collections::HashSet<String> = self
            .client()
            .await?
            .query(
                "UPDATE invsync_fleet.fleet_leases AS l \
                 SET expires_at = clock_timestamp() + $2 * interval '1 millisecond' \
                 FROM unnest($3::text[], $4::bigint[]) AS held(lease_group, epoch) \
                 WHERE l.lease_group = held.lease_group AND l.epoch = held.epoch \
                 AND l.owner = $1 AND l.expires_at > clock_timestamp() \
                 RETURNING l.lease_group",
                &[&self.worker, &(self.ttl_ms() as f64), &groups, &epochs],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(leases
            .iter_mut()
            .map(|lease| {
                let ok = renewed.contains(&lease.group);
                if ok {
                    lease.act_until = self.act_until(sent);
                }
                ok
            })
            .collect())
    }

    /// Hands `lease` over: the group is free at once.
    pub async fn release(&self, lease: &Lease) -> Result<(), DbError> {
        self.client()
            .await?
            .execute(
                "UPDATE invsync_fleet.fleet_leases SET owner = NULL, expires_at = clock_timestamp() \
                 WHERE lease_group = $1 AND owner = $2 AND epoch = $3",
                &[&lease.group, &self.worker, &lease.epoch],
            )
            .await?;
        Ok(())
    }

    /// Begins a state write for `lease`'s group: a transaction in which the lease was found
    /// this worker's, under its epoch and unexpired, and stays so until it commits (the row is
    /// share-locked: a claim waits for the commit, then moves the epoch on).
    pub async fn fenced<'c>(
        &self,
        client: &'c mut Object,
        lease: &Lease,
    ) -> Result<Transaction<'c>, FenceError> {
        let tx = client.transaction().await?;
        let held = tx
            .query_opt(
                "SELECT 1 FROM invsync_fleet.fleet_leases WHERE lease_group = $1 AND owner = $2 AND epoch = $3 \
                 AND expires_at > clock_timestamp() FOR SHARE",
                &[&lease.group, &self.worker, &lease.epoch],
            )
            .await?;
        if held.is_none() {
            return Err(FenceError::Fenced {
                group: lease.group.clone(),
                epoch: lease.epoch,
            });
        }
        Ok(tx)
    }

    /// A connection from the pool, for [`Leases::fenced`].
    pub async fn connection(&self) -> Result<Object, DbError> {
        self.client().await
    }

    /// What this worker should claim and hand over to hold its fair share, `held` being the
    /// leases it holds: the groups spread over the workers seen within a time to live, in
    /// order of their names, the first `groups % workers` taking one more. Shares are the same
    /// for every worker that asks at the same moment, so the workers settle without trading
    /// groups back and forth, within one group of each other.
    pub async fn rebalance(&self, held: &[Lease]) -> Result<Rebalance, DbError> {
        let client = self.client().await?;
        let workers: Vec<String> = client
            .query(
                "SELECT worker FROM invsync_fleet.fleet_workers \
                 WHERE seen_at > clock_timestamp() - $1 * interval '1 millisecond' ORDER BY worker",
                &[&(self.ttl_ms() as f64)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let groups: i64 = client
            .query_one("SELECT count(*) FROM invsync_fleet.fleet_leases", &[])
            .await?
            .get(0);
        let groups = usize::try_from(groups).unwrap_or(0);
        let share = share_of(&workers, &self.worker, groups);
        let mut rebalance = Rebalance {
            share,
            ..Rebalance::default()
        };
        if held.len() > share {
            // The newest claims go first: the oldest have their state warm.
            let mut newest: Vec<&Lease> = held.iter().collect();
            newest.sort_by_key(|l| std::cmp::Reverse(l.epoch));
            rebalance.release = newest[..held.len() - share]
                .iter()
                .map(|l| (*l).clone())
                .collect();
        } else if held.len() < share {
            let free = client
                .query(
                    "SELECT lease_group FROM invsync_fleet.fleet_leases \
                     WHERE owner IS NULL OR expires_at <= clock_timestamp() \
                     ORDER BY lease_group LIMIT $1",
                    &[&i64::try_from(share - held.len()).unwrap_or(i64::MAX)],
                )
                .await?;
            rebalance.claim = free.iter().map(|r| r.get(0)).collect();
        }
        Ok(rebalance)
    }
}

/// `worker`'s share of `groups` among `workers` (sorted): `groups / n`, and one more for the
/// first `groups % n`. A worker not among them (not yet seen) counts as one more, last.
pub fn share_of(workers: &[String], worker: &str, groups: usize) -> usize {
    let (rank, n) = match workers.iter().position(|w| w == worker) {
        Some(rank) => (rank, workers.len()),
        None => (workers.len(), workers.len() + 1),
    };
    groups / n + usize::from(rank < groups % n)
}

#[cfg(test)]
mod tests;
