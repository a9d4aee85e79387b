//! The world's generation: a number that every recorded change of a source's snapshot or of the
//! reservations moves on, in the database (in the change's own transaction) and then in memory
//! (once the change is published). A target that planned from the world at generation `g`, and
//! was left wholly in sync, is *settled* at `g`: while the generation stays `g` (and its rules
//! are the same), its plan is empty without being made (see `targets::settled`).
//!
//! Changes take their numbers one at a time ([`Generation::next`] holds a turn until
//! [`Turn::published`]), so a target that reads `g` has every change up to `g` published.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// See the module documentation. Cheap to clone.
#[derive(Clone, Default)]
pub struct Generation(Arc<Inner>);

#[derive(Default)]
struct Inner {
    turn: tokio::sync::Mutex<()>,
    published: AtomicU64,
}

/// The right to record one change: its number, and the turn until it is published.
pub struct Turn<'a> {
    generation: &'a Generation,
    /// The number to record with the change.
    pub number: u64,
    _held: tokio::sync::MutexGuard<'a, ()>,
}

impl Generation {
    /// The generation as the database has it.
    pub fn starting_at(number: u64) -> Generation {
        let generation = Generation::default();
        generation.0.published.store(number, Ordering::SeqCst);
        generation
    }

    /// The newest published generation.
    pub fn now(&self) -> u64 {
        self.0.published.load(Ordering::SeqCst)
    }

    /// The turn to record the next change (waits for one being recorded now).
    pub async fn next(&self) -> Turn<'_> {
        let held = self.0.turn.lock().await;
        Turn {
            generation: self,
            number: self.now() + 1,
            _held: held,
        }
    }
}

impl Turn<'_> {
    /// The change is in the database and published: targets may see its number.
    pub fn published(self) {
        self.generation
            .0
            .published
            .store(self.number, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_number_is_seen_only_once_its_change_is_published_and_changes_take_turns() {
        let generation = Generation::starting_at(6);
        let first = generation.next().await;
        assert_eq!(first.number, 7);
        assert_eq!(generation.now(), 6, "seen before it was published");
        let waiting = tokio::spawn({
            let generation = generation.clone();
            async move { generation.next().await.number }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiting.is_finished(),
            "a second change took a number during the first"
        );
        first.published();
        assert_eq!(generation.now(), 7);
        assert_eq!(waiting.await.expect("joined"), 8);
        // A turn dropped without publishing (its write failed) leaves the number unused.
        drop(generation.next().await);
        assert_eq!(generation.now(), 7);
    }
}
