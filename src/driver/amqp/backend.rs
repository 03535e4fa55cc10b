//! `AmqpBackend`: one queue on RabbitMQ — its listeners' consumers, and the acks, nacks and confirmed copies that settle their deliveries.
//!
//! Each listener gets a consumer on a channel of its own, with a prefetch of
//! its window capped by `amqp.prefetch`; a relay task outside the channel
//! actor sends its deliveries back as [`AmqpEvent::Incoming`]. An ack is a
//! `basic.ack` (`multiple` where every lower tag of the channel is settled
//! too), a release a requeueing `basic.nack`, a retry or dead letter a
//! confirmed copy to the wait queue or `<queue>.dead` before the original
//! is acknowledged. The copies are published outside the actor, so a
//! restart never loses their outcome. On every new link (read from the
//! driver's link watch) the active listeners consume again.

use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec::Drain;

use lapin::types::ShortString;
use lapin::Channel;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::channel::backend::{Backend, Cx, Reply, Settlement};
use crate::channel::messages::Relay;
use crate::delivery::{Delivery, Envelope};
use crate::driver::amqp::consumer::{self, Consumed};
use crate::driver::amqp::driver::Links;
use crate::driver::amqp::link::Target;
use crate::driver::amqp::operate;
use crate::driver::amqp::receive;
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::tags::{AmqpHandle, Tags};
use crate::driver::amqp::wire;
use crate::listener::ListenerId;
use crate::stats::QueueStats;
use crate::validate;

/// Wait before consuming again after a consumer failed on a live link.
const RECONSUME_AFTER: Duration = Duration::from_millis(250);

/// One queue of the amqp driver.
pub(crate) struct AmqpBackend {
    /// The bus's amqp handles and settings.
    shared: Arc<AmqpShared>,
    /// The consumer of each attached listener.
    consumers: FxHashMap<ListenerId, Slot>,
    /// Delivery tags not yet settled, per consumer channel.
    tags: Tags,
    /// Consumer channels to close once nothing delivered on them is
    /// unsettled (a copy may still be on its way), with whoever waits for
    /// the broker's close-ok (a listener's removal).
    doomed: FxHashMap<u64, (Channel, Vec<oneshot::Sender<()>>)>,
    /// Retry and dead-letter copies being published.
    moving: usize,
    /// `drain` requests, answered once no copy is being published.
    drains: Vec<Reply<()>>,
    /// Numbers consumer channels, so tags of different channels never mix.
    next_epoch: u64,
}

/// One attached listener's consumer.
struct Slot {
    /// Most deliveries it holds at once: its prefetch, up to `amqp.prefetch`.
    window: usize,
    /// A consumer is being opened.
    starting: bool,
    /// Its consumer was cancelled: it takes nothing more.
    cancelled: bool,
    /// The running consumer, if any.
    consumer: Option<Consumed>,
}

/// What the consumers' relay tasks and the backend's own publishes send the channel.
pub(crate) enum AmqpEvent {
    /// A listener's consumer was opened (`opened`) or not, on link `generation`.
    Consuming {
        listener: ListenerId,
        epoch: u64,
        generation: u64,
        opened: Option<(Channel, ShortString)>,
    },
    /// Deliveries from a listener's consumer.
    Incoming {
        listener: ListenerId,
        epoch: u64,
        channel: Channel,
        deliveries: Vec<lapin::message::Delivery>,
    },
    /// A listener's consumer stream ended (cancelled, or its channel died).
    ConsumerEnded { listener: ListenerId, epoch: u64 },
    /// The retry or dead-letter copy of a delivery was confirmed (or not).
    Moved { handle: AmqpHandle, ok: bool },
}

impl AmqpBackend {
    pub(crate) fn new(shared: Arc<AmqpShared>) -> Self {
        AmqpBackend {
            shared,
            consumers: FxHashMap::default(),
            tags: Tags::default(),
            doomed: FxHashMap::default(),
            moving: 0,
            drains: Vec::new(),
            next_epoch: 0,
        }
    }

