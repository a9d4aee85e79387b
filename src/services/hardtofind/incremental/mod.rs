//! The reservations' reading of the open lists, in proportion to what changed.
//!
//! A list is sorted newest-updated first, and an update moves an order to page 1 (the document:
//! "ordered by last updated date"). So once a list has been read completely, the next read need
//! only go from page 1 down to the orders updated before that read began: every order below is
//! as it was. [`FeedMemory`] keeps, per list, the ids the last read found (what they hold is in
//! the reservations already) and a *mark*: the newest `updated_at` the first page showed, the
//! service's own clock as its orders show it. Not ours: with a service clock behind ours, a mark
//! from our clock would hide the changes made in between. The next read goes [`MARGIN`] further
//! back than the mark, for web servers that disagree about the time, a change whose date was
//! taken a while before it was written, and dates that tie within their second.
//!
//! What it gives must be what a full read would give, and it is checked: the remembered ids,
//! with those seen again, must add up to the list's `total_results`. When they come to more,
//! the orders that left are looked for in the other lists read and then at the top of the lists
//! of the states an order can leave for (a change of state is an update, so it is there);
//! when they come to less (an order came in while we paged), the list is read once more from
//! page 1. When it still does not add up, or anything is in doubt (a page not newest first, an
//! order without a date or without an id, a date a day ahead of ours), the list is read in full
//! in the same cycle. It is read in full too on the first read, every [`FULL_WALK_EVERY`], and
//! whenever the caller says so (a full sync, a new mapping). An order that left the lists is
//! then what it always was: missing from the listing, so the reservations look it up by id.
//!
//! Where the service leaves an order's date alone when its state changes (the other reading of
//! the document), the count still catches an order that left, and a look-up that shows one such
//! order switches the reading to full reads for good ([`FeedMemory::looked_up`]).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use super::orders::Listing;
use super::wire::{Date, OrderStatus, OrderSummary};

/// A list goes no longer than this without a full read, which bounds what no count can catch
/// (an order that left unseen in the same cycle as one that came in unseen, on a service that
/// does not date changes of state).
pub const FULL_WALK_EVERY: Duration = Duration::from_secs(60 * 60);

/// How much further back than the last read's mark a read goes.
pub const MARGIN: Duration = Duration::from_secs(10 * 60);

/// A mark further ahead of our clock than this is not believed (one order dated years ahead
/// would stop every later read at page 1).
const AHEAD: Duration = Duration::from_secs(24 * 60 * 60);

/// What the next read of a feed's lists goes on from. Empty at first (every list is read in
/// full); in memory only, since the first cycle after a start reads in full anyway. `T` is what
/// a read keeps of each order: the reservations' summary, or the relay's whole order.
#[derive(Debug)]
pub struct FeedMemory<T = OrderSummary> {
    lists: HashMap<OrderStatus, ListMemory<T>>,
    /// Orders that left a list at the read that made this memory, with that list's mark.
    left: HashMap<String, Option<Date>>,
    /// The service was seen to leave an order's date alone when its state changed.
    unmoved: bool,
}

// Not derived: that would ask `T: Default`, which no order is.
impl<T> Default for FeedMemory<T> {
    fn default() -> FeedMemory<T> {
        FeedMemory {
            lists: HashMap::new(),
            left: HashMap::new(),
            unmoved: false,
        }
    }
}

/// One list as its last read left it.
#[derive(Debug)]
struct ListMemory<T> {
    /// Every order in it.
    ids: HashSet<String>,
    /// Those not read whole, as read (a full read would name them again every cycle).
    bad: HashMap<String, T>,
    /// The newest `updated_at` the read found on page 1; `None` when the list was empty (the
    /// next read then reads all of it, which is all new).
    mark: Option<Date>,
    /// When it was last read in full.
    walked_in_full: Instant,
}

impl<T> FeedMemory<T> {
    /// Why `status`'s list is read in full now, if it is.
    fn full_because(&self, status: &OrderStatus, now: Instant) -> Option<&'static str> {
        if self.unmoved {
            return Some("state changes do not move orders");
        }
        match self.lists.get(status) {
            None => Some("no earlier read"),
            Some(list) if now.duration_since(list.walked_in_full) >= FULL_WALK_EVERY => {
                Some("hourly")
            }
            Some(_) => None,
        }
    }

    /// Takes in the look-up of an order the reads no longer list. One that left a list since
    /// the last read yet is dated before that read's mark was not moved when its state
    /// changed: from then on every list is read in full. Returns, that once, what was seen.
    pub fn looked_up(
        &mut self,
        id: &str,
        status: &OrderStatus,
        updated_at: Option<Date>,
    ) -> Option<String> {
        let mark = (*self.left.get(id)?)?;
        let at = updated_at?;
        if at.0 + margin() >= mark.0 || self.unmoved {
            return None;
        }
        self.unmoved = true;
        Some(format!(
            "order {id} left its list for {status} but is dated {at}, before the list's last read ({mark})"
        ))
    }
}

/// How one list was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Every page, and why.
    Full(&'static str),
    /// From page 1 down to what the last read saw.
    Incremental,
    /// The top of a list of another state, for orders that left the lists.
    Peek,
}

/// One list's read, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    /// The state.
    pub list: OrderStatus,
    /// How.
    pub how: How,
    /// `GET /orders` made.
    pub pages: u64,
}

/// `READY:incremental:1`, `READY:full(hourly):1000`, `SHIPPED:peek:1`.
impl fmt::Display for Walked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.how {
            How::Full(why) => write!(f, "{}:full({why}):{}", self.list, self.pages),
            How::Incremental => write!(f, "{}:incremental:{}", self.list, self.pages),
            How::Peek => write!(f, "{}:peek:{}", self.list, self.pages),
        }
    }
}

/// The open lists as this read found them.
#[derive(Debug)]
pub struct OpenOrders<T = OrderSummary> {
    /// The orders read now (and, of those not read again, the ones not read whole: they are
    /// named every cycle), the unreadable, the lists that failed.
    pub listing: Listing<T>,
    /// The ids listed but not read again: unchanged since they were last read.
    pub unchanged: Vec<String>,
    /// How each list was read.
    pub walks: Vec<Walked>,
    /// What the next read goes on from, once this one has been taken in.
    pub next: FeedMemory<T>,
}

impl<T> OpenOrders<T> {
    /// `GET /orders` made.
    pub fn pages(&self) -> u64 {
        self.walks.iter().map(|w| w.pages).sum()
    }

    /// Whether a list was read in full.
    pub fn full(&self) -> bool {
        self.walks.iter().any(|w| matches!(w.how, How::Full(_)))
    }
}

fn margin() -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(MARGIN.as_secs()).unwrap_or(i64::MAX))
}

/// Whether a mark is at most [`AHEAD`] ahead of our clock.
fn believable(mark: &Date) -> bool {
    let ahead = chrono::Duration::seconds(i64::try_from(AHEAD.as_secs()).unwrap_or(i64::MAX));
    mark.0 <= chrono::Utc::now() + ahead
}

mod reading;

#[cfg(test)]
mod tests;
