//! How mimalloc, the process's allocator, hands memory back to the kernel.
//!
//! mimalloc returns ("purges") memory a second after it was last freed, and
//! backs its arenas with transparent huge pages. A log's work comes in
//! bursts a period apart (a round's SCTs are signed and answered at once),
//! so with a 1 s period the memory of one burst was purged just before the
//! next, which faulted it back in, zeroing 2 MiB huge pages: 3,500-40,000
//! page faults per 10 s at 2,000 submissions/s, against 770-2,230 with a
//! 10 s delay (BENCHMARKS.md). Memory a flood left behind still goes back
//! to the kernel, ten seconds after it.
//!
//! The server calls [`tune`] first thing, and so does `ct-loadgen`, whose
//! sequencer and prefill benchmarks run the log's parts in its own process.

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, which
/// the Rust bindings do not name).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// How long freed memory stays mapped, in milliseconds: longer than any
/// log's period (at most a few seconds), as jemalloc's default decay is.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// Sets the purge delay, unless the operator chose one in the environment
/// (`MIMALLOC_PURGE_DELAY`, which mimalloc reads itself).
pub fn tune() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a process-wide option by its index in mimalloc's
        // enum; mimalloc reads options atomically.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option at `PURGE_DELAY` is the purge delay: it holds the
    /// bundled mimalloc's default (1 s) until `tune` sets it. A mimalloc
    /// that moved its options around fails here rather than tuning
    /// something else.
    #[test]
    fn tune_sets_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            eprintln!("SKIPPED: MIMALLOC_PURGE_DELAY is set in the environment");
            return;
        }
        // SAFETY: reads a process-wide option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(get(), 1_000, "mimalloc's default purge delay");
        tune();
        assert_eq!(get(), PURGE_DELAY_MS);
    }
}
