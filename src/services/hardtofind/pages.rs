//! One state's `GET /orders` list, read page by page from page 1.
//!
//! The list is sorted newest-updated first and paged ten at a time (API_NOTES), and it moves
//! while it is read. An order updated while we page moves to page 1, and the orders above it
//! shift down one: one is seen twice, and the updated one is missed if it was below us, so a
//! walk compares what it saw with `total_results` and the list is read again when they differ.
//! An order that *leaves* the list while we page moves every order below it up one, so the
//! first order of the next page slips onto a page already read: when `total_results` falls
//! between two pages, the walk steps back by as many orders as left and reads on from there.
//! With that, every order a walk missed was updated after its page 1 was read, which is what
//! lets a later walk read only the orders updated since (see [`super::incremental`]).

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset};
use reqwest::Method;

use super::listed::{Listed, Unreadable};
use super::orders::{MAX_PAGES, OrderFeed};
use super::wire::{Date, OrderStatus, Paged, string_or_number};
use crate::http::Meter;
use crate::services::{ConnectorError, parse};

/// Orders on a page; fixed by the service (API_NOTES).
const PAGE_SIZE: u64 = 10;

/// One walk of one state's list from page 1.
pub(super) struct Walk<T> {
    /// Each order read, as last read.
    pub(super) orders: HashMap<String, T>,
    /// Orders that could not be read: they count towards `total_results` all the same.
    pub(super) unreadable: Vec<Unreadable>,
    /// `total_results` of the last page read: the newest count the service gave.
    pub(super) total: u64,
    /// Requests made (`GET /orders`).
    pub(super) pages: u64,
    /// The `updated_at` of the first order of page 1: the newest date the service had written
    /// when the walk began. `None` for an empty list, or a first order without a date.
    pub(super) newest: Option<Date>,
    /// Every order read had an `updated_at`, and they came newest first: the list is in the
    /// order the document says, so where it was cut short is known.
    pub(super) in_order: bool,
}

impl<T> Walk<T> {
    /// Whether every order `total_results` counts was seen.
    pub(super) fn complete(&self) -> bool {
        (self.orders.len() + self.unreadable.len()) as u64 == self.total
    }
}

/// One state's list read in full (see [`OrderFeed::read_in_full`]).
pub(super) struct ListRead<T> {
    /// Each order, once.
    pub(super) orders: HashMap<String, T>,
    /// Orders that could not be read.
    pub(super) unreadable: Vec<Unreadable>,
    /// The first walk's [`Walk::newest`].
    pub(super) mark: Option<Date>,
    /// Every walk was [`Walk::in_order`].
    pub(super) in_order: bool,
    /// Requests made.
    pub(super) pages: u64,
}

impl OrderFeed {
    /// One state's orders: a walk, and a second when the first's count disagrees with the
    /// service's. If the second disagrees too (orders change faster than we page), both walks'
    /// orders are kept: an order counted that has since left is looked up later, while an order
    /// missed would sell its stock twice.
    pub(super) async fn read_in_full<T: Listed>(
        &self,
        meter: &Meter,
        status: &OrderStatus,
    ) -> Result<ListRead<T>, ConnectorError> {
        let first = self.walk(meter, status, None).await?;
        let mark = first.newest;
        if first.complete() {
            return Ok(ListRead {
                orders: first.orders,
                unreadable: first.unreadable,
                mark,
                in_order: first.in_order,
                pages: first.pages,
            });
        }
        let label = &self.session.endpoint.label;
        tracing::info!(endpoint = %label, %status, seen = first.orders.len(), total = first.total,
            "orders changed while paging; reading the list again");
        let second = self.walk(meter, status, None).await?;
        let (pages, in_order) = (
            first.pages + second.pages,
            first.in_order && second.in_order,
        );
        if second.complete() {
            return Ok(ListRead {
                orders: second.orders,
                unreadable: second.unreadable,
                mark: second.newest,
                in_order,
                pages,
            });
        }
        tracing::warn!(endpoint = %label, %status, seen = second.orders.len(), total = second.total,
            "orders kept changing while paging; keeping every order either reading saw");
        let mut orders = first.orders;
        orders.extend(second.orders);
        let mut unreadable = first.unreadable;
        unreadable.extend(second.unreadable);
        Ok(ListRead {
            orders,
            unreadable,
            mark,
            in_order,
            pages,
        })
    }

