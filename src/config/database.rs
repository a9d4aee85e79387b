//! `daemon.database` and `daemon.schema`: where a shop's state lives. A file path is a SQLite
//! file (the default: one shop, one file, nothing to install); a `postgres://` (or
//! `postgresql://`) URL is a PostgreSQL database, the shop's tables in a schema of its own.
//!
//! The URL may hold a password: it is a [`SecretString`], never repeated in an error, and shown
//! (in logs, `status`, `check`) without its password or any secret of its query.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use super::checker::Checker;

/// Where a shop's state lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Database {
    /// A SQLite file, made with its folder when missing.
    File(PathBuf),
    /// A schema of a PostgreSQL database.
    Postgres(PostgresDatabase),
}

/// A shop's schema on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresDatabase {
    /// The connection URL as written (it may hold a password).
    pub url: SecretString,
    /// The shop's schema (`daemon.schema`, or one named after the configuration file).
    pub schema: String,
}

impl PartialEq for PostgresDatabase {
    fn eq(&self, other: &PostgresDatabase) -> bool {
        self.schema == other.schema && self.url.expose_secret() == other.url.expose_secret()
    }
}

impl Database {
    /// The SQLite file, when the state lives in one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Database::File(path) => Some(path),
            Database::Postgres(_) => None,
        }
    }
}

/// For logs and `status`: a file's path as it is; a URL without its password or the secrets
/// of its query, and the schema.
impl fmt::Display for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::File(path) => write!(f, "{}", path.display()),
            Database::Postgres(pg) => write!(
                f,
                "{} (schema {})",
                without_secrets(pg.url.expose_secret()),
                pg.schema
            ),
        }
    }
}

/// Whether `daemon.database` names a PostgreSQL database rather than a file.
fn is_url(written: &str) -> bool {
    written.starts_with("postgres://") || written.starts_with("postgresql://")
}

/// `url` without its password, and without the query's keys that may hold one
/// (`password`, `sslpassword`, …). What cannot be read as a URL is not shown at all.
fn without_secrets(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return format!(
            "{}://(unreadable URL)",
            url.split("://").next().unwrap_or("")
        );
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(None);
    }
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| !key.to_ascii_lowercase().contains("pass"))
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(kept);
    }
    parsed.to_string()
}

/// Whether `name` may name a shop's schema: lower-case ASCII letters, digits and `_`, starting
/// with a letter, at most 63 bytes (PostgreSQL's limit), so it is never quoted wrongly.
pub fn valid_schema(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 63
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

/// The schema a shop gets without `daemon.schema`: its configuration file's name without the
/// extension (`/etc/invsync/shops/Big-Shop.toml`: `big_shop`), lower-case, every other
/// character `_`, and `shop_` before a name that does not start with a letter.
fn default_schema(config: &Path) -> String {
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            _ => '_',
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name
    } else {
        format!("shop_{name}")
    }
}

/// `daemon.database` (default `default`) and `daemon.schema`, checked: a URL that
/// `tokio-postgres` reads, a schema that may name one.
pub(super) fn database(
    check: &Checker,
    written: Option<&Path>,
    schema: Option<&str>,
    default: &str,
) -> Option<Database> {
    let written = written.unwrap_or(Path::new(default));
    let url = written.to_str().filter(|w| is_url(w));
    let Some(url) = url else {
        if schema.is_some() {
            check.report(
                "daemon.schema",
                "only a PostgreSQL daemon.database (postgres://…) has a schema",
            );
            return None;
        }
        return Some(Database::File(written.to_path_buf()));
    };
    let mut ok = true;
    // tokio-postgres's own message names what is wrong, never the URL (it may hold a password).
    if let Err(e) = tokio_postgres::Config::from_str(url) {
        // Its cause names the option that is wrong (`port`, `sslmode`), not its value.
        let cause = std::error::Error::source(&e)
            .map(|cause| format!(" ({cause})"))
            .unwrap_or_default();
        check.report(
            "daemon.database",
            format!("not a PostgreSQL URL: {e}{cause}"),
        );
        ok = false;
    }
    let (schema, hint) = match schema {
        Some(schema) => (schema.to_owned(), ""),
        None => (
            default_schema(check.file),
            " (named after the configuration file: set daemon.schema)",
        ),
    };
    if !valid_schema(&schema) {
        let message = format!(
            "{schema:?} cannot name a schema: lower-case letters, digits and _, starting with a letter, at most 63 bytes{hint}"
        );
        check.report("daemon.schema", message);
        ok = false;
    }
    ok.then(|| {
        Database::Postgres(PostgresDatabase {
            url: SecretString::from(url.to_owned()),
            schema,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_is_named_after_the_configuration_file() {
        for (file, schema) in [
            ("/etc/invsync/shops/Big-Shop.toml", "big_shop"),
            ("/etc/invsync/config.toml", "config"),
            ("/etc/invsync/shops/42.toml", "shop_42"),
            ("/etc/invsync/shops/_x.toml", "shop__x"),
        ] {
            assert_eq!(default_schema(Path::new(file)), schema, "{file}");
            assert!(valid_schema(schema), "{schema}");
        }
    }

    #[test]
    fn a_url_is_shown_without_its_password_or_the_secrets_of_its_query() {
        let shown = |url: &str| {
            Database::Postgres(PostgresDatabase {
                url: SecretString::from(url.to_owned()),
                schema: "shop".into(),
            })
            .to_string()
        };
        assert_eq!(
            shown("postgres://invsync:s3cret@db.example:5432/fleet?sslmode=require&password=p2"),
            "postgres://invsync@db.example:5432/fleet?sslmode=require (schema shop)"
        );
        assert_eq!(
            shown("postgresql://invsync@%2Frun%2Fpostgresql/fleet"),
            "postgresql://invsync@%2Frun%2Fpostgresql/fleet (schema shop)"
        );
        assert_eq!(
            Database::File(PathBuf::from("/var/lib/invsync/invsync.db")).to_string(),
            "/var/lib/invsync/invsync.db"
        );
    }
}
