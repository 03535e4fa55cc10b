//! `MemoryBackend`: one queue of the memory driver — its messages live inside its channel actor.
//!
//! A push first reserves room on the queue's capacity gauge
//! ([`Room`](crate::driver::memory::room::Room)), then puts the message in
//! the queue's [`Inbox`](crate::driver::memory::inbox::Inbox) (waking the
//! actor when it was empty) and returns: the inbox and the wake-up in the
//! actor's mailbox survive its restarts, so any later request finds the
//! message. Only a push that finds the queue full
//! waits, parked here until room comes back or `queue.push_timeout` passes.
//! Ready messages go to waiting `receive`s first, then to the listeners
//! with room, one batch per listener per burst of pushes.

use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec::Drain;

use actix::Addr;
use tokio::sync::oneshot;

use crate::channel::actor::ChannelActor;
use crate::channel::backend::{Backend, Cx, Reply, Settlement};
use crate::channel::messages::Relay;
use crate::channel::redrive::redriven;
use crate::delivery::{Delivery, Envelope};
use crate::driver::memory::inbox::Arrival;
use crate::driver::memory::room::Admission;
use crate::driver::memory::store::MemoryStore;
use crate::driver::memory::waiters::{ParkedPush, Receiver, Waiters};
use crate::driver::memory::{DeadLetter, MemoryFront, MemorySettings};
use crate::driver::registry::Registry;
use crate::listener::ListenerId;
use crate::stats::QueueStats;
use crate::timer::{deadline, Timer};
use crate::validate;

/// One queue of the memory driver.
pub(crate) struct MemoryBackend {
    /// Bus-wide settings.
    settings: Arc<MemorySettings>,
    /// Where dead letters go to find (or create) `<queue>.dead`.
    registry: Addr<Registry<MemoryBackend>>,
    /// The messages no listener holds.
    store: MemoryStore,
    /// `receive`s waiting for a message and pushes waiting for room.
    waiters: Waiters,
    /// One timer for delays, push timeouts and receive timeouts.
    timer: Timer,
    /// A `Dispatch` is already queued; coalesces a burst of pushes into
    /// one batch per listener.
    dispatch_queued: bool,
    /// The capacity gauge and the inbox, shared with the bus handles that
    /// push here.
    front: Arc<MemoryFront>,
    /// What the inbox handed over last, kept to swap its allocation back.
    arrivals: Vec<Arrival>,
}

/// What the memory driver sends a channel.
pub(crate) enum MemoryEvent {
    /// Stores a message.
    Enqueue {
        envelope: Envelope,
        delay: Option<Duration>,
        admission: Admission,
    },
    /// The inbox has messages whose room the pushers took on the
    /// [`Room`](crate::driver::memory::room::Room) gauge: store them.
    Arrived,
    /// Hands ready messages to receivers and listeners (sent to itself).
    Dispatch,
    /// Moves up to `max` ready messages of this queue (a `<queue>.dead`)
    /// into the channel of `<queue>`, as redriven copies; answers how many.
    Redrive {
        max: usize,
        into: Addr<ChannelActor<MemoryBackend>>,
        reply: Reply<u64>,
    },
}

impl MemoryBackend {
    pub(crate) fn new(
        settings: Arc<MemorySettings>,
        registry: Addr<Registry<MemoryBackend>>,
        front: Arc<MemoryFront>,
    ) -> Self {
        MemoryBackend {
            settings,
            registry,
            store: MemoryStore::default(),
            waiters: Waiters::default(),
            timer: Timer::default(),
            dispatch_queued: false,
            front,
            arrivals: Vec::new(),
        }
    }

    fn store(&mut self, envelope: Envelope, delay: Option<Duration>, cx: &mut Cx<'_, Self>) {
        match delay.filter(|d| !d.is_zero()) {
            Some(delay) => {
                self.store
                    .push_delayed(envelope, deadline(Instant::now(), delay));
                self.rearm(cx);
            }
            None => {
                self.store.push(envelope);
                self.queue_dispatch(cx);
            }
        }
    }

    fn enqueue(
        &mut self,
        envelope: Envelope,
        delay: Option<Duration>,
        admission: Admission,
        cx: &mut Cx<'_, Self>,
    ) {
        match admission {
            Admission::Forced => {
                self.front.room.force_take();
                self.store(envelope, delay, cx);
            }
            Admission::Wait(reply) if self.waiters.pushes.is_empty() && self.front.room.take() => {
                self.store(envelope, delay, cx);
                let _ = reply.send(Ok(()));
            }
            Admission::Wait(reply) => {
                self.front.room.park();
                self.waiters.pushes.push_back(ParkedPush {
                    deadline: deadline(Instant::now(), self.settings.push_timeout),
                    envelope,
                    delay,
                    reply,
                });
                self.rearm(cx);
            }
        }
    }

