//! `Tags`: the deliveries a queue's listeners hold, and the acks and nacks that settle them.
//!
//! Each [`AckToken`] maps to the channel that delivered it and its delivery
//! tag there. A tag is only ever acknowledged on that channel; when the
//! channel died the broker has requeued the delivery, and settling it here
//! only forgets it.

use std::future::Future;

use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::Channel;
use rustc_hash::FxHashMap;

use crate::delivery::{AckToken, Envelope};
use crate::listener::ListenerId;

/// A delivery a listener holds.
pub(crate) struct Held {
    /// The listener it was handed to.
    pub(crate) listener: ListenerId,
    /// The consumer channel it came on (numbered by the queue actor).
    pub(crate) epoch: u64,
    /// That channel: the only one its tag may be acknowledged on.
    pub(crate) channel: Channel,
    /// Its delivery tag on `channel`.
    pub(crate) tag: u64,
    /// The message, for a retry or dead-letter copy.
    pub(crate) envelope: Envelope,
    /// A copy is being published to a wait queue or `<queue>.dead`.
    pub(crate) moving: bool,
}

/// The held deliveries of one queue, by token.
#[derive(Default)]
pub(crate) struct Tags {
    held: FxHashMap<AckToken, Held>,
}

impl Tags {
    pub(crate) fn insert(&mut self, token: AckToken, held: Held) {
        self.held.insert(token, held);
    }

    pub(crate) fn get(&self, token: &AckToken) -> Option<&Held> {
        self.held.get(token)
    }

    pub(crate) fn get_mut(&mut self, token: &AckToken) -> Option<&mut Held> {
        self.held.get_mut(token)
    }

    pub(crate) fn remove(&mut self, token: &AckToken) -> Option<Held> {
        self.held.remove(token)
    }

    /// Deliveries in listeners' hands; one whose copy is on its way to a
    /// wait queue or `<queue>.dead` is counted there once confirmed, never twice.
    pub(crate) fn in_flight(&self) -> usize {
        self.held.values().filter(|h| !h.moving).count()
    }

    /// Whether `listener` still holds anything.
    pub(crate) fn holds(&self, listener: ListenerId) -> bool {
        self.held.values().any(|h| h.listener == listener)
    }

    /// What a stopped `listener` left unsettled (copies in progress aside).
    pub(crate) fn orphans(&self, listener: ListenerId) -> Vec<AckToken> {
        self.held
            .iter()
            .filter(|(_, h)| h.listener == listener && !h.moving)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Acknowledges `tokens`: one `multiple` ack per channel for the tags
    /// below the lowest one still held there, single acks for the rest.
    pub(crate) fn ack(&mut self, tokens: impl IntoIterator<Item = AckToken>) {
        let mut groups: FxHashMap<u64, (Channel, Vec<u64>)> = FxHashMap::default();
        for token in tokens {
            let Some(held) = self.held.remove(&token) else {
                continue;
            };
            if held.channel.status().connected() {
                groups
                    .entry(held.epoch)
                    .or_insert_with(|| (held.channel.clone(), Vec::new()))
                    .1
                    .push(held.tag);
            }
        }
        for (epoch, (channel, mut tags)) in groups {
            tags.sort_unstable();
            let floor = self
                .held
                .values()
                .filter(|h| h.epoch == epoch)
                .map(|h| h.tag)
                .min()
                .unwrap_or(u64::MAX);
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

    /// Hands `tokens` back to the queue unacknowledged, in tag order.
    pub(crate) fn release(&mut self, tokens: impl IntoIterator<Item = AckToken>) {
        let mut back: Vec<(u64, u64, Channel)> = tokens
            .into_iter()
            .filter_map(|t| self.held.remove(&t))
            .filter(|h| h.channel.status().connected())
            .map(|h| (h.epoch, h.tag, h.channel))
            .collect();
        back.sort_unstable_by_key(|(epoch, tag, _)| (*epoch, *tag));
        for (_, tag, channel) in back {
            let requeue = BasicNackOptions {
                multiple: false,
                requeue: true,
            };
            fire(on(&channel, move |ch| async move {
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
