//! `AmqpQueue`: one queue on RabbitMQ — its listeners' consumers, their delivery tags, retries and dead letters.
//!
//! Each listener gets a consumer on a channel of its own, with a prefetch of
//! its window capped by `amqp.prefetch`. Deliveries are relayed to its
//! [`ListenerActor`] as [`Deliver`] batches under [`AckToken`]s that map to
//! (channel, delivery tag); verdicts come back as [`Settle`] and become acks
//! (`multiple` where every lower tag is settled too), requeueing nacks, or a
//! confirmed copy to a wait queue or `<queue>.dead` before the ack. A tag is
//! only ever acknowledged on the channel that delivered it; a dead channel's
//! deliveries are requeued by the broker and dropped here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use lapin::types::ShortString;
use lapin::Channel;
use rustc_hash::FxHashMap;

use crate::channel::messages::{Detached, Outcome, Settle, Subscribe, Unsubscribe};
use crate::delivery::{AckToken, Delivery};
use crate::driver::amqp::consumer::{self, Consumed};
use crate::driver::amqp::link::Link;
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::tags::{Held, Tags};
use crate::driver::amqp::wire;
use crate::error::Result;
use crate::listener::actor::{Deliver, ListenerActor, StopListener};
use crate::listener::ListenerId;
use crate::panic_guard;
use crate::stats::QueueStats;
use crate::validate;

/// Wait before consuming again after a consumer failed on a live link.
const RECONSUME_AFTER: Duration = Duration::from_millis(250);

/// One queue's actor.
pub(crate) struct AmqpQueue {
    /// The queue's name, shared by every delivery made from it.
    name: Arc<str>,
    /// Its name on the broker.
    wire: String,
    /// The bus's amqp handles and settings.
    shared: Arc<AmqpShared>,
    /// Attached listeners.
    subs: FxHashMap<ListenerId, Sub>,
    /// Deliveries handed to listeners and not yet settled.
    held: Tags,
    /// Channels of stopped listeners, closed once their retries are settled.
    doomed: FxHashMap<ListenerId, Channel>,
    /// Next delivery token.
    next_token: u64,
    /// Numbers consumer channels, so tags of different channels never mix.
    next_epoch: u64,
    /// Supervisor restarts.
    restarts: Arc<AtomicU64>,
}

/// One attached listener.
struct Sub {
    addr: Addr<ListenerActor<AmqpQueue>>,
    window: usize,
    /// Still wants deliveries (no `Unsubscribe` yet).
    subscribed: bool,
    /// A consumer is being opened.
    starting: bool,
    consumer: Option<Consumed>,
}

/// Deliveries from a listener's consumer.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Incoming {
    pub(crate) listener: ListenerId,
    pub(crate) epoch: u64,
    pub(crate) channel: Channel,
    pub(crate) deliveries: Vec<lapin::message::Delivery>,
}

/// A listener's consumer stream ended (cancelled, or its channel died).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ConsumerEnded {
    pub(crate) listener: ListenerId,
    pub(crate) epoch: u64,
}

/// A new link is up: consume again for every live listener.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct NewLink(pub(crate) Arc<Link>);

/// The queue's stop message (`bus.remove`): stops every listener.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopListeners;

/// Reads the queue's counts, `dead` included.
#[derive(Message)]
#[rtype(result = "Result<QueueStats>")]
pub(crate) struct GetStats;

/// Answered once every message sent before it was handled (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Flush;

/// Fault injection for the supervision tests: panics inside the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Crash;

/// A listener's consumer was opened (or not), on link `generation`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Consuming {
    pub(crate) listener: ListenerId,
    pub(crate) epoch: u64,
    pub(crate) generation: u64,
    pub(crate) opened: Option<(Channel, ShortString)>,
}

/// Internal: the copy of a failed delivery was confirmed (or not).
#[derive(Message)]
#[rtype(result = "()")]
struct Moved {
    token: AckToken,
    ok: bool,
}

impl AmqpQueue {
    pub(crate) fn new(name: Arc<str>, shared: Arc<AmqpShared>) -> Self {
        AmqpQueue {
            wire: wire::wire_name(&name),
            name,
            shared,
            subs: FxHashMap::default(),
            held: Tags::default(),
            doomed: FxHashMap::default(),
            next_token: 0,
            next_epoch: 0,
            restarts: Arc::default(),
        }
    }

