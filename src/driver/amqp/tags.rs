//! `Tags`: the delivery tags of a queue's consumer channels still unsettled, and the acks and nacks that settle them.
//!
//! A delivery's [`AmqpHandle`] names the channel that delivered it and its
//! tag there. A tag is only ever acknowledged on that channel; when the
//! channel died the broker has requeued the delivery, and settling it here
//! only forgets it. The set of unsettled tags per channel (held by a
//! listener, or waiting for its retry or dead-letter copy to be confirmed)
//! gives the floor below which one `multiple` ack settles many at once.

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

/// Unsettled delivery tags, per consumer channel.
#[derive(Default)]
pub(crate) struct Tags {
    by_epoch: FxHashMap<u64, BTreeSet<u64>>,
}

impl Tags {
    /// A delivery came in on channel `epoch`.
    pub(crate) fn insert(&mut self, epoch: u64, tag: u64) {
        self.by_epoch.entry(epoch).or_default().insert(tag);
    }

    /// Forgets a delivery without telling the broker (its channel died).
    pub(crate) fn forget(&mut self, handle: &AmqpHandle) {
        if let Some(tags) = self.by_epoch.get_mut(&handle.epoch) {
            tags.remove(&handle.tag);
            if tags.is_empty() {
                self.by_epoch.remove(&handle.epoch);
            }
        }
    }

    /// Whether anything delivered on channel `epoch` is still unsettled.
    pub(crate) fn holds(&self, epoch: u64) -> bool {
        self.by_epoch.contains_key(&epoch)
    }

    /// The lowest tag still unsettled on channel `epoch`.
    fn floor(&self, epoch: u64) -> u64 {
        self.by_epoch
            .get(&epoch)
            .and_then(|tags| tags.first().copied())
            .unwrap_or(u64::MAX)
    }

    /// Acknowledges `handles`: one `multiple` ack per channel for the tags
    /// below the lowest one still unsettled there, single acks for the rest.
    pub(crate) fn ack(&mut self, handles: Vec<AmqpHandle>) {
        let mut groups: FxHashMap<u64, (Channel, Vec<u64>)> = FxHashMap::default();
        for handle in handles {
            self.forget(&handle);
            if handle.live() {
                groups
                    .entry(handle.epoch)
                    .or_insert_with(|| (handle.channel.clone(), Vec::new()))
                    .1
                    .push(handle.tag);
            }
        }
        for (epoch, (channel, mut tags)) in groups {
            tags.sort_unstable();
            let floor = self.floor(epoch);
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
    }

    /// Hands `handles` back to the queue unacknowledged, in tag order.
    pub(crate) fn release(&mut self, mut handles: Vec<AmqpHandle>) {
        handles.sort_unstable_by_key(|h| (h.epoch, h.tag));
        for handle in handles {
            self.forget(&handle);
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
