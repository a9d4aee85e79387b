//! The per-SKU state (every SKU's name, each source's snapshot, what is reserved per SKU), loaded
//! from the database the first time a cycle needs it, not at start: a cycle in which no answer
//! changed, no reservation changed and every target is settled (see `targets::settled`) never
//! needs it, so `invsync once` on an unchanged world reads no SKU at all. Each target loads what
//! it acknowledged itself, in its own cycle, the first time it plans.

use std::sync::Arc;

use super::slots::{Book, Names, Recorder, SourceSlot};
use crate::plan::ledger::Column;
use crate::store::{self, Side, Store, StoreError};

/// The loader (see the module documentation). Loads at most once.
pub struct PerSku {
    loaded: tokio::sync::OnceCell<()>,
    /// Why loading failed, kept for the cycle to end with (see [`PerSku::failure`]).
    failure: std::sync::Mutex<Option<StoreError>>,
    store: Store,
    names: Names,
    recorder: Recorder,
    sources: Arc<Vec<Arc<SourceSlot>>>,
    book: Arc<Book>,
}

impl PerSku {
    pub fn new(
        store: Store,
        names: Names,
        recorder: Recorder,
        sources: Arc<Vec<Arc<SourceSlot>>>,
        book: Arc<Book>,
    ) -> PerSku {
        PerSku {
            loaded: tokio::sync::OnceCell::new(),
            failure: Default::default(),
            store,
            names,
            recorder,
            sources,
            book,
        }
    }

    /// Every SKU's name (empty until [`PerSku::ensure`]).
    pub fn names(&self) -> Names {
        self.names.clone()
    }

    /// Whether the per-SKU state is in memory.
    pub fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }

    /// Loads the per-SKU state unless it is in memory already. Nothing may read names,
    /// snapshots or what is reserved per SKU before this returned `Ok`.
    ///
    /// A failure is the database's, not the part's that asked: it is kept, and the cycle ends
    /// with it ([`PerSku::failure`]) as a failure at start would, however the part that asked
    /// carried on.
    pub async fn ensure(&self) -> Result<(), StoreError> {
        match self.loaded.get_or_try_init(|| self.load()).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let said = StoreError::Corrupt(e.to_string());
                self.failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
                Err(said)
            }
        }
    }

    /// The per-SKU state turned out inconsistent after it was loaded (a name found twice once
    /// the names were looked up): the cycle ends with it, as with a failure to load.
    pub fn inconsistent(&self, e: StoreError) -> StoreError {
        let said = StoreError::Corrupt(e.to_string());
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(e);
        said
    }

    /// Why loading failed in this cycle, if it did (taken: the next cycle tries again).
    pub fn failure(&self) -> Option<StoreError> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    async fn load(&self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let ids: Vec<i64> = self.sources.iter().map(|s| s.id).collect();
        let (skus, columns) = self
            .store
            .call(move |c| {
                let skus = store::load_skus(c)?;
                let mut columns = Vec::new();
                for id in ids {
                    // A dry run's endpoint without a row has nothing recorded (row ids start at 1).
                    columns.push(if id > 0 {
                        store::load_column(c, Side::Source, id)?
                    } else {
                        Column::default()
                    });
                }
                Ok((skus, columns))
            })
            .await?;
        let count = skus.len();
        // Held while everything is put in place: no source records meanwhile.
        let mut persisted = self.recorder.lock().await;
        let reserved = {
            let book = self.book.book.lock().await;
            let mut reserved = Column::default();
            for (sku, quantity) in book.reserved_by_sku() {
                if let Some(id) = skus.get(sku) {
                    reserved.set(id, quantity);
                }
            }
            reserved
        };
        *self.names.write().unwrap_or_else(|p| p.into_inner()) = skus;
        *persisted = count;
        for (slot, column) in self.sources.iter().zip(columns) {
            slot.snapshot.send_replace(Arc::new(column));
        }
        self.book.reserved.send_replace(Arc::new(reserved));
        tracing::debug!(
            skus = count,
            ms = started.elapsed().as_millis() as u64,
            "per-SKU state loaded from the database"
        );
        Ok(())
    }
}