    /// Starts a consumer for listener `id` on the current link, unless one
    /// runs there or is starting, or the listener takes nothing more.
    fn consume(&mut self, id: ListenerId, cx: &mut Cx<'_, Self>) {
        if !cx.is_active(id) {
            return;
        }
        let Some(link) = self.shared.links.borrow().clone().filter(|l| l.is_up()) else {
            return; // The link watch comes back here.
        };
        let Some(slot) = self.consumers.get_mut(&id) else {
            return;
        };
        let current = slot
            .consumer
            .as_ref()
            .is_some_and(|c| c.generation == link.generation && c.channel.status().connected());
        if slot.starting || slot.cancelled || current {
            return;
        }
        slot.starting = true;
        self.next_epoch += 1;
        let prefetch = slot.window.min(usize::from(self.shared.prefetch)).max(1);
        let prefetch = u16::try_from(prefetch).unwrap_or(u16::MAX);
        let (name, addr) = (cx.name().clone(), cx.address());
        consumer::start(link, name, prefetch, addr, id, self.next_epoch);
    }

    fn consume_all(&mut self, cx: &mut Cx<'_, Self>) {
        for id in cx.active() {
            self.consume(id, cx);
        }
    }

    /// Waits for the next link on `links`, then consumes again for every
    /// listener. Runs in the actor's context: a restart drops it, and
    /// `started` watches again.
    fn watch_links(&mut self, mut links: Links, cx: &mut Cx<'_, Self>) {
        let changed = async move {
            let alive = links.changed().await.is_ok();
            (alive, links)
        };
        cx.spawn(changed, |(alive, links), backend: &mut Self, cx| {
            if alive {
                tracing::debug!(queue = %cx.name(), "consuming on a new link");
                backend.consume_all(cx);
                backend.watch_links(links, cx);
            }
        });
    }

    /// Cancels `listener`'s consumer: it takes nothing more.
    fn cancel(&mut self, listener: ListenerId) {
        if let Some(slot) = self.consumers.get_mut(&listener) {
            if !slot.cancelled {
                slot.cancelled = true;
                if let Some(consumer) = &slot.consumer {
                    consumer.cancel();
                }
            }
        }
    }

    /// Closes a consumer channel once nothing delivered on it is unsettled,
    /// then answers `waiter` (when given) on the broker's close-ok.
    fn retire(&mut self, epoch: u64, channel: Channel, waiter: Option<oneshot::Sender<()>>) {
        if !channel.status().connected() {
            // Gone with its connection: the broker requeued what it held.
            if let Some(waiter) = waiter {
                let _ = waiter.send(());
            }
            return;
        }
        if self.tags.holds(epoch) {
            let doomed = self.doomed.entry(epoch).or_insert((channel, Vec::new()));
            doomed.1.extend(waiter);
            return;
        }
        close_then(channel, waiter.into_iter().collect());
    }

    /// Closes the doomed channels whose deliveries are all settled.
    fn close_settled(&mut self) {
        let tags = &self.tags;
        self.doomed.retain(|&epoch, (channel, waiters)| {
            let settled = !tags.holds(epoch);
            if settled {
                close_then(channel.clone(), std::mem::take(waiters));
            }
            !settled
        });
    }

    /// What `settlement` of a held delivery does: acks and releases
    /// (requeues) are gathered for one pass over the tags, copies start at once.
    fn apply(
        &mut self,
        settlement: Settlement<AmqpHandle>,
        acks: &mut Vec<AmqpHandle>,
        releases: &mut Vec<AmqpHandle>,
        cx: &mut Cx<'_, Self>,
    ) {
        match settlement {
            Settlement::Ack(handle) => acks.push(handle),
            Settlement::Release(handle, _) => releases.push(handle),
            Settlement::Retry(handle, envelope, after) => {
                let target = self.shared.target(cx.name(), Some(after));
                self.move_copy(handle, target, envelope, cx);
            }
            Settlement::Dead(handle, envelope) => {
                let target = Target::Queue(validate::dead_letter_name(cx.name()));
                self.move_copy(handle, target, envelope, cx);
            }
        }
    }

    /// Publishes the copy of a failed delivery to `target`, and settles the
    /// original once the broker confirmed it (or not).
    fn move_copy(
        &mut self,
        handle: AmqpHandle,
        target: Target,
        envelope: Envelope,
        cx: &mut Cx<'_, Self>,
    ) {
        if !handle.live() {
            // The broker already requeued it with its channel.
            self.tags.forget(&handle);
            return;
        }
        self.moving += 1;
        let publish = self.shared.publish(target, envelope);
        let me = cx.address();
        // Not in the actor's context: a restart must not lose the outcome.
        actix::spawn(async move {
            let result = publish.await;
            if let Err(error) = &result {
                tracing::error!(%error, "cannot move a failed delivery; handing it back");
            }
            me.do_send(Relay(AmqpEvent::Moved {
                handle,
                ok: result.is_ok(),
            }));
        });
    }

