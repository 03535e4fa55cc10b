//! The amqp driver: RabbitMQ through lapin.
//!
//! - `broker`: [`AmqpBroker`](broker::AmqpBroker), the bus's handle, and how a channel's backend is opened;
//! - `backend`: [`AmqpBackend`](backend::AmqpBackend), the I/O of one queue under its channel actor;
//! - `consumer`: one listener's consumer channel and its relay task;
//! - `lease`: lease queues, which count a redelivery before its handler starts;
//! - `tags`: unsettled delivery tags per consumer channel, acks and nacks;
//! - `receive`: `receive` by `basic.get` polling;
//! - `replies`: direct reply-to, the requester's side;
//! - `target`: where a publish goes;
//! - `operate`: peek and redrive, by `basic.get` without acknowledgement;
//! - `connect`: which node of `amqp.urls` to connect to, and opening a link's connections;
//! - `batch`: a batch of pushes published with every confirm in flight at once;
//! - `driver`: [`AmqpDriver`](driver::AmqpDriver), connections, confirmed publishes, reconnection;
//! - `link`: one generation of connections and the broker operations on it;
//! - `shared`: settings and handles every channel shares, counting and purging;
//! - `wire`: queue names, wait queues, message properties.

pub(crate) mod backend;
pub(crate) mod batch;
pub(crate) mod broker;
pub(crate) mod connect;
pub(crate) mod consumer;
pub(crate) mod driver;
pub(crate) mod lease;
pub(crate) mod link;
pub(crate) mod operate;
pub(crate) mod receive;
pub(crate) mod replies;
pub(crate) mod shared;
pub(crate) mod tags;
pub(crate) mod target;
pub(crate) mod wire;
