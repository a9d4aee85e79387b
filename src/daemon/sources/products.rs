//! An Endless Aisles source's products (`GET /api/products`, every page), read at start and
//! every `products_refresh`, before its stock: which sizes cannot be sold (they count as 0) and
//! each size's barcode (for `by_barcode`). Kept in the database, so a restart does not read them
//! again before they are due. A failed read keeps the last one and is tried again next cycle;
//! it never fails the stock itself.

use tracing::{info, warn};

use super::SourceWork;
use crate::http::Meter;
use crate::services::Source;
use crate::store;

/// Reads the products of the source of `work` when they are due. Its requests are counted on
/// its own (the INFO line that says it read them), not in the stock's.
pub(super) async fn refresh(work: &SourceWork) {
    let meter = &Meter::default();
    let slot = &work.slot;
    let now = store::now_ms();
    if !work.mapper.products_due(&slot.name, now) {
        return;
    }
    let Source::EndlessAisles(source) = &slot.client else {
        return;
    };
    let read = tokio::time::timeout(work.fetch_timeout, source.products().fetch(meter)).await;
    let sizes = match read {
        Ok(Ok(sizes)) => sizes,
        Ok(Err(e)) if e.is_cancelled() => return,
        Ok(Err(e)) => {
            warn!(source = %slot.name, error = %e, "the products could not be read; the last ones read stand, and they are read again at the next cycle");
            return;
        }
        Err(_) => {
            warn!(source = %slot.name, "reading the products took longer than daemon.fetch_timeout; the last ones read stand");
            return;
        }
    };
    if !work.options.dry_run {
        let (id, rows) = (slot.id, sizes.clone());
        let written = work
            .store
            .call(move |c| store::mapping::write_sizes(c, id, &rows, now))
            .await;
        if let Err(e) = written {
            warn!(source = %slot.name, error = %e, "the products read could not be recorded; they are used, and read again after a restart");
        }
    }
    let unsellable = sizes.iter().filter(|s| s.sellable().is_err()).count();
    info!(source = %slot.name, sizes = sizes.len(), unsellable, requests = meter.requests(), "products read; sizes that cannot be sold count as 0");
    work.mapper.set_sizes(&slot.name, &sizes, now);
}
