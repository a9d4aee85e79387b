//! One read of a feed's lists (see the module above): each list from page 1 down to where its
//! last read left it, the other lists' tops for orders that left, a second pass or a full read
//! where the count says so, and the memory the next read goes on from.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use tokio::time::Instant;

use super::{FeedMemory, How, ListMemory, OpenOrders, Walked, believable, margin};
use crate::http::Meter;
use crate::services::ConnectorError;
use crate::services::hardtofind::listed::Listed;
use crate::services::hardtofind::orders::{Listing, OrderFeed, each_once, keep_newer};
use crate::services::hardtofind::pages::ListRead;
use crate::services::hardtofind::wire::{Date, OrderStatus, OrderSummary};

/// One list in the course of a read.
enum Read<'m, T> {
    Full(ListRead<T>),
    Incremental {
        base: &'m ListMemory<T>,
        seen: HashMap<String, T>,
        total: u64,
        newest: Option<Date>,
    },
    Failed(String),
}

/// Where each order read this time was last seen: the list of its newest sighting (of two
/// dated alike, the later read).
#[derive(Default)]
struct Sightings(HashMap<String, (OrderStatus, Option<Date>)>);

impl Sightings {
    fn see<T: Listed>(&mut self, orders: &HashMap<String, T>, list: &OrderStatus) {
        for (id, order) in orders {
            let at = order.dates().updated_at;
            let older = match self.0.get(id) {
                Some((_, Some(seen))) => at.is_some_and(|at| at < *seen),
                _ => false,
            };
            if !older {
                self.0.insert(id.clone(), (list.clone(), at));
            }
        }
    }

    fn list_of(&self, id: &str) -> Option<&OrderStatus> {
        self.0.get(id).map(|(list, _)| list)
    }

    /// An incremental list's orders: those remembered and not seen elsewhere since, and
    /// those seen in it.
    fn merged<'a, T>(
        &self,
        status: &OrderStatus,
        base: &'a ListMemory<T>,
        seen: &'a HashMap<String, T>,
    ) -> HashSet<&'a str> {
        let here = |id: &&'a str| self.list_of(id) == Some(status);
        let mut ids: HashSet<&str> = (base.ids.iter().map(String::as_str))
            .filter(|id| self.list_of(id).is_none_or(|l| l == status))
            .collect();
        ids.extend(seen.keys().map(String::as_str).filter(here));
        ids
    }

    /// How an incremental list's orders compare with its `total_results` (`None` for the
    /// others).
    fn tally<T>(&self, status: &OrderStatus, read: &Read<T>) -> Option<Ordering> {
        match read {
            Read::Incremental {
                base, seen, total, ..
            } => Some((self.merged(status, base, seen).len() as u64).cmp(total)),
            Read::Full(_) | Read::Failed(_) => None,
        }
    }
}

/// The requests of one read and what they saw.
struct Reading<'a> {
    feed: &'a OrderFeed,
    meter: &'a Meter,
    sightings: Sightings,
    walks: Vec<Walked>,
}

impl Reading<'_> {
    async fn full<'m, T: Listed + 'm>(
        &mut self,
        status: &OrderStatus,
        why: &'static str,
    ) -> Result<Read<'m, T>, ConnectorError> {
        let read = self.feed.read_in_full(self.meter, status).await?;
        self.walks.push(Walked {
            list: status.clone(),
            how: How::Full(why),
            pages: read.pages,
        });
        self.sightings.see(&read.orders, status);
        Ok(Read::Full(read))
    }

    async fn incremental<'m, T: Listed + 'm>(
        &mut self,
        status: &OrderStatus,
        base: &'m ListMemory<T>,
    ) -> Result<Read<'m, T>, ConnectorError> {
        let since = base.mark.map(|mark| mark.0 - margin());
        let walk = self.feed.walk(self.meter, status, since).await?;
        self.walks.push(Walked {
            list: status.clone(),
            how: How::Incremental,
            pages: walk.pages,
        });
        if !walk.in_order || !walk.unreadable.is_empty() {
            let label = &self.feed.session.endpoint.label;
            tracing::info!(endpoint = %label, %status, "the list is not newest first, or an order in it has no date or no id; reading it in full");
            return self.full(status, "not in order").await;
        }
        self.sightings.see(&walk.orders, status);
        Ok(Read::Incremental {
            base,
            seen: walk.orders,
            total: walk.total,
            newest: walk.newest,
        })
    }

    /// Reads `status`'s list from page 1 down to `since`, only to see which orders went there.
    async fn peek(&mut self, status: &OrderStatus, since: chrono::DateTime<chrono::FixedOffset>) {
        // Only the ids and dates are looked at: the summary is the cheapest reading.
        let walk = (self.feed)
            .walk::<OrderSummary>(self.meter, status, Some(since))
            .await;
        match walk {
            Ok(walk) => {
                self.walks.push(Walked {
                    list: status.clone(),
                    how: How::Peek,
                    pages: walk.pages,
                });
                self.sightings.see(&walk.orders, status);
            }
            // What it would have shown is then unexplained: the lists concerned are read in
            // full.
            Err(e) => {
                tracing::debug!(endpoint = %self.feed.session.endpoint.label, %status, error = %e, "the top of a list could not be read")
            }
        }
    }
}

