//! RabbitMQ direct reply-to, the requester's side: a no-ack consumer of `amq.rabbitmq.reply-to` on the channel requests are published on.
//!
//! RabbitMQ rewrites the `reply_to` of a message published with
//! `reply_to = amq.rabbitmq.reply-to` into an address of the publishing
//! channel (`amq.rabbitmq.reply-to.<token>`), and a message published to
//! the default exchange with that address as its routing key goes straight
//! to that channel's consumer: no reply queue to declare, to delete, or to
//! leave behind when a process dies. The broker refuses such a publish
//! (closing the channel) unless the channel consumes the pseudo-queue
//! first, so each link starts its consumer before its first request, on
//! its confirm channel, which every push goes through.
//!
//! A reply is not stored anywhere: it reaches the requester only while the
//! channel that sent the request is open. One that finds it gone (the
//! requester died, or reconnected) is dropped by the broker, and the
//! request times out.

use std::sync::{Arc, OnceLock};

use futures_util::StreamExt;
use lapin::options::BasicConsumeOptions;
use lapin::types::FieldTable;
use lapin::Channel;

use crate::delivery::Delivery;
use crate::driver::amqp::link::backend;
use crate::driver::amqp::wire;
use crate::error::Result;

/// The pseudo-queue of direct reply-to: the `reply_to` of a request.
pub(crate) const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

/// Where a bus's replies go: set by its first request, kept across links.
pub(crate) type Sink = Arc<OnceLock<crate::driver::ReplySink>>;

/// Starts the no-ack consumer of [`DIRECT_REPLY_TO`] on `channel`, handing
/// each reply to `sink` on a task of its own until the channel closes.
///
/// # Errors
///
/// [`Error::Backend`](crate::Error::Backend) when RabbitMQ refuses the consumer.
pub(crate) async fn consume(channel: &Channel, sink: crate::driver::ReplySink) -> Result<()> {
    let options = BasicConsumeOptions {
        no_ack: true,
        ..BasicConsumeOptions::default()
    };
    let mut consumer = channel
        .basic_consume(
            DIRECT_REPLY_TO.into(),
            "".into(),
            options,
            FieldTable::default(),
        )
        .await
        .map_err(backend)?;
    actix::spawn(async move {
        while let Some(item) = consumer.next().await {
            match item {
                Ok(delivery) => {
                    // The address it was sent to: what the request carried.
                    let address: Arc<str> = delivery.routing_key.as_str().into();
                    let envelope = wire::envelope(&delivery.properties, delivery.data);
                    sink(Delivery::new(envelope, address));
                }
                Err(error) => {
                    tracing::debug!(%error, "direct reply-to consumer ended");
                    return;
                }
            }
        }
    });
    Ok(())
}