    fn incoming(
        &mut self,
        listener: ListenerId,
        epoch: u64,
        channel: Channel,
        deliveries: Vec<lapin::message::Delivery>,
        cx: &mut Cx<'_, Self>,
    ) {
        if !channel.status().connected() {
            return; // The broker requeued them with their channel.
        }
        let mut items = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let tag = delivery.delivery_tag;
            self.tags.insert(epoch, tag);
            let handle = AmqpHandle {
                epoch,
                channel: channel.clone(),
                tag,
            };
            items.push((handle, wire::envelope(&delivery.properties, delivery.data)));
        }
        let refused = cx.deliver(listener, items);
        if !refused.is_empty() {
            // The listener stopped taking deliveries: back to the queue.
            self.cancel(listener);
            self.tags
                .release(refused.into_iter().map(|(h, _)| h).collect());
            self.close_settled();
        }
    }

    fn consuming(
        &mut self,
        listener: ListenerId,
        epoch: u64,
        generation: u64,
        opened: Option<(Channel, ShortString)>,
        cx: &mut Cx<'_, Self>,
    ) {
        let wanted = cx.is_active(listener);
        let slot = self.consumers.get_mut(&listener);
        match (slot, opened) {
            (Some(slot), Some((channel, tag))) if wanted && !slot.cancelled => {
                slot.starting = false;
                let new = Consumed {
                    channel,
                    tag,
                    epoch,
                    generation,
                };
                if let Some(old) = slot.consumer.replace(new) {
                    // A consumer of an older link that still runs.
                    old.cancel();
                    self.retire(old.epoch, old.channel, None);
                }
            }
            (slot, Some((channel, _))) => {
                // The listener left while its consumer opened.
                if let Some(slot) = slot {
                    slot.starting = false;
                }
                drop(consumer::close(channel));
            }
            (Some(slot), None) => {
                slot.starting = false;
                cx.run_later(RECONSUME_AFTER, move |b, cx| b.consume(listener, cx));
            }
            (None, None) => {}
        }
    }

    fn consumer_ended(&mut self, listener: ListenerId, epoch: u64, cx: &mut Cx<'_, Self>) {
        let Some(slot) = self.consumers.get_mut(&listener) else {
            return;
        };
        if !cx.is_active(listener) {
            // Cancelled for a leaving listener: its `detached` closes the
            // channel and answers the removal on the broker's close-ok.
            return;
        }
        if slot.consumer.as_ref().is_some_and(|c| c.epoch == epoch) {
            if let Some(ended) = slot.consumer.take() {
                // Its channel died or the broker cancelled it: what the
                // listener holds is still settled there, then it closes.
                self.retire(ended.epoch, ended.channel, None);
            }
        }
        cx.run_later(RECONSUME_AFTER, move |b, cx| b.consume(listener, cx));
    }

    fn moved(&mut self, handle: AmqpHandle, ok: bool) {
        if ok {
            self.tags.ack(vec![handle]);
        } else {
            self.tags.release(vec![handle]);
        }
        self.moving = self.moving.saturating_sub(1);
        self.close_settled();
        if self.moving == 0 {
            for reply in self.drains.drain(..) {
                let _ = reply.send(Ok(()));
            }
        }
    }
}

impl Backend for AmqpBackend {
    type Handle = AmqpHandle;
    type Event = AmqpEvent;

    fn started(&mut self, cx: &mut Cx<'_, Self>) {
        // Also runs after a restart, which dropped the link watch and the
        // timers of consumers waiting to be opened again.
        let mut links = self.shared.links.clone();
        links.borrow_and_update();
        self.watch_links(links, cx);
        self.consume_all(cx);
    }

    fn restarting(&mut self, cx: &mut Cx<'_, Self>) {
        // Consumers, relay tasks and copies in flight run outside the
        // actor's context and report to its address: nothing is lost.
        tracing::debug!(queue = %cx.name(), "amqp channel restarting");
    }

