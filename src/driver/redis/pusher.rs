//! `RedisPusher`: the push side of one queue on Redis — gathers concurrent pushes into pipelines and answers each once Redis has it.
//!
//! It runs on a different arbiter than the queue's channel when the bus
//! has more than one, so that storing messages and delivering them use both
//! cores. A push is answered only after Redis confirmed its `XADD` (or its
//! `ZADD` into the delay set, after which the channel is told when to
//! look): a push that returned is stored. Through an outage it waits up to
//! `queue.push_timeout`. With `redis.wait_replicas` it is answered only
//! once that many replicas have it too ([`send`]).
//!
//! An immediate push comes here only when it cannot go straight through
//! a shared connection (the caller's actix thread's, or else this
//! arbiter's:
//! [`RedisBroker`](crate::driver::redis::broker::RedisBroker)'s direct path): no
//! such connection yet, or it broke. Delayed pushes always come here.

use std::sync::{Arc, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::channel::actor::ChannelActor;
use crate::channel::messages::Relay;
use crate::delivery::Envelope;
use crate::driver::redis::backend::{RedisBackend, RedisEvent};
use crate::driver::redis::commands;
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::{copy_error, Lane, RedisLink};
use crate::error::{Error, Result};
use crate::timer::deadline;

/// Most pushes sent in one pipeline.
pub(crate) const PUSH_BATCH: usize = 512;
/// Most pipelines in flight; more pushes gather into the next one.
const MAX_IN_FLIGHT: usize = 16;

/// The push side of one queue.
pub(crate) struct RedisPusher {
    /// The queue's keys.
    keys: Keys,
    /// The bus's connections.
    link: Arc<RedisLink>,
    /// The queue's channel, told about delayed messages; `None` until it
    /// started and sent [`Watch`].
    channel: Option<Addr<ChannelActor<RedisBackend>>>,
    /// The latest due time of delayed messages stored before the channel
    /// was known, told to it once it is.
    unsent: Option<Instant>,
    /// Pushes handed over by the bus handles.
    inbox: Arc<Inbox>,
    /// Pipelines in flight.
    pushing: usize,
}

/// A message to store; answered once Redis has it.
pub(crate) struct Push {
    pub(crate) envelope: Envelope,
    pub(crate) delay: Option<Duration>,
    /// When the caller's `queue.push_timeout` runs out.
    pub(crate) deadline: Instant,
    pub(crate) reply: oneshot::Sender<Result<()>>,
}

/// Pushes waiting for the pusher. A push is put here and the actor woken
/// only when the inbox was empty: under load one message and one wake-up
/// carry a whole batch across threads, instead of one each.
#[derive(Default)]
pub(crate) struct Inbox {
    pushes: Mutex<Vec<Push>>,
    /// The pusher's arbiter, once it started: an immediate push from
    /// outside actix sends its `XADD` through that thread's shared
    /// connection, whose I/O runs there (one from an actix thread, through
    /// its own thread's, once made), and comes here only when that
    /// connection is missing or broke.
    pub(crate) home: OnceLock<Home>,
}

/// The arbiter a pusher runs on.
#[derive(Clone)]
pub(crate) struct Home {
    /// Its thread, which keys its shared connection.
    pub(crate) thread: ThreadId,
    /// Where a caller without a timer of its own runs its direct push.
    pub(crate) arbiter: ArbiterHandle,
}

impl Inbox {
    /// Adds every push of `pushes` under one lock; `true` when the pusher
    /// must be sent [`Wake`].
    pub(crate) fn put_all(&self, pushes: impl Iterator<Item = Push>) -> bool {
        let mut inbox = self.pushes.lock().unwrap_or_else(|p| p.into_inner());
        let was_empty = inbox.is_empty();
        inbox.extend(pushes);
        was_empty && !inbox.is_empty()
    }

    fn take(&self) -> Vec<Push> {
        std::mem::take(&mut *self.pushes.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The inbox has pushes.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Wake;

/// The queue's channel started (again): delayed messages are reported there.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Watch(pub(crate) Addr<ChannelActor<RedisBackend>>);

impl RedisPusher {
    pub(crate) fn new(keys: Keys, link: Arc<RedisLink>, inbox: Arc<Inbox>) -> Self {
        RedisPusher {
            keys,
            link,
            channel: None,
            unsent: None,
            inbox,
            pushing: 0,
        }
    }

    /// Tells the channel to look at the delay set no later than `at`.
    fn promote_at(&mut self, at: Instant) {
        match &self.channel {
            Some(channel) => channel.do_send(Relay(RedisEvent::Promote { at })),
            None => self.unsent = self.unsent.max(Some(at)),
        }
    }

    /// Sends what the inbox holds, unless a pipeline is in flight: then
    /// what comes meanwhile gathers into the next one, sent when it returns.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.pushing >= MAX_IN_FLIGHT {
            return;
        }
        let now = Instant::now();
        // A push that waited out its deadline behind a slow pipeline was
        // never stored: it fails now rather than late.
        let (mut outbox, late): (Vec<Push>, Vec<Push>) = self
            .inbox
            .take()
            .into_iter()
            .partition(|p| p.deadline > now);
        for push in late {
            let _ = push.reply.send(Err(Error::Timeout));
        }
        while !outbox.is_empty() {
            let take = outbox.len().min(PUSH_BATCH);
            let batch: Vec<Push> = outbox.drain(..take).collect();
            let parts = batch.iter().map(|p| (&p.envelope, p.delay));
            let (pipe, latest) = commands::push_pipeline(&self.keys, parts);
            let earliest = batch.iter().map(|p| p.deadline).min().unwrap_or(now);
            let limit = earliest.saturating_duration_since(now);
            let (link, keys) = (self.link.clone(), self.keys.clone());
            let sent = async move { send(&link, &keys, pipe, limit).await };
            self.pushing += 1;
            ctx.spawn(sent.into_actor(self).map(move |sent, act, ctx| {
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
                    act.promote_at(deadline(Instant::now(), delay));
                }
                act.flush(ctx);
            }));
        }
    }
}

/// Sends `pipe`, the writes of one push batch to the queue of `keys`,
/// over the shared connection, again after a lost connection, for up to
/// `limit`.
///
/// With `redis.wait_replicas` = N > 0, `WAIT N` follows the writes on the
/// same connection (over the [`Lane::Wait`]), bounded by what is left of
/// `limit`: the batch is confirmed only once N replicas have it, so that it
/// survives the loss of its master. Fewer in time is [`Error::Timeout`]
/// (the writes may be stored all the same, as with any timed-out push).
pub(crate) async fn send(
    link: &RedisLink,
    keys: &Keys,
    mut pipe: redis::Pipeline,
    limit: Duration,
) -> Result<()> {
    let wanted = link.wait_replicas;
    let lane = if wanted > 0 {
        // Ends a little before `limit`, so that a late answer is still
        // read as "too few replicas", never cut off; `WAIT … 0` would
        // block for ever.
        let ms = u64::try_from((limit - limit / 10).as_millis()).unwrap_or(u64::MAX);
        pipe.cmd("WAIT").arg(wanted).arg(ms.max(1));
        Lane::Wait
    } else {
        Lane::Shared
    };
    let (pipe, stream) = (Arc::new(pipe), keys.stream.clone());
    let replies = link
        .run_in(lane, limit, |mut conn| {
            let (pipe, stream) = (pipe.clone(), stream.clone());
            async move { conn.pipeline_at(&stream, &pipe).await }
        })
        .await?;
    if wanted > 0 {
        let acked = match replies.last() {
            Some(redis::Value::Int(n)) => *n,
            _ => 0,
        };
        if acked < i64::from(wanted) {
            tracing::warn!(queue = %keys.queue, acked, wanted, "too few replicas confirmed a push in time (redis.wait_replicas)");
            return Err(Error::Timeout);
        }
    }
    Ok(())
}

impl Actor for RedisPusher {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.inbox.home.get_or_init(|| Home {
            thread: std::thread::current().id(),
            arbiter: Arbiter::current(),
        });
    }
}

impl Handler<Wake> for RedisPusher {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.flush(ctx);
    }
}

impl Handler<Watch> for RedisPusher {
    type Result = ();

    fn handle(&mut self, msg: Watch, _ctx: &mut Context<Self>) {
        self.channel = Some(msg.0);
        if let Some(at) = self.unsent.take() {
            self.promote_at(at);
        }
    }
}
