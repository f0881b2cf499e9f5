//! How long the allocator keeps freed memory before returning it to the system.
//!
//! mimalloc returns freed memory a second after it is freed (its `purge_delay`). A flush
//! frees the head's frozen part while the head grows into the same amount again, and
//! compaction frees and takes back its buffers job after job, so that memory went back to the
//! system and came back from it, each page faulted in and zeroed by the kernel again.
//! Keeping freed memory for [`PURGE_DELAY_MILLIS`] spans those cycles (10M spans ingested:
//! the server's system CPU 8.1 s → 5.1 s, docs/BENCHMARKS.md); memory left unused for longer
//! still goes back. `MIMALLOC_PURGE_DELAY` in the environment wins over this setting.

use libmimalloc_sys::mi_option_t;
use std::ffi::c_long;

/// How long freed memory stays with the process before it is returned.
const PURGE_DELAY_MILLIS: c_long = 10_000;

/// `mi_option_purge_delay`, the 16th value of `mi_option_e` in mimalloc.h (v3), which
/// `libmimalloc-sys` does not name.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// mimalloc's default purge delay (`options.c`; the header's comment still says 10): what
/// the option reads when nobody set it, which also proves [`MI_OPTION_PURGE_DELAY`] names
/// the right option.
const DEFAULT_PURGE_DELAY_MILLIS: c_long = 1_000;

/// Sets the purge delay unless the environment set it or the option is not the one expected.
pub fn keep_freed_memory_a_while() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: reading and setting a mimalloc option by number has no memory effects; the
    // number is checked against the option's documented default before it is set.
    unsafe {
        if libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) == DEFAULT_PURGE_DELAY_MILLIS {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MILLIS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mimalloc upgrade that renumbers its options must not make this set another one.
    #[test]
    fn the_option_number_names_the_purge_delay() {
        // SAFETY: as in `keep_freed_memory_a_while`.
        let (before, after) = unsafe {
            let before = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
            keep_freed_memory_a_while();
            (before, libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY))
        };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, DEFAULT_PURGE_DELAY_MILLIS, "option {MI_OPTION_PURGE_DELAY} is not purge_delay");
            assert_eq!(after, PURGE_DELAY_MILLIS);
        }
    }
}
