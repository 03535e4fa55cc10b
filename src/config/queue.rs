//! `QueueConfig`: the `queue.*` keys shared by every driver, and the
//! `DriverKind` that `queue.driver` names.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::{size, value};

/// Which backend a bus talks to (`queue.driver`), named in lower case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum DriverKind {
    /// In-process queues; no services, nothing survives the process.
    #[default]
    Memory,
    /// RabbitMQ (or any AMQP 0-9-1 broker) through lapin.
    Amqp,
    /// Redis Streams through deadpool-redis.
    Redis,
}

impl<'de> Deserialize<'de> for DriverKind {
    /// Case-insensitive. Whether the driver is compiled in is
    /// `Bus::connect`'s to say: a `Config` can name any driver.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let drivers = [
            ("memory", DriverKind::Memory),
            ("amqp", DriverKind::Amqp),
            ("redis", DriverKind::Redis),
        ];
        value::keyword(deserializer, "driver", &drivers)
    }
}

/// The `queue.*` keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct QueueConfig {
    /// `queue.driver`: `memory` (default), `amqp` or `redis`.
    pub driver: DriverKind,
    /// `queue.default`: the queue `push_default` uses (default `"default"`).
    pub default: String,
    /// `queue.max_payload`: largest payload in bytes (default 16 MiB).
    #[serde(with = "size")]
    pub max_payload: usize,
    /// `queue.push_timeout`: how long a push may wait for room or a broker (default 10 s).
    #[serde(with = "humantime_serde")]
    pub push_timeout: Duration,
    /// `queue.shutdown_timeout`: how long shutdown waits for handlers (default 30 s).
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// `queue.idle_timeout`: a queue's actor that has no listener, holds no
    /// message and gets no call for this long ends, and starts again on the
    /// queue's next use (default 30 s; `0s` keeps every queue's actor).
    /// Memory driver only: the broker drivers keep theirs.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// `queue.retry.*`.
    pub retry: RetryConfig,
    /// `queue.memory.*`.
    pub memory: MemoryConfig,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            driver: DriverKind::Memory,
            default: "default".to_owned(),
            max_payload: 16 * 1024 * 1024,
            push_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            retry: RetryConfig::default(),
            memory: MemoryConfig::default(),
        }
    }
}

/// The `queue.retry.*` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// `queue.retry.max_attempts`: deliveries before a message is dead-lettered (default 5, at least 1).
    pub max_attempts: u32,
    /// `queue.retry.backoff`: wait before the first retry; doubles per attempt (default 200 ms).
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// `queue.retry.max_backoff`: the cap on that wait (default 1 min).
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The `queue.memory.*` keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// `queue.memory.capacity`: messages one queue holds before a push waits (default 100 000).
    pub capacity: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig { capacity: 100_000 }
    }
}
