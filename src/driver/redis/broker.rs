//! `RedisBroker`: the bus's handle on the redis driver — Redis Streams through deadpool-redis.
//!
//! Listeners, removal and receive go through the bus's [`Channels`]; pushes
//! go to each queue's pusher, or straight to Redis. Every call's I/O runs on
//! the bus's arbiters; the caller only awaits the reply. An immediate push
//! (or batch of them) skips even the message to the pusher: its `XADD`s go
//! from the caller's task over a shared connection, the caller's thread's
//! own on an actix thread (the `direct` module).

mod direct;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::channel::messages::Relay;
use crate::channel::redrive::{in_steps, BROKER_STEP};
use crate::channel::retry::RetryPolicy;
use crate::config::Config;
use crate::delivery::{Delivery, Envelope};
use crate::driver::channels::Channels;
use crate::driver::redis::backend::{RedisBackend, RedisEvent};
use crate::driver::redis::driver::{
    Close, Count, ExpireWithBus, JoinTopic, PeekStream, PublishTopic, PurgeStream, RedisDriver,
    RedisShared, RedriveStep, Resolve,
};
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::pusher::{Push, Wake};
use crate::driver::redis::watchdog::Watchdog;
use crate::driver::Unstored;
use crate::error::{Error, Result};
use crate::listener::{Listener, ListenerSpec};
use crate::runtime::Arbiters;
use crate::stats::QueueStats;
use crate::timer::deadline;

