//! `QueueActor`: one queue ("channel") — its messages, its listeners, its retries and dead letters.
//!
//! Its place in the message protocol is drawn in the crate docs ("How it
//! works"); the memory driver's store, [`MemoryStore`], lives inside it.
//!
//! The actor is `Supervised`: a panic in its own code is caught, the actor
//! restarts with its state (actix keeps the value across a restart), and the
//! restart is counted in [`QueueStats::restarts`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::oneshot;

use crate::channel::messages::{Detached, Outcome, Settle, Subscribe, Unsubscribe};
use crate::channel::retry::Verdict;
use crate::channel::subscribers::Subscribers;
use crate::delivery::{Delivery, Envelope};
use crate::driver::memory::room::{Admission, Room};
use crate::driver::memory::store::MemoryStore;
use crate::driver::memory::waiters::{deadline, ParkedPush, Receiver, Waiters};
use crate::driver::registry::{DeadLetter, QueueSettings, Registry};
use crate::error::Result;
use crate::listener::actor::{Deliver, ListenerActor, StopListener};
use crate::panic_guard;
use crate::stats::QueueStats;
use crate::timer::Timer;
use crate::validate;

/// One queue's actor.
pub(crate) struct QueueActor {
    /// The queue's name, shared by every delivery made from it.
    name: Arc<str>,
    /// Bus-wide settings.
    settings: Arc<QueueSettings>,
    /// Where dead letters go to find (or create) `<name>.dead`.
    registry: Addr<Registry>,
    /// The messages.
    store: MemoryStore,
    /// Attached listeners and their leases.
    listeners: Subscribers<Addr<ListenerActor<QueueActor>>>,
    /// `receive`s waiting for a message and pushes waiting for room.
    waiters: Waiters,
    /// The armed timer and its deadline; one timer serves delays, push
    /// timeouts and receive timeouts.
    timer: Timer,
    /// A `Dispatch` is already queued; coalesces a burst of pushes into
    /// one batch per listener.
    dispatch_queued: bool,
    /// Supervisor restarts, shared with whoever wants to count them.
    restarts: Arc<AtomicU64>,
    /// The capacity gauge, shared with the bus handles that push here.
    room: Arc<Room>,
}

/// Stores a message.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Enqueue {
    pub(crate) envelope: Envelope,
    pub(crate) delay: Option<Duration>,
    pub(crate) admission: Admission,
}

/// Takes one message, acknowledged on hand-over, or `Error::Timeout`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Receive {
    pub(crate) timeout: Duration,
    pub(crate) reply: oneshot::Sender<Result<Delivery>>,
}

/// The queue's stop message (`bus.remove`): stops every listener, keeps the messages.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopListeners;

/// Reads the queue's counts (`dead` is filled in by the bus).
#[derive(Message)]
#[rtype(result = "QueueStats")]
pub(crate) struct GetStats;

/// Drops the ready messages; answers how many.
#[derive(Message)]
#[rtype(result = "u64")]
pub(crate) struct Purge;

/// Fault injection for the supervision tests: panics inside the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Crash;

/// Internal: hands ready messages to receivers and listeners.
#[derive(Message)]
#[rtype(result = "()")]
struct Dispatch;

impl QueueActor {
    pub(crate) fn new(
        name: Arc<str>,
        settings: Arc<QueueSettings>,
        registry: Addr<Registry>,
        room: Arc<Room>,
    ) -> Self {
        QueueActor {
            name,
            settings,
            registry,
            store: MemoryStore::default(),
            listeners: Subscribers::default(),
            waiters: Waiters::default(),
            timer: Timer::default(),
            dispatch_queued: false,
            restarts: Arc::default(),
            room,
        }
    }

    /// Runs a handler body; a panic stops the actor so its supervisor restarts it.
    fn guarded<R: Default>(
        &mut self,
        ctx: &mut Context<Self>,
        body: impl FnOnce(&mut Self, &mut Context<Self>) -> R,
    ) -> R {
        match panic_guard::catch(|| body(self, ctx)) {
            Ok(result) => result,
            Err(panic) => {
                tracing::error!(queue = %self.name, %panic, "queue actor panicked; restarting");
                ctx.stop();
                R::default()
            }
        }
    }

