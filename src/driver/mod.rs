//! `Driver`: the backend a bus runs on — memory, amqp or redis — picked by `queue.driver`.
//!
//! Each driver provides one handle type ([`Memory`](memory::Memory),
//! `Amqp`, `Redis`) with the same inherent methods for what differs between
//! drivers (pushing, counting, purging, closing), and its [`Channels`] for
//! what does not (listeners, removal, receive). This enum picks the one the
//! config chose without boxing a future per call.
//!
//! The bus has already checked the queue name, the payload size and that it
//! is open before it calls any of these. Every driver runs its I/O on the
//! bus's arbiters, never on the caller's runtime, which may be a
//! short-lived test runtime or a plain thread.

#[cfg(feature = "amqp")]
pub(crate) mod amqp;
pub(crate) mod channels;
pub(crate) mod memory;
pub(crate) mod reclaim;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod registry;

use std::time::Duration;

use crate::config::{Config, DriverKind};
use crate::delivery::{Delivery, Envelope};
use crate::error::{Error, Result};
use crate::listener::{Listener, ListenerSpec};
use crate::runtime::Arbiters;
use crate::stats::QueueStats;

#[cfg(feature = "amqp")]
use amqp::broker::AmqpBroker;
use memory::Memory;
#[cfg(feature = "redis")]
use redis::broker::RedisBroker;

/// Where a driver with replies of its own (amqp: direct reply-to) hands
/// each reply: to the bus's waiting requests.
pub(crate) type ReplySink = std::sync::Arc<dyn Fn(Delivery) + Send + Sync>;

/// The driver a bus runs on.
pub(crate) enum Driver {
    /// In-process queues.
    Memory(Memory),
    /// RabbitMQ through lapin.
    #[cfg(feature = "amqp")]
    Amqp(AmqpBroker),
    /// Redis Streams through deadpool-redis.
    #[cfg(feature = "redis")]
    Redis(RedisBroker),
}

/// Runs `$body` with `$driver` bound to whichever handle `$this` holds.
macro_rules! on_driver {
    ($this:expr, $driver:ident => $body:expr) => {
        match *$this {
            Driver::Memory(ref $driver) => $body,
            #[cfg(feature = "amqp")]
            Driver::Amqp(ref $driver) => $body,
            #[cfg(feature = "redis")]
            Driver::Redis(ref $driver) => $body,
        }
    };
}

impl Driver {
    /// Starts the driver `config` names, connecting to its backend.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a driver this build lacks; the driver's own
    /// connect errors ([`Error::Backend`], [`Error::Timeout`]).
    pub(crate) async fn connect(config: &Config, arbiters: &Arbiters) -> Result<Driver> {
        match config.queue.driver {
            DriverKind::Memory => Ok(Driver::Memory(Memory::start(config, arbiters))),
            #[cfg(feature = "amqp")]
            DriverKind::Amqp => Ok(Driver::Amqp(
                AmqpBroker::connect(config, arbiters.clone()).await?,
            )),
            #[cfg(feature = "redis")]
            DriverKind::Redis => Ok(Driver::Redis(
                RedisBroker::connect(config, arbiters.clone()).await?,
            )),
            #[allow(unreachable_patterns)]
            other => Err(not_compiled(other)),
        }
    }

    /// Stores `envelope` on `queue` at once, when the driver can without
    /// waiting for anything (memory: a queue this handle knows, with room);
    /// otherwise gives it back for [`push`](Self::push). Not async, so
    /// that the common push costs no future of its own.
    pub(crate) fn try_push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> std::result::Result<(), Envelope> {
        match self {
            Driver::Memory(memory) => memory.try_push(queue, envelope, delay),
            #[allow(unreachable_patterns)]
            _ => Err(envelope),
        }
    }

    /// Stores `envelope` on `queue` (after `delay`), returning once it is
    /// stored where a listener will find it; waits up to
    /// `queue.push_timeout` for room or through an outage.
    pub(crate) async fn push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> Result<()> {
        // Boxed, as the other pushes below: a broker's push future holds
        // its fallback and reconnect paths (kilobytes), which every
        // caller's future would otherwise carry inline and copy on each move.
        on_driver!(self, d => Box::pin(d.push(queue, envelope, delay)).await)
    }

    /// Stores every `(envelope, delay)` of `batch` on `queue`, returning
    /// once all are stored; the driver checks what only it can (amqp: the
    /// frame size) for the whole batch before any I/O.
    ///
    /// # Errors
    ///
    /// [`Unstored`]: which messages (by index) were stored anyway, and why
    /// the others were not.
    pub(crate) async fn push_batch(
        &self,
        queue: &str,
        batch: Vec<(Envelope, Option<Duration>)>,
    ) -> std::result::Result<(), Unstored> {
        on_driver!(self, d => Box::pin(d.push_batch(queue, batch)).await)
    }

    /// Publishes `envelope` to every subscriber group of `topic`, returning
    /// once each group's copy is stored.
    pub(crate) async fn publish(&self, topic: &str, envelope: Envelope) -> Result<()> {
        match self {
            // The in-process publish is the fan-out's hot path, and small.
            Driver::Memory(memory) => memory.publish(topic, envelope).await,
            #[allow(unreachable_patterns)]
            _ => on_driver!(self, d => Box::pin(d.publish(topic, envelope)).await),
        }
    }

