//! `RedisPusher`: the push side of one queue on Redis — gathers concurrent pushes into pipelines and answers each once Redis has it.
//!
//! It runs on a different arbiter than the queue's [`RedisQueue`] when the
//! bus has more than one, so that storing messages and delivering them use
//! both cores. A push is answered only after Redis confirmed its `XADD` (or
//! its `ZADD` into the delay set, after which the queue actor is told when
//! to look) (§3.1); through an outage it waits up to `queue.push_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::delivery::Envelope;
use crate::error::Result;
use crate::redis_link::{copy_error, RedisLink};
use crate::redis_queue::{Promote, RedisQueue};
use crate::redis_reader;
use crate::redis_wire::Keys;

/// Most pushes sent in one pipeline.
const PUSH_BATCH: usize = 512;

/// The push side of one queue.
pub(crate) struct RedisPusher {
    /// The queue's keys.
    keys: Keys,
    /// The bus's connections.
    link: Arc<RedisLink>,
    /// `queue.push_timeout`.
    push_timeout: Duration,
    /// The queue's actor, told about delayed messages.
    queue: Addr<RedisQueue>,
    /// Pushes waiting for the next pipeline.
    outbox: Vec<Push>,
    /// A `Flush` is already queued.
    flush_queued: bool,
    /// Pipelines in flight.
    pushing: usize,
}

/// Stores a message; answered once Redis has it (§3.1).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Push {
    pub(crate) envelope: Envelope,
    pub(crate) delay: Option<Duration>,
    pub(crate) reply: oneshot::Sender<Result<()>>,
}

/// Internal: sends the waiting pushes.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl RedisPusher {
    pub(crate) fn new(
        keys: Keys,
        link: Arc<RedisLink>,
        push_timeout: Duration,
        queue: Addr<RedisQueue>,
    ) -> Self {
        RedisPusher {
            keys,
            link,
            push_timeout,
            queue,
            outbox: Vec::new(),
            flush_queued: false,
            pushing: 0,
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_queued = false;
        while !self.outbox.is_empty() {
            let take = self.outbox.len().min(PUSH_BATCH);
            let batch: Vec<Push> = self.outbox.drain(..take).collect();
            let parts = batch.iter().map(|p| (&p.envelope, p.delay));
            let (pipe, latest) = redis_reader::push_pipeline(&self.keys, parts);
            let (link, limit) = (self.link.clone(), self.push_timeout);
            let sent = async move { redis_reader::send(&link, pipe, limit).await };
            self.pushing += 1;
            ctx.spawn(sent.into_actor(self).map(move |sent, act, _| {
                act.pushing -= 1;
                for push in batch {
                    let _ = push.reply.send(match &sent {
                        Ok(()) => Ok(()),
                        Err(e) => Err(copy_error(e)),
                    });
                }
                if let (Ok(()), Some(delay)) = (&sent, latest) {
                    // The latest due time covers the batch: earlier ones are
                    // moved by the same run.
                    act.queue.do_send(Promote {
                        at: Instant::now() + delay,
                    });
                }
            }));
        }
    }
}

impl Actor for RedisPusher {
    type Context = Context<Self>;
}

impl Handler<Push> for RedisPusher {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Context<Self>) {
        self.outbox.push(msg);
        if self.pushing == 0 {
            // Nothing in flight: send at once (latency). Under load the
            // pushes that come meanwhile gather into the next pipeline.
            self.flush(ctx);
        } else if !self.flush_queued {
            self.flush_queued = true;
            ctx.notify(Flush);
        }
    }
}

impl Handler<Flush> for RedisPusher {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) {
        self.flush(ctx);
    }
}
