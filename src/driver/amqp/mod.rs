//! The amqp driver: RabbitMQ through lapin.

pub(crate) mod broker;
pub(crate) mod consumer;
pub(crate) mod driver;
pub(crate) mod link;
pub(crate) mod queue;
pub(crate) mod receive;
pub(crate) mod shared;
pub(crate) mod tags;
pub(crate) mod wire;
