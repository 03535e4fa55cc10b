//! `AmqpBackend`: one queue on RabbitMQ — its listeners' consumers, and the acks, nacks and confirmed copies that settle their deliveries.
//!
//! Each listener gets a consumer on a channel of its own, with a prefetch of
//! its window capped by `amqp.prefetch`; a relay task outside the channel
//! actor sends its deliveries back as [`AmqpEvent::Incoming`]. An ack is a
//! `basic.ack` (`multiple` where every lower tag of the channel is settled
//! too), gathered with others and sent within [`ACK_DELAY`]; a release a
//! requeueing `basic.nack`; a retry or dead letter a confirmed copy to the
//! wait queue or `<queue>.dead` before the original is acknowledged. The
//! copies are published outside the actor, so a restart never loses their
//! outcome. A suspect (redelivered, or back from a lease) is counted in a
//! lease queue before its handler starts (the `leases` module). On every
//! new link (read from the driver's link watch) the active listeners
//! consume again (the `consumers` module).

mod consumers;
mod leases;

use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec::Drain;

use lapin::types::ShortString;
use lapin::Channel;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::channel::backend::{Backend, Cx, Reply, Settlement};
use crate::channel::messages::Relay;
use crate::delivery::{AckToken, Delivery, Envelope};
use crate::driver::amqp::consumer::Consumed;
use crate::driver::amqp::lease;
use crate::driver::amqp::link::Target;
use crate::driver::amqp::operate;
use crate::driver::amqp::receive;
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::tags::{AmqpHandle, Tags};
use crate::driver::amqp::wire;
use crate::error::Error;
use crate::listener::ListenerId;
use crate::stats::QueueStats;
use crate::validate;

/// Wait before consuming again after a consumer failed on a live link.
pub(super) const RECONSUME_AFTER: Duration = Duration::from_millis(250);

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
    /// Retry, dead-letter and lease copies being published, and leases
    /// being cancelled.
    moving: usize,
    /// `drain` requests, answered once no copy is being published.
    drains: Vec<Reply<()>>,
    /// Verdicts on counted suspects whose lease is not cancelled yet.
    settling_leases: usize,
    /// Suspects to count once `settling_leases` is 0: a suspect that kills
    /// the process must not leave the lease of the one before it behind,
    /// or that one would be counted for its crash.
    deferred_arms: Vec<AckToken>,
    /// Numbers consumer channels, so tags of different channels never mix.
    next_epoch: u64,
    /// A timer will send the acks not sent yet.
    ack_timer: bool,
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
    /// Its lease queue (a wire name), where its suspects are counted.
    lease: Arc<str>,
}

impl Slot {
    /// Its consumer's prefetch: its window, up to `amqp.prefetch` (`cap`).
    fn prefetch(&self, cap: u16) -> usize {
        self.window.min(usize::from(cap)).max(1)
    }
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
    /// The lease copy of suspect `token` was confirmed (`None`) or not.
    Armed {
        token: AckToken,
        error: Option<Error>,
    },
    /// A lease was cancelled (or could not be).
    Cancelled,
}

/// Longest an ack waits to be sent with others: long enough to gather the
/// acks of a busy consumer, short enough that the broker's count of
/// unacknowledged messages soon catches up.
const ACK_DELAY: Duration = Duration::from_millis(5);

impl AmqpBackend {
    pub(crate) fn new(shared: Arc<AmqpShared>) -> Self {
        AmqpBackend {
            shared,
            consumers: FxHashMap::default(),
            tags: Tags::default(),
            doomed: FxHashMap::default(),
            moving: 0,
            drains: Vec::new(),
            settling_leases: 0,
            deferred_arms: Vec::new(),
            next_epoch: 0,
            ack_timer: false,
        }
    }

    /// Sends the acks that [`Tags::ack`] held back after [`ACK_DELAY`],
    /// unless a timer will already.
    fn acks_later(&mut self, cx: &mut Cx<'_, Self>) {
        if self.ack_timer || !self.tags.pending() {
            return;
        }
        self.ack_timer = true;
        cx.run_later(ACK_DELAY, |b, _cx| {
            b.ack_timer = false;
            b.send_acks();
        });
    }

    /// Sends every ack held back, then closes the retiring consumer
    /// channels that only waited for them.
    fn send_acks(&mut self) {
        self.tags.flush();
        self.close_settled();
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
        let Some(settlement) = self.settle_leased(settlement, cx) else {
            return;
        };
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
        if handle.lease.is_none() && !handle.live() {
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
        let prefetch = self
            .consumers
            .get(&listener)
            .map_or(1, |slot| slot.prefetch(self.shared.prefetch));
        let mut items = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let tag = delivery.delivery_tag;
            self.tags.insert(epoch, tag, prefetch);
            let from_lease = wire::is_leased(&delivery.properties);
            let handle = AmqpHandle {
                epoch,
                channel: channel.clone(),
                tag,
                from_lease,
                lease: None,
            };
            let mut envelope = wire::envelope(&delivery.properties, delivery.data);
            // Its previous delivery may have started and never ended.
            envelope.suspect = delivery.redelivered || from_lease;
            items.push((handle, envelope));
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

    fn moved(&mut self, handle: AmqpHandle, ok: bool, cx: &mut Cx<'_, Self>) {
        match handle.lease {
            // The copy is stored: the lease is done. Not stored: the lease
            // copy comes back after the lease, counted.
            Some(lease) if ok => self.cancel_lease(lease, cx),
            Some(_) => self.lease_settled(cx),
            None if ok => self.tags.ack(vec![handle]),
            None => self.tags.release(vec![handle]),
        }
        self.acks_later(cx);
        self.moved_one();
    }

    /// One copy or lease cancel finished: answers `drain` when none is left.
    fn moved_one(&mut self) {
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
        // Also runs after a restart, which dropped the link watch, the
        // timers of consumers waiting to be opened again and the ack timer.
        self.ack_timer = false;
        self.send_acks();
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
                lease: lease::queue_name(cx.name(), listener),
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
        self.acks_later(cx);
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
            AmqpEvent::Moved { handle, ok } => self.moved(handle, ok, cx),
            AmqpEvent::Armed { token, error } => self.armed(token, error, cx),
            AmqpEvent::Cancelled => {
                self.moved_one();
                self.lease_settled(cx);
            }
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

    fn arm(&mut self, token: AckToken, cx: &mut Cx<'_, Self>) {
        self.arm_suspect(token, cx);
    }

    fn drain(&mut self, reply: Reply<()>, _cx: &mut Cx<'_, Self>) {
        if self.moving == 0 {
            let _ = reply.send(Ok(()));
        } else {
            self.drains.push(reply);
        }
    }
}
