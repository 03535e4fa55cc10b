//! The amqp backend's consumers: opening one per listener on the current link, again after a failure or a new link, and closing its channel once what it delivered is settled.

use lapin::types::ShortString;
use lapin::Channel;
use tokio::sync::oneshot;

use crate::channel::backend::Cx;
use crate::driver::amqp::backend::{AmqpBackend, RECONSUME_AFTER};
use crate::driver::amqp::consumer::{self, Consumed};
use crate::driver::amqp::driver::Links;
use crate::listener::ListenerId;

impl AmqpBackend {
    /// Starts a consumer for listener `id` on the current link, unless one
    /// runs there or is starting, or the listener takes nothing more.
    pub(super) fn consume(&mut self, id: ListenerId, cx: &mut Cx<'_, Self>) {
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
        let prefetch = u16::try_from(slot.prefetch(self.shared.prefetch)).unwrap_or(u16::MAX);
        let (name, addr) = (cx.name().clone(), cx.address());
        consumer::start(link, name, prefetch, addr, id, self.next_epoch);
    }

    pub(super) fn consume_all(&mut self, cx: &mut Cx<'_, Self>) {
        for id in cx.active() {
            self.consume(id, cx);
        }
    }

    /// Waits for the next link on `links`, then consumes again for every
    /// listener. Runs in the actor's context: a restart drops it, and
    /// `started` watches again.
    pub(super) fn watch_links(&mut self, mut links: Links, cx: &mut Cx<'_, Self>) {
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
    pub(super) fn cancel(&mut self, listener: ListenerId) {
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
    pub(super) fn retire(
        &mut self,
        epoch: u64,
        channel: Channel,
        waiter: Option<oneshot::Sender<()>>,
    ) {
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
    pub(super) fn close_settled(&mut self) {
        let tags = &self.tags;
        self.doomed.retain(|&epoch, (channel, waiters)| {
            let settled = !tags.holds(epoch);
            if settled {
                close_then(channel.clone(), std::mem::take(waiters));
            }
            !settled
        });
    }

    pub(super) fn consuming(
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

    pub(super) fn consumer_ended(
        &mut self,
        listener: ListenerId,
        epoch: u64,
        cx: &mut Cx<'_, Self>,
    ) {
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
