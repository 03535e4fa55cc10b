//! `Room`: how many more messages a queue may hold — the memory driver's backpressure.
//!
//! Shared by the queue's actor and every bus handle, so that a push with room
//! reserves its place with one atomic step and goes straight into the queue's
//! [`Inbox`](crate::driver::memory::inbox::Inbox), without waiting for a reply. Only a push that finds the
//! queue full waits, parked in the actor until room is given back.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::oneshot;

use crate::error::Result;

/// What a sealed room holds: more than any capacity, so that every take fails.
const SEALED: usize = usize::MAX;

/// How an enqueued message got its place in the queue.
pub(crate) enum Admission {
    /// The bus's own move (a dead letter): never refused, so nothing is dropped.
    Forced,
    /// The queue was full: park until room is given back, then answer.
    Wait(oneshot::Sender<Result<()>>),
}

/// The capacity gauge of one queue.
#[derive(Debug)]
pub(crate) struct Room {
    /// Messages admitted and not yet gone for good (acknowledged, received,
    /// purged or dead-lettered away), including those still in the mailbox.
    held: AtomicUsize,
    /// Pushes parked in the actor; while any wait, newcomers queue behind
    /// them instead of taking room first.
    parked: AtomicUsize,
    capacity: usize,
}

impl Room {
    pub(crate) fn new(capacity: usize) -> Self {
        Room {
            held: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            capacity,
        }
    }

    /// A producer's try: takes one place if there is room and nobody waits.
    pub(crate) fn try_take(&self) -> bool {
        self.parked.load(Ordering::Acquire) == 0 && self.take()
    }

    /// A producer's try for a whole batch: takes `count` places if there
    /// is room for all of them and nobody waits, else none.
    pub(crate) fn try_take_many(&self, count: usize) -> bool {
        self.parked.load(Ordering::Acquire) == 0
            && self
                .held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    held.checked_add(count)
                        .filter(|&after| after <= self.capacity)
                })
                .is_ok()
    }

    /// The actor's try for its oldest parked push.
    pub(crate) fn take(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.capacity).then(|| held + 1)
            })
            .is_ok()
    }

    /// Takes a place whatever the capacity: the bus's own moves (dead
    /// letters) are never refused, so nothing is dropped.
    pub(crate) fn force_take(&self) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_add(1))
            });
    }

    /// Seals an empty queue's room for its retirement: from now on every
    /// push is refused here (and goes to the queue's next channel).
    /// `false`, changing nothing, when a message or a waiting push holds a
    /// place.
    pub(crate) fn seal(&self) -> bool {
        self.parked.load(Ordering::Acquire) == 0
            && self
                .held
                .compare_exchange(0, SEALED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// `count` messages left for good.
    pub(crate) fn give_back(&self, count: usize) {
        if count > 0 {
            let _ = self
                .held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    Some(held.saturating_sub(count))
                });
        }
    }

    pub(crate) fn park(&self) {
        self.parked.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn unpark(&self, count: usize) {
        if count > 0 {
            self.parked.fetch_sub(count, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_capacity_and_gives_back() {
        let room = Room::new(2);
        assert!(room.try_take());
        assert!(room.try_take());
        assert!(!room.try_take(), "full");
        room.give_back(1);
        assert!(room.try_take());
        room.force_take();
        room.give_back(1);
        assert!(!room.try_take(), "a forced place counts until given back");
        room.give_back(5);
        assert!(
            room.try_take(),
            "giving back more than held saturates at empty"
        );
    }

    #[test]
    fn a_batch_takes_room_for_all_or_none() {
        let room = Room::new(3);
        assert!(room.try_take_many(2));
        assert!(!room.try_take_many(2), "only one place left");
        assert!(room.try_take_many(1));
        assert!(!room.try_take_many(usize::MAX), "no overflow");
        room.give_back(3);
        room.park();
        assert!(
            !room.try_take_many(1),
            "a batch waits behind a parked push too"
        );
    }

    #[test]
    fn a_sealed_room_refuses_every_push() {
        let room = Room::new(2);
        assert!(room.try_take());
        assert!(!room.seal(), "a held place keeps the room open");
        room.give_back(1);
        room.park();
        assert!(!room.seal(), "a parked push keeps the room open");
        room.unpark(1);
        assert!(room.seal());
        assert!(!room.try_take());
        assert!(!room.take());
        assert!(!room.try_take_many(1));
    }

    #[test]
    fn parked_pushes_go_first() {
        let room = Room::new(1);
        room.park();
        assert!(!room.try_take(), "a newcomer waits behind the parked push");
        assert!(room.take(), "the actor admits the parked push");
        room.unpark(1);
        room.give_back(1);
        assert!(room.try_take());
    }
}
