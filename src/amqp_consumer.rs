//! One listener's AMQP consumer: its channel, and the task relaying its deliveries to the queue actor.

use actix::Addr;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Consumer};

use crate::amqp_link::{backend, declare_queue, Link};
use crate::amqp_queue::{AmqpQueue, ConsumerEnded, Incoming};
use crate::amqp_wire;
use crate::error::Result;
use crate::memory_store::ListenerId;

/// Most deliveries relayed to the queue actor in one message.
const RELAY_BATCH: usize = 256;

/// Opens a channel on the consuming connection with `prefetch` and starts a
/// consumer of `queue` on it; manual acknowledgement.
pub(crate) async fn open(link: &Link, queue: &str, prefetch: u16) -> Result<(Channel, Consumer)> {
    declare_queue(&link.consume, queue).await?;
    let channel = link.consume.create_channel().await.map_err(backend)?;
    let name = amqp_wire::short(&amqp_wire::wire_name(queue))?;
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

/// Relays what `consumer` receives to `queue`, in batches of what is ready,
/// until the consumer is cancelled or its channel dies.
pub(crate) async fn relay(
    consumer: Consumer,
    channel: Channel,
    queue: Addr<AmqpQueue>,
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
            queue.do_send(Incoming {
                listener,
                epoch,
                channel: channel.clone(),
                deliveries,
            });
        }
        if failed {
            break;
        }
    }
    queue.do_send(ConsumerEnded { listener, epoch });
}
