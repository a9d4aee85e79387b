//! With `mapping.by_barcode`, the catalogues' product lists are read *before* an Endless Aisles
//! source's answer is mapped, when the mapping has never had them (a fresh database, or
//! `by_barcode` just turned on). Otherwise the first cycle would hold every size with a barcode
//! (it may be called otherwise once the barcodes are known) and push none of them; the
//! catalogue target read its list only after the sources, too late for that cycle.
//!
//! A list read here is handed to its catalogue target's part of the same cycle, so the shop is
//! read once; the target records its barcodes as it does for any list it reads. A failed read
//! is not tried here again: the target's own reads (on its schedule, with its login backoff)
//! take over, and the sizes stay held until one succeeds (`status` says why). So a catalogue
//! that is down or refuses the login delays the sources' answers once, never every cycle.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{info, warn};

use crate::http::Meter;
use crate::mapper::Mapper;
use crate::services::FlagTarget;
use crate::services::shopsys::catalogue::Catalogue;

/// The catalogue targets, as the sources' side of a cycle reads them.
#[derive(Default)]
pub struct Catalogues {
    /// Each catalogue target's name and client (shared with the target: one token).
    shops: Vec<(String, FlagTarget)>,
    /// One read at a time: a second Endless Aisles source waits, then finds them read.
    reading: tokio::sync::Mutex<()>,
    /// Lists read here and not yet taken by their target.
    early: Mutex<HashMap<String, Arc<Catalogue>>>,
    /// Catalogues whose read failed here: left to their target from then on.
    failed: Mutex<HashSet<String>>,
}

impl Catalogues {
    /// The catalogue targets `shops`, by name.
    pub fn new(shops: Vec<(String, FlagTarget)>) -> Catalogues {
        Catalogues {
            shops,
            ..Catalogues::default()
        }
    }

    /// Reads every catalogue whose barcodes the mapping has never had (each within
    /// `timeout`), and hands their barcodes to it. Nothing without `by_barcode`.
    pub async fn read_missing(&self, mapper: &Mapper, timeout: Duration) {
        if !mapper.by_barcode() || self.shops.iter().all(|(n, _)| !self.due(mapper, n)) {
            return;
        }
        let _turn = self.reading.lock().await;
        for (name, shop) in &self.shops {
            if !self.due(mapper, name) {
                continue;
            }
            let meter = &Meter::default();
            let read = tokio::time::timeout(timeout, shop.read_catalogue(meter)).await;
            match read {
                Ok(Ok(catalogue)) => {
                    info!(target = %name, products = catalogue.products, requests = meter.requests(), "product list read before the sources' answers are mapped (mapping.by_barcode)");
                    mapper.set_catalogue(name, catalogue.barcodes.clone());
                    let mut early = self.early.lock().unwrap_or_else(|p| p.into_inner());
                    early.insert(name.clone(), Arc::new(catalogue));
                }
                Ok(Err(e)) if e.is_cancelled() => return,
                Ok(Err(e)) => {
                    warn!(target = %name, error = %e, "the product list could not be read: sizes with a barcode are held until the target reads it (mapping.by_barcode)");
                    self.give_up(name);
                }
                Err(_) => {
                    warn!(target = %name, "reading the product list took longer than daemon.fetch_timeout: sizes with a barcode are held until the target reads it (mapping.by_barcode)");
                    self.give_up(name);
                }
            }
        }
    }

    /// Whether catalogue `name` is to be read here: the mapping lacks it, and no read here
    /// failed.
    fn due(&self, mapper: &Mapper, name: &str) -> bool {
        mapper.lacks_catalogue(name)
            && !self
                .failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(name)
    }

    fn give_up(&self, name: &str) {
        let mut failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.insert(name.to_owned());
    }

    /// The list read for `target` this cycle, if any: its target uses it rather than read
    /// the shop again.
    pub fn take(&self, target: &str) -> Option<Arc<Catalogue>> {
        self.early
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(target)
    }
}