    fn store(&mut self, envelope: Envelope, delay: Option<Duration>, ctx: &mut Context<Self>) {
        match delay.filter(|d| !d.is_zero()) {
            Some(delay) => {
                let due = deadline(Instant::now(), delay);
                self.store.push_delayed(envelope, due);
                self.rearm(ctx);
            }
            None => {
                self.store.push(envelope);
                self.queue_dispatch(ctx);
            }
        }
    }

    /// `count` messages left for good: give their room back and let
    /// waiting pushes in, oldest first, while there is room.
    fn gone(&mut self, count: usize, ctx: &mut Context<Self>) {
        self.room.give_back(count);
        while let Some(push) = self.waiters.pushes.front() {
            // A caller that gave up did not get an `Ok`: storing its message
            // now would be a push nobody knows happened.
            let abandoned = push.reply.is_closed();
            if !abandoned && !self.room.take() {
                break;
            }
            let Some(push) = self.waiters.pushes.pop_front() else {
                break;
            };
            self.room.unpark(1);
            if !abandoned {
                self.store(push.envelope, push.delay, ctx);
                let _ = push.reply.send(Ok(()));
            }
        }
    }

    fn queue_dispatch(&mut self, ctx: &mut Context<Self>) {
        if !self.dispatch_queued {
            self.dispatch_queued = true;
            ctx.notify(Dispatch);
        }
    }

    /// Hands ready messages to waiting receives first, then to listeners.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let mut received = 0;
        while !self.waiters.receivers.is_empty() && self.store.ready_len() > 0 {
            let (Some(waiter), Some(envelope)) =
                (self.waiters.receivers.pop_front(), self.store.pop())
            else {
                break;
            };
            if let Err(Ok(unsent)) = waiter
                .reply
                .send(Ok(Delivery::new(envelope, self.name.clone())))
            {
                self.store.unpop(unsent.into_envelope());
            } else {
                received += 1;
            }
        }
        if received > 0 {
            // A receive acknowledges on hand-over.
            self.gone(received, ctx);
        }
        let (store, name) = (&mut self.store, &self.name);
        let batches = self.listeners.assign(|listener| {
            let (token, envelope) = store.lease(listener)?;
            Some((token, Delivery::new(envelope, name.clone())))
        });
        for (addr, batch) in batches {
            addr.do_send(Deliver(batch));
        }
    }

    /// Retries or dead-letters a failed delivery; returns how many messages
    /// left this queue for good (1 for a dead letter).
    fn fail(&mut self, mut envelope: Envelope, error: &str, ctx: &mut Context<Self>) -> usize {
        let now = Instant::now();
        match self
            .settings
            .retry
            .on_failure(envelope.attempt, error, SystemTime::now())
        {
            Verdict::Retry { attempt, after } => {
                envelope.attempt = attempt;
                self.store.push_delayed(envelope, deadline(now, after));
                self.rearm(ctx);
                0
            }
            Verdict::DeadLetter { headers } => {
                Arc::make_mut(envelope.headers.get_or_insert_with(Default::default))
                    .extend(headers);
                tracing::warn!(queue = %self.name, id = %envelope.id, attempts = envelope.attempt, error, "message dead-lettered");
                self.registry.do_send(DeadLetter {
                    queue: validate::dead_letter_name(&self.name),
                    envelope,
                });
                1
            }
        }
    }

    /// Arms the one timer for the earliest deadline of delays, parked pushes
    /// and receives.
    fn rearm(&mut self, ctx: &mut Context<Self>) {
        let next = [self.store.next_due(), self.waiters.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        if let Some(next) = next {
            self.timer.arm(ctx, next, |act: &mut Self, ctx| {
                act.timer.disarm();
                act.guarded(ctx, Self::on_timer);
            });
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        self.store.promote_due(now);
        let expired = self.waiters.expire(now);
        self.room.unpark(expired);
        self.dispatch(ctx);
        self.rearm(ctx);
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Also runs after a restart: the old context's timer is gone, and
        // messages may have become ready meanwhile.
        self.rearm(ctx);
        self.queue_dispatch(ctx);
    }
}

impl Supervised for QueueActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.timer.disarm();
        self.dispatch_queued = false;
    }
}

