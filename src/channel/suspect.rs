//! Poison messages: what a redelivery that may follow an unfinished delivery counts as — the attempt it runs as, or a dead letter.
//!
//! Pure logic shared by the broker drivers. A delivery is a *suspect* when
//! its previous delivery may have reached a handler and ended without a
//! verdict (the process died, the connection was lost): amqp's
//! `redelivered` flag or a copy back from a lease, an entry redis took back
//! from a pending list. Just before its handler starts, the driver records
//! the start on the broker (a lease copy on amqp, the pending list's
//! delivery count on redis) and reports what it knows as [`Armed`]; [`judge`]
//! turns that into the attempt to run (and to record), or the dead letter
//! of a message that used up its attempts without a verdict. Messages merely prefetched are
//! never recorded, so a crash counts only against what had started.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::channel::retry::dead_letter_headers;
use crate::error::Error;

/// What a driver learned when it recorded the start of a suspect.
#[derive(Debug)]
pub(crate) enum Armed {
    /// Recorded. The previous delivery ran as attempt `previous`; `started`
    /// says whether it surely reached a handler (it was recorded too), or
    /// maybe not (it may only have been prefetched).
    Counted { previous: u32, started: bool },
    /// Another consumer owns it now, or it was settled: drop it unsettled.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Gone,
    /// The record failed: hand it back unstarted.
    #[cfg_attr(not(feature = "amqp"), allow(dead_code))]
    Failed(Error),
}

/// What becomes of a suspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Go {
    /// Run the handler as `attempt`; the broker's record of this start
    /// says `record` (the attempt it counts as if it never ends).
    Run { attempt: u32, record: u32 },
    /// Attempts used up without a verdict: dead-letter with these headers.
    Dead(BTreeMap<String, String>),
}

/// The `x-error` of a message dead-lettered after `deliveries` that each
/// ended without a verdict.
pub(crate) fn limit_reached(deliveries: u32) -> String {
    format!(
        "delivery limit reached after {deliveries} deliveries without a verdict \
         (the process handling it died or lost its connection each time)"
    )
}

/// The fate of a suspect whose previous delivery ran as `previous`.
///
/// When that delivery surely started (`started`: its start was recorded),
/// this one is `previous + 1`, and beyond `max_attempts` the message is
/// dead-lettered instead (`x-attempts` = `previous`). When it may only
/// have been prefetched (or, on amqp, peeked), this one runs as
/// `previous` again, so that a message that merely travelled with a
/// crashing one is never charged for it (nor dead-lettered); its start is
/// recorded as `previous + 1` (at most `max_attempts`) all the same, so
/// that if it is the one that crashes, its next delivery counts both.
pub(crate) fn judge(previous: u32, started: bool, max_attempts: u32, now: SystemTime) -> Go {
    let next = previous.saturating_add(1);
    if !started {
        return Go::Run {
            attempt: previous.max(1),
            record: next.min(max_attempts).max(previous.max(1)),
        };
    }
    if next <= max_attempts {
        return Go::Run {
            attempt: next,
            record: next,
        };
    }
    Go::Dead(dead_letter_headers(previous, &limit_reached(previous), now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::retry::{HEADER_ATTEMPTS, HEADER_ERROR};

    fn run(attempt: u32, record: u32) -> Go {
        Go::Run { attempt, record }
    }

    #[test]
    fn counts_up_to_the_limit_then_dead_letters_what_surely_started() {
        let now = SystemTime::now();
        // A poison: fresh (1, unrecorded), then redelivered, then lease
        // copies or delivery counts: five deliveries in all.
        assert_eq!(judge(1, false, 5, now), run(1, 2));
        assert_eq!(judge(2, true, 5, now), run(3, 3));
        assert_eq!(judge(4, true, 5, now), run(5, 5));
        let Go::Dead(headers) = judge(5, true, 5, now) else {
            panic!("a fifth unfinished delivery of five must dead-letter");
        };
        assert_eq!(headers[HEADER_ATTEMPTS], "5");
        assert!(
            headers[HEADER_ERROR].starts_with("delivery limit reached after 5 deliveries"),
            "{headers:?}"
        );
    }

    #[test]
    fn a_maybe_unstarted_delivery_is_never_charged_nor_dead_lettered() {
        let now = SystemTime::now();
        assert_eq!(judge(5, false, 5, now), run(5, 5));
        assert_eq!(judge(1, false, 1, now), run(1, 1));
        assert_eq!(judge(0, false, 1, now), run(1, 1));
        assert_eq!(judge(9, false, 5, now), run(9, 9));
        assert_eq!(judge(u32::MAX, false, 5, now), run(u32::MAX, u32::MAX));
        assert!(matches!(judge(u32::MAX, true, 5, now), Go::Dead(_)));
        assert!(matches!(judge(1, true, 1, now), Go::Dead(_)));
    }
}
