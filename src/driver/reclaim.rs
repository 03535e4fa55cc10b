//! `Reclaim`: once many channels retired, the memory they freed goes back to the system.
//!
//! A retired channel frees everything it held, but glibc's allocator keeps
//! freed memory in the arena of the thread that freed it and returns pages
//! to the system only from the top of a heap: after a wave of one-off
//! queues retired, the process would stay at its peak resident size
//! although nothing uses those pages (measured: 100,000 queues used once
//! left 280 MiB resident after every one of them had retired, with the
//! heap itself back near empty). So a registry counts retirements and,
//! once [`AFTER`] of them came and then none for [`QUIET`], shrinks its own
//! maps and asks the allocator to return its free pages (`malloc_trim(0)`)
//! on a short-lived thread, so that no arbiter stalls while glibc walks its
//! arenas. Other allocators (musl, macOS, Windows) return memory by
//! themselves; there the last step does nothing.

use std::time::{Duration, Instant};

/// Retirements worth a trim: fewer free too little to matter.
pub(crate) const AFTER: usize = 1024;
/// How long without a retirement before the trim: a wave of retirements
/// is over, and the retired actors have been dropped.
pub(crate) const QUIET: Duration = Duration::from_millis(500);
/// Longest wait for a quiet moment under steady churn.
const AT_MOST: Duration = Duration::from_secs(30);

/// A registry's count of retirements since the last trim.
#[derive(Debug, Default)]
pub(crate) struct Reclaim {
    /// Retirements since the last trim.
    retired: usize,
    /// When the first and the last of them came.
    first: Option<Instant>,
    last: Option<Instant>,
    /// A check is scheduled.
    pending: bool,
}

/// What the registry does after a retirement or a check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing (too few retirements, or a check is already scheduled).
    Nothing,
    /// Check again after this long.
    CheckIn(Duration),
    /// Trim now.
    Trim,
}

impl Reclaim {
    /// Counts a retirement at `now`.
    pub(crate) fn retired(&mut self, now: Instant) -> Next {
        self.retired += 1;
        self.first.get_or_insert(now);
        self.last = Some(now);
        if self.retired < AFTER || self.pending {
            return Next::Nothing;
        }
        self.pending = true;
        Next::CheckIn(QUIET)
    }

    /// The scheduled check at `now`: trim once the retirements went quiet
    /// (or have gone on for [`AT_MOST`]), else look again later.
    pub(crate) fn check(&mut self, now: Instant) -> Next {
        let (Some(first), Some(last)) = (self.first, self.last) else {
            self.pending = false;
            return Next::Nothing;
        };
        let quiet_for = now.saturating_duration_since(last);
        if quiet_for < QUIET && now.saturating_duration_since(first) < AT_MOST {
            return Next::CheckIn(QUIET - quiet_for);
        }
        *self = Reclaim::default();
        Next::Trim
    }
}

/// Asks the allocator to return the free pages of every arena to the
/// system, on a thread of its own (a trim walks and locks each arena in
/// turn). Only with glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // the one call into C: glibc's `malloc_trim`
pub(crate) fn release() {
    let spawned = std::thread::Builder::new()
        .name("actorbus-reclaim".to_owned())
        .spawn(|| {
            // SAFETY: `malloc_trim` takes no pointer and touches only
            // glibc's own free lists, under the locks of its arenas.
            let released = unsafe { libc::malloc_trim(0) } == 1;
            tracing::debug!(released, "returned freed memory to the system");
        });
    if let Err(error) = spawned {
        tracing::debug!(%error, "no thread to return freed memory to the system");
    }
}

/// Other allocators return freed memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_a_wave_of_retirements_went_quiet() {
        let mut reclaim = Reclaim::default();
        let t0 = Instant::now();
        for _ in 1..AFTER {
            assert_eq!(reclaim.retired(t0), Next::Nothing);
        }
        assert_eq!(reclaim.retired(t0), Next::CheckIn(QUIET));
        // Already scheduled: later retirements add no check.
        let t1 = t0 + QUIET / 2;
        assert_eq!(reclaim.retired(t1), Next::Nothing);
        // Not quiet yet at the check: look again when it would be.
        assert_eq!(reclaim.check(t0 + QUIET), Next::CheckIn(QUIET / 2));
        assert_eq!(reclaim.check(t1 + QUIET), Next::Trim);
        // Counting starts over.
        assert_eq!(reclaim.retired(t1 + QUIET), Next::Nothing);
    }

    #[test]
    fn steady_churn_still_trims_now_and_then() {
        let mut reclaim = Reclaim::default();
        let t0 = Instant::now();
        for _ in 0..AFTER {
            reclaim.retired(t0);
        }
        let late = t0 + AT_MOST;
        reclaim.retired(late);
        assert_eq!(reclaim.check(late), Next::Trim);
    }
}
