//! One listener's AMQP consumer: its channel, and the task relaying its deliveries to the channel actor.

use std::sync::Arc;

use actix::Addr;
use futures_util::StreamExt;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{Channel, Consumer};

use crate::channel::actor::ChannelActor;
use crate::channel::messages::Relay;
use crate::driver::amqp::backend::{AmqpBackend, AmqpEvent};
use crate::driver::amqp::link::{backend, declare_queue, Link};
use crate::driver::amqp::tags::{fire, on};
use crate::driver::amqp::wire;
use crate::error::Result;
use crate::listener::ListenerId;

/// A listener's running consumer.
pub(crate) struct Consumed {
    /// Its channel, on which its deliveries are settled.
    pub(crate) channel: Channel,
    /// Its consumer tag.
    pub(crate) tag: ShortString,
    /// The backend's number for the channel.
    pub(crate) epoch: u64,
    /// The link it runs on.
    pub(crate) generation: u64,
}

impl Consumed {
    /// Stops deliveries; what the listener holds stays to be settled.
    pub(crate) fn cancel(&self) {
        let tag = self.tag.clone();
        fire(on(&self.channel, move |ch| async move {
            ch.basic_cancel(tag, BasicCancelOptions::default()).await
        }));
    }
}

/// Closes a consumer channel on a task of its own; the broker requeues
/// what it still had delivered unacknowledged. The returned receiver
/// resolves once the broker answered (or after a bound).
pub(crate) fn close(channel: Channel) -> tokio::sync::oneshot::Receiver<()> {
    let (done, closed) = tokio::sync::oneshot::channel();
    actix::spawn(async move {
        let close = channel.close(200, "listener stopped".into());
        if let Ok(Err(error)) = tokio::time::timeout(CLOSE_WAIT, close).await {
            tracing::debug!(%error, "consumer channel already closed");
        }
        let _ = done.send(());
    });
    closed
}

/// Longest wait for the broker to confirm a consumer channel's close.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Most deliveries relayed to the channel actor in one message.
const RELAY_BATCH: usize = 256;

/// Opens a channel on the consuming connection with `prefetch` and starts a
/// consumer of `queue` on it; manual acknowledgement.
pub(crate) async fn open(link: &Link, queue: &str, prefetch: u16) -> Result<(Channel, Consumer)> {
    declare_queue(&link.consume, queue, &link.queue_args).await?;
    let channel = link.consume.create_channel().await.map_err(backend)?;
    let name = wire::short(&wire::wire_name(queue))?;
    channel
        .basic_qos(prefetch.max(1), BasicQosOptions::default())
        .await
        .map_err(backend)?;
    let consumer = channel
        .basic_consume(
            name,
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(backend)?;
    Ok((channel, consumer))
}

/// Opens listener `listener`'s consumer on `link` and relays its
/// deliveries to `queue`, on a task of its own: it outlives a restart of
/// the channel actor, whose address stays the same.
pub(crate) fn start(
    link: Arc<Link>,
    name: Arc<str>,
    prefetch: u16,
    queue: Addr<ChannelActor<AmqpBackend>>,
    listener: ListenerId,
    epoch: u64,
) {
    actix::spawn(async move {
        let generation = link.generation;
        match open(&link, &name, prefetch).await {
            Ok((channel, consumer)) => {
                queue.do_send(Relay(AmqpEvent::Consuming {
                    listener,
                    epoch,
                    generation,
                    opened: Some((channel.clone(), consumer.tag())),
                }));
                relay(consumer, channel, queue, listener, epoch).await;
            }
            Err(error) => {
                tracing::warn!(%error, queue = %name, "cannot start a consumer");
                queue.do_send(Relay(AmqpEvent::Consuming {
                    listener,
                    epoch,
                    generation,
                    opened: None,
                }));
            }
        }
    });
}

/// Relays what `consumer` receives to `queue`, in batches of what is ready,
/// until the consumer is cancelled or its channel dies.
pub(crate) async fn relay(
    consumer: Consumer,
    channel: Channel,
    queue: Addr<ChannelActor<AmqpBackend>>,
    listener: ListenerId,
    epoch: u64,
) {
    let mut batches = consumer.ready_chunks(RELAY_BATCH);
    while let Some(batch) = batches.next().await {
        let mut deliveries = Vec::with_capacity(batch.len());
        let mut failed = false;
        for item in batch {
            match item {
                Ok(delivery) => deliveries.push(delivery),
                Err(error) => {
                    tracing::debug!(%error, listener, "consumer stream failed");
                    failed = true;
                }
            }
        }
        if !deliveries.is_empty() {
            queue.do_send(Relay(AmqpEvent::Incoming {
                listener,
                epoch,
                channel: channel.clone(),
                deliveries,
            }));
        }
        if failed {
            break;
        }
    }
    queue.do_send(Relay(AmqpEvent::ConsumerEnded { listener, epoch }));
}
