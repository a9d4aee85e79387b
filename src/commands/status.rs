//! `invsync status`: reads the database only, never a secret, and says what it finds the way the
//! contract asks (text, `--json` always JSON, `--check` for monitoring, `--sku` for one SKU).

use std::path::Path;
use std::process::ExitCode;

use super::database::Reach;
use super::{Failure, print_json, store_failure};
use crate::config::{self, Database};
use crate::ops::{explain, status as status_view};
use crate::store::Store;

/// Flags of `status`.
#[derive(Debug, Clone, Default)]
pub struct StatusArgs {
    /// `--json`: always JSON on stdout, even without a database or on a failure.
    pub json: bool,
    /// `--sku SKU`: explain one SKU.
    pub sku: Option<String>,
    /// `--check`: one line and a monitoring plugin's exit status.
    pub check: bool,
}

/// `invsync status [--json] [--sku SKU] [--check]`. Reads only `daemon.database`,
/// `daemon.stale_after`, the sources' names and the targets' inputs and rules from the
/// configuration, never a secret, so that an operator can run it without access to the
/// service's credential files.
pub async fn status(path: &Path, args: StatusArgs) -> Result<ExitCode, Failure> {
    let settings = config::status_settings(path)?;
    match status_of(&settings, &args).await {
        Ok(code) => Ok(code),
        Err(failure) if args.check => {
            outln!("UNKNOWN: {failure}");
            Ok(ExitCode::from(3))
        }
        Err(failure) => {
            if args.json {
                print_json(&serde_json::json!({ "error": failure.to_string() }))?;
            }
            Err(failure)
        }
    }
}

async fn status_of(
    settings: &config::StatusSettings,
    args: &StatusArgs,
) -> Result<ExitCode, Failure> {
    let database = &settings.database;
    let store = match database {
        // "No database" only when there is really none: a folder that cannot be read is an error.
        Database::File(path) => match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(Failure::Other(format!(
                    "cannot read the database {}: {e}",
                    path.display()
                )));
            }
            Ok(_) => Store::open_read_only(path)
                .await
                .map_err(|e| store_failure(database, e))?,
        },
        // No schema yet: no database yet.
        Database::Postgres(_) => Reach::of(database)?
            .read_only()
            .await
            .map_err(|e| store_failure(database, e))?,
    };
    if let Some(sku) = &args.sku {
        return explain_one(store, sku.clone(), settings.targets.clone(), args.json).await;
    }
    let status = match store {
        None => status_view::without_database(settings),
        Some(store) => {
            let settings = settings.clone();
            store
                .call(move |c| status_view::read(c, 10, &settings))
                .await?
        }
    };
    if args.check {
        let (line, code) = status_view::check_line(&status);
        outln!("{line}");
        return Ok(ExitCode::from(code));
    }
    if args.json {
        print_json(&status)?;
    } else {
        out!("{}", status_view::render_text(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// `status --sku SKU`: exit 1 when no source ever reported it.
async fn explain_one(
    store: Option<Store>,
    sku: String,
    targets: Vec<config::TargetRules>,
    json: bool,
) -> Result<ExitCode, Failure> {
    let explained = match store {
        Some(store) => {
            let sku = sku.clone();
            store
                .call(move |c| explain::explain_sku(c, &sku, &targets))
                .await?
        }
        None => None,
    };
    match &explained {
        Some(status) if json => print_json(status)?,
        Some(status) => out!("{}", explain::render_text(status)),
        None if json => outln!("null"),
        None => outln!("{sku}: no source has ever reported this SKU"),
    }
    Ok(if explained.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
