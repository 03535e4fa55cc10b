//! `Channels`: a bus's way to its queues' channel actors — a cache in front of the [`Registry`], and the calls every driver makes the same way.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;
use tokio::sync::oneshot;

use crate::channel::backend::Reply;
use crate::channel::messages::{Drain, GetStats, Peek, Purge, Receive, StopListeners};
use crate::delivery::Delivery;
use crate::driver::registry::{Cache, Channel, CloseAll, Lookup, Open, Registry};
use crate::error::{Error, Result};
use crate::listener::{Listener, ListenerSpec};
use crate::runtime::Arbiters;
use crate::stats::QueueStats;

/// Longest wait at shutdown, once the listeners stopped, for each backend's
/// I/O in flight (settles, hand-backs, retry and dead-letter copies): what is
/// not confirmed by then is redelivered.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// The channels of one bus.
pub(crate) struct Channels<B: Open> {
    /// Creates and knows every channel.
    registry: Addr<Registry<B>>,
    /// Channels already looked up, so that a push skips the registry;
    /// the registry takes out those that retire.
    cache: Cache<B>,
}

impl<B: Open> Channels<B> {
    /// Starts the registry of a bus on one of its arbiters.
    pub(crate) fn start(
        arbiters: &Arbiters,
        retry: Arc<crate::channel::retry::RetryPolicy>,
        driver: B::Driver,
        idle: Duration,
    ) -> Self {
        let placed = arbiters.clone();
        let cache = Cache::<B>::default();
        let shared = cache.clone();
        let registry = Registry::start_in_arbiter(arbiters.next(), move |_| {
            Registry::new(placed, retry, driver, idle, shared)
        });
        Channels { registry, cache }
    }

    /// The channel of `queue` if this handle already knows it (and it did
    /// not retire): no message, no wait.
    pub(crate) fn cached(&self, queue: &str) -> Option<Arc<Channel<B>>> {
        let cache = self.cache.read().ok()?;
        cache.get(queue).filter(|c| !c.is_retired()).cloned()
    }

    /// The channel of `queue`; started when `create` is set, else `None`
    /// for a queue this bus never used.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the bus is shut down.
    pub(crate) async fn get(&self, queue: &str, create: bool) -> Result<Option<Arc<Channel<B>>>> {
        if let Some(channel) = self.cached(queue) {
            return Ok(Some(channel));
        }
        let name: Arc<str> = queue.into();
        let found = self
            .registry
            .send(Lookup {
                name: name.clone(),
                create,
                marker: PhantomData,
            })
            .await
            .map_err(|_| Error::Closed)?;
        if let (Some(channel), Ok(mut cache)) = (&found, self.cache.write()) {
            cache.insert(name.clone(), channel.clone());
            // It may have retired since the registry answered, its notice
            // handled before this insert: the cache must not keep it alive.
            if channel.is_retired() {
                cache.remove(&name);
            }
        }
        Ok(found)
    }

    /// The channel of `queue`, started on first use.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the bus is shut down.
    pub(crate) async fn open(&self, queue: &str) -> Result<Arc<Channel<B>>> {
        self.get(queue, true).await?.ok_or(Error::Closed)
    }

    /// Starts a listener on `queue`'s channel.
    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        let channel = self.open(queue).await?;
        Listener::start(
            queue,
            spec,
            &channel.addr,
            &channel.arbiter,
            &channel.observer,
        )
        .await
    }

    /// Stops every listener of `queue`; a queue never used has none.
    pub(crate) async fn remove(&self, queue: &str) -> Result<()> {
        if let Some(channel) = self.get(queue, false).await? {
            let (reply, stopped) = oneshot::channel();
            channel.addr.do_send(StopListeners { reply });
            stopped.await.map_err(|_| Error::Closed)?;
        }
        Ok(())
    }

    /// Takes one message of `queue`, acknowledged as it is handed over.
    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        let channel = self.open(queue).await?;
        let delivery = ask(|reply| channel.addr.do_send(Receive { timeout, reply })).await?;
        channel.observer.meters.received(delivery.id());
        Ok(delivery)
    }

    /// Counts `queue` through its channel; `None` for a queue never used.
    pub(crate) async fn stats(&self, queue: &str) -> Result<Option<QueueStats>> {
        match self.get(queue, false).await? {
            Some(channel) => Ok(Some(
                ask(|reply| channel.addr.do_send(GetStats { reply })).await?,
            )),
            None => Ok(None),
        }
    }

    /// Purges `queue` through its channel; `None` for a queue never used.
    pub(crate) async fn purge(&self, queue: &str) -> Result<Option<u64>> {
        match self.get(queue, false).await? {
            Some(channel) => Ok(Some(
                ask(|reply| channel.addr.do_send(Purge { reply })).await?,
            )),
            None => Ok(None),
        }
    }

    /// Copies up to `max` ready messages of `queue` through its channel;
    /// `None` for a queue never used.
    pub(crate) async fn peek(&self, queue: &str, max: usize) -> Result<Option<Vec<Delivery>>> {
        match self.get(queue, false).await? {
            Some(channel) => Ok(Some(
                ask(|reply| channel.addr.do_send(Peek { max, reply })).await?,
            )),
            None => Ok(None),
        }
    }

    /// Shutdown: stops every listener of every channel, waiting up to
    /// `timeout` for their handlers (`false` when some were still running),
    /// then lets each backend finish its I/O in flight, up to [`DRAIN_LIMIT`].
    /// No channel is started after this.
    pub(crate) async fn close(&self, timeout: Duration) -> bool {
        let channels = self
            .registry
            .send(CloseAll(PhantomData))
            .await
            .unwrap_or_default();
        let stops = join_all(channels.iter().map(|c| {
            let (reply, stopped) = oneshot::channel();
            c.addr.do_send(StopListeners { reply });
            stopped
        }));
        let drained = tokio::time::timeout(timeout, stops).await.is_ok();
        let idle = join_all(
            channels
                .iter()
                .map(|c| ask(|reply| c.addr.do_send(Drain { reply }))),
        );
        if tokio::time::timeout(DRAIN_LIMIT, idle).await.is_err() {
            tracing::warn!(
                "backend I/O still in flight at shutdown; its deliveries will be redelivered"
            );
        }
        drained
    }

    /// Fault injection for the supervision tests: `queue`'s channel panics
    /// now, or the next time its handler `on_next` runs.
    #[cfg(feature = "test-util")]
    pub(crate) async fn crash(&self, queue: &str, on_next: Option<String>) -> Result<()> {
        let channel = self.open(queue).await?;
        channel
            .addr
            .send(crate::channel::messages::Crash { on_next })
            .await
            .map_err(|_| Error::Closed)
    }
}

/// Sends a request with `send` and waits for its answer.
///
/// # Errors
///
/// The request's own error; [`Error::Closed`] when it was dropped unanswered.
pub(crate) async fn ask<T>(send: impl FnOnce(Reply<T>)) -> Result<T> {
    let (reply, answer) = oneshot::channel();
    send(reply);
    answer.await.map_err(|_| Error::Closed)?
}
