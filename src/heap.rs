//! Handing freed heap back to the system.
//!
//! glibc keeps memory a program frees in its arenas rather than returning it,
//! so a resident size, once grown, stays at its high-water mark. Two moments
//! free a lot at once: a scrape (the snapshot and the chunks, allocated on a
//! blocking thread with an arena of its own) and start-up (everything the
//! store loaded, once the ledger is rebuilt from it). Both call [`release_freed`].

/// Returns free pages of the allocator's arenas to the kernel (`malloc_trim`).
/// Elsewhere than on glibc it does nothing.
///
/// The crate's one `unsafe` block: a call into libc with no arguments.
#[allow(unsafe_code)]
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of glibc's own arenas to the
    // kernel; it takes no pointer and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
