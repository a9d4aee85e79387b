//! SIGHUP: the configuration file read and checked again, and what changed said in one line.

use std::sync::Arc;

use tracing::{error, info, warn};

use crate::config::Config;
use crate::config::mapping::FileDigest;
use crate::mapper::file::{self, Prepared};
use crate::ops::log_filter;
use crate::store::Store;

/// Keys a running daemon cannot change: the database is locked and open, the log format and
/// the metrics listener are set up once.
const AT_NEXT_START: &[&str] = &[
    "daemon.database",
    "daemon.schema",
    "daemon.log_format",
    "daemon.metrics_listen",
];

/// The file at `current.path` read and checked again, with its mapping file (read only when
/// the database does not vouch for it, see `mapper::file`): the new configuration, or
/// `None` (with an ERROR per mistake, naming its key or the mapping file's line) when it is not
/// valid and `current` stays in force. `in_force` is the digest of the mapping file in force.
pub(super) async fn read(
    current: &Config,
    in_force: Option<FileDigest>,
    store: &Store,
) -> Option<(Arc<Config>, Prepared)> {
    let not_reloaded = |errors: crate::config::ConfigErrors| {
        for e in &errors.0 {
            error!(config = %e.file.display(), key = %e.key, "the configuration was not reloaded: {e}; invsync keeps running with the one it has");
        }
    };
    let newer = match Config::load(&current.path) {
        // The same shop, whatever the file says.
        Ok(newer) => Arc::new(Config {
            shop: current.shop.clone(),
            ..newer
        }),
        Err(errors) => {
            not_reloaded(errors);
            return None;
        }
    };
    let prepared = match file::prepare_with(newer.clone(), Some(store)).await {
        Ok(Ok(prepared)) => prepared,
        Ok(Err(errors)) => {
            not_reloaded(errors);
            return None;
        }
        Err(e) => {
            error!(error = %e, "the configuration was not reloaded: its mapping file's record could not be read; invsync keeps running with the one it has");
            return None;
        }
    };
    let mut changed = current.settings.changed(&newer.settings);
    // The mapping file's lines are not in the configuration file: a change there is a change.
    let digest = prepared.file.as_ref().map(|f| f.digest);
    if digest != in_force && !changed.iter().any(|c| c == "mapping.file") {
        changed.push("mapping.file".to_owned());
    }
    for key in AT_NEXT_START
        .iter()
        .filter(|k| changed.iter().any(|c| c == *k))
    {
        warn!(
            key,
            "this key takes effect at the next start only; the running daemon keeps its old value"
        );
    }
    for warning in &newer.warnings {
        warn!(config = %newer.path.display(), "{warning}");
    }
    if newer.daemon.log_level != current.daemon.log_level {
        log_filter::reload(&newer.daemon.log_level);
    }
    let changed = if changed.is_empty() {
        "nothing (credential files are read again)".to_owned()
    } else {
        changed.join(",")
    };
    info!(config = %newer.path.display(), changed = %changed, "configuration reloaded; it takes effect from the next cycle");
    Some((newer, prepared))
}

/// Whether the cycles start at other times under `newer`.
pub(super) fn schedules_differ(current: &Config, newer: &Config) -> bool {
    current.daemon.trigger != newer.daemon.trigger
        || current.daemon.full_sync_schedule != newer.daemon.full_sync_schedule
}