    fn attached(&mut self, listener: ListenerId, cx: &mut Cx<'_, Self>) {
        self.consumers.insert(
            listener,
            Slot {
                window: cx.credit(listener),
                starting: false,
                cancelled: false,
                consumer: None,
            },
        );
        self.consume(listener, cx);
    }

    fn credit(&mut self, _listener: ListenerId, _cx: &mut Cx<'_, Self>) {
        // The broker's prefetch paces each consumer.
    }

    fn unsubscribed(&mut self, listener: ListenerId, _cx: &mut Cx<'_, Self>) {
        self.cancel(listener);
    }

    fn detached(
        &mut self,
        listener: ListenerId,
        done: oneshot::Sender<()>,
        _cx: &mut Cx<'_, Self>,
    ) {
        match self.consumers.remove(&listener).and_then(|s| s.consumer) {
            // Answered on the broker's close-ok (once no copy of its
            // deliveries is still on its way): by then the broker has
            // requeued what it held, and later stats see it.
            Some(consumer) => self.retire(consumer.epoch, consumer.channel, Some(done)),
            None => {
                let _ = done.send(());
            }
        }
    }

    fn settle(&mut self, batch: Drain<'_, Settlement<AmqpHandle>>, cx: &mut Cx<'_, Self>) {
        let (mut acks, mut releases) = (Vec::new(), Vec::new());
        for settlement in batch {
            self.apply(settlement, &mut acks, &mut releases, cx);
        }
        self.tags.release(releases);
        self.tags.ack(acks);
        self.close_settled();
    }

    fn on_event(&mut self, event: AmqpEvent, cx: &mut Cx<'_, Self>) {
        match event {
            AmqpEvent::Consuming {
                listener,
                epoch,
                generation,
                opened,
            } => self.consuming(listener, epoch, generation, opened, cx),
            AmqpEvent::Incoming {
                listener,
                epoch,
                channel,
                deliveries,
            } => self.incoming(listener, epoch, channel, deliveries, cx),
            AmqpEvent::ConsumerEnded { listener, epoch } => {
                self.consumer_ended(listener, epoch, cx);
            }
            AmqpEvent::Moved { handle, ok } => self.moved(handle, ok),
        }
    }

    fn stats(&mut self, reply: Reply<QueueStats>, cx: &mut Cx<'_, Self>) {
        // A delivery whose copy is being published is no longer held by
        // the channel: it is counted where the copy lands, never twice.
        let counting = self.shared.stats(cx.name(), cx.held_len() as u64);
        actix::spawn(async move {
            let _ = reply.send(counting.await);
        });
    }

    fn purge(&mut self, reply: Reply<u64>, cx: &mut Cx<'_, Self>) {
        let purging = self.shared.purge(cx.name());
        actix::spawn(async move {
            let _ = reply.send(purging.await);
        });
    }

    fn peek(&mut self, max: usize, reply: Reply<Vec<Delivery>>, cx: &mut Cx<'_, Self>) {
        // Not in the actor's context: a restart must not drop the answer,
        // nor the hand-back of what the peek took.
        let peeking = operate::peek(self.shared.clone(), cx.name().clone(), max);
        actix::spawn(async move {
            let _ = reply.send(peeking.await);
        });
    }

    fn receive(&mut self, timeout: Duration, reply: Reply<Delivery>, cx: &mut Cx<'_, Self>) {
        // Not in the actor's context: a restart must not drop the answer.
        let deadline = crate::timer::deadline(Instant::now(), timeout);
        let (shared, name) = (self.shared.clone(), cx.name().clone());
        actix::spawn(receive::receive(shared, name, deadline, reply));
    }

    fn drain(&mut self, reply: Reply<()>, _cx: &mut Cx<'_, Self>) {
        if self.moving == 0 {
            let _ = reply.send(Ok(()));
        } else {
            self.drains.push(reply);
        }
    }
}

/// Closes a consumer channel and answers `waiters` on the broker's close-ok.
fn close_then(channel: Channel, waiters: Vec<oneshot::Sender<()>>) {
    let closed = consumer::close(channel);
    actix::spawn(async move {
        let _ = closed.await;
        for waiter in waiters {
            let _ = waiter.send(());
        }
    });
}
