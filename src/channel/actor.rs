//! `ChannelActor`: the supervised actor of one queue, the same for every driver over its [`Backend`].
//!
//! It owns the queue's listeners, the deliveries they hold, the retry and
//! dead-letter decisions, and the stop fan-out ([`Core`]); its backend does
//! the driver's I/O. Every handler runs under one panic guard: a panic stops
//! the actor, its supervisor restarts it with its state (actix keeps the
//! value across a restart), and the restart is counted in
//! [`QueueStats::restarts`]. Messages in its mailbox survive the restart.

use std::sync::Arc;

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::oneshot;

use crate::channel::backend::{Backend, Cx, Settlement};
use crate::channel::core::Core;
#[cfg(feature = "test-util")]
use crate::channel::messages::Crash;
use crate::channel::messages::{
    Arm, Detached, Drain, GetStats, Peek, Purge, Receive, Relay, Settle, StopListeners, Subscribe,
    Unsubscribe,
};
use crate::channel::retire::Retirement;
use crate::channel::retry::RetryPolicy;
use crate::error::Error;
use crate::listener::actor::StopListener;
use crate::observe::Observer;
use crate::panic_guard;
use crate::stats::QueueStats;

/// One queue's actor.
pub(crate) struct ChannelActor<B: Backend> {
    /// Listeners, held deliveries, verdicts: the same for every driver.
    core: Core<B>,
    /// The driver's I/O for this queue.
    backend: B,
    /// Settlements on their way to the backend; kept to reuse its allocation.
    batch: Vec<Settlement<B::Handle>>,
    /// The idle watch: when this channel ends, and where it forwards after.
    retirement: Retirement<B>,
    /// The periodic idle check, cancelled on retirement.
    idle_watch: SpawnHandle,
}

impl<B: Backend> ChannelActor<B> {
    pub(crate) fn new(
        name: Arc<str>,
        retry: Arc<RetryPolicy>,
        backend: B,
        observer: Arc<Observer>,
        retirement: Retirement<B>,
    ) -> Self {
        ChannelActor {
            core: Core::new(name, retry, observer),
            backend,
            batch: Vec::new(),
            retirement,
            idle_watch: SpawnHandle::default(),
        }
    }

    /// Retires the channel if nothing reached it for a whole period and it
    /// holds nothing: no listener, no delivery, and a backend that sealed
    /// itself empty.
    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        let quiet = self.retirement.quiet_since_last_check();
        if !quiet || self.retirement.is_retired() {
            return;
        }
        if self.core.listener_count() > 0 || self.core.held_len() > 0 {
            return;
        }
        if self.with_backend(ctx, "retire", |b, cx| b.retire(cx)) {
            tracing::debug!(queue = %self.core.name, "idle channel retired");
            self.retirement.retire();
            // Nothing of its own keeps the actor alive now: it ends when the
            // last handle on it is dropped.
            ctx.cancel_future(std::mem::take(&mut self.idle_watch));
        }
    }

    /// Runs `body` on the backend under the panic guard; a panic stops the
    /// actor so that its supervisor restarts it. `what` names the handler
    /// in logs (and lets the tests make it panic).
    pub(crate) fn with_backend<R: Default>(
        &mut self,
        ctx: &mut Context<Self>,
        what: &'static str,
        body: impl FnOnce(&mut B, &mut Cx<'_, B>) -> R,
    ) -> R {
        self.retirement.touched = self.retirement.touched.wrapping_add(1);
        let (core, backend) = (&mut self.core, &mut self.backend);
        let ran = panic_guard::catch(|| {
            let result = body(backend, &mut Cx { core, ctx });
            #[cfg(feature = "test-util")]
            core.trip(what);
            result
        });
        match ran {
            Ok(result) => {
                // Every change of listeners and held deliveries passes here.
                self.core.report_occupancy();
                result
            }
            Err(panic) => {
                tracing::error!(queue = %self.core.name, handler = what, %panic, "channel actor panicked; restarting");
                ctx.stop();
                R::default()
            }
        }
    }
}

impl<B: Backend> Actor for ChannelActor<B> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Also runs after a restart: the old context's timers and futures are gone.
        self.with_backend(ctx, "started", |b, cx| b.started(cx));
        let idle = self.retirement.idle;
        if !idle.is_zero() && !self.retirement.is_retired() {
            self.idle_watch = ctx.run_interval(idle, |act, ctx| act.check_idle(ctx));
        }
    }
}

