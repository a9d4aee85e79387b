//! `invsync status` for people, and its `--check` line for monitoring (Nagios-style statuses).

use std::fmt::Write as _;
use std::time::Duration;

use super::{Status, TargetState, to_the_minute};

/// An RFC 3339 time and its age: `2026-11-23T10:00:00.000Z (3m ago)`; `never` when none.
fn when(at: Option<&str>) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let age = chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .and_then(|t| (chrono::Utc::now() - t.to_utc()).to_std().ok())
        .map(|age| Duration::from_secs(age.as_secs()));
    match age {
        Some(age) => format!("{at} ({} ago)", humantime::format_duration(age)),
        None => at.to_owned(),
    }
}

/// The status for people.
pub fn render_text(status: &Status) -> String {
    let mut out = String::new();
    if !status.database_exists {
        let _ = writeln!(
            out,
            "no database at {} yet: no cycle has run",
            status.database
        );
    }
    out.push_str("targets:\n");
    for t in &status.targets {
        let state = match (&t.state, &t.held, &t.failing) {
            (TargetState::Held, Some(reason), _) => format!(
                "HELD by the mass-zero guard ({reason}); run `invsync once --force` to push"
            ),
            (TargetState::Failing, _, Some(error)) => format!("FAILING: {error}"),
            (TargetState::HeldSkus(_), _, _) => format!("{} (see held)", t.label),
            _ => t.label.clone(),
        };
        let _ = writeln!(
            out,
            "  {}: {state}\n    tracked {}, pending {}, failed {}, last successful push {}",
            t.name,
            t.tracked,
            t.pending,
            t.failed_skus,
            when(t.last_success_at.as_deref())
        );
        if t.in_doubt > 0 {
            // While a push is under way, a request's SKUs are in doubt until its answer comes:
            // that is a request in flight, not a lost answer.
            let said = match t.state {
                TargetState::Syncing { .. } => {
                    "sent in the request in flight, their acknowledgement not back yet"
                }
                _ => {
                    "sent without their acknowledgement coming back: pushed again at the next cycle"
                }
            };
            let _ = writeln!(out, "    {} SKUs {said}", t.in_doubt);
        }
        render_unchangeable(&mut out, t);
        for f in &t.failed_examples {
            let _ = writeln!(
                out,
                "    refused {} = {} since {}, next try {}: {}",
                f.sku,
                f.quantity,
                when(f.first_refused_at.as_deref()),
                when(f.next_attempt_at.as_deref()),
                f.message
            );
        }
    }
    out.push_str("sources:\n");
    let stale_after = humantime::format_duration(Duration::from_millis(status.stale_after_ms));
    for s in &status.sources {
        let failing = s.failing.as_deref().map(|e| format!("FAILING: {e}"));
        let never = s.last_fetch_at.is_none();
        let state = read_state(
            s.stale,
            failing,
            never,
            ("fetch", "never fetched"),
            &stale_after,
        );
        let _ = writeln!(
            out,
            "  {}: {state}\n    {} SKUs, last complete fetch {}",
            s.name,
            s.skus,
            when(s.last_fetch_at.as_deref())
        );
    }
    render_feeds(&mut out, status, &stale_after.to_string());
    render_reservations(&mut out, status);
    super::relay::render(&mut out, &status.relay);
    super::held::render(&mut out, &status.held, status.mapping.conflicts_total);
    super::mapping::render(&mut out, &status.mapping);
    if status.database_exists {
        out.push_str("last cycles:\n");
    }
    for c in &status.cycles {
        let _ = writeln!(
            out,
            "  #{} {} {}{} {}",
            c.id,
            when(c.started_at.as_deref()),
            c.duration_ms
                .map_or_else(|| "unfinished".to_owned(), |ms| format!("{ms}ms ")),
            c.outcome.as_deref().unwrap_or(""),
            c.summary.as_deref().unwrap_or("")
        );
    }
    out
}

/// The state of something read every cycle (a source, an order feed): `STALE` (with its
/// failure, if any: stale without failing means the daemon has not run for that long), its
/// failure, never read, or ok. `words`: what a complete read is called, and "never …".
fn read_state(
    stale: bool,
    failing: Option<String>,
    never: bool,
    words: (&str, &str),
    stale_after: &dyn std::fmt::Display,
) -> String {
    match (stale, failing) {
        (true, failing) => format!(
            "STALE: no complete {} for longer than stale_after ({stale_after}){}",
            words.0,
            failing.map_or_else(String::new, |f| format!("; {f}"))
        ),
        (false, Some(failing)) => failing,
        (false, None) if never => words.1.to_owned(),
        (false, None) => "ok".to_owned(),
    }
}

