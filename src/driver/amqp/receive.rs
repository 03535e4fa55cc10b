//! `receive` on the amqp driver: `basic.get` polling on a channel of its own.
//!
//! The message is acknowledged only once it was handed to the caller; a
//! caller that gave up gets nothing, and a message taken just as it gave up
//! is handed back (requeued) instead of being swallowed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, QueueDeclareOptions};
use lapin::Channel;
use tokio::sync::oneshot;

use crate::delivery::Delivery;
use crate::driver::amqp::driver::wait_link;
use crate::driver::amqp::link::{backend, declare_error, Link};
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::wire;
use crate::error::{Error, Result};

/// First wait between two polls of an empty queue; doubled up to [`POLL_MAX`].
const POLL_START: Duration = Duration::from_millis(2);
/// Longest wait between two polls.
const POLL_MAX: Duration = Duration::from_millis(25);

/// Takes one message of `queue` for `reply`, waiting up to `deadline`.
pub(crate) async fn receive(
    shared: Arc<AmqpShared>,
    queue: Arc<str>,
    deadline: Instant,
    mut reply: oneshot::Sender<Result<Delivery>>,
) {
    let wire = wire::wire_name(&queue);
    let mut links = shared.links.clone();
    let mut channel: Option<Channel> = None;
    let mut poll = POLL_START;
    loop {
        if reply.is_closed() {
            break;
        }
        let link = match wait_link(&mut links, deadline).await {
            Ok(link) => link,
            Err(error) => {
                let _ = reply.send(Err(error));
                break;
            }
        };
        let ch = match channel.take().filter(|c| c.status().connected()) {
            Some(ch) => ch,
            None => match open(&link, &wire).await {
                Ok(ch) => ch,
                Err(_) if !link.is_up() => continue,
                Err(error) => {
                    let _ = reply.send(Err(error));
                    break;
                }
            },
        };
        let got = ch
            .basic_get(
                wire::short(&wire).unwrap_or_default(),
                BasicGetOptions { no_ack: false },
            )
            .await;
        match got {
            Ok(Some(message)) => {
                let delivery = message.delivery;
                let tag = delivery.delivery_tag;
                let envelope = wire::envelope(&delivery.properties, delivery.data);
                if reply.send(Ok(Delivery::new(envelope, queue))).is_ok() {
                    let _ = ch.basic_ack(tag, BasicAckOptions::default()).await;
                } else {
                    let requeue = BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    };
                    let _ = ch.basic_nack(tag, requeue).await;
                }
                channel = Some(ch);
                break;
            }
            Ok(None) => {
                channel = Some(ch);
                let now = Instant::now();
                if now >= deadline {
                    let _ = reply.send(Err(Error::Timeout));
                    break;
                }
                let nap = poll.min(deadline - now);
                poll = (poll * 2).min(POLL_MAX);
                tokio::select! {
                    () = tokio::time::sleep(nap) => {}
                    () = reply.closed() => break,
                }
            }
            Err(_) if !link.is_up() => {}
            Err(error) => {
                let _ = reply.send(Err(backend(error)));
                break;
            }
        }
    }
    if let Some(ch) = channel.filter(|c| c.status().connected()) {
        let _ = ch.close(200, "received".into()).await;
    }
}

/// A channel on the consuming connection, with `queue` (a wire name)
/// declared: a receive on a queue nobody pushed to yet waits for its first
/// message, and a `basic.get` there finds nothing instead of closing the
/// channel with an error.
pub(crate) async fn open(link: &Link, queue: &str) -> Result<Channel> {
    let ch = link.consume.create_channel().await.map_err(backend)?;
    ch.queue_declare(
        wire::short(queue)?,
        QueueDeclareOptions::durable(),
        link.queue_args.clone(),
    )
    .await
    .map_err(|e| declare_error(queue, &e))?;
    Ok(ch)
}
