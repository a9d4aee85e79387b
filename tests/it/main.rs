//! Integration tests: the real `invsync` binary against stateful simulators over loopback, with a
//! real SQLite file in a temporary folder.

mod catalogue;
mod check;
mod cli;
mod config_errors;
mod daemon;
mod faults;
mod fidelity;
mod fleet;
mod forgetting;
mod helpers;
mod identity;
mod independence;
mod kills;
mod local;
mod logs;
mod mapping;
mod mapping_file;
mod mapping_held;
mod metrics;
mod orders;
mod postgres;
mod quiet;
mod relay;
mod relay_dialects;
mod relay_walks;
mod reload;
mod safety;
mod secrets;
mod shopsys;
mod sim;
mod status;
mod sync;
mod systemd;
mod trust;
mod walks;
