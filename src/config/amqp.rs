//! `AmqpConfig`: the `amqp.*` keys.

use std::time::Duration;

/// The `amqp.*` keys of `application.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AmqpConfig {
    /// `amqp.url` (default `amqp://guest:guest@127.0.0.1:5672/%2f`).
    pub url: String,
    /// `amqp.prefetch`: the most unacknowledged deliveries one consumer holds (default 256).
    pub prefetch: u16,
    /// `amqp.heartbeat` (default 10 s).
    pub heartbeat: Duration,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            prefetch: 256,
            heartbeat: Duration::from_secs(10),
        }
    }
}
