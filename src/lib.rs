//! invsync keeps a shop's stock figures true on every channel it sells through.
//!
//! On a schedule it runs a **sync cycle** ([`daemon::cycle::Engine::run_cycle`]): it **fetches**
//! the stock of every source completely ([`services`]: Hako, Endless Aisles), **records** each
//! source's quantities as a snapshot in SQLite ([`store`]), **plans** for every target the
//! quantity it should show and diffs it against what the target last acknowledged ([`plan`],
//! pure functions, with the mass-zero guard), **pushes** only the differences in batches
//! ([`target`], through the [`services`]' writers: Hardtofind, Hako; the catalogue gets one
//! availability-flag `PATCH` per changed product instead), rate-limited per account
//! and retried with backoff ([`http`]), and **acknowledges** each batch in SQLite only after the
//! target answered with its documented body. A crash anywhere loses nothing: what was not
//! acknowledged is pushed again by the next cycle.
//!
//! Where things live (data flows down the list, never up):
//! - [`commands`], [`demo`]: what the command line runs; the exit statuses.
//! - [`daemon`]: `run`'s schedule, one cycle end to end ([`daemon::cycle`]), signals and
//!   shutdown.
//! - [`ops`]: what operators read: the cycle report, `status`, `--sku` explanations, the
//!   staleness alarm, systemd notifications, logging.
//! - [`target`]: one owner per target: its acknowledged state, refusals, the push loop, the one
//!   refusal classifier.
//! - [`services`]: one folder per remote service (wire types, its config table, source and/or
//!   target, simulator); [`services::build`] is the one place that lists them.
//! - [`plan`]: desired quantities, the diff, the mass-zero guard, the in-memory ledger. No I/O.
//! - [`config`]: the TOML file as a whole: loading, `[daemon]`, cross-references, every error
//!   naming its key.
//! - [`store`]: SQLite, and only here: schema, migrations, snapshots, acknowledgements, history,
//!   the one-daemon-per-database lock.
//! - [`http`]: the client, the retry policy and the shared rate limits.
//! - [`sim`]: the harness the simulators share (faults, recorded requests, the loopback server).
//! - [`manual`]: shell completions and the man page, made from the command line's definition.

pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod http;
pub mod manual;
pub mod ops;
pub mod plan;
pub mod services;
pub mod sim;
pub mod store;
pub mod target;
