//! `AmqpBroker`: the bus's handle on the amqp driver (RabbitMQ through lapin).
//!
//! It starts the [`AmqpDriver`] and one supervised [`AmqpQueue`] per queue
//! on the bus's arbiters, and forwards the bus's calls to them. Every broker
//! I/O runs on those arbiters; the caller only awaits replies (§4).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::channel::retry::RetryPolicy;
use crate::config::Config;
use crate::delivery::{Delivery, Envelope};
use crate::driver::amqp::driver::{AmqpDriver, Close, Publish};
use crate::driver::amqp::link::{parse_uri, Link};
use crate::driver::amqp::queue::{AmqpQueue, Crash, Flush, GetStats, NewLink, StopListeners};
use crate::driver::amqp::receive;
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::wire;
use crate::error::{Error, Result};
use crate::listener::Listener;
use crate::listener::ListenerSpec;
use crate::runtime::Arbiters;
use crate::stats::QueueStats;

/// A queue's actor and the arbiter it (and its listeners) run on.
type QueueSlot = (Addr<AmqpQueue>, ArbiterHandle);

/// The bus's handle on the amqp driver.
pub(crate) struct AmqpBroker {
    shared: Arc<AmqpShared>,
    arbiters: Arbiters,
    /// The queue actors started so far, by queue name.
    queues: Mutex<FxHashMap<Arc<str>, QueueSlot>>,
}

impl AmqpBroker {
    /// Opens the connections (on a bus arbiter) and starts the driver.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a malformed `amqp.url` (or `amqps://` without
    /// the `amqps` feature); [`Error::Backend`] when RabbitMQ cannot be
    /// reached or refuses the credentials or vhost, within a few seconds and
    /// without retrying.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn connect(config: &Config, arbiters: Arbiters) -> Result<Self> {
        parse_uri(&config.amqp)?;
        let amqp = config.amqp.clone();
        let (tx, rx) = oneshot::channel();
        let (home, consume_on) = (arbiters.next().clone(), arbiters.next().clone());
        home.spawn(async move {
            let started = Link::open(&amqp, 1, &consume_on).await.map(|link| {
                let (driver, links) = AmqpDriver::new(amqp, link, consume_on);
                (driver.start(), links)
            });
            let _ = tx.send(started);
        });
        let (driver, links) = rx.await.map_err(|_| Error::Closed)??;
        let shared = AmqpShared::new(
            driver,
            links,
            RetryPolicy::new(config.queue.retry.clone()),
            config.queue.push_timeout,
            config.amqp.prefetch,
        );
        Ok(AmqpBroker {
            shared: Arc::new(shared),
            arbiters,
            queues: Mutex::default(),
        })
    }

    /// The actor of `queue`, started on first use.
    fn queue(&self, queue: &str) -> QueueSlot {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = queues.get(queue) {
            return found.clone();
        }
        let name: Arc<str> = queue.into();
        let arbiter = self.arbiters.next().clone();
        let shared = self.shared.clone();
        let n = name.clone();
        let addr = Supervisor::start_in_arbiter(&arbiter, move |_| AmqpQueue::new(n, shared));
        // Re-consume on every new link, from outside the actor so that a
        // restart of the actor does not lose the watch.
        let (mut links, watcher) = (self.shared.links.clone(), addr.clone());
        arbiter.spawn(async move {
            links.borrow_and_update();
            while links.changed().await.is_ok() && watcher.connected() {
                let link = links.borrow_and_update().clone();
                if let Some(link) = link {
                    watcher.do_send(NewLink(link));
                }
            }
        });
        queues.insert(name, (addr.clone(), arbiter.clone()));
        (addr, arbiter)
    }

    fn wire(queue: &str) -> String {
        wire::wire_name(queue)
    }

    pub(crate) async fn push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> Result<()> {
        let target = self.shared.target(queue, delay);
        self.shared
            .driver
            .send(Publish {
                target,
                envelope,
                timeout: self.shared.push_timeout,
            })
            .await
            .map_err(|_| Error::Closed)?
    }

    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        let (addr, arbiter) = self.queue(queue);
        Listener::start(queue, spec, addr, &arbiter).await
    }

    pub(crate) async fn remove(&self, queue: &str) -> Result<()> {
        let found = self.queues.lock().ok().and_then(|q| q.get(queue).cloned());
        if let Some((addr, _)) = found {
            addr.send(StopListeners).await.map_err(|_| Error::Closed)?;
        }
        Ok(())
    }

    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        let (tx, rx) = oneshot::channel();
        let shared = self.shared.clone();
        let name: Arc<str> = queue.into();
        let deadline = Instant::now() + timeout;
        self.arbiters.next().spawn(async move {
            receive::receive(shared, name, deadline, tx).await;
        });
        rx.await.map_err(|_| Error::Closed)?
    }

    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let (addr, _) = self.queue(queue);
        addr.send(GetStats).await.map_err(|_| Error::Closed)?
    }

    pub(crate) async fn purge(&self, queue: &str) -> Result<u64> {
        let (tx, rx) = oneshot::channel();
        let shared = self.shared.clone();
        let wire = Self::wire(queue);
        self.arbiters.next().spawn(async move {
            let purged = match shared.link().await {
                Ok(link) => link.purge(&wire).await,
                Err(e) => Err(e),
            };
            let _ = tx.send(purged);
        });
        rx.await.map_err(|_| Error::Closed)?
    }

    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn shutdown(&self, timeout: Duration) -> Result<bool> {
        let queues: Vec<Addr<AmqpQueue>> = self
            .queues
            .lock()
            .map(|q| q.values().map(|(a, _)| a.clone()).collect())
            .unwrap_or_default();
        let stops = join_all(queues.iter().map(|q| q.send(StopListeners)));
        let drained = tokio::time::timeout(timeout, stops).await.is_ok();
        if drained {
            // The verdicts of the stopped listeners are in the queues'
            // mailboxes: let them go out before the connections close.
            let flushes = join_all(queues.iter().map(|q| q.send(Flush)));
            let _ = tokio::time::timeout(Duration::from_secs(5), flushes).await;
        }
        let _ = self.shared.driver.send(Close).await;
        Ok(drained)
    }

    pub(crate) async fn crash_queue_actor(&self, queue: &str) -> Result<()> {
        let (addr, _) = self.queue(queue);
        addr.send(Crash).await.map_err(|_| Error::Closed)
    }
}
