//! What the engine keeps across cycles and the cycle's parts share: each source's slot (its
//! client, newest snapshot and memory), every SKU's name and the right to record, and the
//! order feeds' book. Here, below the parts that use them (`sources`, `orders`, `per_sku`), so
//! that none of those imports another to name them.

use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::generation::Generation;
use crate::plan::Guard;
use crate::plan::backoff::AuthBackoff;
use crate::plan::ledger::{Column, SkuTable};
use crate::plan::reservations::Reservations;
use crate::services::{AnswerDigest, Source};
use crate::store;

/// A source as the engine keeps it.
pub struct SourceSlot {
    /// `[sources.NAME]`.
    pub name: String,
    /// Its row in the database.
    pub id: i64,
    /// Its client.
    pub client: Source,
    /// Its newest recorded snapshot; targets hold receivers and re-plan when it changes.
    pub snapshot: watch::Sender<Arc<Column>>,
    /// What it must not believe at once: its guard, refused logins.
    pub memory: Mutex<SourceMemory>,
}

/// A source's guard and login backoff (only its own cycle's fetch touches them).
#[derive(Debug)]
pub struct SourceMemory {
    /// The mass-zero guard over its snapshot.
    pub guard: Guard,
    /// When `--force` last restarted the guard's window.
    pub guard_since: Option<i64>,
    /// Refused logins.
    pub auth: AuthBackoff,
    /// Its last recorded answer: one the same is not parsed again.
    pub answer: AnswerDigest,
    /// How many SKUs that answer reported.
    pub reported: usize,
}

/// Every SKU name, shared: sources add names as they record, targets read them to push.
pub type Names = Arc<RwLock<SkuTable>>;

/// The right to record snapshots, with how many names the database has.
pub type Recorder = Arc<tokio::sync::Mutex<usize>>;

/// The book and what it reserves, shared by the cycles.
pub struct Book {
    /// Every reservation.
    pub book: tokio::sync::Mutex<Reservations>,
    /// What is reserved per SKU id, published to the targets.
    pub reserved: watch::Sender<Arc<Column>>,
    /// The world's generation, which a change of what is reserved moves on.
    pub generation: Generation,
    /// The sources' changes a crash kept from the book (recorded with their snapshots, never
    /// taken in): given to it at the next cycle, before anything else.
    pub unabsorbed: std::sync::Mutex<Vec<store::Unabsorbed>>,
}

/// Which sources' answers are new in this cycle, each told the moment it is known new (before
/// it is parsed): a target that reads one will plan, and reads what it acknowledged while the
/// answer is recorded rather than after.
#[derive(Clone)]
pub struct NewAnswers(Arc<watch::Sender<Vec<bool>>>);

impl NewAnswers {
    /// None new yet, of `sources` sources.
    pub fn new(sources: usize) -> NewAnswers {
        NewAnswers(Arc::new(watch::Sender::new(vec![false; sources])))
    }

    /// Source `index`'s answer is new.
    pub fn tell(&self, index: usize) {
        self.0.send_modify(|new| {
            if let Some(new) = new.get_mut(index) {
                *new = true;
            }
        });
    }

    /// Returns once the answer of one of `sources` is new; never, if none is this cycle.
    pub async fn any_of(&self, sources: &[usize]) {
        let mut told = self.0.subscribe();
        let any = told
            .wait_for(|new| sources.iter().any(|&i| new.get(i) == Some(&true)))
            .await
            .is_ok();
        if !any {
            // Not while `self` is held (a sender).
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_target_hears_of_a_new_answer_it_reads_and_of_no_other() {
        let news = NewAnswers::new(3);
        let waits = |sources: &'static [usize]| {
            let news = news.clone();
            tokio::spawn(async move { news.any_of(sources).await })
        };
        let (first, others, none) = (waits(&[0]), waits(&[1, 2]), waits(&[]));
        news.tell(2);
        news.tell(7); // no such source: nothing
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert!(others.is_finished(), "source 2 is new");
        assert!(!first.is_finished(), "source 0 is not");
        news.tell(0);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert!(first.is_finished());
        assert!(
            !none.is_finished(),
            "a target that reads nothing never hears"
        );
        // Told before it asks: it returns at once.
        news.any_of(&[2]).await;
    }
}
