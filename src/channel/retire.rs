//! Retirement: a channel that stayed idle for `queue.idle_timeout` ends, and the next use of its queue starts a fresh one.
//!
//! A channel is idle when it has no listeners, holds no delivery, and its
//! backend holds nothing (memory: no message, no waiting push or receive)
//! and agrees to seal itself (memory: its [`Room`](crate::driver::memory::room::Room)
//! refuses every push from then on, so no push can land in it). It then
//! tells its registry, which forgets it, and forwards whatever still
//! reaches it (a request sent through a stale handle) to the channel that
//! replaces it. Once the last handle is gone the actor ends: a million
//! one-off queue names do not keep a million actors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use futures_util::future::BoxFuture;

use crate::channel::actor::ChannelActor;
use crate::channel::backend::Backend;

/// How a channel reaches its registry when it retires.
pub(crate) trait Succession<B: Backend>: Send + Sync {
    /// This channel retired: forget it.
    fn retired(&self);
    /// The channel that replaces this one (started if needed); `None` once
    /// the bus is shut down.
    fn successor(&self) -> BoxFuture<'static, Option<Addr<ChannelActor<B>>>>;
}

/// One channel's idle watch.
pub(crate) struct Retirement<B: Backend> {
    /// How long without any message makes an idle channel retire; zero never.
    pub(crate) idle: Duration,
    /// Set once retired; shared with the bus's handle on the channel, so
    /// that no new request is sent here.
    pub(crate) flag: Arc<AtomicBool>,
    /// The registry's side.
    pub(crate) succession: Arc<dyn Succession<B>>,
    /// Messages handled so far (wrapping): unchanged over a whole period
    /// means nothing happened in it.
    pub(crate) touched: u64,
    /// `touched` at the last check.
    pub(crate) seen: u64,
}

impl<B: Backend> Retirement<B> {
    pub(crate) fn new(
        idle: Duration,
        flag: Arc<AtomicBool>,
        succession: Arc<dyn Succession<B>>,
    ) -> Self {
        Retirement {
            idle,
            flag,
            succession,
            touched: 0,
            seen: 0,
        }
    }

    /// Whether this channel retired: every message is then forwarded.
    #[inline(always)]
    pub(crate) fn is_retired(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Whether nothing reached the channel since the last check (and
    /// starts the next period).
    pub(crate) fn quiet_since_last_check(&mut self) -> bool {
        let quiet = self.touched == self.seen;
        self.seen = self.touched;
        quiet
    }

    /// Marks the channel retired and tells the registry.
    pub(crate) fn retire(&self) {
        self.flag.store(true, Ordering::Release);
        self.succession.retired();
    }

    /// Sends `msg`, which reached this retired channel, to its successor.
    pub(crate) fn forward<M>(&self, msg: M)
    where
        M: Message<Result = ()> + Send + 'static,
        ChannelActor<B>: Handler<M>,
        <ChannelActor<B> as Actor>::Context: ToEnvelope<ChannelActor<B>, M>,
    {
        let successor = self.succession.successor();
        actix::spawn(async move {
            match successor.await {
                Some(next) => next.do_send(msg),
                // Only after shutdown: the request's answer reports `Closed`.
                None => tracing::debug!("request to a retired channel after shutdown dropped"),
            }
        });
    }
}
