//! `RedisConfig`: the `redis.*` keys.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::value::{self, redact_password};

/// The `redis.*` keys of `application.conf`.
///
/// Its `Debug` shows urls without their password (`***`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis.url` (default `redis://127.0.0.1:6379/0`).
    pub url: String,
    /// `redis.cluster` (default empty): nodes of a Redis Cluster (any of
    /// them: the driver learns the rest); when not empty, Cluster mode and
    /// `redis.url` is not used. Every key of a queue then carries the
    /// queue's name as a hash tag (`{<queue>}`, `{<queue>}.delayed`,
    /// `{<queue>}.dead`) so that they share one slot.
    #[serde(deserialize_with = "value::url_list")]
    pub cluster: Vec<String>,
    /// `redis.wait_replicas` (default 0): when more than 0, a push returns
    /// `Ok` only once `WAIT` saw that many replicas have it (within
    /// `queue.push_timeout`; fewer is `Error::Timeout`), so that it
    /// survives the loss of its master. Replication is asynchronous:
    /// without it a failover can lose the last pushes a master confirmed.
    pub wait_replicas: u32,
    /// `redis.pool.max_size`: connections in the pool (default 16). The pool
    /// serves the bus's shared connection and its `receive`s; each listener
    /// reads on a connection of its own, taken out of the pool.
    #[serde(
        rename = "pool",
        serialize_with = "Pool::write",
        deserialize_with = "Pool::read"
    )]
    pub pool_max_size: usize,
    /// `redis.claim_idle` (default 30s): a delivery whose consumer has not
    /// touched it for this long is taken over by a live listener (its
    /// process is presumed dead). Listeners refresh what they hold every
    /// half of it, so a long handler keeps its delivery.
    #[serde(with = "humantime_serde")]
    pub claim_idle: Duration,
    /// `redis.consumer` (default empty: `<host>-<pid>-<bus number>`): the
    /// prefix of this bus's consumer names in the group `actorbus`, each
    /// listener adding `-<listener number>`. Set it to a name stable across
    /// restarts (and distinct between processes) to have a restarted
    /// process take its own unacknowledged entries back at once, instead
    /// of after `claim_idle`.
    pub consumer: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".to_owned(),
            cluster: Vec::new(),
            wait_replicas: 0,
            pool_max_size: 16,
            claim_idle: Duration::from_secs(30),
            consumer: String::new(),
        }
    }
}

/// The `redis.pool` object, which holds the field `pool_max_size` of
/// [`RedisConfig`] as `max_size`.
#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Pool {
    /// `redis.pool.max_size`.
    max_size: usize,
}

impl Pool {
    /// Reads `pool_max_size` from the `redis.pool` object.
    fn read<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
        Pool::deserialize(deserializer).map(|pool| pool.max_size)
    }

    /// Writes `pool_max_size` as the `redis.pool` object.
    fn write<S: Serializer>(max_size: &usize, serializer: S) -> Result<S::Ok, S::Error> {
        Pool {
            max_size: *max_size,
        }
        .serialize(serializer)
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            max_size: RedisConfig::default().pool_max_size,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cluster: Vec<String> = self
            .cluster
            .iter()
            .map(|url| redact_password(url))
            .collect();
        f.debug_struct("RedisConfig")
            .field("url", &redact_password(&self.url))
            .field("cluster", &cluster)
            .field("wait_replicas", &self.wait_replicas)
            .field("pool_max_size", &self.pool_max_size)
            .field("claim_idle", &self.claim_idle)
            .field("consumer", &self.consumer)
            .finish()
    }
}
