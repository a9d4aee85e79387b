//! SIGHUP: the configuration file read and checked again, and what changed said in one line.

use std::sync::Arc;

use tracing::{error, info, warn};

use crate::config::Config;
use crate::ops::log_filter;

/// Keys a running daemon cannot change: the database is locked and open, the log format and
/// the metrics listener are set up once.
const AT_NEXT_START: &[&str] = &[
    "daemon.database",
    "daemon.log_format",
    "daemon.metrics_listen",
];

/// The file at `current.path` read and checked again: the new configuration, or `None` (with an
/// ERROR per mistake, naming its key) when it is not valid and `current` stays in force.
pub(super) fn read(current: &Config) -> Option<Arc<Config>> {
    let newer = match Config::load(&current.path) {
        Ok(newer) => newer,
        Err(errors) => {
            for e in &errors.0 {
                error!(config = %e.file.display(), key = %e.key, "the configuration was not reloaded: {e}; invsync keeps running with the one it has");
            }
            return None;
        }
    };
    let mut changed = current.settings.changed(&newer.settings);
    // The mapping file's lines are not in the configuration file: a change there is a change.
    if current.mapping != newer.mapping && !changed.iter().any(|c| c == "mapping.file") {
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
    Some(Arc::new(newer))
}

/// Whether the cycles start at other times under `newer`.
pub(super) fn schedules_differ(current: &Config, newer: &Config) -> bool {
    current.daemon.trigger != newer.daemon.trigger
        || current.daemon.full_sync_schedule != newer.daemon.full_sync_schedule
}
