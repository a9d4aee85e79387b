//! `invsync relay list | show ORDER | approve ORDER`: the dropship relay's queue, from the
//! database alone (no secret, no service reached), so they work beside a running daemon. `list` and
//! `show` open it read-only; `approve` writes one row in one transaction (see
//! `store::open_for_approval`).

use std::path::Path;
use std::process::ExitCode;

use super::database::Reach;
use super::{Failure, store_failure};
use crate::config::{self, Database};
use crate::relay::Record;
use crate::store::{self, Approval, Store};

/// What `invsync relay` was asked.
#[derive(Debug, Clone)]
pub enum RelayCommand {
    /// `relay list`.
    List,
    /// `relay show ORDER`.
    Show(String),
    /// `relay approve ORDER`.
    Approve(String),
}

/// Runs `invsync relay …`.
pub async fn relay(path: &Path, command: RelayCommand) -> Result<ExitCode, Failure> {
    let database = config::database(path)?;
    let reach = Reach::of(&database)?;
    if let RelayCommand::Approve(order) = command {
        return approve(&database, &reach, order).await;
    }
    let store = match reach.read_only().await {
        Ok(Some(store)) => store,
        Ok(None) => {
            outln!("no database yet at {database}: nothing relayed");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(store_failure(&database, e)),
    };
    let now = store::now_ms();
    match command {
        RelayCommand::List => {
            let records = (store.call(|c| store::relay_records(c)).await)
                .map_err(|e| store_failure(&database, e))?;
            if records.is_empty() {
                outln!("no orders relayed");
            }
            for record in &records {
                outln!("{}", list_line(record, now));
            }
            Ok(ExitCode::SUCCESS)
        }
        RelayCommand::Show(order) => {
            let id = order.clone();
            let record = (store.call(move |c| store::relay_record(c, &id)).await)
                .map_err(|e| store_failure(&database, e))?;
            match record {
                Some(record) => {
                    outln!("{}", show(&record, now));
                    Ok(ExitCode::SUCCESS)
                }
                None => Err(Failure::Usage(format!(
                    "relay show: the relay has no order {order:?} (see invsync relay list)"
                ))),
            }
        }
        RelayCommand::Approve(_) => Ok(ExitCode::SUCCESS),
    }
}

async fn approve(database: &Database, reach: &Reach, order: String) -> Result<ExitCode, Failure> {
    let id = order.clone();
    let approval = match reach {
        Reach::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                if !path.exists() {
                    return Ok(Approval::Unknown);
                }
                let mut conn = store::open_for_approval(&path)?;
                store::relay_approve(&mut conn, &id, store::now_ms())
            })
            .await
            .map_err(|_| Failure::Other("the database task did not finish".into()))?
        }
        // The same transaction, in the shop's schema (never made nor migrated here).
        Reach::Postgres { pool, schema } => {
            match Store::open_postgres_for_approval(pool.clone(), schema).await {
                Ok(Some(store)) => {
                    store
                        .call(move |c| store::relay_approve(c, &id, store::now_ms()))
                        .await
                }
                Ok(None) => Ok(Approval::Unknown),
                Err(e) => Err(e),
            }
        }
    }
    .map_err(|e| store_failure(database, e))?;
    match approval {
        Approval::Approved(record) => {
            outln!(
                "approved {} ({}): placed at the next cycle that finds it eligible",
                record.order_id,
                record.custom_order_id
            );
            Ok(ExitCode::SUCCESS)
        }
        Approval::Already(record) => {
            outln!(
                "{} was approved already ({})",
                record.order_id,
                record.state
            );
            Ok(ExitCode::SUCCESS)
        }
        Approval::NotApprovable(record) => Err(Failure::Other(format!(
            "relay approve: order {} is {}; approving means nothing now",
            record.order_id, record.state
        ))),
        Approval::Unknown => Err(Failure::Usage(format!(
            "relay approve: the relay has no order {order:?} (see invsync relay list)"
        ))),
    }
}

/// A duration for people: `42s`, `7m`, `3h`, `2d`.
fn age(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// One line of `relay list`: order, state, supplier order, age, reason.
pub fn list_line(record: &Record, now: i64) -> String {
    let supplier = record
        .supplier_order_id
        .map_or_else(|| "-".to_owned(), |id| id.to_string());
    let reason = record.reason.as_deref().unwrap_or("-");
    format!(
        "{:<12} {:<10} supplier={:<8} age={:<4} reason={reason}",
        record.order_id,
        record.state.to_string(),
        supplier,
        age(now - record.seen_at),
    )
}

/// `relay show`: every field of the record.
pub fn show(record: &Record, now: i64) -> String {
    let when = |ms: i64| crate::ops::rfc3339(ms);
    let mut lines = vec![
        format!("order:            {}", record.order_id),
        format!("feed:             {}", record.feed),
        format!("custom_order_id:  {}", record.custom_order_id),
        format!("state:            {}", record.state),
        format!(
            "reason:           {}",
            record.reason.as_deref().unwrap_or("-")
        ),
        format!(
            "approved:         {}",
            if record.approved { "yes" } else { "no" }
        ),
        format!(
            "supplier order:   {}",
            record
                .supplier_order_id
                .map_or("-".to_owned(), |id| id.to_string())
        ),
        format!(
            "value:            {}",
            record.value.map_or("-".to_owned(), |v| format!("{v:.2}"))
        ),
        format!(
            "seen:             {} ({} ago)",
            when(record.seen_at),
            age(now - record.seen_at)
        ),
        format!("updated:          {}", when(record.updated_at)),
    ];
    if let Some(at) = record.placing_at {
        lines.push(format!("placing since:    {}", when(at)));
    }
    if record.attempts > 0 {
        lines.push(format!("resolve attempts: {}", record.attempts));
    }
    if let Some(payload) = &record.payload {
        // Written when the order is prepared; once placing began, it is the order as sent.
        let label = if record.placing_at.is_some() {
            "sent:            "
        } else {
            "to send:         "
        };
        lines.push(format!("{label} {payload}"));
    }
    lines.join("\n")
}
