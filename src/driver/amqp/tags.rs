//! `Tags`: the delivery tags of a queue's consumer channels still unsettled, and the acks and nacks that settle them.
//!
//! A delivery's [`AmqpHandle`] names the channel that delivered it and its
//! tag there. A tag is only ever acknowledged on that channel; when the
//! channel died the broker has requeued the delivery, and settling it here
//! only forgets it. The set of unsettled tags per channel (held by a
//! listener, or waiting for its retry or dead-letter copy to be confirmed)
//! gives the floor below which one `multiple` ack settles many at once.
//! Acks are gathered per channel and sent together, once half its
//! prefetch gathered or when the backend flushes them (a few milliseconds
//! later); nacks go at once.

use std::collections::BTreeSet;
use std::future::Future;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::Channel;
use rustc_hash::FxHashMap;

use crate::driver::amqp::lease::Lease;

/// What settles one amqp delivery.
#[derive(Clone)]
pub(crate) struct AmqpHandle {
    /// The backend's number for the consumer channel it came on.
    pub(crate) epoch: u64,
    /// That channel: the only one its tag may be acknowledged on.
    pub(crate) channel: Channel,
    /// Its delivery tag on `channel`.
    pub(crate) tag: u64,
    /// It is a lease copy: its previous delivery surely started.
    pub(crate) from_lease: bool,
    /// Its start is recorded in a lease queue, and the original was
    /// acknowledged: its verdict cancels the lease, and nothing is
    /// settled on `channel` any more.
    pub(crate) lease: Option<Lease>,
}

impl AmqpHandle {
    /// Whether its channel is still open; if not, the broker requeued it.
    pub(crate) fn live(&self) -> bool {
        self.channel.status().connected()
    }
}

/// Unsettled delivery tags, and acks not sent yet, per consumer channel.
#[derive(Default)]
pub(crate) struct Tags {
    by_epoch: FxHashMap<u64, Open>,
}

/// One consumer channel's deliveries that the broker still counts as
/// unacknowledged.
#[derive(Default)]
struct Open {
    /// Delivered and not settled here yet: held by a listener, or waiting
    /// for its retry or dead-letter copy to be confirmed.
    unsettled: BTreeSet<u64>,
    /// Settled here by an ack that is not sent yet.
    acked: Vec<u64>,
    /// The channel, once something on it was acked.
    channel: Option<Channel>,
    /// Sends the acks once this many gathered: half the channel's prefetch,
    /// so that the broker never waits for them to deliver more.
    ack_every: usize,
}

impl Tags {
    /// A delivery came in on channel `epoch`, whose prefetch is `prefetch`.
    pub(crate) fn insert(&mut self, epoch: u64, tag: u64, prefetch: usize) {
        let open = self.by_epoch.entry(epoch).or_default();
        open.unsettled.insert(tag);
        open.ack_every = (prefetch / 2).max(1);
    }

    /// Forgets a delivery without telling the broker (its channel died, or
    /// it was acknowledged by other means).
    pub(crate) fn forget(&mut self, handle: &AmqpHandle) {
        self.unhold(handle);
        self.tidy(handle.epoch);
    }

    /// Removes `handle`'s tag from the unsettled ones, sending nothing.
    fn unhold(&mut self, handle: &AmqpHandle) {
        if let Some(open) = self.by_epoch.get_mut(&handle.epoch) {
            open.unsettled.remove(&handle.tag);
        }
    }

    /// Forgets channel `epoch` once nothing on it is unsettled or waits
    /// for its ack to be sent.
    fn tidy(&mut self, epoch: u64) {
        if self
            .by_epoch
            .get(&epoch)
            .is_some_and(|open| open.unsettled.is_empty() && open.acked.is_empty())
        {
            self.by_epoch.remove(&epoch);
        }
    }

    /// Whether anything delivered on channel `epoch` is still unsettled,
    /// or acknowledged by an ack not sent yet.
    pub(crate) fn holds(&self, epoch: u64) -> bool {
        self.by_epoch.contains_key(&epoch)
    }

    /// Whether some acks are not sent yet ([`flush`](Self::flush) sends them).
    pub(crate) fn pending(&self) -> bool {
        self.by_epoch.values().any(|open| !open.acked.is_empty())
    }

