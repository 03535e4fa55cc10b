//! The channel: one queue's supervised actor, its messages, its listeners and its retry rules.

pub(crate) mod messages;
pub(crate) mod retry;
pub(crate) mod subscribers;
