//! The tests' private clusters, included by `#[path]` from `tests/support/`
//! (one copy of the code that starts, joins and tears them down): a Redis
//! Cluster of 3 masters and 3 replicas and a 3-node RabbitMQ cluster, on
//! free ports and data directories of their own, gone when dropped.

use std::time::Duration;

use actorbus::Config;

#[path = "../../tests/support/amqp.rs"]
pub(crate) mod amqp;
#[path = "../../tests/support/ports.rs"]
pub(crate) mod ports;
#[path = "../../tests/support/rabbit_cluster.rs"]
pub(crate) mod rabbit_cluster;
#[path = "../../tests/support/rabbit_node.rs"]
pub(crate) mod rabbit_node;
#[path = "../../tests/support/redis.rs"]
pub(crate) mod redis;
#[path = "../../tests/support/redis_cluster.rs"]
pub(crate) mod redis_cluster;

/// The tests' base config, which the cluster configs start from (the same
/// as `tests/support/mod.rs`'s): short retry backoffs, which no bench row
/// meets, since every handler succeeds.
pub(crate) fn fast_config() -> Config {
    let mut config = Config::default();
    config.queue.retry.backoff = Duration::from_millis(10);
    config.queue.retry.max_backoff = Duration::from_millis(50);
    config
}
