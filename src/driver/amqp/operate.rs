//! Peek and redrive on RabbitMQ: `basic.get` on a channel of their own, since AMQP cannot browse a queue.
//!
//! Both take messages without acknowledging them. Peek hands them all back
//! (`basic.nack` with requeue, then the channel closes); a redrive step
//! publishes each one's copy to the queue with a confirm and acknowledges
//! the dead letter only once the broker confirmed its copy. Whatever is not
//! acknowledged when the channel closes (or dies) goes back to its queue:
//! nothing is lost, and a crash between a confirm and its acknowledgement
//! leaves that message in both queues.

use std::sync::Arc;

use futures_util::future::join_all;
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::Channel;

use crate::channel::redrive::redriven;
use crate::delivery::{Delivery, Envelope};
use crate::driver::amqp::link::{backend, Target};
use crate::driver::amqp::receive;
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::wire;
use crate::error::Result;
use crate::validate;

/// Copies of up to `max` ready messages of `queue`, taken and handed back.
pub(crate) async fn peek(
    shared: Arc<AmqpShared>,
    queue: Arc<str>,
    max: usize,
) -> Result<Vec<Delivery>> {
    let link = shared.link().await?;
    let name = wire::wire_name(&queue);
    let ch = receive::open(&link, &name).await?;
    let taken = take(&ch, &name, max).await;
    if let Some((tag, _)) = taken.as_ref().ok().and_then(|got| got.last()) {
        let back = BasicNackOptions {
            multiple: true,
            requeue: true,
        };
        let _ = ch.basic_nack(*tag, back).await;
    }
    close(ch).await;
    let copies = taken?.into_iter();
    Ok(copies
        .map(|(_, envelope)| Delivery::new(envelope, queue.clone()))
        .collect())
}

/// Moves up to `max` dead letters of `queue` back to it; answers how many.
///
/// # Errors
///
/// The first copy the broker did not confirm: its dead letter, and those
/// of the copies after it that were not confirmed, stay dead.
pub(crate) async fn redrive_step(
    shared: Arc<AmqpShared>,
    queue: String,
    max: usize,
) -> Result<u64> {
    let link = shared.link().await?;
    let dead = wire::wire_name(&validate::dead_letter_name(&queue));
    let ch = receive::open(&link, &dead).await?;
    let outcome = async {
        let got = take(&ch, &dead, max).await?;
        let target = Target::Queue(queue);
        let copies = got
            .iter()
            .map(|(_, envelope)| shared.publish(target.clone(), redriven(envelope.clone())));
        let confirmed = join_all(copies).await;
        let mut moved = 0;
        let mut failed = None;
        for ((tag, _), confirm) in got.iter().zip(confirmed) {
            match confirm {
                Ok(()) => {
                    ch.basic_ack(*tag, BasicAckOptions::default())
                        .await
                        .map_err(backend)?;
                    moved += 1;
                }
                Err(error) => {
                    failed.get_or_insert(error);
                }
            }
        }
        failed.map_or(Ok(moved), Err)
    }
    .await;
    close(ch).await;
    outcome
}

/// Takes up to `max` messages of `queue` (a wire name) without
/// acknowledging them, with their delivery tags.
async fn take(ch: &Channel, queue: &str, max: usize) -> Result<Vec<(u64, Envelope)>> {
    let mut got = Vec::new();
    while got.len() < max {
        let options = BasicGetOptions { no_ack: false };
        let Some(message) = ch
            .basic_get(wire::short(queue)?, options)
            .await
            .map_err(backend)?
        else {
            break;
        };
        let delivery = message.delivery;
        let envelope = wire::envelope(&delivery.properties, delivery.data);
        got.push((delivery.delivery_tag, envelope));
    }
    Ok(got)
}

/// Closes `ch` and waits for the broker's answer: by then it has requeued
/// whatever was taken on it and not acknowledged.
async fn close(ch: Channel) {
    if ch.status().connected() {
        if let Err(error) = ch.close(200, "done".into()).await {
            tracing::debug!(%error, "peek or redrive channel already closed");
        }
    }
}
