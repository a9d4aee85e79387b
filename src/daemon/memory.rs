//! Memory given back to the system. glibc keeps what a thread freed for that thread to reuse,
//! and by default it raises its threshold for memory of its own (`mmap`) to the size of the
//! largest block freed, up to 32 MiB, and the top of an arena it trims to twice that: once a
//! million-line mapping file's tables were freed, blocks of that size went to the threads'
//! arenas and stayed there. `run` over ten reloads of such a file swung between 0.8 and
//! 1.2 GB before the mapping was made small, and still between 150 and 230 MiB after.
//!
//! So the threshold is fixed at 1 MiB ([`tune_allocator`], at start): a larger block is the
//! system's own and goes back to it when freed; and what a reload or a start freed in the
//! arenas is given back at once ([`give_back`]).

/// Fixes glibc's threshold for blocks of their own (see the module documentation).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt(3) sets an allocator parameter; it takes no pointer, and it is called
    // before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_BLOCK);
    }
}

/// The size from which a block is the system's own: far above the many small allocations of
/// a cycle, far below a table of a million SKUs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const OWN_BLOCK: libc::c_int = 1 << 20;

/// Gives what the arenas hold free back to the system, after a reload or a start freed much.
pub(crate) fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let before = resident_kib();
        // SAFETY: malloc_trim(3) only walks the allocator's own free lists; it takes no
        // pointer and is safe to call from any thread at any time.
        unsafe {
            libc::malloc_trim(0);
        }
        tracing::debug!(
            rss_kib_before = before,
            rss_kib_after = resident_kib(),
            "freed memory given back to the system"
        );
    }
}

/// The resident set, in KiB, as `/proc/self/statm` says (0 when it cannot be read).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}