impl<B: Backend> Supervised for ChannelActor<B> {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.core.restarted();
        self.with_backend(ctx, "restarting", |b, cx| b.restarting(cx));
    }
}

impl<B: Backend> Handler<Subscribe<ChannelActor<B>>> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Subscribe<ChannelActor<B>>, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        self.with_backend(ctx, "subscribe", |b, cx| {
            cx.core.attach(msg.id, msg.addr, msg.window);
            b.attached(msg.id, cx);
        });
    }
}

impl<B: Backend> Handler<Settle> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Settle, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        let mut batch = std::mem::take(&mut self.batch);
        self.with_backend(ctx, "settle", |b, cx| {
            cx.core.settle(msg.outcomes, &mut batch);
            if !batch.is_empty() {
                b.settle(batch.drain(..), cx);
            }
            b.credit(msg.listener, cx);
        });
        batch.clear();
        self.batch = batch;
    }
}

impl<B: Backend> Handler<Arm> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Arm, ctx: &mut Context<Self>) {
        self.with_backend(ctx, "arm", |b, cx| {
            if cx.core.arming(msg.token, msg.reply) {
                b.arm(msg.token, cx);
            }
        });
    }
}

impl<B: Backend> Handler<Unsubscribe> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        self.with_backend(ctx, "unsubscribe", |b, cx| {
            cx.core.detach(msg.listener);
            b.unsubscribed(msg.listener, cx);
        });
    }
}

impl<B: Backend> Handler<Detached> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Detached, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        let mut orphans = std::mem::take(&mut self.batch);
        self.with_backend(ctx, "detached", |b, cx| {
            cx.core.detach(msg.listener);
            cx.core.orphans(msg.listener, &mut orphans);
            if !orphans.is_empty() {
                tracing::debug!(queue = %cx.core.name, count = orphans.len(), "releasing deliveries of a stopped listener");
                b.settle(orphans.drain(..), cx);
            }
            b.detached(msg.listener, msg.done, cx);
        });
        orphans.clear();
        self.batch = orphans;
    }
}

impl<B: Backend> Handler<StopListeners> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: StopListeners, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        // Delivery stops at once; each listener finishes what it holds, and
        // its `Detached` releases the rest before its stop is answered.
        let stops: Vec<_> = self.with_backend(ctx, "stop_listeners", |_, cx| {
            let listeners = cx.core.detach_all();
            listeners.iter().map(|l| l.send(StopListener)).collect()
        });
        // Not in the actor's context: a restart must not lose the answer.
        actix::spawn(async move {
            join_all(stops).await;
            let _ = msg.reply.send(());
        });
    }
}

impl<B: Backend> Handler<GetStats> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: GetStats, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        let (listeners, restarts) = (self.core.listener_count() as u64, self.core.restarts());
        let (reply, counted) = oneshot::channel();
        self.with_backend(ctx, "stats", |b, cx| b.stats(reply, cx));
        actix::spawn(async move {
            let stats = counted.await.unwrap_or(Err(Error::Closed));
            let _ = msg.reply.send(stats.map(|stats| QueueStats {
                listeners,
                restarts,
                ..stats
            }));
        });
    }
}

impl<B: Backend> Handler<Purge> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Purge, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        self.with_backend(ctx, "purge", |b, cx| b.purge(msg.reply, cx));
    }
}

impl<B: Backend> Handler<Peek> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Peek, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        self.with_backend(ctx, "peek", |b, cx| b.peek(msg.max, msg.reply, cx));
    }
}

impl<B: Backend> Handler<Receive> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Receive, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        self.with_backend(ctx, "receive", |b, cx| {
            b.receive(msg.timeout, msg.reply, cx)
        });
    }
}

impl<B: Backend> Handler<Drain> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Drain, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        self.with_backend(ctx, "drain", |b, cx| b.drain(msg.reply, cx));
    }
}

#[cfg(feature = "test-util")]
impl<B: Backend> Handler<Crash> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Crash, ctx: &mut Context<Self>) {
        match msg.on_next {
            Some(handler) => self.core.fault = Some(handler),
            None => self.with_backend(ctx, "crash", |_, _| -> () { panic!("injected fault") }),
        }
    }
}

impl<B: Backend> Handler<Relay<B::Event>> for ChannelActor<B> {
    type Result = ();

    fn handle(&mut self, msg: Relay<B::Event>, ctx: &mut Context<Self>) {
        if self.retirement.is_retired() {
            return self.retirement.forward(msg);
        }
        self.with_backend(ctx, "event", |b, cx| b.on_event(msg.0, cx));
    }
}
