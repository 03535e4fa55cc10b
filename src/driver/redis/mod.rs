//! The redis driver: Redis Streams through deadpool-redis.
//!
//! - `broker`: [`RedisBroker`](broker::RedisBroker), the bus's handle, with the direct push path;
//! - `driver`: [`RedisDriver`](driver::RedisDriver), the actor that owns the connections;
//! - `backend`: one queue's I/O under its channel actor, and (`backend::reader`) each
//!   listener's reads and the reaper;
//! - `pusher`: pipelined pushes on another arbiter;
//! - `watchdog`: the deadlines of direct pushes from callers that may have no timer;
//! - `operate`: peek, and redrive in atomic steps;
//! - `receive`: the one-shot `receive`;
//! - `topics`: publishing to a topic's stream, joining a group (a consumer
//!   group on it), and telling a group's queue name from a queue's;
//! - `commands`, `scripts`, `link`, `pools`, `conn`, `cluster_pool`, `keys`, `wire`: Redis
//!   commands, Lua scripts, connections (the bus's shared ones and reconnection; the pool of one
//!   Redis or a Redis Cluster; the cluster pool's manager), the keys of a queue, layout.

pub(crate) mod backend;
pub(crate) mod broker;
pub(crate) mod cluster_pool;
pub(crate) mod commands;
pub(crate) mod conn;
pub(crate) mod driver;
pub(crate) mod keys;
pub(crate) mod link;
pub(crate) mod operate;
pub(crate) mod pools;
pub(crate) mod pusher;
pub(crate) mod receive;
pub(crate) mod scripts;
pub(crate) mod topics;
pub(crate) mod watchdog;
pub(crate) mod wire;
