//! `RedisBroker`: the bus's handle on the redis driver — Redis Streams through deadpool-redis.
//!
//! Every call becomes a message to the [`RedisDriver`] or to a queue's
//! [`RedisQueue`] actor, which do the I/O on the bus's arbiters; the caller
//! only awaits the reply (§4). An immediate push skips even that message:
//! its `XADD` goes through a connection whose I/O runs on an arbiter.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::channel::retry::RetryPolicy;
use crate::config::Config;
use crate::delivery::{Delivery, Envelope};
use crate::driver::memory::queue::{Crash, Receive, StopListeners};
use crate::driver::redis::commands;
use crate::driver::redis::driver::{Close, OpenQueue, QueueRef, RedisDriver, RedisSettings};
use crate::driver::redis::link::{transient, RedisLink};
use crate::driver::redis::pusher::{Push, Wake};
use crate::driver::redis::queue::{GetStats, Purge};
use crate::error::{Error, Result};
use crate::listener::Listener;
use crate::listener::ListenerSpec;
use crate::runtime::Arbiters;
use crate::stats::QueueStats;

/// The bus's handle on the redis driver.
pub(crate) struct RedisBroker {
    /// The driver actor.
    driver: Addr<RedisDriver>,
    /// The bus's connections, for direct pushes.
    link: Arc<RedisLink>,
    /// Queue actors already looked up, so a push skips the driver.
    queues: RwLock<FxHashMap<Arc<str>, QueueRef>>,
    /// `queue.push_timeout`.
    push_timeout: Duration,
}

impl RedisBroker {
    /// Connects to `redis.url` on one of the bus's arbiters and starts the driver there.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn connect(config: &Config, arbiters: Arbiters) -> Result<Self> {
        let arbiter = arbiters.next().clone();
        let redis = config.redis.clone();
        let (tx, rx) = oneshot::channel();
        arbiter.spawn(async move {
            let _ = tx.send(RedisLink::connect(&redis).await);
        });
        let link = Arc::new(rx.await.map_err(|_| Error::Closed)??);
        let settings = Arc::new(RedisSettings {
            retry: RetryPolicy::new(config.queue.retry.clone()),
            push_timeout: config.queue.push_timeout,
            claim_idle: config.redis.claim_idle,
            consumer: consumer_prefix(&config.redis.consumer),
        });
        let driver_link = link.clone();
        let driver = RedisDriver::start_in_arbiter(&arbiter, move |_| {
            RedisDriver::new(driver_link, settings, arbiters)
        });
        Ok(RedisBroker {
            driver,
            link,
            queues: RwLock::default(),
            push_timeout: config.queue.push_timeout,
        })
    }

    async fn queue(&self, name: &str, create: bool) -> Result<Option<QueueRef>> {
        if let Some(found) = self.queues.read().ok().and_then(|q| q.get(name).cloned()) {
            return Ok(Some(found));
        }
        let name: Arc<str> = name.into();
        let found = self
            .driver
            .send(OpenQueue {
                name: name.clone(),
                create,
            })
            .await
            .map_err(|_| Error::Closed)?;
        if let (Some(found), Ok(mut cache)) = (&found, self.queues.write()) {
            cache.insert(name, found.clone());
        }
        Ok(found)
    }

    async fn open(&self, name: &str) -> Result<QueueRef> {
        self.queue(name, true).await?.ok_or(Error::Closed)
    }

    pub(crate) async fn push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> Result<()> {
        let deadline = Instant::now() + self.push_timeout;
        if delay.is_none() {
            let direct = self.push_direct(queue, &envelope, self.push_timeout);
            if direct.await.is_some() {
                return Ok(());
            }
        }
        let (reply, stored) = oneshot::channel();
        let push = Push {
            envelope,
            delay,
            deadline,
            reply,
        };
        // Send under the cache's read lock, cloning no handle.
        let unsent = match self.queues.read() {
            Ok(cache) => match cache.get(queue) {
                Some(found) => {
                    if found.inbox.put(push) {
                        found.pusher.do_send(Wake);
                    }
                    None
                }
                None => Some(push),
            },
            Err(_) => Some(push),
        };
        if let Some(push) = unsent {
            let found = self.open(queue).await?;
            if found.inbox.put(push) {
                found.pusher.do_send(Wake);
            }
        }
        stored.await.map_err(|_| {
            Error::backend("the redis queue actor stopped before Redis confirmed the push")
        })?
    }

    /// Stores an immediate push with one `XADD` through the shared
    /// connection of its pusher's arbiter: the I/O runs there and the
    /// caller only awaits the reply, without the hops to and from the
    /// pusher actor (fewer wake-ups per push; measured in the bench's
    /// `redis push-only` and `redis latency` rows). `Some` once Redis
    /// confirmed it; `None` when that connection is missing or failed: the
    /// pusher then stores the push, reconnecting with backoff (§3.10); an
    /// `XADD` that failed may have been stored, so it may be stored twice
    /// (at-least-once, as any retried push).
    async fn push_direct(&self, queue: &str, envelope: &Envelope, limit: Duration) -> Option<()> {
        // The reply's deadline is a timer on the caller's runtime. Only an
        // actix system's is sure to have timers (a tokio runtime may be
        // built without, and the timer would panic); other callers go
        // through the pusher.
        System::try_current()?;
        let (cmd, thread) = {
            let cache = self.queues.read().ok()?;
            let found = cache.get(queue)?;
            let thread = *found.inbox.thread.get()?;
            (commands::xadd(&found.keys, envelope), thread)
        };
        let (generation, mut conn) = self.link.shared_of(thread)?;
        conn.set_response_timeout(limit);
        let stored = cmd.query_async::<()>(&mut conn).await;
        if stored.as_ref().is_err_and(transient) {
            self.link.broken_of(thread, generation);
        }
        stored.ok()
    }

    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        let found = self.open(queue).await?;
        Listener::start(queue, spec, found.addr.clone(), &found.arbiter).await
    }

    pub(crate) async fn remove(&self, queue: &str) -> Result<()> {
        if let Some(found) = self.queue(queue, false).await? {
            found
                .addr
                .send(StopListeners)
                .await
                .map_err(|_| Error::Closed)?;
        }
        Ok(())
    }

    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        let found = self.open(queue).await?;
        let (reply, received) = oneshot::channel();
        found.addr.do_send(Receive { timeout, reply });
        received.await.map_err(|_| Error::Closed)?
    }

    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats> {
        let found = self.open(queue).await?;
        let (reply, counted) = oneshot::channel();
        found.addr.do_send(GetStats { reply });
        counted.await.map_err(|_| Error::Closed)?
    }

    pub(crate) async fn purge(&self, queue: &str) -> Result<u64> {
        let found = self.open(queue).await?;
        let (reply, purged) = oneshot::channel();
        found.addr.do_send(Purge { reply });
        purged.await.map_err(|_| Error::Closed)?
    }

    pub(crate) async fn shutdown(&self, timeout: Duration) -> Result<bool> {
        self.driver
            .send(Close { timeout })
            .await
            .map_err(|_| Error::Closed)
    }

    pub(crate) async fn crash_queue_actor(&self, queue: &str) -> Result<()> {
        let found = self.open(queue).await?;
        found.addr.send(Crash).await.map_err(|_| Error::Closed)
    }
}

/// The prefix of this bus's consumer names: `redis.consumer`, or
/// `<host>-<pid>-<bus number>`, unique among live processes.
fn consumer_prefix(configured: &str) -> String {
    if !configured.is_empty() {
        return configured.to_owned();
    }
    static BUSES: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned());
    let n = BUSES.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{host}-{}-{n}", std::process::id())
}