    /// Makes the subscriber group whose queue is `group_queue` durable on
    /// `topic`: from now on it stores every message published there.
    pub(crate) async fn join(&self, topic: &str, group_queue: &str) -> Result<()> {
        on_driver!(self, d => d.join(topic, group_queue).await)
    }

    /// Takes this bus's replies to `sink` when the driver has a reply
    /// address of its own (amqp: RabbitMQ's direct reply-to), answering
    /// that address; `None` when replies go through an ordinary queue.
    pub(crate) fn direct_replies(&self, sink: ReplySink) -> Option<&'static str> {
        match self {
            #[cfg(feature = "amqp")]
            Driver::Amqp(amqp) => Some(amqp.direct_replies(sink)),
            #[allow(unreachable_patterns)]
            _ => {
                drop(sink);
                None
            }
        }
    }

    /// Makes the bus's reply queue `queue` go away some time after the
    /// process dies without `shutdown` (redis: a time to live the bus
    /// renews); nothing to do elsewhere.
    pub(crate) fn expire_with_bus(&self, queue: &str) {
        match self {
            #[cfg(feature = "redis")]
            Driver::Redis(redis) => redis.expire_with_bus(queue),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = queue;
            }
        }
    }

    /// Sends a reply to `address`, a reply address of the driver's own
    /// (see [`direct_replies`](Self::direct_replies)).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`] on a driver that has no such address.
    pub(crate) async fn reply_direct(&self, address: &str, envelope: Envelope) -> Result<()> {
        match self {
            #[cfg(feature = "amqp")]
            Driver::Amqp(amqp) => amqp.reply(address, envelope).await,
            #[allow(unreachable_patterns)]
            _ => {
                drop(envelope);
                Err(Error::InvalidQueueName {
                    name: address.to_owned(),
                    reason: "a RabbitMQ direct reply-to address: only an amqp bus can answer it",
                })
            }
        }
    }

    /// Starts a listener actor on `queue` and returns its handle.
    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        on_driver!(self, d => d.attach(queue, spec).await)
    }

    /// Stops every listener of `queue`.
    pub(crate) async fn remove(&self, queue: &str) -> Result<()> {
        on_driver!(self, d => d.channels().remove(queue).await)
    }

    /// Takes one message, acknowledged on hand-over.
    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        on_driver!(self, d => d.receive(queue, timeout).await)
    }

    /// Counts `queue`, including `dead` from `<queue>.dead`.
    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats> {
        on_driver!(self, d => d.stats(queue).await)
    }

    /// Drops the ready messages of `queue`.
    pub(crate) async fn purge(&self, queue: &str) -> Result<u64> {
        on_driver!(self, d => d.purge(queue).await)
    }

    /// Copies up to `max` ready messages of `queue`, without taking them.
    pub(crate) async fn peek(&self, queue: &str, max: usize) -> Result<Vec<Delivery>> {
        on_driver!(self, d => d.peek(queue, max).await)
    }

    /// Moves up to `max` messages of `<queue>.dead` back to `queue`,
    /// answering how many.
    pub(crate) async fn redrive(&self, queue: &str, max: usize) -> Result<u64> {
        on_driver!(self, d => d.redrive(queue, max).await)
    }

    /// Stops listeners (waiting up to `timeout` for handlers), returns what
    /// is unacknowledged, flushes confirms, deletes the queues in `doomed`
    /// (the bus's reply queue) with their dead letters once nothing reads
    /// them, and closes connections. `Ok(false)` when handlers were still
    /// running at the timeout.
    pub(crate) async fn shutdown(&self, timeout: Duration, doomed: Vec<String>) -> Result<bool> {
        on_driver!(self, d => d.shutdown(timeout, doomed).await)
    }

    /// Fault injection for the supervision tests.
    #[cfg(feature = "test-util")]
    pub(crate) async fn crash(&self, queue: &str, on_next: Option<String>) -> Result<()> {
        on_driver!(self, d => d.channels().crash(queue, on_next).await)
    }
}

/// A batch push that failed: the indices (ascending) of the batch's
/// messages that were stored all the same, and why the others were not.
#[derive(Debug)]
pub(crate) struct Unstored {
    pub(crate) stored: Vec<usize>,
    pub(crate) error: Error,
}

impl Unstored {
    /// Nothing of the batch was stored.
    pub(crate) fn none(error: Error) -> Self {
        Unstored {
            stored: Vec::new(),
            error,
        }
    }

    /// Gathers per-message outcomes (in batch order): `Ok` when every one
    /// was stored, else the stored indices and the first error.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn gather(outcomes: Vec<Result<()>>) -> std::result::Result<(), Unstored> {
        let mut stored = Vec::with_capacity(outcomes.len());
        let mut first = None;
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(()) => stored.push(index),
                Err(error) => {
                    first.get_or_insert(error);
                }
            }
        }
        match first {
            None => Ok(()),
            Some(error) => Err(Unstored { stored, error }),
        }
    }
}

fn not_compiled(driver: DriverKind) -> Error {
    let name = format!("{driver:?}").to_lowercase();
    Error::config(
        "queue.driver",
        format!("driver {name:?} is not compiled in; enable the `{name}` cargo feature"),
    )
}
