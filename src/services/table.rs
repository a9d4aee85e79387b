//! What every service's configuration table shares: where the service lives and its budget
//! ([`Remote`]), who invsync is there ([`Account`]), the keys every target has
//! ([`TargetCommon`]), and the checks a table asks of the file it is read from ([`Check`]).
//!
//! A service's `config.rs` types its own table with these; the configuration as a whole
//! (`crate::config`) implements [`Check`], so that every error names the file and the key path
//! the same way, and puts the tables together. Services know nothing of the file.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

/// Default budget for services that document none.
pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 60;

/// One remote endpoint's address and budget, common to sources and targets.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Service root without a trailing slash (Hako's includes `/v0`), as written.
    pub base_url: String,
    /// The same in canonical form (`config::identity::canonical_url`): what identities compare.
    pub canonical_url: String,
    /// The account's request budget.
    pub requests_per_minute: u32,
}

/// Who an endpoint is at its service.
#[derive(Clone)]
pub enum Account {
    /// A public account name (a Hardtofind username, a catalogue client id).
    Name(String),
    /// An account known only by its secret (a Hako key, an Endless Aisles token).
    Secret(SecretString),
}

impl PartialEq for Account {
    fn eq(&self, other: &Account) -> bool {
        match (self, other) {
            (Account::Name(a), Account::Name(b)) => a == b,
            (Account::Secret(a), Account::Secret(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::Name(name) => write!(f, "{name:?}"),
            Account::Secret(_) => f.write_str("[secret]"),
        }
    }
}

/// The settings every kind of target shares, as written.
#[derive(Debug)]
pub struct TargetCommon {
    /// Source names whose quantities are summed.
    pub inputs: Vec<String>,
    /// Entities per write request.
    pub batch_size: Option<usize>,
    /// Subtracted from the sum.
    pub safety_stock: Option<i64>,
    /// The most the target is ever told.
    pub max_quantity: Option<i64>,
}

/// A target's table as written: the keys every target has are fields of each service's own
/// struct (so that its unknown keys and the key path of each error are read from one struct,
/// which `#[serde(flatten)]` would lose), and this is the one place they are taken out of it.
pub trait TargetTable: DeserializeOwned {
    /// `base_url`.
    fn base_url(&self) -> &str;
    /// `requests_per_minute`, if written.
    fn requests_per_minute(&self) -> Option<u32>;
    /// `inputs`, `batch_size`, `safety_stock` and `max_quantity`.
    fn common(&self) -> TargetCommon;
}

/// Declares [`TargetTable`] for a raw target struct whose shared keys have the shared names.
#[macro_export]
#[doc(hidden)]
macro_rules! target_table {
    ($raw:ty) => {
        impl $crate::services::table::TargetTable for $raw {
            fn base_url(&self) -> &str {
                &self.base_url
            }
            fn requests_per_minute(&self) -> Option<u32> {
                self.requests_per_minute
            }
            fn common(&self) -> $crate::services::table::TargetCommon {
                $crate::services::table::TargetCommon {
                    inputs: self.inputs.clone(),
                    batch_size: self.batch_size,
                    safety_stock: self.safety_stock,
                    max_quantity: self.max_quantity,
                }
            }
        }
    };
}

/// What a service's table asks of the file it is read from. Each check records its error, naming
/// the key, and the others go on: `None` means an error was recorded.
pub trait Check {
    /// Records an error at `key`.
    fn report(&self, key: String, message: String);

    /// `base_url` and `requests_per_minute` of the table at `prefix` (`default_rpm` when not
    /// written).
    fn remote(
        &self,
        prefix: &str,
        base_url: &str,
        requests_per_minute: Option<u32>,
        default_rpm: u32,
    ) -> Option<Remote>;

    /// A secret given inline (`name`) or as a file (`name_file`), exactly one of the two.
    fn secret(
        &self,
        prefix: &str,
        name: &str,
        inline: Option<SecretString>,
        file: Option<PathBuf>,
    ) -> Option<SecretString>;

    /// A duration such as `"30m"` at `key`, `default` when not written.
    fn duration(&self, key: &str, value: Option<&str>, default: Duration) -> Option<Duration>;

    /// Types `table` as `T`, recording every unknown key and wrong value under `prefix`.
    fn table<T: DeserializeOwned>(&self, prefix: &str, table: toml::Table) -> Option<T>;

    /// Splits `[sources.NAME]` / `[targets.NAME]` / `[orders.NAME]` on its `type`, one of `kinds`.
    fn kind_table(
        &self,
        prefix: &str,
        value: toml::Value,
        kinds: &[&str],
    ) -> Option<(String, toml::Table)>;

    /// The remote of a target's table.
    fn target_remote(
        &self,
        prefix: &str,
        raw: &impl TargetTable,
        default_rpm: u32,
    ) -> Option<Remote> {
        self.remote(
            prefix,
            raw.base_url(),
            raw.requests_per_minute(),
            default_rpm,
        )
    }
}
