//! `AmqpConfig`: the `amqp.*` keys.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::config::value::{self, redact_password};

/// The `amqp.*` keys of `application.conf`.
///
/// Its `Debug` shows urls without their password (`***`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AmqpConfig {
    /// `amqp.url` (default `amqp://guest:guest@127.0.0.1:5672/%2f`).
    pub url: String,
    /// `amqp.urls` (default empty): the nodes of a RabbitMQ cluster, which
    /// win over `amqp.url` when given. Every connect and reconnect tries
    /// them in a random order (the node just lost last), so losing the node
    /// the bus is connected to moves it to another one.
    #[serde(deserialize_with = "value::url_list")]
    pub urls: Vec<String>,
    /// `amqp.queue_type`: `classic` (default) or `quorum`, the type of the
    /// queues the bus declares (`<q>`, `<q>.dead`, topic groups; the wait
    /// queues of delays and retries stay classic). A queue that already
    /// exists with the other type is an [`Error::Config`](crate::Error::Config)
    /// naming this key when the bus first uses it.
    pub queue_type: AmqpQueueType,
    /// `amqp.prefetch`: the most unacknowledged deliveries one consumer holds (default 256).
    pub prefetch: u16,
    /// `amqp.heartbeat` (default 10 s).
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// `amqp.redelivery_lease` (default 1m): how long a redelivered message
    /// may be handled before it is counted as a delivery that ended
    /// without a verdict and comes back (see the README, "Poison
    /// messages"). A handler slower than this gets a duplicate.
    #[serde(with = "humantime_serde")]
    pub redelivery_lease: Duration,
}

/// The kind of RabbitMQ queue (`amqp.queue_type`), named in lower case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AmqpQueueType {
    /// A classic queue, on one node.
    #[default]
    Classic,
    /// A quorum queue, replicated over the cluster.
    Quorum,
}

impl<'de> Deserialize<'de> for AmqpQueueType {
    /// Case-insensitive.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kinds = [
            ("classic", AmqpQueueType::Classic),
            ("quorum", AmqpQueueType::Quorum),
        ];
        value::keyword(deserializer, "queue type", &kinds)
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            urls: Vec::new(),
            queue_type: AmqpQueueType::Classic,
            prefetch: 256,
            heartbeat: Duration::from_secs(10),
            redelivery_lease: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|url| redact_password(url)).collect();
        f.debug_struct("AmqpConfig")
            .field("url", &redact_password(&self.url))
            .field("urls", &urls)
            .field("queue_type", &self.queue_type)
            .field("prefetch", &self.prefetch)
            .field("heartbeat", &self.heartbeat)
            .field("redelivery_lease", &self.redelivery_lease)
            .finish()
    }
}
