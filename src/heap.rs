//! glibc's allocator, tuned so that the server's RSS follows what it uses.
//!
//! glibc keeps memory a burst freed (a restart's redelivery storm, a flood
//! of acks queued in the NATS client) in its arenas, and returns only the
//! top of each heap by itself. Two measures, both measured with
//! `stanchion-bench recovery` (BENCHMARKS.md): one arena per core, and a
//! housekeeping thread that hands free pages back (`malloc_trim`) once a
//! burst is over. Other allocators choose for themselves.

/// Resident memory beyond what is allocated above which pages are handed
/// back. The binary's own pages and thread stacks are part of it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const SLACK: usize = 16 << 20;

/// How often the housekeeping thread looks.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One arena per core (glibc's default is up to 8 per core, each keeping
/// what it freed). `MALLOC_ARENA_MAX` wins when set. Call first in `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas(cores: usize) {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let arenas = i32::try_from(cores).unwrap_or(i32::MAX);
    // SAFETY: mallopt only sets a parameter of the allocator; this runs
    // first in main, before any other thread allocates.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

/// Starts the thread that returns free pages to the system when the
/// resident set beyond what is allocated grew by more than [`SLACK`] since
/// the last trim: about a second after a burst, not at every free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn spawn_trimmer() {
    let spawned = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| {
            // The excess left by the last trim: what trimming cannot return
            // (the binary, stacks, pages in use in part) is not retried.
            let mut floor = 0;
            loop {
                std::thread::sleep(EVERY);
                if excess().is_some_and(|e| e > floor + SLACK) {
                    // SAFETY: malloc_trim only tidies the allocator's own
                    // state, under its locks.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                    floor = excess().unwrap_or(0);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "heap trimming thread not started; RSS may stay high after bursts");
    }
}

/// Resident bytes beyond those allocated: mostly free heap glibc kept.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn excess() -> Option<usize> {
    let resident = resident_bytes()?;
    // SAFETY: mallinfo2 only reads the allocator's state, under its locks.
    let info = unsafe { libc::mallinfo2() };
    Some(resident.saturating_sub(info.uordblks + info.hblkhd))
}

/// The process's resident set, from `/proc/self/statm`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(pages * page)
}

/// Other allocators choose for themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas(_cores: usize) {}

/// Other allocators choose for themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn spawn_trimmer() {}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn memory_a_burst_freed_is_returned_within_seconds() {
        spawn_trimmer();
        let before = resident_bytes().unwrap();
        // 96 MB in small blocks, as a burst of queued messages is, each touched.
        let burst: Vec<Vec<u8>> = (0..96 * 1024).map(|i| vec![i as u8; 1000]).collect();
        let peak = resident_bytes().unwrap();
        assert!(peak > before + (64 << 20), "the burst was not resident");
        drop(burst);
        let deadline = Instant::now() + Duration::from_secs(10);
        while resident_bytes().unwrap() > before + (32 << 20) {
            assert!(
                Instant::now() < deadline,
                "RSS stayed at {} MB after the burst (before {} MB)",
                resident_bytes().unwrap() >> 20,
                before >> 20
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
