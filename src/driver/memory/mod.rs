//! The memory driver: queues kept in the process.

pub(crate) mod queue;
pub(crate) mod room;
pub(crate) mod store;
pub(crate) mod waiters;
