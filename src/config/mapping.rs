//! `[mapping]`: the file of aliases and `by_barcode`. Loading the configuration finds the file
//! and notes what the file system says of it ([`FileStamp`]), without reading it: a
//! million-line file costs most of a second to read and check, and one that a daemon checked
//! before (its digest is in the database, see `mapper::file`) need not be read again.
//! [`read_file`] reads and checks it: `check` always, a start or a reload when the file is new
//! or changed. A mistake in it stops `check` and the start with exit 2, and a reload keeps the
//! old configuration; each names the file and its line.

use std::io::Read;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use serde::Deserialize;

use super::checker::Checker;
use super::typed::suggest;
use super::{
    Config, ConfigError, ConfigErrors, FeedSpec, SourceKind, SourceSpec, TargetKind, TargetSpec,
};
use crate::mapping::{Aliases, EndpointSpec, Role, csv};

/// `[mapping]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    /// The CSV of aliases (`sku,endpoint,key`); a relative path is next to this file.
    pub file: Option<PathBuf>,
    /// Link Endless Aisles sizes to catalogue products by GTIN.
    pub by_barcode: Option<bool>,
}

/// `[mapping]`, checked, with its file found (not read: see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingSpec {
    /// The file, as found (`None`: no file, barcodes only).
    pub file: Option<PathBuf>,
    /// What the file system said of it when the configuration was loaded.
    pub stamp: Option<FileStamp>,
    /// Whether Endless Aisles sizes link to catalogue products by barcode.
    pub by_barcode: bool,
}

/// What the file system says of a file: its size, times of change, inode and device. Equal
/// stamps mean the same bytes, as `make` and git take them, except for a change made within
/// the clock's resolution of the stamp being taken: such a recent stamp is not trusted (see
/// [`FileStamp::settled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStamp {
    /// `size:mtime:ctime:inode:device`, the times in nanoseconds.
    pub text: String,
    /// The later of its two times of change, in nanoseconds since the epoch.
    pub changed_ns: i128,
}

impl FileStamp {
    /// The stamp of the open file `file`.
    fn of(file: &std::fs::File) -> std::io::Result<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        let (mtime, ctime) = (
            ns(meta.mtime(), meta.mtime_nsec()),
            ns(meta.ctime(), meta.ctime_nsec()),
        );
        Ok(FileStamp {
            text: format!(
                "{}:{mtime}:{ctime}:{}:{}",
                meta.size(),
                meta.ino(),
                meta.dev()
            ),
            changed_ns: mtime.max(ctime),
        })
    }

    /// Whether the file last changed long enough before `now_ns` that a change after the stamp
    /// was taken would show in it: a file written in the same tick as its stamp, and again
    /// after, would keep its stamp (git calls such an entry "racy").
    pub fn settled(&self, now_ns: i128) -> bool {
        self.changed_ns < now_ns - SETTLED_NS
    }
}

/// How long after its last change a file's stamp is trusted: well beyond any file system's
/// clock resolution (a second at worst, two for FAT).
const SETTLED_NS: i128 = 3_000_000_000;

/// The SHA-256 of a mapping file's bytes.
pub type FileDigest = [u8; 32];

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
    let (file, stamp) = match raw.file {
        None => (None, None),
        Some(written) => {
            let path = next_to(check.file, &written);
            // Opened, not read: a file that cannot be read is a mistake of the configuration.
            let stamp = std::fs::File::open(&path).and_then(|f| FileStamp::of(&f));
            match stamp {
                Ok(stamp) => (Some(path), Some(stamp)),
                Err(e) => {
                    check.report(
                        "mapping.file",
                        format!("cannot read {}: {e}", path.display()),
                    );
                    return None;
                }
            }
        }
    };
    Some(MappingSpec {
        file,
        stamp,
        by_barcode,
    })
}

/// The names of every endpoint of `config`, sorted: what a mapping file is checked against.
pub fn endpoint_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = endpoints(&config.sources, &config.targets, &config.feeds)
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

/// A relative path is next to the configuration file.
fn next_to(config: &Path, written: &Path) -> PathBuf {
    if written.is_absolute() {
        written.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new("")).join(written)
    }
}

/// Reads the mapping file at `path` (named by the configuration file `config`) and checks each
/// line against the endpoint `names`: its lines and the digest of its bytes, or every mistake
/// of it, each naming the file and line.
pub fn read_file(
    config: &Path,
    path: &Path,
    names: &[String],
) -> Result<(Aliases, FileDigest), ConfigErrors> {
    let file = std::fs::File::open(path).map_err(|e| cannot_read(config, path, &e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, Hashing::new(file));
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
    let parsed = csv::read(&mut reader, known);
    let digest = reader.into_inner().finish();
    match parsed {
        Ok(aliases) => Ok((aliases, digest)),
        Err(errors) => Err(ConfigErrors(
            errors
                .into_iter()
                .map(|e| ConfigError {
                    file: path.to_path_buf(),
                    key: if e.line == 0 {
                        String::new()
                    } else {
                        format!("line {}", e.line)
                    },
                    message: e.message,
                })
                .collect(),
        )),
    }
}

/// The digest of the file at `path`'s bytes, read without being checked (about 20 ms for a
/// million lines): whether it is the file checked before.
pub fn digest_file(config: &Path, path: &Path) -> Result<FileDigest, ConfigErrors> {
    let file = std::fs::File::open(path).map_err(|e| cannot_read(config, path, &e))?;
    let mut hashing = Hashing::new(file);
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|e| cannot_read(config, path, &e))?;
    Ok(hashing.finish())
}

/// A mapping file that cannot be read, named as `[mapping] file`'s mistake.
fn cannot_read(config: &Path, path: &Path, e: &std::io::Error) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        file: config.to_path_buf(),
        key: "mapping.file".to_owned(),
        message: format!("cannot read {}: {e}", path.display()),
    }])
}

/// A reader that hashes what it reads.
struct Hashing<R> {
    inner: R,
    context: digest::Context,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            context: digest::Context::new(&digest::SHA256),
        }
    }

    fn finish(self) -> FileDigest {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.context.finish().as_ref());
        out
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.context.update(&buf[..n]);
        Ok(n)
    }
}