/// The bus's handle on the redis driver.
pub(crate) struct RedisBroker {
    /// The driver actor.
    driver: Addr<RedisDriver>,
    /// The bus's connections, for direct pushes.
    link: Arc<RedisLink>,
    /// The bus's channels, one per queue used.
    channels: Arc<Channels<RedisBackend>>,
    /// What every channel shares, among it the queues known as groups.
    shared: Arc<RedisShared>,
    /// `queue.push_timeout`.
    push_timeout: Duration,
    /// Times the direct pushes of callers outside actix.
    watchdog: Arc<Watchdog>,
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
        let shared = Arc::new(RedisShared {
            link: link.clone(),
            push_timeout: config.queue.push_timeout,
            claim_idle: config.redis.claim_idle,
            consumer: consumer_prefix(&config.redis.consumer),
            groups: RwLock::default(),
        });
        let retry = Arc::new(RetryPolicy::new(config.queue.retry.clone()));
        let channels = Arc::new(Channels::start(
            &arbiters,
            retry,
            shared.clone(),
            config.queue.idle_timeout,
        ));
        let (driver_link, driver_channels) = (link.clone(), channels.clone());
        let push_timeout = config.queue.push_timeout;
        let driver = RedisDriver::start_in_arbiter(&arbiter, move |_| {
            RedisDriver::new(driver_link, driver_channels, push_timeout)
        });
        Ok(RedisBroker {
            driver,
            link,
            channels,
            shared,
            push_timeout,
            watchdog: Arc::default(),
        })
    }

    pub(crate) fn channels(&self) -> &Channels<RedisBackend> {
        &self.channels
    }

    /// The keys of `queue`: a subscriber group's (or on a Redis Cluster its
    /// dead letters') when this bus knows it as one, or Redis says so (a
    /// group's consumer group exists on its topic's stream), else an
    /// ordinary queue's. Asks Redis only for a name that may be one
    /// ([`Keys::candidate`]) and is not known.
    async fn keys(&self, queue: &str) -> Result<Keys> {
        if let Some(known) = self.shared.known(queue) {
            return Ok(known);
        }
        if Keys::candidate(queue, self.link.cluster).is_none() {
            return Ok(self.link.keys(queue));
        }
        let keys = self.ask(Resolve(queue.to_owned())).await?;
        self.shared.remember(&keys);
        Ok(keys)
    }

    /// Before `queue`'s channel starts: finds out whether it is a group, so
    /// that the channel reads it as one.
    async fn prepare(&self, queue: &str) -> Result<()> {
        if self.channels.cached(queue).is_none() {
            self.keys(queue).await?;
        }
        Ok(())
    }

    /// Starts a listener on `queue`.
    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        self.prepare(queue).await?;
        self.channels.attach(queue, spec).await
    }

    /// Takes one message of `queue`, acknowledged on hand-over.
    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        self.prepare(queue).await?;
        self.channels.receive(queue, timeout).await
    }

    pub(crate) async fn push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> Result<()> {
        let deadline = deadline(Instant::now(), self.push_timeout);
        if delay.is_none() {
            let direct = self.push_direct(queue, &envelope, self.push_timeout);
            if direct.await.is_some() {
                return Ok(());
            }
        }
        let one = vec![(envelope, delay)];
        let mut outcomes = self.through_pusher(queue, one, deadline).await?;
        outcomes.pop().unwrap_or(Err(Error::Closed))
    }

    /// Stores `batch`: an immediate one of up to the pusher's pipeline size
    /// as one pipeline straight to Redis (see `direct`); else, or when that
    /// failed, through `queue`'s pusher, handed over in one step and one
    /// wake-up, written as one pipeline (up to the pusher's pipeline size),
    /// each message answered once Redis confirmed it.
    pub(crate) async fn push_batch(
        &self,
        queue: &str,
        batch: Vec<(Envelope, Option<Duration>)>,
    ) -> std::result::Result<(), Unstored> {
        let deadline = deadline(Instant::now(), self.push_timeout);
        if self
            .push_batch_direct(queue, &batch, self.push_timeout)
            .await
            .is_some()
        {
            return Ok(());
        }
        let outcomes = self.through_pusher(queue, batch, deadline).await;
        Unstored::gather(outcomes.map_err(Unstored::none)?)
    }

    /// Hands `batch` to `queue`'s pusher (waking it once) and answers each
    /// message's outcome, in batch order, once Redis confirmed it or
    /// `deadline` passed.
    async fn through_pusher(
        &self,
        queue: &str,
        batch: Vec<(Envelope, Option<Duration>)>,
        deadline: Instant,
    ) -> Result<Vec<Result<()>>> {
        let channel = match self.channels.cached(queue) {
            Some(channel) => channel,
            None => {
                self.prepare(queue).await?;
                self.channels.open(queue).await?
            }
        };
        let mut answers = Vec::with_capacity(batch.len());
        let pushes = batch.into_iter().map(|(envelope, delay)| {
            let (reply, stored) = oneshot::channel();
            answers.push(stored);
            Push {
                envelope,
                delay,
                deadline,
                reply,
            }
        });
        if channel.front.inbox.put_all(pushes) {
            channel.front.pusher.do_send(Wake);
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        for stored in answers {
            outcomes.push(stored.await.unwrap_or_else(|_| {
                Err(Error::backend(
                    "the redis pusher stopped before Redis confirmed the push",
                ))
            }));
        }
        Ok(outcomes)
    }

    /// Adds `envelope` to the stream of `topic` (one `XADD`).
    pub(crate) async fn publish(&self, topic: &str, envelope: Envelope) -> Result<()> {
        let topic = topic.to_owned();
        self.ask(PublishTopic { topic, envelope }).await
    }

    /// Makes the group whose queue is `group_queue` durable on `topic`: its
    /// consumer group on the topic's stream, and its own stream. A channel
    /// this bus already runs under that name as an ordinary queue is told
    /// to read it as a group from now on.
    ///
    /// # Errors
    ///
    /// On a Redis Cluster, [`Error::Backend`] when this bus already runs
    /// that name as an ordinary queue: there the group's keys are in its
    /// topic's slot, not where that queue's pushes went.
    pub(crate) async fn join(&self, topic: &str, group_queue: &str) -> Result<()> {
        let group = group_queue
            .strip_prefix(topic)
            .and_then(|rest| rest.strip_prefix('.'))
            .unwrap_or(group_queue);
        let keys = Keys::group(topic, group, self.link.cluster);
        let running = self.channels.get(group_queue, false).await?;
        if running.is_some() && self.link.cluster && self.shared.known(group_queue).is_none() {
            return Err(Error::backend(format!(
                "{group_queue:?} is used as an ordinary queue by this bus; on a Redis Cluster \
                 (redis.cluster) a group's keys are in its topic's hash slot: join before using it"
            )));
        }
        self.ask(JoinTopic(keys.clone())).await?;
        self.shared.remember(&keys);
        if let Some(channel) = running {
            channel.addr.do_send(Relay(RedisEvent::Regroup(keys)));
        }
        Ok(())
    }

    /// Makes `queue` (the bus's reply queue) expire a few minutes after
    /// this bus stops renewing it: a process that dies without `shutdown`
    /// does not leave it behind for good.
    pub(crate) fn expire_with_bus(&self, queue: &str) {
        self.driver.do_send(ExpireWithBus(self.link.keys(queue)));
    }

    /// Counts `queue` through its channel; a queue this bus never used is
    /// counted on the driver's arbiter, starting no channel.
    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats> {
        match self.channels.stats(queue).await? {
            Some(stats) => Ok(stats),
            None => self.ask(Count(self.keys(queue).await?)).await,
        }
    }

    /// Drops the ready messages of `queue`, starting no channel for a
    /// queue this bus never used.
    pub(crate) async fn purge(&self, queue: &str) -> Result<u64> {
        match self.channels.purge(queue).await? {
            Some(purged) => Ok(purged),
            None => self.ask(PurgeStream(self.keys(queue).await?)).await,
        }
    }

    /// Copies up to `max` ready messages of `queue`, starting no channel
    /// for a queue this bus never used.
    pub(crate) async fn peek(&self, queue: &str, max: usize) -> Result<Vec<Delivery>> {
        match self.channels.peek(queue, max).await? {
            Some(copies) => Ok(copies),
            None => {
                let keys = self.keys(queue).await?;
                self.ask(PeekStream { keys, max }).await
            }
        }
    }

    /// Moves up to `max` ready dead letters of `queue` back to it, one
    /// atomic script per step, each on the driver's arbiter. (A subscriber
    /// group's dead letters go back to its own stream, `<t>.<g>`, or
    /// `{<t>}.<g>` on a Redis Cluster.)
    pub(crate) async fn redrive(&self, queue: &str, max: usize) -> Result<u64> {
        let keys = self.keys(queue).await?;
        let first = "0-0".to_owned();
        in_steps(max, BROKER_STEP, first, |cursor, max| {
            let msg = RedriveStep {
                keys: keys.clone(),
                cursor,
                max,
            };
            let sent = self.driver.send(msg);
            async move {
                let step = sent.await.map_err(|_| Error::Closed)??;
                Ok((step.cursor, step.moved, step.read == max))
            }
        })
        .await
    }

    /// The driver's answer to `msg`.
    async fn ask<T, M>(&self, msg: M) -> Result<T>
    where
        M: Message<Result = Result<T>> + Send + 'static,
        T: Send + 'static,
        RedisDriver: Handler<M>,
    {
        self.driver.send(msg).await.map_err(|_| Error::Closed)?
    }

    pub(crate) async fn shutdown(&self, timeout: Duration, doomed: Vec<String>) -> Result<bool> {
        let doomed = doomed.iter().map(|queue| self.link.keys(queue)).collect();
        self.driver
            .send(Close { timeout, doomed })
            .await
            .map_err(|_| Error::Closed)
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
