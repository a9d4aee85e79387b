//! Every simulator in one place, for tests, `invsync demo` and `invsync sim`: each service's own
//! (its folder's `sim/`) and the harness they share ([`crate::harness`]: faults, recorded
//! requests, dialects, the loopback server), under the names tests have always used
//! (`invsync::sim::HardtofindSim`, `invsync::sim::Fault`).

pub use crate::harness::{
    Dialect, Fault, Faults, MAINTENANCE_PAGE, MALFORMED_BODY, MAX_BODY_BYTES, Recorded, dialect,
};

pub use crate::services::endless_aisles::sim::{EndlessAislesSim, EndlessAislesSimConfig};
pub use crate::services::hako::sim::{HakoSim, HakoSimConfig};
pub use crate::services::hardtofind::sim::{HardtofindSim, HardtofindSimConfig};
