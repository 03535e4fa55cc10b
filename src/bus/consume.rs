//! Consuming from a `Bus`: listeners, actor subscribers, `receive` and `remove`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use futures_util::FutureExt;

use crate::bus::Bus;
use crate::delivery::{Delivery, HandlerResult};
use crate::error::{BoxError, Result};
use crate::listener::actor::HandlerFn;
use crate::listener::Listener;
use crate::listener::ListenerSpec;
use crate::options::ListenerOptions;
use crate::validate;

impl Bus {
    /// Attaches `handler` to `queue` with default [`ListenerOptions`].
    ///
    /// `Ok` from the handler acknowledges the delivery; `Err` or a panic has
    /// it retried with backoff and, after `queue.retry.max_attempts`, moved
    /// to `<queue>.dead`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`](crate::Error::InvalidQueueName); [`Error::Closed`](crate::Error::Closed) after shutdown.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let tx = std::sync::Mutex::new(Some(tx));
    /// bus.add_listener("my-queue", move |delivery| {
    ///     if let Some(tx) = tx.lock().unwrap().take() {
    ///         let _ = tx.send(delivery.as_str().map(str::to_owned));
    ///     }
    ///     async { Ok(()) }
    /// })
    /// .await?;
    /// bus.push("my-queue", "hello world").await?;
    /// assert_eq!(rx.await.unwrap()?, "hello world");
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn add_listener<F, Fut>(&self, queue: &str, handler: F) -> Result<Listener>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        self.add_listener_with(queue, ListenerOptions::default(), handler)
            .await
    }

    /// Attaches `handler` to `queue` with `opts` (concurrency, prefetch).
    ///
    /// # Errors
    ///
    /// As [`add_listener`](Self::add_listener).
    pub async fn add_listener_with<F, Fut>(
        &self,
        queue: &str,
        opts: ListenerOptions,
        handler: F,
    ) -> Result<Listener>
    where
        F: Fn(Delivery) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        let handler: HandlerFn = Arc::new(move |delivery| handler(delivery).boxed());
        self.attach(queue, opts, handler).await
    }

    /// Attaches an actix actor as a listener: each [`Delivery`] is sent to
    /// `recipient`, and the actor's [`HandlerResult`] settles it.
    ///
    /// # Errors
    ///
    /// As [`add_listener`](Self::add_listener).
    pub async fn subscribe(&self, queue: &str, recipient: Recipient<Delivery>) -> Result<Listener> {
        self.subscribe_with(queue, ListenerOptions::default(), recipient)
            .await
    }

    /// Attaches an actix actor as a listener with `opts`: with a
    /// `concurrency` above 1 the actor gets that many deliveries at once in
    /// its mailbox (an actor handles its mailbox one message at a time, so
    /// this only pays off for handlers that return a future).
    ///
    /// # Errors
    ///
    /// As [`add_listener`](Self::add_listener).
    ///
    /// ```
    /// use actix::prelude::*;
    /// use actorbus::{Delivery, HandlerResult, ListenerOptions};
    ///
    /// struct Counter(u32);
    /// impl Actor for Counter {
    ///     type Context = Context<Self>;
    /// }
    /// impl Handler<Delivery> for Counter {
    ///     type Result = HandlerResult;
    ///     fn handle(&mut self, _delivery: Delivery, _ctx: &mut Context<Self>) -> HandlerResult {
    ///         self.0 += 1;
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// let opts = ListenerOptions::default().with_concurrency(4).with_prefetch(16);
    /// let counter = Counter(0).start();
    /// let listener = bus.subscribe_with("counted", opts, counter.recipient()).await?;
    /// bus.push("counted", "one").await?;
    /// # listener.remove().await?;
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn subscribe_with(
        &self,
        queue: &str,
        opts: ListenerOptions,
        recipient: Recipient<Delivery>,
    ) -> Result<Listener> {
        self.attach(queue, opts, via_recipient(recipient, Ok)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(queue = %queue))]
    pub(crate) async fn attach(
        &self,
        queue: &str,
        opts: ListenerOptions,
        handler: HandlerFn,
    ) -> Result<Listener> {
        self.check_open()?;
        validate::queue_name(queue)?;
        let id = self.next_listener_id();
        let (concurrency, window) = (opts.effective_concurrency(), opts.window());
        let spec = ListenerSpec {
            id,
            handler,
            concurrency,
            window,
        };
        self.meters().listened(queue);
        self.driver().attach(queue, spec).await
    }

    /// Stops every listener of `queue` by sending the queue's actor its stop
    /// message. The messages stay; only [`purge`](Self::purge) drops them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`](crate::Error::InvalidQueueName); [`Error::Closed`](crate::Error::Closed) after shutdown.
    #[tracing::instrument(level = "debug", skip_all, fields(queue = %queue))]
    pub async fn remove(&self, queue: &str) -> Result<()> {
        self.check_open()?;
        validate::queue_name(queue)?;
        self.driver().remove(queue).await
    }

    /// Takes the next message of `queue`, waiting up to `timeout`.
    ///
    /// The message is acknowledged as it is handed over: from then on the
    /// caller owns it.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`](crate::Error::Timeout) when no message came in time;
    /// [`Error::InvalidQueueName`](crate::Error::InvalidQueueName); [`Error::Closed`](crate::Error::Closed) after shutdown.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// use std::time::Duration;
    /// let bus = actorbus::Bus::memory();
    /// let waited = bus.receive("empty", Duration::from_millis(10)).await;
    /// assert!(matches!(waited, Err(actorbus::Error::Timeout)));
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(level = "debug", skip_all, fields(queue = %queue))]
    pub async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        self.check_open()?;
        validate::queue_name(queue)?;
        self.meters().listened(queue);
        self.driver().receive(queue, timeout).await
    }
}

/// A handler that sends each delivery, made into `M` by `make`, to an
/// actor's `recipient`; the actor's answer settles it. An error from `make`
/// settles it without a send.
pub(crate) fn via_recipient<M>(
    recipient: Recipient<M>,
    make: impl Fn(Delivery) -> Result<M, BoxError> + Send + Sync + 'static,
) -> HandlerFn
where
    M: actix::Message<Result = HandlerResult> + Send + 'static,
{
    Arc::new(move |delivery| {
        let sent = make(delivery).map(|message| recipient.send(message));
        async move {
            match sent?.await {
                Ok(result) => result,
                Err(mailbox) => Err(format!("listener actor unreachable: {mailbox}").into()),
            }
        }
        .boxed()
    })
}
