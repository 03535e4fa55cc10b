//! `Backend`: what a driver implements for one queue — the I/O, and nothing else.
//!
//! The [`ChannelActor`] owns everything every driver needs (listeners, held
//! deliveries, retry-or-dead-letter decisions, panics, restarts, stops) and
//! calls its backend for the I/O: storing and fetching messages, settling
//! them, counting and purging. A backend reaches back into its channel
//! through [`Cx`]: to hand deliveries to listeners, to ask how much a
//! listener can still take, and to run futures whose outcome comes back to
//! it on the channel's thread.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use std::vec::Drain;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::channel::actor::ChannelActor;
use crate::channel::core::Core;
use crate::channel::suspect::Armed;
use crate::delivery::{AckToken, Delivery, Envelope};
use crate::error::Result;
use crate::listener::ListenerId;
use crate::stats::QueueStats;

/// Where an answer goes: every request to a channel carries one.
pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

/// What becomes of one delivery a listener held.
pub(crate) enum Settlement<H> {
    /// Handled: gone for good.
    Ack(H),
    /// Never started (a stopped listener): back to the queue, unattempted.
    Release(H, Envelope),
    /// Failed: store this copy (its `attempt` already raised) after the
    /// backoff, then forget the original.
    Retry(H, Envelope, Duration),
    /// Failed for the last time: store this copy (its why-headers already
    /// added) in `<queue>.dead`, then forget the original.
    Dead(H, Envelope),
}

