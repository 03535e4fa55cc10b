//! `RedisDriver`: the redis driver's actor — owns the bus's Redis connections, runs what needs no channel, and closes everything at shutdown.
//!
//! Channels are created by the generic [`Registry`](crate::driver::registry::Registry)
//! (each with its pusher, see [`RedisBackend`]'s `Open`); this actor keeps
//! the connections they share. Counting or purging a queue this bus never
//! used runs here, on an arbiter, without starting a channel. At shutdown
//! it stops every listener, lets the commands in flight finish, and closes
//! the connections.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix::prelude::*;
use rustc_hash::FxHashMap;

use crate::delivery::{Delivery, Envelope};
use crate::driver::channels::{Channels, DRAIN_LIMIT};
use crate::driver::redis::backend::RedisBackend;
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::operate::{self, Step};
use crate::driver::redis::{commands, pusher, topics};
use crate::error::Result;
use crate::stats::QueueStats;

/// What every queue of a redis bus shares: the connections and settings.
pub(crate) struct RedisShared {
    /// The bus's connections.
    pub(crate) link: Arc<RedisLink>,
    /// How long a push (and any command) may wait through an outage.
    pub(crate) push_timeout: Duration,
    /// `redis.claim_idle`.
    pub(crate) claim_idle: Duration,
    /// The prefix of this bus's consumer names.
    pub(crate) consumer: String,
    /// Queues known to have other keys than an ordinary queue of their
    /// name (topics' subscriber groups, joined or found so on Redis, and
    /// on a Redis Cluster their dead letters), with those keys: their
    /// channels read them.
    pub(crate) groups: RwLock<FxHashMap<Arc<str>, Keys>>,
}

impl RedisShared {
    /// The keys of `queue` as far as this bus knows: a subscriber group's
    /// (or its dead letters') once it is known as one.
    pub(crate) fn keys_of(&self, queue: &str) -> Keys {
        self.known(queue).unwrap_or_else(|| self.link.keys(queue))
    }

    /// The keys of `queue` if it is known as a subscriber group or its
    /// dead letters.
    pub(crate) fn known(&self, queue: &str) -> Option<Keys> {
        self.groups.read().ok()?.get(queue).cloned()
    }

    /// Remembers `keys` when they are not an ordinary queue's.
    pub(crate) fn remember(&self, keys: &Keys) {
        let plain = self.link.keys(&keys.queue);
        if keys.topic.is_some() || keys.stream != plain.stream {
            if let Ok(mut groups) = self.groups.write() {
                groups.insert(keys.queue.clone(), keys.clone());
            }
        }
    }
}

/// The redis driver's actor, one per bus: it owns the bus's Redis
/// connections.
///
/// [`Bus::connect`](crate::Bus::connect) starts it when `queue.driver =
/// redis`.
pub(crate) struct RedisDriver {
    /// The bus's connections, shared with every channel.
    link: Arc<RedisLink>,
    /// The bus's channels, closed at shutdown before the connections.
    channels: Arc<Channels<RedisBackend>>,
    /// `queue.push_timeout`: how long a command may wait through an outage.
    push_timeout: Duration,
    /// Queues that expire unless this bus lives (its reply stream): their
    /// keys' time to live is renewed every [`RENEW_EVERY`].
    expiring: Vec<Keys>,
}

/// The time to live of a queue that expires with its bus.
const EXPIRE_AFTER: Duration = Duration::from_secs(300);
/// How often a living bus renews that time to live.
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// Counts a queue that has no channel.
#[derive(Message)]
#[rtype(result = "Result<QueueStats>")]
pub(crate) struct Count(pub(crate) Keys);

/// Purges a queue that has no channel.
#[derive(Message)]
#[rtype(result = "Result<u64>")]
pub(crate) struct PurgeStream(pub(crate) Keys);

/// Copies the first ready messages of a queue that has no channel.
#[derive(Message)]
#[rtype(result = "Result<Vec<Delivery>>")]
pub(crate) struct PeekStream {
    pub(crate) keys: Keys,
    pub(crate) max: usize,
}

/// One step of a redrive: up to `max` dead letters read after `cursor`.
#[derive(Message)]
#[rtype(result = "Result<Step>")]
pub(crate) struct RedriveStep {
    pub(crate) keys: Keys,
    pub(crate) cursor: String,
    pub(crate) max: usize,
}

/// Publishes to a topic's stream.
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub(crate) struct PublishTopic {
    pub(crate) topic: String,
    pub(crate) envelope: Envelope,
}

/// Makes a topic's group durable (its consumer groups and streams).
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub(crate) struct JoinTopic(pub(crate) Keys);

/// Tells whether a queue name is a topic's subscriber group, answering its keys.
#[derive(Message)]
#[rtype(result = "Result<Keys>")]
pub(crate) struct Resolve(pub(crate) String);

/// Makes a queue's keys expire [`EXPIRE_AFTER`] after this bus stops
/// renewing them: a process that dies leaves them behind for that long.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ExpireWithBus(pub(crate) Keys);

