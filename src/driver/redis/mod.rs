//! The redis driver: Redis Streams through deadpool-redis.
//!
//! - `broker`: [`RedisBroker`](broker::RedisBroker), the bus's handle, with the direct push path;
//! - `driver`: [`RedisDriver`](driver::RedisDriver), the actor that owns the connections;
//! - `backend`: one queue's I/O under its channel actor, and (`backend::reader`) each
//!   listener's reads and the reaper;
//! - `pusher`: pipelined pushes on another arbiter;
//! - `operate`: peek, and redrive in atomic steps;
//! - `topics`: publishing to every subscriber group's stream, and joining a group;
//! - `commands`, `scripts`, `link`, `conn`, `wire`: Redis commands, Lua scripts, connections
//!   (to one Redis or a Redis Cluster), layout.

pub(crate) mod backend;
pub(crate) mod broker;
pub(crate) mod commands;
pub(crate) mod conn;
pub(crate) mod driver;
pub(crate) mod link;
pub(crate) mod operate;
pub(crate) mod pusher;
pub(crate) mod scripts;
pub(crate) mod topics;
pub(crate) mod wire;
