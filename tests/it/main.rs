//! Integration tests: the real `invsync` binary against stateful simulators over loopback, with a
//! real SQLite file in a temporary folder.

mod check;
mod config_errors;
mod daemon;
mod faults;
mod helpers;
mod identity;
mod independence;
mod logs;
mod metrics;
mod reload;
mod safety;
mod secrets;
mod status;
mod sync;
mod systemd;