/// The I/O of one queue on one driver.
///
/// Every method runs inside the channel actor, under its panic guard: a
/// panic restarts the channel with its state, and
/// [`restarting`](Self::restarting) tells the backend that the futures it
/// ran in the old context are gone.
pub(crate) trait Backend: Sized + Unpin + Send + 'static {
    /// What settles one delivery on the backend: nothing on memory, a
    /// channel and delivery tag on amqp, a stream entry id on redis.
    type Handle: Unpin + 'static;
    /// What the backend's driver (and the backend itself) sends the channel.
    type Event: Send + 'static;

    /// The channel actor started, for the first time or after a restart.
    fn started(&mut self, cx: &mut Cx<'_, Self>);

    /// A supervisor restart: whatever ran in the old context has stopped.
    fn restarting(&mut self, cx: &mut Cx<'_, Self>);

    /// A listener joined: it can take [`Cx::credit`] deliveries.
    fn attached(&mut self, listener: ListenerId, cx: &mut Cx<'_, Self>);

    /// `listener` settled deliveries and can take more.
    fn credit(&mut self, listener: ListenerId, cx: &mut Cx<'_, Self>);

    /// `listener` takes nothing more; what it holds is still settled.
    fn unsubscribed(&mut self, listener: ListenerId, cx: &mut Cx<'_, Self>);

    /// `listener`'s actor stopped; what it held was released just before.
    /// Answer `done` once those messages are back in the queue (the
    /// listener's removal returns then).
    fn detached(&mut self, listener: ListenerId, done: oneshot::Sender<()>, cx: &mut Cx<'_, Self>);

    /// Settles a batch of deliveries, in token order. (A drain of the
    /// channel's own buffer: no allocation per batch.)
    fn settle(&mut self, batch: Drain<'_, Settlement<Self::Handle>>, cx: &mut Cx<'_, Self>);

    /// A listener is about to start the suspect delivery `token` (one the
    /// backend marked [`Envelope::suspect`]): record the start on the
    /// broker, then report with [`Cx::armed`]. Drivers that never mark
    /// suspects (memory: a crash loses everything anyway) keep this
    /// default, which runs it as it is.
    fn arm(&mut self, token: AckToken, cx: &mut Cx<'_, Self>) {
        let Some((_, _, envelope)) = cx.holding(token) else {
            return;
        };
        // Nothing was recorded before: it runs as the stored attempt.
        let counted = Armed::Counted {
            previous: envelope.attempt,
            started: false,
        };
        if let Some(settlement) = cx.armed(token, counted, |_| {}) {
            self.settle(vec![settlement].drain(..), cx);
        }
    }

    /// Something the driver relayed, or the backend sent itself.
    fn on_event(&mut self, event: Self::Event, cx: &mut Cx<'_, Self>);

    /// Counts the queue. `listeners` and `restarts` are the channel's to
    /// fill in; `in_flight` may use [`Cx::held_len`].
    fn stats(&mut self, reply: Reply<QueueStats>, cx: &mut Cx<'_, Self>);

    /// Drops the ready messages, answering how many.
    fn purge(&mut self, reply: Reply<u64>, cx: &mut Cx<'_, Self>);

    /// Copies up to `max` (at least 1) ready messages, in the order they
    /// would be delivered, without taking them: messages listeners hold
    /// and delayed ones are not ready.
    fn peek(&mut self, max: usize, reply: Reply<Vec<Delivery>>, cx: &mut Cx<'_, Self>);

    /// Takes one message, acknowledged as it is handed over, or
    /// `Error::Timeout` after `timeout`.
    fn receive(&mut self, timeout: Duration, reply: Reply<Delivery>, cx: &mut Cx<'_, Self>);

    /// The channel has no listener, holds no delivery and got no message
    /// for a whole `queue.idle_timeout`: answer `true` to let it retire,
    /// after making sure nothing can reach the backend any more (memory:
    /// empty, nothing waiting, and its room sealed against pushes). The
    /// broker backends keep their channels (`false`, the default).
    fn retire(&mut self, _cx: &mut Cx<'_, Self>) -> bool {
        false
    }

    /// Answers once the backend's I/O in flight is done (shutdown).
    fn drain(&mut self, reply: Reply<()>, cx: &mut Cx<'_, Self>);
}

/// A backend's view of its channel: the channel's state and actor context.
pub(crate) struct Cx<'a, B: Backend> {
    pub(crate) core: &'a mut Core<B>,
    pub(crate) ctx: &'a mut Context<ChannelActor<B>>,
}

// Some of these serve only the broker backends (the memory backend assigns
// from its own store and spawns no I/O).
#[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
impl<B: Backend> Cx<'_, B> {
    /// The queue's name.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.core.name
    }

    /// Hands `items` to `listener`. Returns what it cannot take (it
    /// unsubscribed or left) for the backend to give back.
    pub(crate) fn deliver(
        &mut self,
        listener: ListenerId,
        items: Vec<(B::Handle, Envelope)>,
    ) -> Vec<(B::Handle, Envelope)> {
        self.core.deliver(listener, items)
    }

    /// Hands messages from `next` to the listeners with room, in turn,
    /// until `next` runs dry or every window is full.
    pub(crate) fn assign(&mut self, next: impl FnMut() -> Option<(B::Handle, Envelope)>) {
        self.core.assign(next);
    }

    /// How many more deliveries `listener` can take; 0 once it unsubscribed.
    pub(crate) fn credit(&self, listener: ListenerId) -> usize {
        self.core.credit(listener)
    }

    /// Whether `listener` still takes deliveries.
    pub(crate) fn is_active(&self, listener: ListenerId) -> bool {
        self.core.is_active(listener)
    }

    /// The listeners that take deliveries.
    pub(crate) fn active(&self) -> Vec<ListenerId> {
        self.core.active()
    }

    /// Every delivery listeners hold: who holds it, and its handle.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the redis reaper
    pub(crate) fn held(&self) -> impl Iterator<Item = (ListenerId, &B::Handle)> {
        self.core.held()
    }

    /// Who holds the delivery `token`, its handle and its message.
    pub(crate) fn holding(&self, token: AckToken) -> Option<(ListenerId, &B::Handle, &Envelope)> {
        self.core.holding(token)
    }

    /// What a suspect becomes if its previous delivery ran as `previous`
    /// (surely `started`, or maybe not): checked before a record is made.
    #[cfg_attr(not(feature = "amqp"), allow(dead_code))]
    pub(crate) fn judge(&self, previous: u32, started: bool) -> crate::channel::suspect::Go {
        self.core.judge(previous, started)
    }

    /// Reports what [`Backend::arm`] found: answers the listener waiting to
    /// run `token`; `mark` updates its handle once counted. Returns the
    /// settlement the backend then carries out (a dead letter, or a
    /// hand-back when the count failed), if any.
    pub(crate) fn armed(
        &mut self,
        token: AckToken,
        armed: Armed,
        mark: impl FnOnce(&mut B::Handle),
    ) -> Option<Settlement<B::Handle>> {
        self.core.armed(token, armed, mark)
    }

    /// How many deliveries listeners hold.
    pub(crate) fn held_len(&self) -> usize {
        self.core.held_len()
    }

    /// The channel's address, for messages from tasks outside it.
    pub(crate) fn address(&self) -> Addr<ChannelActor<B>> {
        self.ctx.address()
    }

    /// Runs `op` in the channel's context; `then` gets its outcome on the
    /// channel's thread, under the panic guard. Dropped by a restart.
    pub(crate) fn spawn<T: 'static>(
        &mut self,
        op: impl Future<Output = T> + 'static,
        then: impl FnOnce(T, &mut B, &mut Cx<'_, B>) + 'static,
    ) -> SpawnHandle {
        let op = actix::fut::wrap_future::<_, ChannelActor<B>>(op);
        self.ctx.spawn(op.map(move |out, act, ctx| {
            act.with_backend(ctx, "spawned", move |b, cx| then(out, b, cx));
        }))
    }

    /// Runs `then` after `wait`, under the panic guard. Dropped by a restart.
    pub(crate) fn run_later(
        &mut self,
        wait: Duration,
        then: impl FnOnce(&mut B, &mut Cx<'_, B>) + 'static,
    ) -> SpawnHandle {
        self.ctx.run_later(wait, move |act, ctx| {
            act.with_backend(ctx, "run_later", then);
        })
    }

    /// Sends the channel an event of its own, handled after what is queued.
    pub(crate) fn notify(&mut self, event: B::Event) {
        self.ctx.notify(crate::channel::messages::Relay(event));
    }

    /// The actor context, for a [`Timer`](crate::timer::Timer).
    pub(crate) fn ctx(&mut self) -> &mut Context<ChannelActor<B>> {
        self.ctx
    }
}