    /// Starts a consumer for listener `id` on the current link, unless one
    /// runs there or is starting.
    fn consume(&mut self, id: ListenerId, ctx: &mut Context<Self>) {
        let Some(link) = self.shared.links.borrow().clone().filter(|l| l.is_up()) else {
            return; // `NewLink` comes back here.
        };
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        let current = sub
            .consumer
            .as_ref()
            .is_some_and(|c| c.generation == link.generation && c.channel.status().connected());
        if !sub.subscribed || sub.starting || current {
            return;
        }
        sub.starting = true;
        self.next_epoch += 1;
        let epoch = self.next_epoch;
        let prefetch = sub.window.min(usize::from(self.shared.prefetch)) as u16;
        consumer::start(link, self.name.clone(), prefetch, ctx.address(), id, epoch);
    }

    /// Moves a failed delivery to its wait queue (retry) or `<queue>.dead`,
    /// acknowledging the original once the copy is confirmed.
    fn fail(&mut self, token: AckToken, error: &str, ctx: &mut Context<Self>) {
        let Some(held) = self.held.get_mut(&token) else {
            return;
        };
        if !held.channel.status().connected() || held.moving {
            // The broker already requeued it with its channel.
            self.held.remove(&token);
            return;
        }
        held.moving = true;
        let (target, envelope) =
            self.shared
                .after_failure(&self.name, held.envelope.clone(), error);
        let publish = self.shared.publish(target, envelope);
        let me = ctx.address();
        actix::spawn(async move {
            let result = publish.await;
            if let Err(error) = &result {
                tracing::error!(%error, "cannot move a failed delivery; handing it back");
            }
            me.do_send(Moved {
                token,
                ok: result.is_ok(),
            });
        });
    }

    /// Closes the channel of a stopped listener once nothing of it is held.
    fn close_doomed(&mut self, listener: ListenerId) -> Option<Channel> {
        if self.held.holds(listener) {
            return None;
        }
        self.doomed.remove(&listener)
    }
}

impl Actor for AmqpQueue {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Also runs after a supervisor restart, which drops the context's
        // timers: a consumer waiting to be re-opened must not be forgotten.
        let ids: Vec<ListenerId> = self.subs.keys().copied().collect();
        for id in ids {
            self.consume(id, ctx);
        }
    }
}

impl Supervised for AmqpQueue {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

impl Handler<Subscribe<AmqpQueue>> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: Subscribe<AmqpQueue>, ctx: &mut Context<Self>) {
        self.subs.insert(
            msg.id,
            Sub {
                addr: msg.addr,
                window: msg.window,
                subscribed: true,
                starting: false,
                consumer: None,
            },
        );
        self.consume(msg.id, ctx);
    }
}

impl Handler<Incoming> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: Incoming, _ctx: &mut Context<Self>) {
        let Some(sub) = self.subs.get(&msg.listener) else {
            return; // Its channel is closed or closing: the broker requeues.
        };
        if !msg.channel.status().connected() {
            return;
        }
        let mut batch = Vec::with_capacity(msg.deliveries.len());
        for delivery in msg.deliveries {
            let envelope = wire::envelope(&delivery.properties, delivery.data);
            self.next_token += 1;
            let token = AckToken(self.next_token);
            batch.push((token, Delivery::new(envelope.clone(), self.name.clone())));
            self.held.insert(
                token,
                Held {
                    listener: msg.listener,
                    epoch: msg.epoch,
                    channel: msg.channel.clone(),
                    tag: delivery.delivery_tag,
                    envelope,
                    moving: false,
                },
            );
        }
        sub.addr.do_send(Deliver(batch));
    }
}

impl Handler<ConsumerEnded> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: ConsumerEnded, ctx: &mut Context<Self>) {
        let Some(sub) = self.subs.get_mut(&msg.listener) else {
            return;
        };
        if sub.consumer.as_ref().is_some_and(|c| c.epoch == msg.epoch) {
            sub.consumer = None;
        }
        if sub.subscribed {
            let id = msg.listener;
            ctx.run_later(RECONSUME_AFTER, move |act, ctx| act.consume(id, ctx));
        }
    }
}

impl Handler<NewLink> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: NewLink, ctx: &mut Context<Self>) {
        tracing::debug!(queue = %self.name, generation = msg.0.generation, "consuming on a new link");
        let ids: Vec<ListenerId> = self.subs.keys().copied().collect();
        for id in ids {
            self.consume(id, ctx);
        }
    }
}

impl Handler<Settle> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: Settle, ctx: &mut Context<Self>) {
        let (mut acks, mut releases) = (Vec::new(), Vec::new());
        for (token, outcome) in msg.outcomes {
            match outcome {
                Outcome::Ack => acks.push(token),
                Outcome::Release => releases.push(token),
                Outcome::Fail(error) => self.fail(token, &error, ctx),
            }
        }
        self.held.release(releases);
        self.held.ack(acks);
    }
}

