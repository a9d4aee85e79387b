//! invsync keeps a shop's stock figures true on every channel it sells through.
//!
//! On a schedule it runs a **sync cycle** ([`cycle::Engine::run_cycle`]): it **fetches** the stock
//! of every source completely ([`connectors`]: Hako, Endless Aisles), **records** each source's
//! quantities as a snapshot in SQLite ([`store`]), **plans** for every target the quantity it
//! should show and diffs it against what the target last acknowledged ([`plan`], pure functions,
//! with the mass-zero guard), **pushes** only the differences in batches ([`connectors`]:
//! Hardtofind, Hako), rate-limited per account and retried with backoff ([`http`]), and
//! **acknowledges** each batch in SQLite only after the target answered 2xx. A crash anywhere
//! loses nothing: what was not acknowledged is pushed again by the next cycle.
//!
//! Where things live:
//! - [`config`]: the TOML file, typed and validated; every error names its key.
//! - [`daemon`]: `run`'s schedule loop, no overlapping cycles, graceful shutdown.
//! - [`cycle`]: one cycle end to end, returning a [`report::CycleReport`] (the summary log line).
//! - [`ledger`]: the in-memory quantities, compact enough for a million SKUs.
//! - [`plan`]: desired quantities, the diff, the mass-zero guard. No I/O.
//! - [`store`]: SQLite schema, migrations, snapshots, acknowledgements, cycle history.
//! - [`http`]: the client, the retry policy and the shared rate limits.
//! - [`connectors`]: one module per remote service, named as in its API document.
//! - [`commands`]: `once`, `check`, `status`, `run` as the command line runs them.
//! - [`stale`]: the alarm for a source that has not answered for longer than `stale_after`.
//! - [`status`], [`telemetry`]: what an operator reads; [`notify`]: what systemd hears (ready,
//!   status, a watchdog that stays quiet when a cycle stalls).
//! - [`sim`]: stateful simulators of the three services, for `invsync demo` and the tests.
//! - [`demo`]: `invsync demo` (the daemon against the simulators) and `invsync sim` (them alone).
//! - [`manual`]: shell completions and the man page, made from the command line's definition.

pub mod commands;
pub mod config;
pub mod connectors;
pub mod cycle;
pub mod daemon;
pub mod demo;
pub mod explain;
pub mod http;
pub mod ledger;
pub mod lock;
pub mod manual;
pub mod notify;
pub mod plan;
pub mod push;
pub mod report;
pub mod shutdown;
pub mod sim;
pub mod stale;
pub mod status;
pub mod store;
pub mod telemetry;
