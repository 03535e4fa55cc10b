//! actorbus: an actor-based message bus (WIP skeleton; crate docs come with the core).

mod bus;
mod config;
mod delivery;
mod error;
mod listener;
mod listener_actor;
mod memory_store;
mod message_id;
mod options;
mod queue_actor;
mod registry;
mod retry;
mod runtime;
mod stats;
mod validate;

#[cfg(feature = "amqp")]
mod amqp_config;
#[cfg(feature = "redis")]
mod redis_config;

#[cfg(feature = "amqp")]
pub use amqp_config::AmqpConfig;
pub use bus::Bus;
pub use config::{Config, DriverKind, MemoryConfig, QueueConfig, RetryConfig};
pub use delivery::{Delivery, HandlerResult};
pub use error::{BoxError, Error, Result};
pub use listener::Listener;
pub use message_id::MessageId;
pub use options::{ListenerOptions, PushOptions};
#[cfg(feature = "redis")]
pub use redis_config::RedisConfig;
pub use stats::QueueStats;