impl Handler<Unsubscribe> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        if let Some(sub) = self.subs.get_mut(&msg.listener) {
            sub.subscribed = false;
            if let Some(consumer) = &sub.consumer {
                consumer.cancel();
            }
        }
    }
}

impl Handler<Detached> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: Detached, ctx: &mut Context<Self>) {
        let Some(sub) = self.subs.remove(&msg.listener) else {
            return;
        };
        let orphans = self.held.orphans(msg.listener);
        self.held.release(orphans);
        let Some(consumer) = sub.consumer else {
            return;
        };
        self.doomed.insert(msg.listener, consumer.channel);
        if let Some(channel) = self.close_doomed(msg.listener) {
            // Closing waits for the broker's close-ok, by which time the
            // requeued messages are back; later stats see them.
            ctx.wait(
                async move {
                    let _ = channel.close(200, "listener stopped".into()).await;
                }
                .into_actor(self),
            );
        }
    }
}

impl Handler<StopListeners> for AmqpQueue {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopListeners, _ctx: &mut Context<Self>) -> Self::Result {
        let mut stops = Vec::new();
        for sub in self.subs.values_mut().filter(|s| s.subscribed) {
            sub.subscribed = false;
            if let Some(consumer) = &sub.consumer {
                consumer.cancel();
            }
            stops.push(sub.addr.send(StopListener));
        }
        Box::pin(async move {
            join_all(stops).await;
        })
    }
}

impl Handler<GetStats> for AmqpQueue {
    type Result = ResponseFuture<Result<QueueStats>>;

    fn handle(&mut self, _: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        let dead = wire::wire_name(&validate::dead_letter_name(&self.name));
        let delays = self.shared.wait_delays(&self.name);
        let mut names = vec![self.wire.clone(), dead];
        names.extend(
            delays
                .iter()
                .map(|&ms| wire::wait_name(&self.name, Duration::from_millis(ms))),
        );
        // A delivery whose copy is on its way to a wait queue or
        // `<queue>.dead` is counted there once confirmed, never twice.
        let in_flight = self.held.in_flight() as u64;
        let listeners = self.subs.values().filter(|s| s.subscribed).count() as u64;
        let restarts = self.restarts.load(Ordering::Relaxed);
        let (shared, name) = (self.shared.clone(), self.name.clone());
        Box::pin(async move {
            let counts = shared.link().await?.counts(&names).await?;
            // A wait queue that expired (`x-expires`) holds nothing: stop asking.
            for (ms, count) in delays.iter().zip(&counts[2..]) {
                if count.is_none() {
                    shared.forget_wait(&name, *ms);
                }
            }
            let count = |c: &Option<u64>| c.unwrap_or(0);
            Ok(QueueStats {
                ready: count(&counts[0]),
                in_flight,
                delayed: counts[2..].iter().map(count).sum(),
                dead: count(&counts[1]),
                listeners,
                restarts,
                durable: true,
            })
        })
    }
}

impl Handler<Flush> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, _: Flush, _ctx: &mut Context<Self>) {}
}

impl Handler<Crash> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        if let Err(panic) = panic_guard::catch(|| -> () { panic!("injected fault") }) {
            tracing::error!(queue = %self.name, %panic, "queue actor panicked; restarting");
            ctx.stop();
        }
    }
}

impl Handler<Consuming> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: Consuming, ctx: &mut Context<Self>) {
        let sub = self.subs.get_mut(&msg.listener);
        let wanted = sub.as_ref().is_some_and(|s| s.subscribed);
        match (sub, msg.opened) {
            (Some(sub), Some((channel, tag))) if wanted => {
                sub.starting = false;
                sub.consumer = Some(Consumed {
                    channel,
                    tag,
                    epoch: msg.epoch,
                    generation: msg.generation,
                });
            }
            (sub, Some((channel, _))) => {
                // The listener left while its consumer opened.
                if let Some(sub) = sub {
                    sub.starting = false;
                }
                consumer::close(channel);
            }
            (Some(sub), None) => {
                sub.starting = false;
                let id = msg.listener;
                ctx.run_later(RECONSUME_AFTER, move |act, ctx| act.consume(id, ctx));
            }
            (None, None) => {}
        }
    }
}

impl Handler<Moved> for AmqpQueue {
    type Result = ();

    fn handle(&mut self, msg: Moved, _ctx: &mut Context<Self>) {
        let Some(listener) = self.held.get(&msg.token).map(|h| h.listener) else {
            return;
        };
        if msg.ok {
            self.held.ack([msg.token]);
        } else {
            self.held.release([msg.token]);
        }
        if let Some(channel) = self.close_doomed(listener) {
            consumer::close(channel);
        }
    }
}
