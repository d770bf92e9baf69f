//! A process-wide allocator setting for inference binaries (call it at the start of
//! `main`; the library itself changes nothing process-wide).
//!
//! Each encoder window allocates buffers of several MiB (queries/keys/values, the
//! feed-forward activations: 9-12 MiB for `base`). glibc serves such sizes with fresh
//! `mmap`s, or trims them off the heap when freed, so every window pays page faults and
//! the kernel zeroing each page again: 12.1% of a transcription's CPU samples were in the
//! kernel, 5.4% with this setting, and 20 eval_quick_40 utterances ran 3-10% faster
//! (alternated A/B, `bench-results/allocator-ab-eval_quick_40-20`).

/// Largest buffer the allocator serves from its heap instead of a fresh `mmap`.
pub const HEAP_SERVED_MAX_BYTES: usize = 32 << 20;
/// Free memory at the top of the heap kept before it is returned to the kernel.
pub const HEAP_KEPT_FREE_BYTES: usize = 512 << 20;

/// Makes glibc keep freed buffers of up to [`HEAP_SERVED_MAX_BYTES`] for reuse (up to
/// [`HEAP_KEPT_FREE_BYTES`] held free). Returns whether the setting was applied: not on
/// other C libraries, nor when `GLIBC_TUNABLES` already sets malloc options (the user's
/// choice wins).
pub fn keep_freed_buffers() -> bool {
    !user_tunes_malloc() && apply()
}

/// True when the user's `GLIBC_TUNABLES` sets malloc options.
fn user_tunes_malloc() -> bool {
    std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc"))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply() -> bool {
    // SAFETY: mallopt only changes allocator thresholds; it is called with valid options.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, HEAP_SERVED_MAX_BYTES as libc::c_int) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, HEAP_KEPT_FREE_BYTES as libc::c_int) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn apply() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_thresholds() {
        // mallopt returns 0 for a threshold it refuses (e.g. an mmap threshold above
        // its 32 MiB maximum on 64-bit), so this fails if the values are out of range.
        if super::user_tunes_malloc() {
            return;
        }
        assert!(super::keep_freed_buffers());
    }
}
