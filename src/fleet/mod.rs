//! Many shops on many machines: workers that share shops through leases in one PostgreSQL
//! database, so that each shop is synced by at most one worker at any moment and a worker lost
//! loses its shops to the others within a lease's time to live.
//!
//! - [`lease`]: the lease table, its claims, renewals and hand-overs, the fencing every state
//!   write goes through, and each worker's fair share.
//! - connecting to the database (a pool; TLS through rustls) is the store's: [`crate::store::db::pool`].
//!
//! The design, in short: a row per lease group (the shops that share a remote account, so one
//! worker holds their shared request budget) says which worker holds it, under which epoch,
//! until when, by the database's clock (never a worker's). A claim takes a free or expired row
//! and moves its epoch on; a renewal extends only the holder's row of the same epoch before it
//! expires; a hand-over frees it at once. Every state write is a transaction that first reads
//! the row under a share lock and finds it still held by this worker under this epoch and not
//! expired: a claim by another worker waits for that transaction and then moves the epoch on,
//! so no write of an old epoch lands after a new one began.

pub mod lease;
pub mod settings;
pub mod shops;
pub mod worker;
