//! `[mapping]`: the file of aliases, read and checked with the configuration (so a mistake in it
//! stops `check` and the start with exit 2, and a reload keeps the old configuration), and
//! `by_barcode`. Errors in the file name the file and its line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use super::checker::Checker;
use super::typed::suggest;
use super::{ConfigError, FeedSpec, SourceKind, SourceSpec, TargetKind, TargetSpec};
use crate::mapping::{Alias, EndpointSpec, Role, csv};

/// `[mapping]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// The CSV of aliases (`sku,endpoint,key`); a relative path is next to this file.
    pub file: Option<PathBuf>,
    /// Link Endless Aisles sizes to catalogue products by GTIN.
    pub by_barcode: Option<bool>,
}

/// `[mapping]`, checked, with its file read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSpec {
    /// The file, as found (`None`: no file, barcodes only).
    pub file: Option<PathBuf>,
    /// Its lines.
    pub aliases: Arc<Vec<Alias>>,
    /// Whether Endless Aisles sizes link to catalogue products by barcode.
    pub by_barcode: bool,
}

/// Every endpoint of the configuration, in the order the mapping resolves them: sources, then
/// targets, then order feeds.
pub fn endpoints(
    sources: &[SourceSpec],
    targets: &[TargetSpec],
    feeds: &[FeedSpec],
) -> Vec<EndpointSpec> {
    let sources = sources.iter().map(|s| EndpointSpec {
        name: s.name.clone(),
        role: Role::Source,
        prefix: match &s.kind {
            SourceKind::EndlessAisles(ea) => ea.sku_prefix.clone(),
            SourceKind::Hako(_) => String::new(),
        },
    });
    let targets = targets.iter().map(|t| EndpointSpec {
        name: t.name.clone(),
        role: Role::Target,
        prefix: String::new(),
    });
    let feeds = feeds.iter().map(|f| EndpointSpec {
        name: f.name.clone(),
        role: Role::Feed,
        prefix: String::new(),
    });
    sources.chain(targets).chain(feeds).collect()
}

/// Checks `[mapping]` and reads its file, recording every error in `check`.
pub(super) fn mapping(
    check: &Checker,
    value: toml::Value,
    sources: &[SourceSpec],
    targets: &[TargetSpec],
    feeds: &[FeedSpec],
) -> Option<MappingSpec> {
    let toml::Value::Table(table) = value else {
        check.report("mapping", "must be a table: [mapping]");
        return None;
    };
    let raw: RawMapping = check.table("mapping", table)?;
    let by_barcode = raw.by_barcode.unwrap_or(false);
    if by_barcode {
        let products = sources.iter().any(
            |s| matches!(&s.kind, SourceKind::EndlessAisles(ea) if ea.products_refresh.is_some()),
        );
        let catalogue = targets
            .iter()
            .any(|t| matches!(t.kind, TargetKind::Shopsys(_)));
        if !products || !catalogue {
            check.report(
                "mapping.by_barcode",
                "needs an endless_aisles source whose products are read (products_refresh not \"off\") and a shopsys target",
            );
        }
    }
    let names: Vec<String> = endpoints(sources, targets, feeds)
        .into_iter()
        .map(|e| e.name)
        .collect();
    let (file, aliases) = match raw.file {
        None => (None, Vec::new()),
        Some(written) => {
            let path = next_to(check.file, &written);
            let aliases = read(check, &path, &names)?;
            (Some(path), aliases)
        }
    };
    Some(MappingSpec {
        file,
        aliases: Arc::new(aliases),
        by_barcode,
    })
}

/// A relative path is next to the configuration file.
fn next_to(config: &Path, written: &Path) -> PathBuf {
    if written.is_absolute() {
        written.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new("")).join(written)
    }
}

/// The aliases of the file at `path`, every mistake recorded with its line.
fn read(check: &Checker, path: &Path, names: &[String]) -> Option<Vec<Alias>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            check.report(
                "mapping.file",
                format!("cannot read {}: {e}", path.display()),
            );
            return None;
        }
    };
    let known = |name: &str| {
        if names.iter().any(|n| n == name) {
            return None;
        }
        let hint = suggest(name, names.iter().map(String::as_str))
            .map(|n| format!("; did you mean {n:?}?"))
            .unwrap_or_default();
        Some(format!(
            "unknown endpoint {name:?}: not a source, target or order feed of the configuration{hint}"
        ))
    };
    match csv::parse(&text, known) {
        Ok(aliases) => Some(aliases),
        Err(errors) => {
            for e in errors {
                check.keep::<()>(Err(ConfigError {
                    file: path.to_path_buf(),
                    key: if e.line == 0 {
                        String::new()
                    } else {
                        format!("line {}", e.line)
                    },
                    message: e.message,
                }));
            }
            None
        }
    }
}
