//! `Registry`: the actor that maps queue names to their queue actors, one registry per bus.
//!
//! It is the only place queue actors are created, so two concurrent first
//! pushes to a queue still make one actor. The bus caches what it learns
//! here, so the registry is off the hot path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix::ArbiterHandle;
use futures_util::future::join_all;

use crate::channel::retry::RetryPolicy;
use crate::delivery::Envelope;
use crate::driver::memory::queue::{Enqueue, QueueActor, StopListeners};
use crate::driver::memory::room::{Admission, Room};
use crate::runtime::Arbiters;

/// Settings every queue of a bus shares.
#[derive(Debug)]
pub(crate) struct QueueSettings {
    /// Messages one queue holds before pushes wait.
    pub(crate) capacity: usize,
    /// How long a push may wait for room.
    pub(crate) push_timeout: Duration,
    /// Retry and dead-letter decisions.
    pub(crate) retry: RetryPolicy,
}

/// The registry's actor.
pub(crate) struct Registry {
    /// Every queue of the bus.
    queues: HashMap<Arc<str>, Arc<QueueHandle>>,
    /// Where new queue actors are placed, in turn.
    arbiters: Arbiters,
    /// Settings handed to every new queue.
    settings: Arc<QueueSettings>,
}

/// What the bus needs to reach one queue.
pub(crate) struct QueueHandle {
    /// The queue's actor.
    pub(crate) addr: Addr<QueueActor>,
    /// The arbiter it runs on; its listeners run there too, so a delivery
    /// and its acknowledgement never cross threads.
    pub(crate) arbiter: ArbiterHandle,
    /// Its capacity gauge, for pushes that do not wait for a reply.
    pub(crate) room: Arc<Room>,
}

/// Finds a queue, starting its actor when `create` is set.
#[derive(Message)]
#[rtype(result = "Option<Arc<QueueHandle>>")]
pub(crate) struct Lookup {
    pub(crate) name: Arc<str>,
    pub(crate) create: bool,
}

/// Moves a message into a dead-letter queue, creating that queue if needed.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct DeadLetter {
    pub(crate) queue: String,
    pub(crate) envelope: Envelope,
}

/// Stops every listener of every queue, waiting at most `timeout`.
#[derive(Message)]
#[rtype(result = "bool")]
pub(crate) struct Shutdown {
    pub(crate) timeout: Duration,
}

impl Registry {
    pub(crate) fn new(arbiters: Arbiters, settings: Arc<QueueSettings>) -> Self {
        Registry {
            queues: HashMap::new(),
            arbiters,
            settings,
        }
    }

    fn get_or_start(&mut self, name: Arc<str>, ctx: &mut Context<Self>) -> Arc<QueueHandle> {
        if let Some(handle) = self.queues.get(&name) {
            return handle.clone();
        }
        let registry = ctx.address();
        let settings = self.settings.clone();
        let room = Arc::new(Room::new(settings.capacity));
        let queue_name = name.clone();
        let arbiter = self.arbiters.next().clone();
        let queue_room = room.clone();
        let addr = Supervisor::start_in_arbiter(&arbiter, move |_| {
            QueueActor::new(queue_name, settings, registry, queue_room)
        });
        tracing::debug!(queue = %name, "queue actor started");
        let handle = Arc::new(QueueHandle {
            addr,
            arbiter,
            room,
        });
        self.queues.insert(name, handle.clone());
        handle
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Handler<Lookup> for Registry {
    type Result = Option<Arc<QueueHandle>>;

    fn handle(&mut self, msg: Lookup, ctx: &mut Context<Self>) -> Self::Result {
        if msg.create {
            Some(self.get_or_start(msg.name, ctx))
        } else {
            self.queues.get(&msg.name).cloned()
        }
    }
}

impl Handler<DeadLetter> for Registry {
    type Result = ();

    fn handle(&mut self, msg: DeadLetter, ctx: &mut Context<Self>) {
        let queue = self.get_or_start(msg.queue.into(), ctx);
        queue.addr.do_send(Enqueue {
            envelope: msg.envelope,
            delay: None,
            admission: Admission::Forced,
        });
    }
}

impl Handler<Shutdown> for Registry {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let stops: Vec<_> = self
            .queues
            .values()
            .map(|q| q.addr.send(StopListeners))
            .collect();
        Box::pin(async move {
            tokio::time::timeout(msg.timeout, join_all(stops))
                .await
                .is_ok()
        })
    }
}
