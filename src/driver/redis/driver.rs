//! `RedisDriver`: the redis driver's actor — owns the bus's Redis connections and starts one `RedisQueue` per queue.
//!
//! It is the only place queue actors are created, so two concurrent first
//! uses of a queue still make one actor; the bus handle
//! ([`RedisBroker`](crate::driver::redis::broker::RedisBroker)) caches what it learns
//! here. At shutdown it stops every listener, waits for the commands in
//! flight, and closes the connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix::ArbiterHandle;
use futures_util::future::join_all;
use tokio::sync::oneshot;

use crate::channel::retry::RetryPolicy;
use crate::driver::memory::queue::StopListeners;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::pusher::{Inbox, RedisPusher};
use crate::driver::redis::queue::{Idle, RedisQueue};
use crate::driver::redis::wire::Keys;
use crate::runtime::Arbiters;

/// Longest wait at shutdown for the commands in flight (settles, hand-backs)
/// once the listeners stopped.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Settings every queue of a redis bus shares.
#[derive(Debug)]
pub(crate) struct RedisSettings {
    /// Retry and dead-letter decisions.
    pub(crate) retry: RetryPolicy,
    /// How long a push (and any command) may wait through an outage.
    pub(crate) push_timeout: Duration,
    /// `redis.claim_idle`.
    pub(crate) claim_idle: Duration,
    /// The prefix of this bus's consumer names.
    pub(crate) consumer: String,
}

/// The redis driver's actor, one per bus: it owns the bus's Redis
/// connections and starts one supervised queue actor per queue.
///
/// [`Bus::connect`](crate::Bus::connect) starts it when `queue.driver =
/// redis`; it is public so the driver can be named (in docs, in
/// `tracing` output), not driven directly.
pub struct RedisDriver {
    /// The bus's connections, shared with every queue actor.
    link: Arc<RedisLink>,
    /// Settings handed to every queue actor.
    settings: Arc<RedisSettings>,
    /// Where queue actors are placed, in turn.
    arbiters: Arbiters,
    /// Every queue actor of the bus.
    queues: HashMap<Arc<str>, QueueRef>,
}

/// What the bus needs to reach one queue.
#[derive(Clone)]
pub(crate) struct QueueRef {
    /// The queue's actor.
    pub(crate) addr: Addr<RedisQueue>,
    /// Its keys, for the `XADD` of a direct push.
    pub(crate) keys: Keys,
    /// Its push side.
    pub(crate) pusher: Addr<RedisPusher>,
    /// Where pushes wait for it.
    pub(crate) inbox: Arc<Inbox>,
    /// Its arbiter; its listeners run there too, so a delivery and its
    /// verdict never cross threads.
    pub(crate) arbiter: ArbiterHandle,
}

/// Finds a queue, starting its actor when `create` is set.
#[derive(Message)]
#[rtype(result = "Option<QueueRef>")]
pub(crate) struct OpenQueue {
    pub(crate) name: Arc<str>,
    pub(crate) create: bool,
}

/// Stops every listener (waiting up to `timeout` for handlers), lets the
/// commands in flight finish, and closes the connections. Answers whether
/// the handlers finished in time.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Close {
    pub(crate) timeout: Duration,
}

impl RedisDriver {
    pub(crate) fn new(
        link: Arc<RedisLink>,
        settings: Arc<RedisSettings>,
        arbiters: Arbiters,
    ) -> Self {
        RedisDriver {
            link,
            settings,
            arbiters,
            queues: HashMap::new(),
        }
    }
}

impl Actor for RedisDriver {
    type Context = Context<Self>;
}

impl Handler<OpenQueue> for RedisDriver {
    type Result = Option<QueueRef>;

    fn handle(&mut self, msg: OpenQueue, _ctx: &mut Context<Self>) -> Option<QueueRef> {
        if let Some(found) = self.queues.get(&msg.name) {
            return Some(found.clone());
        }
        if !msg.create || self.link.is_closing() {
            return None;
        }
        let arbiter = self.arbiters.next().clone();
        let (name, link, settings) = (msg.name.clone(), self.link.clone(), self.settings.clone());
        let addr =
            Supervisor::start_in_arbiter(&arbiter, move |_| RedisQueue::new(name, link, settings));
        // The next arbiter: storing and delivering use both cores.
        let (keys, link) = (Keys::new(&msg.name), self.link.clone());
        let (queue, pusher_keys) = (addr.clone(), keys.clone());
        let inbox = Arc::new(Inbox::default());
        let pusher_inbox = inbox.clone();
        let pusher = RedisPusher::start_in_arbiter(self.arbiters.next(), move |_| {
            RedisPusher::new(pusher_keys, link, queue, pusher_inbox)
        });
        let queue = QueueRef {
            addr,
            keys,
            pusher,
            inbox,
            arbiter,
        };
        self.queues.insert(msg.name, queue.clone());
        Some(queue)
    }
}

impl Handler<Close> for RedisDriver {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Close, _ctx: &mut Context<Self>) -> Self::Result {
        let queues: Vec<Addr<RedisQueue>> = self.queues.values().map(|q| q.addr.clone()).collect();
        let link = self.link.clone();
        Box::pin(async move {
            let stops = join_all(queues.iter().map(|q| q.send(StopListeners)));
            let drained = tokio::time::timeout(msg.timeout, stops).await.is_ok();
            link.start_closing();
            let idle = join_all(queues.iter().map(|q| {
                let (reply, done) = oneshot::channel();
                q.do_send(Idle { reply });
                done
            }));
            if tokio::time::timeout(DRAIN_LIMIT, idle).await.is_err() {
                tracing::warn!("redis commands still in flight at shutdown; their deliveries will be redelivered");
            }
            link.close();
            drained
        })
    }
}
