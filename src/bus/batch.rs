//! Producing many messages at once on a `Bus`: `push_batch` and `push_batch_with`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::bus::Bus;
use crate::delivery::{Envelope, Headers};
use crate::driver::Unstored;
use crate::error::{Error, Result};
use crate::message_id::MessageId;
use crate::observe::spans;
use crate::options::PushOptions;
use crate::validate;

/// One message of a batch before it gets its id: payload, headers, delay.
type Item = (Bytes, Headers, Option<Duration>);

impl Bus {
    /// Pushes every payload of `payloads` onto `queue`, returning their ids
    /// in the same order once every one of them is stored, with the same
    /// promise as [`push`](Self::push).
    ///
    /// Cheaper than as many pushes: the memory driver hands the whole batch
    /// to the queue's actor in one message, amqp publishes all of them and
    /// awaits their confirms together, redis sends them in one pipeline.
    /// The queue name and every payload size are checked before any I/O:
    /// a batch with one bad message stores nothing. An empty batch stores
    /// nothing and returns no ids.
    ///
    /// # Errors
    ///
    /// Before any I/O, as [`push`](Self::push): [`Error::InvalidQueueName`],
    /// [`Error::PayloadTooLarge`] (for any message of the batch),
    /// [`Error::Closed`]; nothing was stored. A batch that fails after some
    /// of its messages were stored is [`Error::PartialBatch`], which lists
    /// their ids and says why the others were not (for example
    /// [`Error::Timeout`] when the queue stayed full); one that stored none
    /// fails with that reason itself.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// let ids = bus.push_batch("jobs", ["one", "two", "three"]).await?;
    /// assert_eq!(ids.len(), 3);
    /// let first = bus.receive("jobs", std::time::Duration::from_secs(1)).await?;
    /// assert_eq!(first.id(), &ids[0]);
    /// assert_eq!(first.as_str()?, "one");
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn push_batch<P: Into<Bytes>>(
        &self,
        queue: &str,
        payloads: impl IntoIterator<Item = P>,
    ) -> Result<Vec<MessageId>> {
        let items = payloads.into_iter().map(|p| (p.into(), None, None));
        self.store_batch(queue, items.collect()).await
    }

    /// Pushes every `(payload, options)` of `messages` onto `queue`: a
    /// [`push_batch`](Self::push_batch) whose messages each have their own
    /// delay and headers, as [`push_with`](Self::push_with).
    ///
    /// # Errors
    ///
    /// As [`push_batch`](Self::push_batch), and [`Error::InvalidHeader`]
    /// before any I/O for a bad header on any message of the batch (see
    /// [`push_with`](Self::push_with)).
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// use std::time::Duration;
    /// use actorbus::PushOptions;
    ///
    /// let bus = actorbus::Bus::memory();
    /// let later = PushOptions::default().with_delay(Duration::from_secs(60));
    /// let now = PushOptions::default().with_header("kind", "urgent");
    /// bus.push_batch_with("jobs", [("later", later), ("now", now)]).await?;
    /// let stats = bus.stats("jobs").await?;
    /// assert_eq!((stats.ready, stats.delayed), (1, 1));
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn push_batch_with<P: Into<Bytes>>(
        &self,
        queue: &str,
        messages: impl IntoIterator<Item = (P, PushOptions)>,
    ) -> Result<Vec<MessageId>> {
        let messages = messages.into_iter();
        let mut items = Vec::with_capacity(messages.size_hint().0);
        for (payload, opts) in messages {
            validate::headers(&opts.headers)?;
            let headers = (!opts.headers.is_empty()).then(|| Arc::new(opts.headers));
            items.push((payload.into(), headers, opts.delay));
        }
        self.store_batch(queue, items).await
    }

    /// Checks the whole batch, gives each message its id and publish span,
    /// and stores them through the driver.
    async fn store_batch(&self, queue: &str, items: Vec<Item>) -> Result<Vec<MessageId>> {
        self.check_open()?;
        validate::queue_name(queue)?;
        let max = self.inner.config.queue.max_payload;
        for (payload, _, _) in &items {
            validate::payload(payload.len(), max)?;
        }
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let system = self.messaging_system();
        let mut ids = Vec::with_capacity(items.len());
        let mut published = Vec::with_capacity(items.len());
        let envelopes = items
            .into_iter()
            .map(|(payload, headers, delay)| {
                let mut envelope = Envelope::new(payload, headers);
                published.push(spans::publish(system, queue, &mut envelope));
                ids.push(envelope.id.clone());
                (envelope, delay)
            })
            .collect();
        let outcome = self.driver().push_batch(queue, envelopes).await;
        let meters = self.meters();
        let Err(Unstored { stored, error }) = outcome else {
            for _ in &ids {
                meters.pushed(queue, &Ok(()));
            }
            return Ok(ids);
        };
        // Mark what failed, in the meters and the spans of those messages.
        let failed: Result<()> = Err(Error::Closed);
        let mut kept = stored.iter().peekable();
        for (index, span) in published.iter().enumerate() {
            if kept.next_if_eq(&&index).is_some() {
                meters.pushed(queue, &Ok(()));
            } else {
                meters.pushed(queue, &failed);
                spans::failed(span, &error);
            }
        }
        if stored.is_empty() {
            return Err(error);
        }
        Err(Error::PartialBatch {
            stored: stored.iter().map(|&i| ids[i].clone()).collect(),
            source: Box::new(error),
        })
    }
}
