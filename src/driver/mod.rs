//! `Broker`: the bus's door to a broker driver (amqp, redis); the memory driver is the bus's own actors.
//!
//! Each broker driver provides one handle type with the same inherent async
//! methods ([`AmqpBroker`](crate::driver::amqp::broker::AmqpBroker),
//! [`RedisBroker`](crate::driver::redis::broker::RedisBroker)). This enum picks the
//! one the config chose, without boxing a future per call: the memory
//! driver's push path never comes here.
//!
//! The bus has already checked the queue name, the payload size and that it
//! is open before it calls any of these. Every handle runs its broker I/O on
//! the bus's arbiters, never on the caller's runtime, which may be a
//! short-lived test runtime or a plain thread (§4).

// Without a broker feature the enum is empty and every method is unreachable.
#![cfg_attr(
    not(any(feature = "amqp", feature = "redis")),
    allow(unused_variables, dead_code)
)]

#[cfg(feature = "amqp")]
pub(crate) mod amqp;
pub(crate) mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod registry;

#[cfg(feature = "amqp")]
pub use amqp::driver::AmqpDriver;
#[cfg(feature = "redis")]
pub use redis::driver::RedisDriver;

use std::time::Duration;

use crate::config::{Config, DriverKind};
use crate::delivery::{Delivery, Envelope};
use crate::error::{Error, Result};
use crate::listener::{Listener, ListenerSpec};
use crate::runtime::Arbiters;
use crate::stats::QueueStats;

#[cfg(feature = "amqp")]
use crate::driver::amqp::broker::AmqpBroker;
#[cfg(feature = "redis")]
use crate::driver::redis::broker::RedisBroker;

/// The broker driver a bus runs on.
pub(crate) enum Broker {
    /// RabbitMQ through lapin.
    #[cfg(feature = "amqp")]
    Amqp(AmqpBroker),
    /// Redis Streams through deadpool-redis.
    #[cfg(feature = "redis")]
    Redis(RedisBroker),
}

/// Runs `$body` with `$driver` bound to whichever handle `$broker` holds.
macro_rules! on_broker {
    ($broker:expr, $driver:ident => $body:expr) => {
        match *$broker {
            #[cfg(feature = "amqp")]
            Broker::Amqp(ref $driver) => $body,
            #[cfg(feature = "redis")]
            Broker::Redis(ref $driver) => $body,
        }
    };
}

impl Broker {
    /// Connects the driver `config` names; `None` for the memory driver.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a driver this build lacks; the driver's own
    /// connect errors ([`Error::Backend`], [`Error::Timeout`]).
    pub(crate) async fn connect(config: &Config, arbiters: &Arbiters) -> Result<Option<Broker>> {
        // Unused without either broker feature.
        let _ = arbiters;
        match config.queue.driver {
            DriverKind::Memory => Ok(None),
            #[cfg(feature = "amqp")]
            DriverKind::Amqp => Ok(Some(Broker::Amqp(
                AmqpBroker::connect(config, arbiters.clone()).await?,
            ))),
            #[cfg(feature = "redis")]
            DriverKind::Redis => Ok(Some(Broker::Redis(
                RedisBroker::connect(config, arbiters.clone()).await?,
            ))),
            #[allow(unreachable_patterns)]
            other => Err(not_compiled(other)),
        }
    }

    /// Stores `envelope` on `queue` (after `delay`), returning once the
    /// broker confirmed it (§3.1); waits up to `queue.push_timeout` through
    /// an outage (§3.10).
    pub(crate) async fn push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> Result<()> {
        on_broker!(self, d => d.push(queue, envelope, delay).await)
    }

    /// Starts a listener actor on `queue` and returns its handle.
    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        on_broker!(self, d => d.attach(queue, spec).await)
    }

    /// Stops every listener of `queue` (§3.7).
    pub(crate) async fn remove(&self, queue: &str) -> Result<()> {
        on_broker!(self, d => d.remove(queue).await)
    }

    /// Takes one message, acknowledged on hand-over (§3.11).
    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        on_broker!(self, d => d.receive(queue, timeout).await)
    }

    /// Counts `queue`, including `dead` from `<queue>.dead`.
    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats> {
        on_broker!(self, d => d.stats(queue).await)
    }

    /// Drops the ready messages of `queue`.
    pub(crate) async fn purge(&self, queue: &str) -> Result<u64> {
        on_broker!(self, d => d.purge(queue).await)
    }

    /// Stops listeners (waiting up to `timeout` for handlers), returns what
    /// is unacknowledged, flushes confirms and closes connections (§3.8).
    /// `Ok(false)` when handlers were still running at the timeout.
    pub(crate) async fn shutdown(&self, timeout: Duration) -> Result<bool> {
        on_broker!(self, d => d.shutdown(timeout).await)
    }

    /// Fault injection for the supervision tests: panics inside `queue`'s actor.
    pub(crate) async fn crash_queue_actor(&self, queue: &str) -> Result<()> {
        on_broker!(self, d => d.crash_queue_actor(queue).await)
    }
}

fn not_compiled(driver: DriverKind) -> Error {
    let name = format!("{driver:?}").to_lowercase();
    Error::config(
        "queue.driver",
        format!("driver {name:?} is not compiled in; enable the `{name}` cargo feature"),
    )
}
