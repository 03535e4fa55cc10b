//! `MemoryStore`: the messages of one queue on the memory driver that no listener holds — ready and delayed.
//!
//! Pure data structure, owned by the queue's backend inside its channel
//! actor (a push is stored once it is in that actor). It knows nothing of
//! listeners or timers; what listeners hold is the channel's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::delivery::Envelope;

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

/// The messages of one queue that no listener holds.
#[derive(Default)]
pub(crate) struct MemoryStore {
    ready: VecDeque<Envelope>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    next_seq: u64,
}

impl MemoryStore {
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    pub(crate) fn delayed_len(&self) -> usize {
        self.delayed.len()
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

    /// Takes the next ready message.
    pub(crate) fn pop(&mut self) -> Option<Envelope> {
        self.ready.pop_front()
    }

    /// The ready messages, in the order they will be delivered.
    pub(crate) fn ready(&self) -> impl Iterator<Item = &Envelope> {
        self.ready.iter()
    }

    /// Puts messages back at the front of the ready line, in the order given
    /// (a stopped listener's, or a receive's that its caller abandoned).
    pub(crate) fn unpop(&mut self, envelopes: Vec<Envelope>) {
        for envelope in envelopes.into_iter().rev() {
            self.ready.push_front(envelope);
        }
    }

    /// Drops every ready message; delayed ones stay.
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
    fn unpop_puts_messages_back_in_their_order() {
        let mut store = MemoryStore::default();
        for text in ["a", "b", "c", "d"] {
            store.push(env(text));
        }
        let (a, b) = (store.pop().unwrap(), store.pop().unwrap());
        store.unpop(vec![a, b]);
        assert_eq!(payloads(&mut store), ["a", "b", "c", "d"]);
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
        assert_eq!(store.purge(), 2);
        assert_eq!((store.ready_len(), store.delayed_len()), (0, 1));
    }
}
