//! The mapping file in force, and what the database knows of it.
//!
//! A shop that maps every SKU has a file of a million lines: reading and checking it costs most
//! of a second and 100 MB, which an unchanged cycle must not pay. So the database keeps the
//! file it last took (`store::mapping::FileRecord`): what the file system said of it, the
//! SHA-256 of its bytes, the endpoint names it was checked against, and its lines. At a start
//! or a reload ([`prepare`]) the file is then
//! - not read at all when its stamp is the one recorded (same size, times, inode, device;
//!   a stamp taken within seconds of the file's last change is never recorded, see
//!   `config::mapping::FileStamp::settled`);
//! - read without being parsed when only its stamp changed: the same digest, checked against
//!   the same endpoints, is proof enough that it is valid;
//! - read and checked otherwise, a mistake stopping the start (exit 2) or the reload (the old
//!   configuration goes on), each naming the file and its line.
//!
//! Its lines are needed only when a cycle needs the mapping itself (a new answer of a source
//! with links, a target that plans, an order feed with links, the relay): then they are read
//! from the database, as they were when checked, whatever became of the file since (the file
//! takes effect at a reload, never behind the operator's back).

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::config::ConfigErrors;
use crate::config::mapping::{FileDigest, digest_file, endpoint_names, read_file};
use crate::mapping::Aliases;
use crate::store::mapping::FileRecord;
use crate::store::{self, Store, StoreError};

/// The mapping in force as a start or reload found it.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The file, if the configuration has one.
    pub file: Option<FileInForce>,
    /// Whether the database recorded a file (the one in force or another).
    pub had_record: bool,
}

/// The mapping file in force.
#[derive(Debug, Clone)]
pub struct FileInForce {
    /// The SHA-256 of its bytes.
    pub digest: FileDigest,
    /// The endpoint names it was checked against, one per line.
    pub checked_for: String,
    /// Its stamp, if settled enough to be trusted next time (else empty).
    pub stamp: String,
    /// The endpoints it has lines for.
    pub named: Vec<String>,
    /// How it is known to be valid.
    pub proof: Proof,
}

/// How a mapping file is known to be valid.
#[derive(Debug, Clone)]
pub enum Proof {
    /// The database recorded it, with this very stamp: it was not read.
    Recorded,
    /// The database recorded these bytes under another stamp: read, not parsed; the new
    /// stamp is to be recorded.
    Restamped,
    /// Read and checked now (new, changed, or unknown to the database): its lines, to be
    /// recorded.
    Fresh(Arc<Aliases>),
}

impl FileInForce {
    /// Its digest, as the fingerprints show it.
    pub fn digest_hex(&self) -> String {
        self.digest
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// What the database is to keep of it.
    pub fn record(&self) -> FileRecord {
        FileRecord {
            stamp: self.stamp.clone(),
            digest: self.digest.to_vec(),
            checked_for: self.checked_for.clone(),
            named: self.named.join("\n"),
        }
    }
}

/// The mapping file of `config`, checked only when `record` (what the database recorded)
/// cannot vouch for it (see the module documentation). Blocking: it may read the file.
pub fn prepare(config: &Config, record: Option<FileRecord>) -> Result<Prepared, ConfigErrors> {
    let had_record = record.is_some();
    let (Some(path), Some(stamp)) = (
        config.mapping.as_ref().and_then(|m| m.file.as_deref()),
        config.mapping.as_ref().and_then(|m| m.stamp.as_ref()),
    ) else {
        return Ok(Prepared {
            file: None,
            had_record,
        });
    };
    let names = endpoint_names(config);
    let checked_for = names.join("\n");
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let trusted = if stamp.settled(now_ns) {
        stamp.text.clone()
    } else {
        String::new()
    };
    let recorded = record
        .filter(|r| r.checked_for == checked_for)
        .and_then(|r| Some((FileDigest::try_from(r.digest.as_slice()).ok()?, r)));
    if let Some((digest, record)) = recorded {
        let named = || record.named.lines().map(str::to_owned).collect();
        if !record.stamp.is_empty() && record.stamp == stamp.text {
            tracing::debug!(file = %path.display(), "the mapping file is the one recorded (same stamp): not read");
            return Ok(in_force(
                digest,
                checked_for,
                record.stamp.clone(),
                named(),
                Proof::Recorded,
                had_record,
            ));
        }
        let started = std::time::Instant::now();
        if digest_file(&config.path, path)? == digest {
            tracing::debug!(file = %path.display(), ms = started.elapsed().as_millis() as u64, "the mapping file has the bytes recorded: read, not checked again");
            return Ok(in_force(
                digest,
                checked_for,
                trusted,
                named(),
                Proof::Restamped,
                had_record,
            ));
        }
    }
    let started = std::time::Instant::now();
    let (aliases, digest) = read_file(&config.path, path, &names)?;
    tracing::debug!(
        file = %path.display(),
        lines = aliases.len(),
        ms = started.elapsed().as_millis() as u64,
        "the mapping file was read and checked"
    );
    let named = aliases.names().to_vec();
    Ok(in_force(
        digest,
        checked_for,
        trusted,
        named,
        Proof::Fresh(Arc::new(aliases)),
        had_record,
    ))
}

fn in_force(
    digest: FileDigest,
    checked_for: String,
    stamp: String,
    named: Vec<String>,
    proof: Proof,
    had_record: bool,
) -> Prepared {
    Prepared {
        file: Some(FileInForce {
            digest,
            checked_for,
            stamp,
            named,
            proof,
        }),
        had_record,
    }
}

/// [`prepare`] with the record of `store` (`None`: no database yet), off the runtime.
pub async fn prepare_with(
    config: Arc<Config>,
    store: Option<&Store>,
) -> Result<Result<Prepared, ConfigErrors>, StoreError> {
    let record = match store {
        Some(store) => store.call(|c| store::mapping::load_file_record(c)).await?,
        None => None,
    };
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| prepare(&config, record)))
        .await
        .map_err(|_| StoreError::Join)
}

