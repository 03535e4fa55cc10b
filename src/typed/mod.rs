//! Typed queues: a [`Codec`] on top of an ordinary queue, and [`Typed`], the decoded delivery a handler or actor gets.
//!
//! The wire format stays the plain payload (JSON by default), so programs
//! in other languages push and read the same messages.

pub(crate) mod codec;
pub(crate) mod message;
pub(crate) mod queue;