/// Stops every listener (waiting up to `timeout` for handlers), lets the
/// commands in flight finish, and closes the connections. Answers whether
/// the handlers finished in time.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Close {
    pub(crate) timeout: Duration,
    /// Queues whose keys go once nothing reads them (the reply stream).
    pub(crate) doomed: Vec<Keys>,
}

impl RedisDriver {
    pub(crate) fn new(
        link: Arc<RedisLink>,
        channels: Arc<Channels<RedisBackend>>,
        push_timeout: Duration,
    ) -> Self {
        RedisDriver {
            link,
            channels,
            push_timeout,
            expiring: Vec::new(),
        }
    }

    /// Renews the time to live of the expiring queues' keys, after
    /// creating `first`'s stream if need be (a key that does not exist yet
    /// cannot be given one).
    fn renew(&self, first: Option<Keys>) {
        if self.expiring.is_empty() || self.link.is_closing() {
            return;
        }
        let ttl = EXPIRE_AFTER.as_secs();
        // One pipeline per queue: on a Redis Cluster each queue's keys
        // share a slot, but two queues' keys need not.
        let renewals: Vec<(Keys, redis::Pipeline)> = self
            .expiring
            .iter()
            .map(|keys| {
                let mut pipe = redis::pipe();
                for key in [&keys.stream, &keys.delayed, &keys.dead] {
                    pipe.cmd("EXPIRE").arg(&**key).arg(ttl).ignore();
                }
                (keys.clone(), pipe)
            })
            .collect();
        let (link, limit) = (self.link.clone(), self.push_timeout);
        actix::spawn(async move {
            if let Some(keys) = first {
                let _ = commands::ensure_group(link.clone(), keys, limit).await;
            }
            for (keys, pipe) in renewals {
                if let Err(error) = pusher::send(&link, &keys, pipe, limit).await {
                    tracing::debug!(%error, "cannot renew the time to live of the reply stream");
                }
            }
        });
    }
}

impl Actor for RedisDriver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(RENEW_EVERY, |act, _| act.renew(None));
    }
}

impl Handler<Count> for RedisDriver {
    type Result = ResponseFuture<Result<QueueStats>>;

    fn handle(&mut self, msg: Count, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(commands::count(self.link.clone(), msg.0, self.push_timeout))
    }
}

impl Handler<PurgeStream> for RedisDriver {
    type Result = ResponseFuture<Result<u64>>;

    fn handle(&mut self, msg: PurgeStream, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(commands::purge(self.link.clone(), msg.0, self.push_timeout))
    }
}

impl Handler<PeekStream> for RedisDriver {
    type Result = ResponseFuture<Result<Vec<Delivery>>>;

    fn handle(&mut self, msg: PeekStream, _ctx: &mut Context<Self>) -> Self::Result {
        let limit = self.push_timeout;
        Box::pin(operate::peek(self.link.clone(), msg.keys, msg.max, limit))
    }
}

impl Handler<RedriveStep> for RedisDriver {
    type Result = ResponseFuture<Result<Step>>;

    fn handle(&mut self, msg: RedriveStep, _ctx: &mut Context<Self>) -> Self::Result {
        let (link, limit) = (self.link.clone(), self.push_timeout);
        Box::pin(operate::redrive_step(
            link, msg.keys, msg.cursor, msg.max, limit,
        ))
    }
}

impl Handler<PublishTopic> for RedisDriver {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: PublishTopic, _ctx: &mut Context<Self>) -> Self::Result {
        let limit = self.push_timeout;
        Box::pin(topics::publish(
            self.link.clone(),
            msg.topic,
            msg.envelope,
            limit,
        ))
    }
}

impl Handler<JoinTopic> for RedisDriver {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: JoinTopic, _ctx: &mut Context<Self>) -> Self::Result {
        let limit = self.push_timeout;
        Box::pin(topics::join(self.link.clone(), msg.0, limit))
    }
}

impl Handler<Resolve> for RedisDriver {
    type Result = ResponseFuture<Result<Keys>>;

    fn handle(&mut self, msg: Resolve, _ctx: &mut Context<Self>) -> Self::Result {
        let limit = self.push_timeout;
        Box::pin(topics::resolve(self.link.clone(), msg.0, limit))
    }
}

impl Handler<ExpireWithBus> for RedisDriver {
    type Result = ();

    fn handle(&mut self, msg: ExpireWithBus, _ctx: &mut Context<Self>) {
        self.expiring.push(msg.0.clone());
        self.renew(Some(msg.0));
    }
}

impl Handler<Close> for RedisDriver {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Close, _ctx: &mut Context<Self>) -> Self::Result {
        let (link, channels) = (self.link.clone(), self.channels.clone());
        let limit = self.push_timeout.min(DRAIN_LIMIT);
        Box::pin(async move {
            // Each channel's drain starts closing the link (blocked receives
            // give up, readers stop) once the listeners have stopped.
            let drained = channels.close(msg.timeout).await;
            for keys in msg.doomed {
                if let Err(error) = commands::delete(&link, &keys, limit).await {
                    tracing::warn!(stream = %keys.stream, %error, "could not delete a stream of this bus at shutdown");
                }
            }
            link.close();
            drained
        })
    }
}
