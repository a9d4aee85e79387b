//! The product list a flag target's cycle works from: read when it is due, kept otherwise, and
//! not believed when it comes back empty or much shrunk after a good one.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::{error, info, warn};

use super::super::CycleOptions;
use super::super::settle::Stop;
use super::{FlagMemory, stopped_by};
use crate::http::Meter;
use crate::plan::MASS_ZERO_MIN_SKUS;
use crate::services::shopsys::catalogue::Catalogue;
use crate::services::{ConnectorError, FlagTarget};

/// The product list this cycle works from.
pub(super) enum Read {
    /// Believed; `fresh` when read now rather than kept.
    Ready {
        catalogue: Arc<Catalogue>,
        fresh: bool,
    },
    /// Read now, and lost too many of the products the last good read had.
    Held { lost: usize, before: usize },
    /// No list to work from.
    Stopped(Stop),
}

/// Reads the product list when it is due (never read, `catalogue_refresh` passed, a full
/// cycle, the last read failed, or a product of it turned out to be gone), else keeps the last.
pub(super) async fn read_catalogue(
    memory: &mut FlagMemory,
    shop: &FlagTarget,
    name: &str,
    max_fraction: f64,
    meter: &Meter,
    options: CycleOptions,
) -> Read {
    let refresh = shop.rules().catalogue_refresh;
    let last = memory.catalogue.as_ref().map(|(c, _)| c.clone());
    let due = memory.reread
        || memory
            .catalogue
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= refresh);
    if let Some(catalogue) = last.clone().filter(|_| !due && !options.full) {
        return Read::Ready {
            catalogue,
            fresh: false,
        };
    }
    match shop.read_catalogue(meter).await {
        Ok(read) => {
            let before = last.as_ref().map_or(0, |c| c.products);
            let lost = before.saturating_sub(read.products);
            let shrunk = (read.products == 0 && before > 0)
                || (before >= MASS_ZERO_MIN_SKUS && lost as f64 > max_fraction * before as f64);
            if shrunk && !options.force {
                error!(
                    target = name,
                    products = read.products,
                    before,
                    "the product list came back empty or much smaller than the last one read, so it is not believed and nothing is changed; it is read again at the next cycle, and `invsync once --force` accepts it"
                );
                return Read::Held { lost, before };
            }
            info!(
                target = name,
                products = read.products,
                skus = read.by_sku.len(),
                unmatched = read.unmatched,
                duplicates = read.duplicates.len(),
                bad_uuids = read.bad_uuids,
                "product list read"
            );
            let catalogue = Arc::new(read);
            memory.catalogue = Some((catalogue.clone(), Instant::now()));
            memory.reread = false;
            Read::Ready {
                catalogue,
                fresh: true,
            }
        }
        // Without the credentials, or shutting down, the last list would not help.
        Err(e) if e.is_cancelled() || matches!(e, ConnectorError::Auth(_)) => {
            Read::Stopped(stopped_by(e))
        }
        Err(e) => match last {
            Some(catalogue) => {
                warn!(target = name, error = %e, "the product list could not be read again; the last one read is used, and it is read again at the next cycle");
                Read::Ready {
                    catalogue,
                    fresh: false,
                }
            }
            None => Read::Stopped(Stop::Unreachable(format!(
                "the product list could not be read: {e}"
            ))),
        },
    }
}
