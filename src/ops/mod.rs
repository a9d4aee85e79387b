//! What operators read: the cycle's report and summary line, `invsync status` and its `--sku`
//! explanations, the staleness alarm, what systemd hears, the Prometheus metrics, the log filter and the log format.

pub mod explain;
pub mod log_filter;
pub mod logfmt;
pub mod metrics;
pub mod notify;
pub mod report;
pub mod stale;
pub mod status;
pub mod status_held;
pub mod status_mapping;
pub mod status_relay;
mod status_text;
pub mod telemetry;

/// A time for people and for JSON: RFC 3339 in UTC, to the second (ms since the epoch in).
pub fn rfc3339(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}
