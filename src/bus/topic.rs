//! Topics on a `Bus`: `publish` reaches every subscriber group; inside a group, members compete.
//!
//! A group is the ordinary queue `<topic>.<group>` underneath, with every
//! promise of a queue: at-least-once, retries, `<topic>.<group>.dead`,
//! stats and purge under that name. Joining a group makes it durable: from
//! then on it stores every message published to the topic, whether or not
//! a member runs. A group gets only what was published after it was first
//! joined.

use std::future::Future;
use std::sync::Arc;

use actix::Recipient;
use bytes::Bytes;
use futures_util::FutureExt;

use crate::bus::consume::via_recipient;
use crate::bus::Bus;
use crate::delivery::{Delivery, Envelope, HandlerResult};
use crate::error::Result;
use crate::listener::actor::HandlerFn;
use crate::listener::Listener;
use crate::message_id::MessageId;
use crate::observe::spans;
use crate::options::ListenerOptions;
use crate::validate;

impl Bus {
    /// Publishes `payload` to `topic`: every subscriber group gets a copy.
    ///
    /// Returns once every group's copy is stored (memory: in each group's
    /// queue; amqp: confirmed by the fanout exchange `<topic>`; redis: one
    /// entry added to the stream `<topic>`, which every group reads with a
    /// consumer group of its own). A topic with no group yet is not an
    /// error: the message reaches no one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`](crate::Error::InvalidQueueName) and
    /// [`Error::PayloadTooLarge`](crate::Error::PayloadTooLarge) before any
    /// I/O; otherwise as [`push`](Self::push). On memory, a publish that
    /// times out on a full group has stored the copies of the groups with
    /// room: publish again and those groups get the message twice, as
    /// at-least-once allows.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// use std::time::Duration;
    /// let bus = actorbus::Bus::memory();
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// for group in ["billing", "shipping"] {
    ///     let tx = tx.clone();
    ///     bus.add_subscriber("orders", group, move |d| {
    ///         let _ = tx.send((group, d.as_str().map(str::to_owned)));
    ///         async { Ok(()) }
    ///     })
    ///     .await?;
    /// }
    /// bus.publish("orders", "order 1").await?;
    /// let mut got = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
    /// got.sort_by_key(|(group, _)| *group);
    /// assert_eq!(got[0].0, "billing");
    /// assert_eq!(got[1].0, "shipping");
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn publish(&self, topic: &str, payload: impl Into<Bytes>) -> Result<MessageId> {
        let payload = payload.into();
        self.check_open()?;
        validate::queue_name(topic)?;
        let published = self.publish_valid(topic, payload).await;
        self.meters().published(topic, &published);
        published
    }

    /// Publishes to the valid `topic`, inside its publish span.
    async fn publish_valid(&self, topic: &str, payload: Bytes) -> Result<MessageId> {
        validate::payload(payload.len(), self.config().queue.max_payload)?;
        let mut envelope = Envelope::new(payload, None);
        let id = envelope.id.clone();
        let span = spans::publish(self.messaging_system(), topic, &mut envelope);
        let published = self.driver().publish(topic, envelope);
        spans::traced(&span, published).await.map(|()| id)
    }

    /// Joins `handler` to the subscriber `group` of `topic` with default
    /// [`ListenerOptions`]; the members of a group compete for its messages.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`](crate::Error::InvalidQueueName) for a bad
    /// topic, a group name that is empty or has a `.` or control character,
    /// or a `<topic>.<group>` too long for a queue name; [`Error::Closed`](crate::Error::Closed)
    /// after shutdown; the driver's errors when the group cannot be made durable.
    pub async fn add_subscriber<F, Fut>(
        &self,
        topic: &str,
        group: &str,
        handler: F,
    ) -> Result<Listener>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add_subscriber_with(topic, group, ListenerOptions::default(), handler)
            .await
    }

    /// Joins `handler` to `group` of `topic` with `opts`.
    ///
    /// # Errors
    ///
    /// As [`add_subscriber`](Self::add_subscriber).
    pub async fn add_subscriber_with<F, Fut>(
        &self,
        topic: &str,
        group: &str,
        opts: ListenerOptions,
        handler: F,
    ) -> Result<Listener>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let handler: HandlerFn = Arc::new(move |delivery| handler(delivery).boxed());
        self.join(topic, group, opts, handler).await
    }

    /// Joins an actix actor to `group` of `topic`: each [`Delivery`] is sent
    /// to `recipient`, and the actor's [`HandlerResult`] settles it.
    ///
    /// # Errors
    ///
    /// As [`add_subscriber`](Self::add_subscriber).
    pub async fn subscribe_topic(
        &self,
        topic: &str,
        group: &str,
        recipient: Recipient<Delivery>,
    ) -> Result<Listener> {
        let handler = via_recipient(recipient, Ok);
        self.join(topic, group, ListenerOptions::default(), handler)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(topic = %topic, group = %group))]
    async fn join(
        &self,
        topic: &str,
        group: &str,
        opts: ListenerOptions,
        handler: HandlerFn,
    ) -> Result<Listener> {
        self.check_open()?;
        let queue = validate::group_queue(topic, group)?;
        self.driver().join(topic, &queue).await?;
        self.attach(&queue, opts, handler).await
    }
}
