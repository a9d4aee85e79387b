//! The check of a log level or a list of tracing filter directives (`daemon.log_level`, and
//! `RUST_LOG` through [`crate::ops::log_filter`]): a bare word must be a level, a typo a
//! configuration error, never a silent daemon (see `ops/log_filter.rs`).

use std::str::FromStr;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Directive;

/// Checks a level or a list of filter directives, saying in a sentence what is wrong.
pub fn check(text: &str) -> Result<(), String> {
    let directives: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(format!("{text:?} names no level; {HINT}"));
    }
    for directive in directives {
        let level = match directive.rsplit_once('=') {
            Some((_, level)) => level,
            None => directive,
        };
        if LevelFilter::from_str(level.trim()).is_err() || Directive::from_str(directive).is_err() {
            return Err(format!(
                "{directive:?} is not a log level or a filter directive; {HINT}"
            ));
        }
    }
    Ok(())
}

const HINT: &str =
    "write off, error, warn, info, debug or trace, or directives such as \"info,invsync=debug\"";
