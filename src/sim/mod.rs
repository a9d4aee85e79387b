//! Every simulator in one place, for tests, `invsync demo` and `invsync sim`: each service's own
//! (its folder's `sim/`) and the harness they share ([`crate::harness`]: faults, recorded
//! requests, dialects, the loopback server), under the names tests have always used
//! (`invsync::sim::HardtofindSim`, `invsync::sim::Fault`).
//!
//! Why they live in the library and not in a workspace member of their own (issue 21, point 6):
//! - `hyper` would stay anyway: the `/metrics` endpoint (`ops::metrics::serve`) is a hyper
//!   server, and `reqwest` is built on hyper.
//! - 66 of the library's own unit tests (the connectors', `daemon/feeds_tests.rs`, `http`) drive
//!   the simulators, many handing library types across (`wire::OrderStatus`, a `Session`). A
//!   simulator crate that depends on the library is a dev-dependency cycle, where those tests see
//!   two different copies of every library type and do not compile; one that does not depend on
//!   it must copy the Hardtofind and Shopsys wire types and turn these tests into rewrites.
//! - `invsync demo`/`invsync sim` run the simulators, so [`crate::demo`] would leave too, and the
//!   binary with it (a package's binary cannot depend on a crate that depends on its library),
//!   taking `tests/it` along (`CARGO_BIN_EXE_invsync` exists only in the binary's package).
//!
//! Leaving would be a rewrite of what is a relocation today, for no change a user would see.

pub use crate::harness::{
    Dialect, Fault, Faults, MAINTENANCE_PAGE, MALFORMED_BODY, MAX_BODY_BYTES, Recorded, dialect,
};

pub use crate::services::endless_aisles::sim::{EndlessAislesSim, EndlessAislesSimConfig};
pub use crate::services::hako::sim::{HakoSim, HakoSimConfig};
pub use crate::services::hardtofind::sim::{HardtofindSim, HardtofindSimConfig};
