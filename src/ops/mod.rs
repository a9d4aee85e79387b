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
pub mod telemetry;

pub use crate::store::rfc3339;