/// The lines of the file in force: recorded in `store` when the digest there is `file`'s (it
/// is, unless a daemon beside a dry run took a newer file meanwhile), else read from the file
/// at `path` again when it still has those bytes.
pub async fn load_lines(
    store: &Store,
    file: &FileInForce,
    config: &Path,
    path: &Path,
) -> Result<Aliases, StoreError> {
    let digest = file.digest;
    let recorded = store
        .call(move |c| {
            // The digest first: the lines of another file are not read at all.
            let same = store::mapping::load_file_record(c)?.is_some_and(|r| r.digest == digest);
            if !same {
                return Ok(None);
            }
            store::mapping::load_file_lines(c)
        })
        .await?;
    if let Some((recorded, aliases)) = recorded
        && recorded == file.digest
    {
        return Ok(aliases);
    }
    let names: Vec<String> = file.checked_for.lines().map(str::to_owned).collect();
    let (config, path) = (config.to_path_buf(), path.to_path_buf());
    let read = tokio::task::spawn_blocking(move || read_file(&config, &path, &names))
        .await
        .map_err(|_| StoreError::Join)?;
    match read {
        Ok((aliases, digest)) if digest == file.digest => Ok(aliases),
        Ok(_) => Err(StoreError::MappingChanged(
            "the file has other bytes now".to_owned(),
        )),
        Err(e) => Err(StoreError::MappingChanged(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[daemon]
database = "invsync.db"
every = "5m"

[sources.dropship]
type = "endless_aisles"
base_url = "https://app.endlessaisles.io/"
token = "t0ken"

[targets.hardtofind]
type = "hardtofind"
base_url = "https://api.hardtofind.com.au"
username = "seller@example.com"
password = "pw"
inputs = ["dropship"]

[mapping]
file = "skus.csv"
"#;

    /// A configuration with `csv` as its mapping file, loaded.
    fn config(dir: &tempfile::TempDir, csv: &str) -> Config {
        std::fs::write(dir.path().join("config.toml"), CONFIG).expect("config");
        std::fs::write(dir.path().join("skus.csv"), csv).expect("mapping file");
        Config::load(&dir.path().join("config.toml")).expect("valid")
    }

    fn file(prepared: &Prepared) -> &FileInForce {
        prepared.file.as_ref().expect("a file")
    }

    #[test]
    fn a_file_the_database_does_not_know_is_read_and_checked_and_one_it_knows_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config(&dir, "sku,endpoint,key\nA,hardtofind,KA\n");

        let fresh = prepare(&config, None).expect("valid");
        assert!(matches!(file(&fresh).proof, Proof::Fresh(ref l) if l.len() == 1));
        assert_eq!(file(&fresh).named, ["hardtofind"]);
        // Written just now: its stamp is not trusted yet.
        assert_eq!(file(&fresh).stamp, "");

        // The same bytes under another stamp: read, not checked again.
        let recorded = file(&fresh).record();
        let same = prepare(&config, Some(recorded.clone())).expect("valid");
        assert!(matches!(file(&same).proof, Proof::Restamped));
        assert_eq!(file(&same).digest, file(&fresh).digest);

        // The stamp recorded: not even read. A digest it could not have is believed, which
        // shows the file was not read to compare it.
        let stamp = config.mapping.as_ref().and_then(|m| m.stamp.clone());
        let trusted = FileRecord {
            stamp: stamp.expect("stamped").text,
            digest: vec![7; 32],
            ..recorded.clone()
        };
        let untouched = prepare(&config, Some(trusted)).expect("valid");
        assert!(matches!(file(&untouched).proof, Proof::Recorded));
        assert_eq!(file(&untouched).digest, [7; 32]);

        // Checked against other endpoints: checked again.
        let elsewhere = FileRecord {
            checked_for: "dropship\nshop".to_owned(),
            ..recorded
        };
        let again = prepare(&config, Some(elsewhere)).expect("valid");
        assert!(matches!(file(&again).proof, Proof::Fresh(_)));
    }

    #[test]
    fn a_changed_file_is_checked_again_and_a_mistake_names_its_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_before = config(&dir, "sku,endpoint,key\nA,hardtofind,KA\n");
        let recorded = file(&prepare(&config_before, None).expect("valid")).record();
        let config = config(&dir, "sku,endpoint,key\nA,hardtofnd,KA\n");

        let errors = prepare(&config, Some(recorded)).expect_err("a mistake");

        let text = errors.to_string();
        assert!(
            text.contains("skus.csv: line 2: unknown endpoint \"hardtofnd\""),
            "{text}"
        );
    }

    #[test]
    fn a_stamp_is_trusted_only_seconds_after_the_last_change() {
        let stamp = crate::config::mapping::FileStamp {
            text: "1:2:3:4:5".to_owned(),
            changed_ns: 10_000_000_000,
        };
        assert!(!stamp.settled(11_000_000_000));
        assert!(stamp.settled(14_000_000_000));
    }
}
