//! `RedisConfig`: the `redis.*` keys.

use std::time::Duration;

/// The `redis.*` keys of `application.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis.url` (default `redis://127.0.0.1:6379/0`).
    pub url: String,
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
            pool_max_size: 16,
            claim_idle: Duration::from_secs(30),
            consumer: String::new(),
        }
    }
}
