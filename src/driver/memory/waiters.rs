//! `Waiters`: callers a queue owes an answer — pushes waiting for room and `receive`s waiting for a message.
//!
//! Both wait with a deadline and are answered `Error::Timeout` when it
//! passes; keeping them together lets the queue actor arm one timer for all.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::delivery::{Delivery, Envelope};
use crate::error::{Error, Result};

/// A `receive` waiting for a message.
pub(crate) struct Receiver {
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Result<Delivery>>,
}

/// A push waiting for room (backpressure).
pub(crate) struct ParkedPush {
    pub(crate) deadline: Instant,
    pub(crate) envelope: Envelope,
    pub(crate) delay: Option<Duration>,
    pub(crate) reply: oneshot::Sender<Result<()>>,
}

/// The waiting callers of one queue, oldest first.
#[derive(Default)]
pub(crate) struct Waiters {
    pub(crate) receivers: VecDeque<Receiver>,
    pub(crate) pushes: VecDeque<ParkedPush>,
}

impl Waiters {
    /// The earliest deadline of anyone waiting.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        // Pushes all wait `push_timeout`, so the oldest expires first.
        let push = self.pushes.front().map(|p| p.deadline);
        let receive = self.receivers.iter().map(|r| r.deadline).min();
        push.into_iter().chain(receive).min()
    }

    /// Answers `Error::Timeout` to everyone whose deadline is past; returns
    /// how many pushes gave up waiting.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let mut pushes = 0;
        while self.pushes.front().is_some_and(|p| p.deadline <= now) {
            if let Some(push) = self.pushes.pop_front() {
                let _ = push.reply.send(Err(Error::Timeout));
                pushes += 1;
            }
        }
        let (expired, waiting) = std::mem::take(&mut self.receivers)
            .into_iter()
            .partition::<VecDeque<_>, _>(|r| r.deadline <= now);
        self.receivers = waiting;
        for receiver in expired {
            let _ = receiver.reply.send(Err(Error::Timeout));
        }
        pushes
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn expire_answers_timeout_only_to_the_overdue() {
        let now = Instant::now();
        let mut waiters = Waiters::default();
        let (early_tx, mut early_rx) = oneshot::channel();
        let (late_tx, mut late_rx) = oneshot::channel();
        let (push_tx, mut push_rx) = oneshot::channel();
        waiters.receivers.push_back(Receiver {
            deadline: now + Duration::from_secs(5),
            reply: late_tx,
        });
        waiters.receivers.push_back(Receiver {
            deadline: now + Duration::from_secs(1),
            reply: early_tx,
        });
        waiters.pushes.push_back(ParkedPush {
            deadline: now + Duration::from_secs(2),
            envelope: Envelope::new(Bytes::new(), None),
            delay: None,
            reply: push_tx,
        });
        assert_eq!(waiters.next_deadline(), Some(now + Duration::from_secs(1)));

        assert_eq!(waiters.expire(now + Duration::from_secs(2)), 1);
        assert!(matches!(early_rx.try_recv(), Ok(Err(Error::Timeout))));
        assert!(matches!(push_rx.try_recv(), Ok(Err(Error::Timeout))));
        assert!(late_rx.try_recv().is_err(), "the later receive still waits");
        assert_eq!(waiters.next_deadline(), Some(now + Duration::from_secs(5)));
    }
}
