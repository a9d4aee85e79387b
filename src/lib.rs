//! invsync keeps a shop's stock figures true on every channel it sells through.
//!
//! On a schedule it runs a **sync cycle** ([`daemon::cycle::Engine::run_cycle`]): it **fetches**
//! every source completely and at once ([`services`]: Hako, Endless Aisles), **records** each
//! source's snapshot in SQLite as soon as it is in ([`store`]) unless the mass-zero guard holds it,
//! reads the open orders of every order feed (what changed since the last read, checked against
//! the service's count) and brings their **reservations** up to date
//! ([`plan::reservations`]), then every target, in a task of its own, **plans** the quantity it
//! should show (`min(cap, max(0, inputs - reserved - safety stock))`) and diffs it against what
//! it last acknowledged ([`plan`], pure), and **pushes** only the differences in batches
//! ([`targets`], through the [`services`]' writers: Hardtofind, Hako; the catalogue gets one
//! availability-flag `PATCH` per changed product instead), rate-limited per account and retried
//! with backoff ([`http`]), re-planning between batches from the newest snapshot, and
//! **acknowledges** each batch in SQLite only after the target answered with its documented
//! body. A crash anywhere loses nothing: what was not acknowledged is pushed again by the next
//! cycle. State belongs to the place an endpoint writes ([`config::Identity`]), not to its name.
//!
//! Where things live (data flows down the list, never up):
//! - [`demo`], [`commands`], [`manual`]: `invsync demo` and the simulators alone (`invsync
//!   sim`); what the command line runs and its exit statuses; completions and the man page.
//! - [`fleet`]: many shops on many machines: leases on the shops in PostgreSQL, their fencing,
//!   each worker's fair share.
//! - [`daemon`]: `run`'s schedule and signals; the engine built once per configuration
//!   (`daemon::engine`: clients, slots, the state loaded and reconciled, what it keeps of the
//!   mapping, [`daemon::mapping`]); one cycle end to end ([`daemon::cycle`]: fetch → orders →
//!   targets → relay → summary): the sources' part (fetch, guard, record, publish), the order
//!   feeds' part, one task per target; shutdown.
//! - [`ops`]: what operators read: the cycle report and summary line, `status`, `--sku`
//!   explanations, the staleness alarm, systemd notifications, the metrics, logging.
//! - [`relay`]: the dropship relay (opt-in): Hardtofind orders placed at Endless Aisles at most
//!   once, in a state machine kept in SQLite (its states: [`plan::relay`]), and their tracking
//!   sent back; which feed and source it runs between ([`relay::ends`]).
//! - [`targets`]: one owner per target: a core every target has (its acknowledged state, its
//!   guard memory, refusals and their schedule, the login backoff, its settled mark) and two
//!   kinds, quantities in batches (`quantities`, the push loop `push`) and a catalogue's flags
//!   (`flag`); what both settle in the store (`settle`), and what its cycle did
//!   ([`targets::report`]).
//! - [`mapper`]: the mapping in force ([`mapper::Mapper`]), built when a cycle first needs it
//!   from the file ([`mapper::file`]), the Endless Aisles products and the catalogues'
//!   barcodes; the one place a source's answer becomes canonical records.
//! - [`store`]: SQLite, and only here: schema and migrations, snapshots, acknowledgements, the
//!   guard's and logins' memory, reservations, flags, history, the one-daemon-per-database lock.
//! - [`sim`]: every simulator in one place (tests, `demo`, `invsync sim`): the services' own and
//!   the harness they share.
//! - [`config`]: the TOML file as a whole: loading, `[daemon]`, the services' tables gathered, the clients built, identities,
//!   every error naming its key.
//! - [`services`]: one folder per remote service (wire types, its config table, source, target
//!   or order feed, simulator); [`services::kinds`] is the only place that lists them, and
//!   [`services::session`] the one login every service that logs in shares.
//! - [`http`]: the client, the retry policy, the shared rate limits and `Retry-After` pauses,
//!   what every request counts ([`http::metrics`]).
//! - [`mapping`]: pure, no I/O: what each endpoint calls a SKU (the `[mapping] file`, barcodes
//!   as GTINs), and which SKUs are in conflict ([`mapper`] keeps the one in force).
//! - [`plan`]: pure, no I/O: desired quantities and the diff, the mass-zero guard and its window,
//!   backoffs counted in cycles, the reservations' book, the in-memory ledger, a source's answer
//!   ([`plan::stock::Stock`]), the relay's states.
//! - [`harness`]: what every simulator shares (faults, recorded requests, dialects, the loopback
//!   server); it knows no service.

// One floor a line, in the order of the list above (the blank lines keep rustfmt from sorting
// them; `tests/floors.rs` holds the code to this order).
pub mod demo;

pub mod commands;

pub mod manual;

pub mod fleet;

pub mod daemon;

pub mod ops;

pub mod relay;

pub mod targets;

pub mod mapper;

pub mod store;

pub mod sim;

pub mod config;

pub mod services;

pub mod http;

pub mod mapping;

pub mod plan;

pub mod harness;
