//! `AmqpBroker`: the bus's handle on the amqp driver. (Placeholder until the driver lands.)

use std::time::Duration;

use crate::broker::ListenerSpec;
use crate::config::Config;
use crate::delivery::{Delivery, Envelope};
use crate::error::{Error, Result};
use crate::listener::Listener;
use crate::runtime::Arbiters;
use crate::stats::QueueStats;

/// The bus's handle on the amqp driver.
pub(crate) struct AmqpBroker {
    _private: (),
}

impl AmqpBroker {
    pub(crate) async fn connect(_config: &Config, _arbiters: Arbiters) -> Result<Self> {
        Err(Error::config(
            "queue.driver",
            "driver \"amqp\" is not available yet in this version of actorbus",
        ))
    }

    pub(crate) async fn push(
        &self,
        _queue: &str,
        _envelope: Envelope,
        _delay: Option<Duration>,
    ) -> Result<()> {
        unreachable!("never connected")
    }

    pub(crate) async fn attach(&self, _queue: &str, _spec: ListenerSpec) -> Result<Listener> {
        unreachable!("never connected")
    }

    pub(crate) async fn remove(&self, _queue: &str) -> Result<()> {
        unreachable!("never connected")
    }

    pub(crate) async fn receive(&self, _queue: &str, _timeout: Duration) -> Result<Delivery> {
        unreachable!("never connected")
    }

    pub(crate) async fn stats(&self, _queue: &str) -> Result<QueueStats> {
        unreachable!("never connected")
    }

    pub(crate) async fn purge(&self, _queue: &str) -> Result<u64> {
        unreachable!("never connected")
    }

    pub(crate) async fn shutdown(&self, _timeout: Duration) -> Result<bool> {
        unreachable!("never connected")
    }

    pub(crate) async fn crash_queue_actor(&self, _queue: &str) -> Result<()> {
        unreachable!("never connected")
    }
}
