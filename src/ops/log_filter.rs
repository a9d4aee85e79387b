//! Which log lines are written: `daemon.log_level`, or `RUST_LOG` when it is set.
//!
//! Both take a level (`info`) or tracing filter directives (`info,invsync=debug`). The tracing
//! crate itself accepts any bare word as a directive (it reads `verbose` as "everything of the
//! module `verbose`", which silences every other line, ERROR included), so a bare word must be a
//! level here: a typo is a configuration error, never a silent daemon.

use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// The variable that, when set, wins over `daemon.log_level`.
pub const ENV: &str = "RUST_LOG";

/// The check of `daemon.log_level`, which the configuration makes when it is loaded.
pub use crate::config::log_level::check;

/// `RUST_LOG`, when it is set and not empty.
pub fn from_env() -> Option<String> {
    std::env::var(ENV).ok().filter(|v| !v.trim().is_empty())
}

/// Checks `RUST_LOG`, if set: a bad one is a usage error like a bad `daemon.log_level`.
pub fn check_env() -> Result<(), String> {
    match from_env() {
        Some(text) => check(&text).map_err(|e| format!("{ENV}: {e}")),
        None => Ok(()),
    }
}

/// Replaces the filter of the installed subscriber; `false` when none is installed.
type Reload = Box<dyn Fn(EnvFilter) -> bool + Send + Sync>;

/// How to change the filter in force, kept by the first subscriber installed.
static RELOAD: OnceLock<Reload> = OnceLock::new();

/// Keeps the handle that changes the installed subscriber's filter (see [`reload`]).
pub fn keep_reload<S: 'static>(handle: tracing_subscriber::reload::Handle<EnvFilter, S>) {
    let _ = RELOAD.set(Box::new(move |filter| handle.reload(filter).is_ok()));
}

/// Applies a new `daemon.log_level` to the lines from now on (`RUST_LOG`, when set, still wins);
/// whether it could.
pub fn reload(level: &str) -> bool {
    RELOAD.get().is_some_and(|reload| reload(filter(level)))
}

/// Libraries whose own INFO and DEBUG lines say nothing an operator of invsync can act on
/// (connection pools, TLS handshakes, SQL, PostgreSQL's NOTICEs of a `CREATE … IF NOT EXISTS`
/// that found what it would make): kept at WARN unless a directive names them.
const QUIET: &[&str] = &[
    "deadpool",
    "deadpool_postgres",
    "h2",
    "hyper",
    "hyper_util",
    "reqwest",
    "rusqlite",
    "rustls",
    "tokio_postgres",
    "tower",
];

/// The filter in force: `RUST_LOG` when set, else `level` (both checked beforehand; anything
/// unreadable falls back to `info`, never to silence), with the [`QUIET`] libraries at WARN.
pub fn filter(level: &str) -> EnvFilter {
    let text = directives(&from_env().unwrap_or_else(|| level.to_owned()));
    EnvFilter::try_new(&text).unwrap_or_else(|_| EnvFilter::new(directives("info")))
}

/// `text` plus `LIBRARY=warn` for each quiet library it does not name itself.
fn directives(text: &str) -> String {
    let mut all = text.trim().to_owned();
    for library in QUIET {
        let named = text.split(',').any(|d| {
            d.trim().starts_with(library) && d.trim()[library.len()..].starts_with(['=', ':', '['])
        });
        if !named {
            all.push_str(&format!(",{library}=warn"));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_level_must_be_a_level_or_a_filter_directive_and_verbose_is_neither() {
        for good in [
            "info",
            "DEBUG",
            "off",
            "warn,invsync=debug",
            "invsync::daemon=trace",
            "info, hyper=warn",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in ["verbose", "", "info,verbose", "invsync=loud", "=info"] {
            let error = check(bad).expect_err(bad);
            println!("{bad:?}: {error}");
            assert!(error.contains("not a log level") || error.contains("names no level"));
        }
    }

    #[test]
    fn dependencies_stay_at_warn_unless_a_directive_names_them() {
        let all = directives("debug");
        let named = directives("info,hyper=debug");
        println!("{all}");
        assert!(
            all.starts_with("debug,")
                && all.contains(",hyper=warn")
                && all.contains(",reqwest=warn")
                && all.contains(",tokio_postgres=warn")
        );
        assert!(!named.contains("hyper=warn"), "{named}");
        assert!(named.contains("hyper_util=warn"), "{named}");
    }
}