impl OrderFeed {
    /// The open orders of `states`, read from where `memory` left them (see the module
    /// documentation), or in full for `full`'s reason: as summaries for the reservations, or
    /// whole for the relay (`T`). Fails as [`OrderFeed::open_orders`] does; `memory` is then
    /// still the one to go on from.
    pub async fn read_open_orders<T: Listed + Clone>(
        &self,
        meter: &Meter,
        states: &[OrderStatus],
        memory: &FeedMemory<T>,
        full: Option<&'static str>,
    ) -> Result<OpenOrders<T>, ConnectorError> {
        (self.read_open_orders_at(meter, states, memory, full, Instant::now())).await
    }

    /// [`OrderFeed::read_open_orders`] at `now` (our monotonic clock).
    pub(super) async fn read_open_orders_at<T: Listed + Clone>(
        &self,
        meter: &Meter,
        states: &[OrderStatus],
        memory: &FeedMemory<T>,
        full: Option<&'static str>,
        now: Instant,
    ) -> Result<OpenOrders<T>, ConnectorError> {
        let states = each_once(states);
        let mut reading = Reading {
            feed: self,
            meter,
            sightings: Sightings::default(),
            walks: Vec::new(),
        };
        let mut lists: Vec<(&OrderStatus, Read<T>)> = Vec::new();
        for &status in &states {
            let why = full.or_else(|| memory.full_because(status, now));
            let read = match (why, memory.lists.get(status)) {
                (None, Some(base)) => reading.incremental(status, base).await,
                (why, _) => reading.full(status, why.unwrap_or("no earlier read")).await,
            };
            lists.push((status, tolerated(read, status, &lists, states.len())?));
        }
        // More orders than counted: some left. Those seen in another list are explained; the
        // others are looked for at the top of the lists they can have gone to.
        let over: Vec<Date> = (lists.iter())
            .filter(|(status, read)| {
                reading.sightings.tally(status, read) == Some(Ordering::Greater)
            })
            .filter_map(|(_, read)| match read {
                Read::Incremental { base, .. } => base.mark,
                _ => None,
            })
            .collect();
        if let Some(since) = over.iter().min() {
            let since = since.0 - margin();
            // The document's states: an order that went to one it does not name is not found,
            // and its list is read in full.
            for exit in OrderStatus::TABLE.iter().filter(|s| !states.contains(s)) {
                reading.peek(exit, since).await;
            }
        }
        // Fewer: some came in while we paged, at the top: from page 1 once more.
        for i in 0..lists.len() {
            let (status, base) = match &lists[i] {
                (status, read @ Read::Incremental { base, .. })
                    if reading.sightings.tally(status, read) == Some(Ordering::Less) =>
                {
                    (*status, *base)
                }
                _ => continue,
            };
            let again = reading.incremental(status, base).await;
            let again = tolerated(again, status, &lists, states.len())?;
            let first = std::mem::replace(&mut lists[i].1, Read::Failed(String::new()));
            lists[i].1 = match (first, again) {
                (
                    Read::Incremental {
                        mut seen, newest, ..
                    },
                    Read::Incremental {
                        seen: more, total, ..
                    },
                ) => {
                    seen.extend(more);
                    Read::Incremental {
                        base,
                        seen,
                        total,
                        newest,
                    }
                }
                (_, again) => again,
            };
        }
        // Still not adding up: in full.
        for i in 0..lists.len() {
            let (status, read) = &lists[i];
            if reading
                .sightings
                .tally(status, read)
                .is_none_or(Ordering::is_eq)
            {
                continue;
            }
            let status = *status;
            let label = &self.session.endpoint.label;
            tracing::info!(endpoint = %label, %status, "the orders read since the last read do not add up to the list's count; reading it in full");
            let read = reading.full(status, "did not add up").await;
            lists[i].1 = tolerated(read, status, &lists, states.len())?;
        }
        Ok(assemble(lists, reading, memory, now))
    }
}

