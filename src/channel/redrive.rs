//! The redrive rule: what a dead letter becomes when `Bus::redrive` moves it back to its queue.
//!
//! Written once for every driver: the drivers only move the copy this
//! makes (memory: into the queue's channel; amqp: a confirmed publish;
//! redis: one script with the dead entry's deletion).

use std::future::Future;
use std::sync::Arc;

use crate::channel::retry::{HEADER_ATTEMPTS, HEADER_FAILED_AT};
use crate::delivery::Envelope;
use crate::error::Result;

/// Most dead letters one step of a broker's redrive moves: one script
/// (redis), or one channel's gets and confirms (amqp). Small, so that a
/// step neither holds Redis long nor keeps many messages invisible.
#[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
pub(crate) const BROKER_STEP: usize = 100;

/// Header counting how often a message was redriven out of `<queue>.dead`.
pub(crate) const HEADER_REDRIVEN: &str = "x-redriven";

/// The copy of the dead letter `envelope` that goes back to its queue.
///
/// It keeps its id, payload, the user's headers and its last `x-error`
/// (why it died, for whoever looks at it next), starts again at attempt 1
/// with `x-redriven` one higher, and loses `x-attempts` and `x-failed-at`:
/// they describe the death it is being brought back from, and a live
/// message carrying them would read as a dead letter. A later death writes
/// them again, and keeps `x-redriven`.
pub(crate) fn redriven(mut envelope: Envelope) -> Envelope {
    let headers = Arc::make_mut(envelope.headers.get_or_insert_with(Default::default));
    // A count that is not a number (set by another program) restarts at 1
    // rather than failing the move.
    let before: u32 = headers
        .get(HEADER_REDRIVEN)
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0);
    headers.remove(HEADER_ATTEMPTS);
    headers.remove(HEADER_FAILED_AT);
    headers.insert(
        HEADER_REDRIVEN.to_owned(),
        before.saturating_add(1).to_string(),
    );
    envelope.attempt = 1;
    envelope
}

/// Moves up to `max` dead letters in steps of at most `step`: `one(state,
/// n)` moves up to `n` and answers the next state, how many it moved, and
/// whether more may wait. Each step is whole on its own, so a caller that
/// gives up between steps leaves every message in one of the two queues.
///
/// # Errors
///
/// The first step's error; the steps before it stay done.
pub(crate) async fn in_steps<S, F, Fut>(
    max: usize,
    step: usize,
    mut state: S,
    mut one: F,
) -> Result<u64>
where
    F: FnMut(S, usize) -> Fut,
    Fut: Future<Output = Result<(S, u64, bool)>>,
{
    let mut moved: u64 = 0;
    loop {
        let left = (max as u64).saturating_sub(moved);
        if left == 0 {
            return Ok(moved);
        }
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(step);
        let (next, done, more) = one(state, n).await?;
        moved += done;
        if !more {
            return Ok(moved);
        }
        state = next;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::channel::retry::{dead_letter_headers, HEADER_ERROR};

    fn dead_letter(headers: &[(&str, &str)], attempt: u32) -> Envelope {
        let mut all: BTreeMap<String, String> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        all.extend(dead_letter_headers(attempt, "boom", SystemTime::now()));
        let mut envelope = Envelope::new(Bytes::from_static(b"job"), Some(Arc::new(all)));
        envelope.attempt = attempt;
        envelope
    }

    #[test]
    fn keeps_id_payload_user_headers_and_the_error_and_counts() {
        let dead = dead_letter(&[("tenant", "acme")], 5);
        let id = dead.id.clone();
        let back = redriven(dead);
        assert_eq!(
            (back.id, back.attempt, &back.payload[..]),
            (id, 1, &b"job"[..])
        );
        let headers = back.headers.expect("headers");
        let names: Vec<&str> = headers.keys().map(String::as_str).collect();
        assert_eq!(names, ["tenant", HEADER_ERROR, HEADER_REDRIVEN]);
        assert_eq!(headers[HEADER_ERROR], "boom");
        assert_eq!(headers[HEADER_REDRIVEN], "1");
    }

    #[test]
    fn a_second_redrive_counts_two_and_a_foreign_count_restarts() {
        let mut again = redriven(dead_letter(&[], 1));
        Arc::make_mut(again.headers.as_mut().expect("headers")).extend(dead_letter_headers(
            3,
            "again",
            SystemTime::now(),
        ));
        let twice = redriven(again);
        assert_eq!(
            twice.headers.as_ref().expect("headers")[HEADER_REDRIVEN],
            "2"
        );
        assert_eq!(twice.headers.expect("headers")[HEADER_ERROR], "again");

        let odd = redriven(dead_letter(&[(HEADER_REDRIVEN, "many")], 1));
        assert_eq!(odd.headers.expect("headers")[HEADER_REDRIVEN], "1");
        let plain = redriven(Envelope::new(Bytes::new(), None));
        assert_eq!(plain.headers.expect("headers")[HEADER_REDRIVEN], "1");
    }
}
