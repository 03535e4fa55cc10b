//! `RedisConfig`: the `redis.*` keys.

/// The `redis.*` keys of `application.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis.url` (default `redis://127.0.0.1:6379/0`).
    pub url: String,
    /// `redis.pool.max_size`: connections in the pool (default 16).
    pub pool_max_size: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".to_owned(),
            pool_max_size: 16,
        }
    }
}
