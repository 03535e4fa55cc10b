//! The channel: one queue's supervised actor, the same for every driver, over a driver's [`Backend`](backend::Backend).
//!
//! - `actor`: [`ChannelActor`](actor::ChannelActor), its handlers and panic guard;
//! - `core`: listeners, held deliveries and verdicts, kept for every driver;
//! - `backend`: the trait a driver implements for one queue;
//! - `messages`: what listeners, the bus and drivers send a channel;
//! - `subscribers`: which listener gets the next message;
//! - `retire`: idle channels end, and what reaches them after goes to their successor;
//! - `retry`: retry-or-dead-letter decisions and the why-headers;
//! - `suspect`: what a redelivery after an unfinished delivery counts as (poison messages);
//! - `redrive`: what a dead letter becomes when it is moved back to its queue.

pub(crate) mod actor;
pub(crate) mod backend;
pub(crate) mod core;
pub(crate) mod messages;
pub(crate) mod redrive;
pub(crate) mod retire;
pub(crate) mod retry;
pub(crate) mod subscribers;
pub(crate) mod suspect;