    /// Reads one state's pages from page 1 until the service's `pages` or an empty page (an
    /// empty list may say `pages` 0 or 1: the document does not say which), or, with `since`,
    /// until a page whose last order was updated before it (or one that is not in order: the
    /// caller then cannot trust the cut).
    pub(super) async fn walk<T: Listed>(
        &self,
        meter: &Meter,
        status: &OrderStatus,
        since: Option<DateTime<FixedOffset>>,
    ) -> Result<Walk<T>, ConnectorError> {
        let mut walk = Walk {
            orders: HashMap::new(),
            unreadable: Vec::new(),
            total: 0,
            pages: 0,
            newest: None,
            in_order: true,
        };
        // Positions 0..covered of the list, as it stands now, have been read; pages are ten
        // long (API_NOTES), unless they say otherwise.
        let (mut covered, mut size) = (0u64, PAGE_SIZE);
        let mut last: Option<(u64, Option<Date>)> = None;
        while walk.pages < 2 * MAX_PAGES {
            let page_number = covered / size + 1;
            let query = [
                ("status", status.as_str().to_owned()),
                ("page_number", page_number.to_string()),
            ];
            let what = format!("GET /orders?status={status}&page_number={page_number}");
            let body = self
                .session
                .send(meter, |r| r.query(&query), Method::GET, "/orders")
                .await?;
            let page = read_page::<T>(&body, &what, status)?;
            // A page of orders other than the one asked for: a service that ignores
            // `page_number` would loop. An empty page ends the list whatever it says it is.
            if (!page.data.is_empty() && page.page_number != page_number) || page.pages > MAX_PAGES
            {
                return Err(ConnectorError::Malformed(format!(
                    "{what}: answered page {} of {} with {} orders",
                    page.page_number,
                    page.pages,
                    page.data.len()
                )));
            }
            // Orders that left the list above where we are moved the rest up by as many.
            if walk.pages > 0 && page.total_results < walk.total {
                covered = covered.saturating_sub(walk.total - page.total_results);
            }
            walk.pages += 1;
            walk.total = page.total_results;
            size = page.page_size.filter(|s| *s > 0).unwrap_or(PAGE_SIZE);
            let start = (page_number - 1) * size;
            let follows = start <= covered;
            if follows {
                covered = covered.max(start + size);
            }
            let end = page.data.is_empty() || page_number >= page.pages;
            let dates: Vec<Option<Date>> = (page.data.iter())
                .map(|read| read.as_ref().ok().and_then(|o| o.dates().updated_at))
                .collect();
            if page_number == 1 && walk.pages == 1 {
                walk.newest = dates.first().copied().flatten();
            }
            // The page after the last one read goes on from where it ended.
            let mut before = match last {
                Some((n, oldest)) if n + 1 == page_number => oldest,
                _ => None,
            };
            for date in &dates {
                match date {
                    Some(date) if before.is_none_or(|b| *date <= b) => before = Some(*date),
                    _ => walk.in_order = false,
                }
            }
            let oldest = dates.last().copied().flatten();
            last = Some((page_number, oldest));
            for (i, read) in page.data.into_iter().enumerate() {
                match read {
                    Ok(order) => {
                        walk.orders.insert(order.id().to_owned(), order);
                    }
                    Err((id, reason)) => walk.unreadable.push(Unreadable {
                        id,
                        place: format!("{what}, item {}", i + 1),
                        reason,
                    }),
                }
            }
            let cut = since.is_some_and(|since| {
                !walk.in_order || oldest.is_some_and(|oldest| oldest.0 < since)
            });
            if follows && (end || cut) {
                return Ok(walk);
            }
        }
        Err(ConnectorError::Malformed(format!(
            "GET /orders?status={status}: more than {MAX_PAGES} pages"
        )))
    }
}

/// One page's orders, each read or not (with its id, if that reads, and why). A page whose
/// every order reads as the document writes it is read in one pass (a thousand pages of ten
/// thousand open orders, every cycle); only a page with an order that does not is read again
/// order by order.
type PageOf<T> = Paged<Result<T, (Option<String>, String)>>;

fn read_page<T: Listed>(
    body: &[u8],
    what: &str,
    status: &OrderStatus,
) -> Result<PageOf<T>, ConnectorError> {
    if let Ok(page) = serde_json::from_slice::<Paged<T>>(body) {
        return Ok(Paged {
            data: page.data.into_iter().map(Ok).collect(),
            page_size: page.page_size,
            page_number: page.page_number,
            total_results: page.total_results,
            pages: page.pages,
        });
    }
    let page: Paged<serde_json::Value> = parse(body, what)?;
    let data = (page.data.into_iter())
        .map(|value| {
            let id = value.get("id").and_then(|id| string_or_number(id).ok());
            T::read(value, status).map_err(|reason| (id, reason))
        })
        .collect();
    Ok(Paged {
        data,
        page_size: page.page_size,
        page_number: page.page_number,
        total_results: page.total_results,
        pages: page.pages,
    })
}
