//! The redis driver: Redis Streams through deadpool-redis.

pub(crate) mod broker;
pub(crate) mod commands;
pub(crate) mod driver;
pub(crate) mod link;
pub(crate) mod member;
pub(crate) mod pusher;
pub(crate) mod queue;
pub(crate) mod scripts;
pub(crate) mod wire;