/// A list that failed on its own is one failed list, unless every list failed: an error of the
/// account (login, network) is every list's.
fn tolerated<'m, T>(
    read: Result<Read<'m, T>, ConnectorError>,
    status: &OrderStatus,
    lists: &[(&OrderStatus, Read<T>)],
    states: usize,
) -> Result<Read<'m, T>, ConnectorError> {
    let failed = (lists.iter())
        .filter(|(s, r)| *s != status && matches!(r, Read::Failed(_)))
        .count();
    match read {
        Err(e @ ConnectorError::Malformed(_)) if failed + 1 < states => {
            Ok(Read::Failed(format!("the {status} list: {e}")))
        }
        other => other,
    }
}

/// The listing, and the memory the next read goes on from.
fn assemble<T: Listed + Clone>(
    lists: Vec<(&OrderStatus, Read<T>)>,
    reading: Reading,
    memory: &FeedMemory<T>,
    now: Instant,
) -> OpenOrders<T> {
    let sightings = &reading.sightings;
    let mut found: HashMap<String, T> = HashMap::new();
    let (mut unreadable, mut failed, mut unchanged) = (Vec::new(), Vec::new(), Vec::new());
    let mut next = FeedMemory {
        unmoved: memory.unmoved,
        ..FeedMemory::default()
    };
    for (status, read) in lists {
        match read {
            Read::Failed(error) => failed.push(error),
            Read::Full(read) => {
                // An order seen since in another list is that list's.
                let ids: HashSet<String> = (read.orders.keys())
                    .filter(|id| sightings.list_of(id) == Some(status))
                    .cloned()
                    .collect();
                // An empty list has no mark, and the next read reads it all.
                let trusted = read.in_order && read.unreadable.is_empty();
                if trusted && read.mark.is_none_or(|mark| believable(&mark)) {
                    let mark = read.mark;
                    let bad = (ids.iter())
                        .filter_map(|id| read.orders.get(id).filter(|o| !o.whole()))
                        .map(|o| (o.id().to_owned(), o.clone()))
                        .collect();
                    let list = ListMemory {
                        ids,
                        bad,
                        mark,
                        walked_in_full: now,
                    };
                    next.lists.insert(status.clone(), list);
                }
                for (id, order) in read.orders {
                    keep_newer(&mut found, id, order);
                }
                unreadable.extend(read.unreadable);
            }
            Read::Incremental {
                base, seen, newest, ..
            } => {
                let ids: HashSet<String> = (sightings.merged(status, base, &seen).into_iter())
                    .map(str::to_owned)
                    .collect();
                let mut bad = HashMap::new();
                for id in &ids {
                    match seen.get(id).or_else(|| base.bad.get(id)) {
                        Some(order) => {
                            if !order.whole() {
                                bad.insert(id.clone(), order.clone());
                            }
                            keep_newer(&mut found, id.clone(), order.clone());
                        }
                        None => unchanged.push(id.clone()),
                    }
                }
                // Any change after this read's page 1 is dated after the newer of the two.
                let mark = newest.max(base.mark);
                if mark.is_none_or(|mark| believable(&mark)) {
                    let list = ListMemory {
                        ids,
                        bad,
                        mark,
                        walked_in_full: base.walked_in_full,
                    };
                    next.lists.insert(status.clone(), list);
                }
            }
        }
    }
    let listed =
        |id: &str| found.contains_key(id) || next.lists.values().any(|l| l.ids.contains(id));
    for list in memory.lists.values() {
        for id in list.ids.iter().filter(|id| !listed(id)) {
            next.left.insert(id.clone(), list.mark);
        }
    }
    unchanged.sort_unstable_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    OpenOrders {
        listing: Listing::of(found, unreadable, failed),
        unchanged,
        walks: reading.walks,
        next,
    }
}
