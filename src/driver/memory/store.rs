//! `MemoryStore`: the messages of one queue on the memory driver — ready, delayed and in flight.
//!
//! Pure data structure, owned by the queue's actor (§3.1: a push is stored
//! once it is in the queue's actor). It knows nothing of listeners or timers;
//! the actor decides who gets what and when.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::delivery::{AckToken, Envelope};

/// Identifies a listener within its queue.
pub(crate) type ListenerId = u64;

/// A message held back until `due`.
struct Delayed {
    due: Instant,
    /// Keeps equal due times in push order.
    seq: u64,
    envelope: Envelope,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// The messages of one queue.
#[derive(Default)]
pub(crate) struct MemoryStore {
    ready: VecDeque<Envelope>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    /// Handed to a listener, waiting for its verdict; keyed by token, with
    /// the listener that holds it so that a departed listener's share can be
    /// reclaimed.
    in_flight: FxHashMap<AckToken, (Envelope, ListenerId)>,
    next_token: u64,
    next_seq: u64,
}

impl MemoryStore {
    /// Every message the queue holds, whatever its state.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.ready.len() + self.delayed.len() + self.in_flight.len()
    }

    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub(crate) fn delayed_len(&self) -> usize {
        self.delayed.len()
    }

    pub(crate) fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// Adds a message at the back of the ready line.
    pub(crate) fn push(&mut self, envelope: Envelope) {
        self.ready.push_back(envelope);
    }

    /// Adds a message that becomes ready at `due`.
    pub(crate) fn push_delayed(&mut self, envelope: Envelope, due: Instant) {
        self.next_seq += 1;
        self.delayed.push(Reverse(Delayed {
            due,
            seq: self.next_seq,
            envelope,
        }));
    }

    /// Moves every delayed message due by `now` to the ready line.
    pub(crate) fn promote_due(&mut self, now: Instant) -> usize {
        let mut moved = 0;
        while self.delayed.peek().is_some_and(|d| d.0.due <= now) {
            if let Some(Reverse(delayed)) = self.delayed.pop() {
                self.ready.push_back(delayed.envelope);
                moved += 1;
            }
        }
        moved
    }

    /// When the next delayed message is due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.delayed.peek().map(|d| d.0.due)
    }

    /// Takes the next ready message out of the store for good (a `receive`
    /// acknowledges as it hands over).
    pub(crate) fn pop(&mut self) -> Option<Envelope> {
        self.ready.pop_front()
    }

    /// Puts a message taken by [`pop`](Self::pop) back at the front.
    pub(crate) fn unpop(&mut self, envelope: Envelope) {
        self.ready.push_front(envelope);
    }

    /// Hands the next ready message to `listener`: it stays in flight until settled.
    pub(crate) fn lease(&mut self, listener: ListenerId) -> Option<(AckToken, Envelope)> {
        let envelope = self.ready.pop_front()?;
        self.next_token += 1;
        let token = AckToken(self.next_token);
        self.in_flight.insert(token, (envelope.clone(), listener));
        Some((token, envelope))
    }

    /// Ends a lease, returning the message and who held it. `None` for a
    /// token already settled, which a duplicate settle must not double-count.
    pub(crate) fn settle(&mut self, token: AckToken) -> Option<(Envelope, ListenerId)> {
        self.in_flight.remove(&token)
    }

    /// Returns leased messages to the front of the ready line, unattempted,
    /// keeping their original order.
    pub(crate) fn release(&mut self, mut tokens: Vec<AckToken>) -> usize {
        // Tokens grow with lease order, so sorting restores queue order.
        tokens.sort_unstable();
        let mut released = 0;
        for token in tokens.into_iter().rev() {
            if let Some((envelope, _)) = self.in_flight.remove(&token) {
                self.ready.push_front(envelope);
                released += 1;
            }
        }
        released
    }

    /// Every token still leased to `listener`.
    pub(crate) fn leased_to(&self, listener: ListenerId) -> Vec<AckToken> {
        self.in_flight
            .iter()
            .filter(|(_, (_, owner))| *owner == listener)
            .map(|(token, _)| *token)
            .collect()
    }

    /// Drops every ready message; delayed and in-flight ones stay.
    pub(crate) fn purge(&mut self) -> u64 {
        let dropped = self.ready.len() as u64;
        self.ready.clear();
        dropped
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn env(text: &'static str) -> Envelope {
        Envelope::new(Bytes::from_static(text.as_bytes()), None)
    }

    fn payloads(store: &mut MemoryStore) -> Vec<Bytes> {
        std::iter::from_fn(|| store.pop().map(|e| e.payload)).collect()
    }

    #[test]
    fn lease_settle_and_release_keep_order_and_counts() {
        let mut store = MemoryStore::default();
        for text in ["a", "b", "c", "d"] {
            store.push(env(text));
        }
        let (ta, _) = store.lease(1).unwrap();
        let (tb, _) = store.lease(1).unwrap();
        let (tc, _) = store.lease(2).unwrap();
        assert_eq!(
            (store.ready_len(), store.in_flight_len(), store.len()),
            (1, 3, 4)
        );

        assert!(store.settle(tb).is_some());
        assert!(store.settle(tb).is_none(), "a token settles once");
        assert_eq!(store.leased_to(1), vec![ta]);

        // Released out of order, they return in queue order ahead of "d".
        assert_eq!(store.release(vec![tc, ta]), 2);
        assert_eq!(payloads(&mut store), ["a", "c", "d"]);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn delayed_messages_wait_for_their_time_in_order() {
        let mut store = MemoryStore::default();
        let now = Instant::now();
        store.push_delayed(env("late"), now + Duration::from_secs(2));
        store.push_delayed(env("first"), now + Duration::from_secs(1));
        store.push_delayed(env("second"), now + Duration::from_secs(1));
        assert_eq!(store.next_due(), Some(now + Duration::from_secs(1)));
        assert_eq!(store.promote_due(now), 0);
        assert_eq!(store.promote_due(now + Duration::from_secs(1)), 2);
        assert_eq!(store.delayed_len(), 1);
        assert_eq!(payloads(&mut store), ["first", "second"]);
        assert_eq!(store.promote_due(now + Duration::from_secs(5)), 1);
        assert_eq!(store.next_due(), None);
    }

    #[test]
    fn purge_drops_only_ready_messages() {
        let mut store = MemoryStore::default();
        store.push(env("a"));
        store.push(env("b"));
        store.push_delayed(env("later"), Instant::now() + Duration::from_secs(60));
        let _ = store.lease(7).unwrap();
        assert_eq!(store.purge(), 1);
        assert_eq!(
            (
                store.ready_len(),
                store.delayed_len(),
                store.in_flight_len()
            ),
            (0, 1, 1)
        );
    }
}