/// The order feeds, when any is configured.
fn render_feeds(out: &mut String, status: &Status, stale_after: &str) {
    if status.feeds.is_empty() {
        return;
    }
    out.push_str("order feeds:\n");
    for f in &status.feeds {
        let failing = (f.failing.as_deref())
            .map(|e| format!("FAILING: {e}; its reservations stand as they were"));
        let never = f.last_read_at.is_none();
        let state = read_state(
            f.stale,
            failing,
            never,
            ("read", "never read"),
            &stale_after,
        );
        let _ = writeln!(
            out,
            "  {}: {state}\n    last complete read {}",
            f.name,
            when(f.last_read_at.as_deref())
        );
        if !f.unreadable.is_empty() {
            let _ = writeln!(
                out,
                "    {} orders could not be read whole (each holds what it held before; a new one, the lines that could be read):",
                f.unreadable.len()
            );
        }
        for u in &f.unreadable {
            let _ = writeln!(
                out,
                "      order {}: {}",
                u.order_id.as_deref().unwrap_or("?"),
                u.reason
            );
        }
    }
}

/// A target's catalogue products that the API cannot change, under their own heading.
fn render_unchangeable(out: &mut String, t: &super::TargetStatus) {
    if t.unchangeable_total == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "    {} products the catalogue API cannot change (a variant or main variant); tried again when they change, or a week after:",
        t.unchangeable_total
    );
    for u in &t.unchangeable {
        let _ = writeln!(
            out,
            "      {} (product {}) since {}, next try at the latest {}: {}",
            u.sku,
            u.product,
            when(u.refused_at.as_deref()),
            when(u.retry_at.as_deref()),
            u.message
        );
    }
    if t.unchangeable_total > t.unchangeable.len() as i64 {
        let more = t.unchangeable_total - t.unchangeable.len() as i64;
        let _ = writeln!(out, "      … and {more} more");
    }
}

/// Open orders' reservations, when there are any (or something to look at).
fn render_reservations(out: &mut String, status: &Status) {
    let r = &status.reservations;
    if r.open == 0 && r.stuck.is_empty() && r.unknown_skus.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "reservations:\n  {} open ({} units subtracted), {} orders STUCK, {} SKUs unknown to every source",
        r.open,
        r.units,
        r.stuck.len(),
        r.unknown_skus.len()
    );
    for s in &r.stuck {
        let overdue = to_the_minute(s.overdue_ms);
        let _ = writeln!(
            out,
            "  STUCK order {} ({}): {} past its dispatch date {}, holds {}",
            s.order_id,
            s.feed,
            overdue,
            s.dispatch_due_at.as_deref().unwrap_or("-"),
            s.skus.join(", ")
        );
    }
    if !r.unknown_skus.is_empty() {
        let _ = writeln!(
            out,
            "  unknown SKUs held by open orders: {}",
            r.unknown_skus.join(", ")
        );
    }
}

/// `status --check`: one line and its exit status, as a monitoring plugin says it: 0 every
/// target in sync, 1 something pending or syncing, 2 failing, held (a target, or SKUs in a
/// mapping conflict or waiting for a catalogue), stale or an order STUCK,
/// 3 unknown (no database).
pub fn check_line(status: &Status) -> (String, u8) {
    if !status.database_exists {
        return (
            format!(
                "UNKNOWN: no database at {} yet: no cycle has run",
                status.database
            ),
            3,
        );
    }
    let mut critical = Vec::new();
    let mut warning = Vec::new();
    for t in &status.targets {
        let said = format!("{} {}", t.name, t.label);
        match t.state {
            TargetState::Held | TargetState::HeldSkus(_) | TargetState::Failing => {
                critical.push(said)
            }
            TargetState::InSync => {}
            TargetState::NeverSynced | TargetState::Syncing { .. } | TargetState::Pending(_) => {
                warning.push(said)
            }
        }
    }
    critical.extend(super::held::check_items(
        &status.held,
        status.mapping.conflicts_total,
    ));
    critical.extend(
        status
            .sources
            .iter()
            .filter(|s| s.stale)
            .map(|s| format!("{} STALE", s.name)),
    );
    for f in &status.feeds {
        if f.stale {
            critical.push(format!("order feed {} STALE", f.name));
        } else if f.failing.is_some() {
            critical.push(format!("order feed {} FAILING", f.name));
        }
    }
    for m in &status.relay.manual {
        critical.push(format!("relay order {} MANUAL", m.order_id));
    }
    for a in status.relay.awaiting_approval.iter().filter(|a| a.overdue) {
        warning.push(format!(
            "relay order {} awaits approval for {}",
            a.order_id,
            to_the_minute(a.waiting_ms)
        ));
    }
    critical.extend(
        status
            .reservations
            .stuck
            .iter()
            .map(|s| format!("order {} STUCK", s.order_id)),
    );
    let problems = |first: &[String], then: &[String]| {
        first
            .iter()
            .chain(then)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !critical.is_empty() {
        (format!("CRITICAL: {}", problems(&critical, &warning)), 2)
    } else if !warning.is_empty() {
        (format!("WARNING: {}", problems(&warning, &[])), 1)
    } else {
        (format!("OK: {} targets in sync", status.targets.len()), 0)
    }
}