impl Handler<Enqueue> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueue, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| match msg.admission {
            Admission::Reserved => act.store(msg.envelope, msg.delay, ctx),
            Admission::Forced => {
                act.room.force_take();
                act.store(msg.envelope, msg.delay, ctx);
            }
            Admission::Wait(reply) if act.waiters.pushes.is_empty() && act.room.take() => {
                act.store(msg.envelope, msg.delay, ctx);
                let _ = reply.send(Ok(()));
            }
            Admission::Wait(reply) => {
                act.room.park();
                act.waiters.pushes.push_back(ParkedPush {
                    deadline: deadline(Instant::now(), act.settings.push_timeout),
                    envelope: msg.envelope,
                    delay: msg.delay,
                    reply,
                });
                act.rearm(ctx);
            }
        });
    }
}

impl Handler<Subscribe<QueueActor>> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Subscribe<QueueActor>, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            act.listeners.attach(msg.id, msg.addr, msg.window);
            act.queue_dispatch(ctx);
        });
    }
}

impl Handler<Settle> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Settle, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let (mut released, mut gone) = (Vec::new(), 0);
            for (token, outcome) in msg.outcomes {
                if let Outcome::Release = outcome {
                    released.push(token);
                    continue;
                }
                let Some((envelope, owner)) = act.store.settle(token) else {
                    continue;
                };
                act.listeners.returned(owner, 1);
                match outcome {
                    Outcome::Fail(error) => gone += act.fail(envelope, &error, ctx),
                    _ => gone += 1,
                }
            }
            if !released.is_empty() {
                let count = act.store.release(released);
                act.listeners.returned(msg.listener, count);
            }
            act.gone(gone, ctx);
            act.queue_dispatch(ctx);
        });
    }
}

impl Handler<Unsubscribe> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, _| act.listeners.detach(msg.listener));
    }
}

impl Handler<Detached> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Detached, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            act.listeners.detach(msg.listener);
            let orphans = act.store.leased_to(msg.listener);
            if !orphans.is_empty() {
                tracing::debug!(queue = %act.name, count = orphans.len(), "reclaiming deliveries of a stopped listener");
                act.store.release(orphans);
                act.queue_dispatch(ctx);
            }
        });
    }
}

impl Handler<Receive> for QueueActor {
    type Result = ();

    fn handle(&mut self, msg: Receive, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            act.waiters.receivers.push_back(Receiver {
                deadline: deadline(Instant::now(), msg.timeout),
                reply: msg.reply,
            });
            act.dispatch(ctx);
            if !act.waiters.receivers.is_empty() {
                act.rearm(ctx);
            }
        });
    }
}

impl Handler<StopListeners> for QueueActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopListeners, _ctx: &mut Context<Self>) -> Self::Result {
        // Dispatch stops at once; each listener finishes what it holds and
        // its `Detached` returns the rest before its stop is answered.
        let stops: Vec<_> = self
            .listeners
            .drain()
            .into_iter()
            .map(|addr| addr.send(StopListener))
            .collect();
        Box::pin(async move {
            join_all(stops).await;
        })
    }
}

impl Handler<GetStats> for QueueActor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(QueueStats {
            ready: self.store.ready_len() as u64,
            in_flight: self.store.in_flight_len() as u64,
            delayed: self.store.delayed_len() as u64,
            dead: 0,
            listeners: self.listeners.len() as u64,
            restarts: self.restarts.load(Ordering::Relaxed),
            durable: false,
        })
    }
}

impl Handler<Purge> for QueueActor {
    type Result = u64;

    fn handle(&mut self, _: Purge, ctx: &mut Context<Self>) -> u64 {
        self.guarded(ctx, |act, ctx| {
            let dropped = act.store.purge();
            act.gone(dropped as usize, ctx);
            dropped
        })
    }
}

impl Handler<Crash> for QueueActor {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        self.guarded(ctx, |_, _| -> () { panic!("injected fault") });
    }
}

impl Handler<Dispatch> for QueueActor {
    type Result = ();

    fn handle(&mut self, _: Dispatch, ctx: &mut Context<Self>) {
        self.dispatch_queued = false;
        self.guarded(ctx, Self::dispatch);
    }
}