    /// `count` messages left for good: give their room back and let
    /// waiting pushes in, oldest first, while there is room.
    fn gone(&mut self, count: usize, cx: &mut Cx<'_, Self>) {
        self.front.room.give_back(count);
        while let Some(push) = self.waiters.pushes.front() {
            // A caller that gave up did not get an `Ok`: storing its message
            // now would be a push nobody knows happened.
            let abandoned = push.reply.is_closed();
            if !abandoned && !self.front.room.take() {
                break;
            }
            let Some(push) = self.waiters.pushes.pop_front() else {
                break;
            };
            self.front.room.unpark(1);
            if !abandoned {
                self.store(push.envelope, push.delay, cx);
                let _ = push.reply.send(Ok(()));
            }
        }
    }

    fn queue_dispatch(&mut self, cx: &mut Cx<'_, Self>) {
        if !self.dispatch_queued {
            self.dispatch_queued = true;
            cx.notify(MemoryEvent::Dispatch);
        }
    }

    /// Hands ready messages to waiting receives first, then to listeners.
    fn dispatch(&mut self, cx: &mut Cx<'_, Self>) {
        let mut received = 0;
        while !self.waiters.receivers.is_empty() && self.store.ready_len() > 0 {
            let (Some(waiter), Some(envelope)) =
                (self.waiters.receivers.pop_front(), self.store.pop())
            else {
                break;
            };
            if let Err(Ok(unsent)) = waiter
                .reply
                .send(Ok(Delivery::new(envelope, cx.name().clone())))
            {
                self.store.unpop(vec![unsent.into_envelope()]);
            } else {
                received += 1;
            }
        }
        if received > 0 {
            // A receive acknowledges on hand-over.
            self.gone(received, cx);
        }
        let store = &mut self.store;
        cx.assign(|| store.pop().map(|envelope| ((), envelope)));
    }

    /// Moves up to `max` ready messages into `into`'s mailbox, where they
    /// are stored (its mailbox outlives restarts and is read in order)
    /// before they leave this store's count: any later call to that queue
    /// finds them.
    fn redrive(
        &mut self,
        max: usize,
        into: &Addr<ChannelActor<MemoryBackend>>,
        cx: &mut Cx<'_, Self>,
    ) -> u64 {
        let mut moved = 0;
        while moved < max {
            let Some(envelope) = self.store.pop() else {
                break;
            };
            into.do_send(Relay(MemoryEvent::Enqueue {
                envelope: redriven(envelope),
                delay: None,
                // A move the bus makes is never refused, like a dead letter.
                admission: Admission::Forced,
            }));
            moved += 1;
        }
        self.gone(moved, cx);
        moved as u64
    }

    /// Arms the one timer for the earliest deadline of delays, parked pushes
    /// and receives.
    fn rearm(&mut self, cx: &mut Cx<'_, Self>) {
        let next = [self.store.next_due(), self.waiters.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        if let Some(next) = next {
            self.timer.arm(cx.ctx(), next, |act, ctx| {
                act.with_backend(ctx, "timer", |b, cx| {
                    b.timer.disarm();
                    b.on_timer(cx);
                });
            });
        }
    }

    fn on_timer(&mut self, cx: &mut Cx<'_, Self>) {
        let now = Instant::now();
        self.store.promote_due(now);
        let expired = self.waiters.expire(now);
        self.front.room.unpark(expired);
        self.dispatch(cx);
        self.rearm(cx);
    }
}

impl Backend for MemoryBackend {
    const RETIRES: bool = true;
    type Handle = ();
    type Event = MemoryEvent;

    fn started(&mut self, cx: &mut Cx<'_, Self>) {
        // Messages may have become ready while the actor restarted.
        self.rearm(cx);
        self.queue_dispatch(cx);
    }

    fn restarting(&mut self, _cx: &mut Cx<'_, Self>) {
        self.timer.disarm();
        self.dispatch_queued = false;
    }

    fn attached(&mut self, _listener: ListenerId, cx: &mut Cx<'_, Self>) {
        self.queue_dispatch(cx);
    }

    fn credit(&mut self, _listener: ListenerId, cx: &mut Cx<'_, Self>) {
        // Nothing ready, nothing to hand out: no `Dispatch` message then
        // (after every settle of a queue that keeps up with its pushes).
        if self.store.ready_len() > 0 {
            self.queue_dispatch(cx);
        }
    }

