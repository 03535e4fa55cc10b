//! Producing on a `Bus`: `push` and its variants.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::bus::Bus;
use crate::delivery::Envelope;
use crate::error::{Error, Result};
use crate::message_id::MessageId;
use crate::observe::spans;
use crate::options::PushOptions;
use crate::validate;

impl Bus {
    /// Pushes `payload` onto `queue`.
    ///
    /// Returns once the message is stored where a listener will find it
    /// ; a message pushed before any listener waits for one. When the
    /// queue is full the push waits for room, up to `queue.push_timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`] and [`Error::PayloadTooLarge`] before any
    /// I/O; [`Error::Timeout`] when no room came in time; [`Error::Closed`]
    /// after [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// let id = bus.push("my-queue", "hello world").await?;
    /// let delivery = bus.receive("my-queue", std::time::Duration::from_secs(1)).await?;
    /// assert_eq!(delivery.id(), &id);
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn push(&self, queue: &str, payload: impl Into<Bytes>) -> Result<MessageId> {
        self.push_with(queue, payload, PushOptions::default()).await
    }

    /// Pushes `value` encoded as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when `value` cannot be encoded; otherwise as [`push`](Self::push).
    pub async fn push_json<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        value: &T,
    ) -> Result<MessageId> {
        let payload = serde_json::to_vec(value).map_err(Error::codec)?;
        self.push(queue, payload).await
    }

    /// Pushes onto the bus's default queue (`queue.default`).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub async fn push_default(&self, payload: impl Into<Bytes>) -> Result<MessageId> {
        self.push(&self.inner.config.queue.default, payload).await
    }

    /// Pushes with a delay and/or headers.
    ///
    /// A delay beyond what the backend can hold is cut to its longest
    /// (`Duration::MAX` means "as long as possible"): about 49 days on amqp
    /// (RabbitMQ's largest message TTL), centuries elsewhere.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push), and [`Error::InvalidHeader`] before any I/O
    /// for a header name that is empty, over 255 bytes, has control
    /// characters or starts with `x-` (reserved for the bus), or headers
    /// too large for the broker to carry (amqp: one frame).
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// use std::time::Duration;
    /// use actorbus::PushOptions;
    ///
    /// let bus = actorbus::Bus::memory();
    /// let opts = PushOptions::default().with_delay(Duration::from_millis(50));
    /// bus.push_with("reminders", "wake up", opts).await?;
    /// assert_eq!(bus.stats("reminders").await?.delayed, 1);
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn push_with(
        &self,
        queue: &str,
        payload: impl Into<Bytes>,
        opts: PushOptions,
    ) -> Result<MessageId> {
        validate::headers(&opts.headers)?;
        self.push_with_bus_headers(queue, payload.into(), opts)
            .await
    }

    /// [`push_with`](Self::push_with) for headers the bus sets itself
    /// (`x-…`, which users may not set): request and reply.
    pub(crate) async fn push_with_bus_headers(
        &self,
        queue: &str,
        payload: Bytes,
        opts: PushOptions,
    ) -> Result<MessageId> {
        self.check_open()?;
        validate::queue_name(queue)?;
        let pushed = self.store(queue, payload, opts).await;
        self.meters().pushed(queue, &pushed);
        pushed
    }

    /// Stores a message on the valid `queue`, inside its publish span.
    async fn store(&self, queue: &str, payload: Bytes, opts: PushOptions) -> Result<MessageId> {
        validate::payload(payload.len(), self.inner.config.queue.max_payload)?;
        let headers = (!opts.headers.is_empty()).then(|| Arc::new(opts.headers));
        let mut envelope = Envelope::new(payload, headers);
        let id = envelope.id.clone();
        let span = spans::publish(self.messaging_system(), queue, &mut envelope);
        // The common memory push is not async: no future to instrument.
        let envelope = match span.in_scope(|| self.driver().try_push(queue, envelope, opts.delay)) {
            Ok(()) => return Ok(id),
            Err(envelope) => envelope,
        };
        let pushing = self.driver().push(queue, envelope, opts.delay);
        spans::traced(&span, pushing).await.map(|()| id)
    }
}
