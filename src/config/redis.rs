//! `RedisConfig`: the `redis.*` keys.

use std::fmt;
use std::time::Duration;

use crate::config::value::redact_password;

/// The `redis.*` keys of `application.conf`.
///
/// Its `Debug` shows urls without their password (`***`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis.url` (default `redis://127.0.0.1:6379/0`).
    pub url: String,
    /// `redis.cluster` (default empty): the nodes of a Redis Cluster; when
    /// not empty, Cluster mode. Parsed and checked, but not used by the
    /// driver yet: it connects to `redis.url`.
    pub cluster: Vec<String>,
    /// `redis.wait_replicas` (default 0): when more than 0, a push would
    /// return after `WAIT` saw that many replicas. Parsed and checked, but
    /// not used by the driver yet.
    pub wait_replicas: u32,
    /// `redis.pool.max_size`: connections in the pool (default 16). The pool
    /// serves the bus's shared connection and its `receive`s; each listener
    /// reads on a connection of its own, taken out of the pool.
    pub pool_max_size: usize,
    /// `redis.claim_idle` (default 30s): a delivery whose consumer has not
    /// touched it for this long is taken over by a live listener (its
    /// process is presumed dead). Listeners refresh what they hold every
    /// half of it, so a long handler keeps its delivery.
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