    fn unsubscribed(&mut self, _listener: ListenerId, _cx: &mut Cx<'_, Self>) {}

    fn detached(
        &mut self,
        _listener: ListenerId,
        done: oneshot::Sender<()>,
        _cx: &mut Cx<'_, Self>,
    ) {
        // Its messages went back into the store with the releases before.
        let _ = done.send(());
    }

    fn settle(&mut self, batch: Drain<'_, Settlement<()>>, cx: &mut Cx<'_, Self>) {
        let (mut released, mut gone) = (Vec::new(), 0);
        for settlement in batch {
            match settlement {
                Settlement::Ack(()) => gone += 1,
                Settlement::Release((), envelope) => released.push(envelope),
                Settlement::Retry((), envelope, after) => {
                    self.store
                        .push_delayed(envelope, deadline(Instant::now(), after));
                    self.rearm(cx);
                }
                Settlement::Dead((), envelope) => {
                    self.registry.do_send(DeadLetter {
                        queue: validate::dead_letter_name(cx.name()),
                        envelope,
                    });
                    gone += 1;
                }
            }
        }
        if !released.is_empty() {
            self.store.unpop(released);
            self.queue_dispatch(cx);
        }
        self.gone(gone, cx);
    }

    fn on_event(&mut self, event: MemoryEvent, cx: &mut Cx<'_, Self>) {
        match event {
            MemoryEvent::Enqueue {
                envelope,
                delay,
                admission,
            } => self.enqueue(envelope, delay, admission, cx),
            MemoryEvent::Arrived => {
                let mut arrivals = std::mem::take(&mut self.arrivals);
                self.front.inbox.take_into(&mut arrivals);
                // Every arrival is stored before any is handed out, so the
                // whole burst is dispatched here at once: no `Dispatch`
                // message to this actor per wake-up (one push per wake-up
                // is the common case when pushes spread over many queues).
                let queued = std::mem::replace(&mut self.dispatch_queued, true);
                for (envelope, delay) in arrivals.drain(..) {
                    self.store(envelope, delay, cx);
                }
                self.arrivals = arrivals;
                self.dispatch_queued = queued;
                self.dispatch(cx);
            }
            MemoryEvent::Dispatch => {
                self.dispatch_queued = false;
                self.dispatch(cx);
            }
            MemoryEvent::Redrive { max, into, reply } => {
                let _ = reply.send(Ok(self.redrive(max, &into, cx)));
            }
        }
    }

    fn stats(&mut self, reply: Reply<QueueStats>, cx: &mut Cx<'_, Self>) {
        let _ = reply.send(Ok(QueueStats {
            ready: self.store.ready_len() as u64,
            in_flight: cx.held_len() as u64,
            delayed: self.store.delayed_len() as u64,
            durable: false,
            ..QueueStats::default()
        }));
    }

    fn purge(&mut self, reply: Reply<u64>, cx: &mut Cx<'_, Self>) {
        let dropped = self.store.purge();
        self.gone(dropped as usize, cx);
        let _ = reply.send(Ok(dropped));
    }

    fn peek(&mut self, max: usize, reply: Reply<Vec<Delivery>>, cx: &mut Cx<'_, Self>) {
        let name = cx.name();
        let copies = self.store.ready().take(max);
        let copies = copies.map(|envelope| Delivery::new(envelope.clone(), name.clone()));
        let _ = reply.send(Ok(copies.collect()));
    }

    fn receive(&mut self, timeout: Duration, reply: Reply<Delivery>, cx: &mut Cx<'_, Self>) {
        self.waiters.receivers.push_back(Receiver {
            deadline: deadline(Instant::now(), timeout),
            reply,
        });
        self.dispatch(cx);
        if !self.waiters.receivers.is_empty() {
            self.rearm(cx);
        }
    }

    fn retire(&mut self, _cx: &mut Cx<'_, Self>) -> bool {
        // The room is sealed last: once it refuses pushes nothing more can
        // come in, and it refuses only while nothing is held.
        self.store.ready_len() == 0
            && self.store.delayed_len() == 0
            && self.waiters.receivers.is_empty()
            && self.waiters.pushes.is_empty()
            && self.front.room.seal()
    }

    fn drain(&mut self, reply: Reply<()>, _cx: &mut Cx<'_, Self>) {
        // Nothing is in flight outside the actor.
        let _ = reply.send(Ok(()));
    }
}
