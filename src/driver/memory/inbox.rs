//! `Inbox`: pushes with reserved room on their way into a queue's actor, handed over in bulk.
//!
//! A push with room appends its message here and sends the actor a wake-up
//! only when the inbox was empty: under load one actix message carries a
//! whole burst of pushes across threads, and a push allocates nothing of
//! its own (no boxed actix envelope, no mailbox node). The inbox is shared
//! by the bus handles and the queue's backend and outlives actor restarts,
//! so a message in it is stored: the wake-up waiting in the mailbox, which
//! also outlives restarts, makes the actor take it before any request sent
//! after the push returned.

use std::sync::Mutex;
use std::time::Duration;

use crate::delivery::Envelope;

/// One message on its way in: the envelope and its delay.
pub(crate) type Arrival = (Envelope, Option<Duration>);

/// Messages whose room is reserved, not yet taken by the actor.
#[derive(Default)]
pub(crate) struct Inbox {
    arrivals: Mutex<Vec<Arrival>>,
}

impl Inbox {
    /// Adds one message; `true` when the actor must be woken.
    pub(crate) fn put(&self, arrival: Arrival) -> bool {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        arrivals.push(arrival);
        arrivals.len() == 1
    }

    /// Adds a batch under one lock; `true` when the actor must be woken.
    pub(crate) fn put_all(&self, batch: Vec<Arrival>) -> bool {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        let was_empty = arrivals.is_empty();
        arrivals.extend(batch);
        was_empty && !arrivals.is_empty()
    }

    /// Swaps everything in the inbox into `into` (empty), whose allocation
    /// the inbox keeps for the next burst.
    pub(crate) fn take_into(&self, into: &mut Vec<Arrival>) {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *arrivals, into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn arrival(text: &'static str) -> Arrival {
        (
            Envelope::new(Bytes::from_static(text.as_bytes()), None),
            None,
        )
    }

    #[test]
    fn wakes_only_on_the_first_arrival_of_a_burst() {
        let inbox = Inbox::default();
        assert!(inbox.put(arrival("a")));
        assert!(!inbox.put(arrival("b")));
        assert!(!inbox.put_all(vec![arrival("c")]));
        let mut taken = Vec::new();
        inbox.take_into(&mut taken);
        let texts: Vec<_> = taken.iter().map(|(e, _)| e.payload.clone()).collect();
        assert_eq!(texts, ["a", "b", "c"], "in arrival order");
        assert!(!inbox.put_all(Vec::new()), "nothing added: no wake-up");
        assert!(inbox.put_all(vec![arrival("d")]), "empty again: wake");
    }
}