    /// Acknowledges `handles`. The acks of a channel are sent together,
    /// once half its prefetch gathered; the caller
    /// [`flush`](Self::flush)es the rest soon after. Fewer acks mean fewer
    /// frames for the client's I/O thread and for the broker: a consumer
    /// whose handlers keep up would otherwise send one per few messages.
    pub(crate) fn ack(&mut self, handles: Vec<AmqpHandle>) {
        let mut touched: Vec<u64> = Vec::new();
        for handle in handles {
            let open = self.by_epoch.entry(handle.epoch).or_default();
            open.unsettled.remove(&handle.tag);
            if handle.live() {
                open.acked.push(handle.tag);
                open.channel.get_or_insert_with(|| handle.channel.clone());
            }
            if !touched.contains(&handle.epoch) {
                touched.push(handle.epoch);
            }
        }
        for epoch in touched {
            if let Some(open) = self.by_epoch.get(&epoch) {
                if open.acked.len() >= open.ack_every {
                    self.send(epoch);
                }
            }
            self.tidy(epoch);
        }
    }

    /// Sends every ack not sent yet.
    pub(crate) fn flush(&mut self) {
        let epochs: Vec<u64> = self.by_epoch.keys().copied().collect();
        for epoch in epochs {
            self.send(epoch);
            self.tidy(epoch);
        }
    }

    /// Sends the acks gathered on channel `epoch`: one `multiple` ack for
    /// the tags below the lowest one still unsettled there, single acks
    /// for the rest. (A tag handed back is nacked before it leaves the
    /// unsettled ones: a `multiple` ack never covers it.)
    fn send(&mut self, epoch: u64) {
        let Some(open) = self.by_epoch.get_mut(&epoch) else {
            return;
        };
        let Some(channel) = open.channel.clone().filter(|_| !open.acked.is_empty()) else {
            return;
        };
        let mut tags = std::mem::take(&mut open.acked);
        tags.sort_unstable();
        let floor = open.unsettled.first().copied().unwrap_or(u64::MAX);
        let below = tags.partition_point(|&t| t < floor);
        if below > 0 {
            let multiple = BasicAckOptions {
                multiple: below > 1,
            };
            let tag = tags[below - 1];
            fire(on(&channel, move |ch| async move {
                ch.basic_ack(tag, multiple).await
            }));
        }
        for &tag in &tags[below..] {
            fire(on(&channel, move |ch| async move {
                ch.basic_ack(tag, BasicAckOptions::default()).await
            }));
        }
    }

    /// Hands `handles` back to the queue unacknowledged, in tag order.
    pub(crate) fn release(&mut self, mut handles: Vec<AmqpHandle>) {
        handles.sort_unstable_by_key(|h| (h.epoch, h.tag));
        for handle in &handles {
            // Nacked before any ack is sent: a `multiple` ack sent first
            // would take it, and the nack would close the channel.
            self.unhold(handle);
            if !handle.live() {
                continue;
            }
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            let tag = handle.tag;
            fire(on(&handle.channel, move |ch| async move {
                ch.basic_nack(tag, requeue).await
            }));
        }
        for handle in &handles {
            self.tidy(handle.epoch);
        }
    }
}

/// Sends an AMQP method now, in call order, and lets its completion run on.
///
/// lapin's methods are `async fn`s that queue their frame on first poll;
/// polling once here keeps acks and nacks in the order they were decided.
pub(crate) fn fire(future: impl Future<Output = lapin::Result<()>> + 'static) {
    let mut future = Box::pin(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(Err(error)) => {
            tracing::debug!(%error, "ack or nack not sent; its channel is gone")
        }
        std::task::Poll::Ready(Ok(())) => {}
        std::task::Poll::Pending => {
            actix::spawn(async move {
                if let Err(error) = future.await {
                    tracing::debug!(%error, "ack or nack failed; its channel is gone");
                }
            });
        }
    }
}

/// `call` on a clone of `channel`, so the future owns what it uses.
pub(crate) fn on<F, Fut>(channel: &Channel, call: F) -> Fut
where
    F: FnOnce(Channel) -> Fut,
{
    call(channel.clone())
}
