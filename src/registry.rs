//! `Registry`: the actor that maps queue names to their queue actors, one registry per bus.
//!
//! It is the only place queue actors are created, so two concurrent first
//! pushes to a queue still make one actor. The bus caches what it learns
//! here, so the registry is off the hot path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::join_all;

use crate::delivery::Envelope;
use crate::queue_actor::{Enqueue, QueueActor, QueueSettings, StopListeners};
use crate::runtime::Arbiters;

/// The registry's actor.
pub(crate) struct Registry {
    /// Every queue of the bus.
    queues: HashMap<Arc<str>, Addr<QueueActor>>,
    /// Where new queue actors are placed, in turn.
    arbiters: Arbiters,
    /// Settings handed to every new queue.
    settings: Arc<QueueSettings>,
}

/// Finds a queue's actor, starting it when `create` is set.
#[derive(Message)]
#[rtype(result = "Option<Addr<QueueActor>>")]
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

    fn get_or_start(&mut self, name: Arc<str>, ctx: &mut Context<Self>) -> Addr<QueueActor> {
        if let Some(addr) = self.queues.get(&name) {
            return addr.clone();
        }
        let registry = ctx.address();
        let settings = self.settings.clone();
        let queue_name = name.clone();
        let addr = Supervisor::start_in_arbiter(self.arbiters.next(), move |_| {
            QueueActor::new(queue_name, settings, registry)
        });
        tracing::debug!(queue = %name, "queue actor started");
        self.queues.insert(name, addr.clone());
        addr
    }
}

impl Actor for Registry {
    type Context = Context<Self>;
}

impl Handler<Lookup> for Registry {
    type Result = Option<Addr<QueueActor>>;

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
        queue.do_send(Enqueue {
            envelope: msg.envelope,
            delay: None,
            reply: None,
        });
    }
}

impl Handler<Shutdown> for Registry {
    type Result = ResponseFuture<bool>;

    fn handle(&mut self, msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        let stops: Vec<_> = self
            .queues
            .values()
            .map(|q| q.send(StopListeners))
            .collect();
        Box::pin(async move {
            tokio::time::timeout(msg.timeout, join_all(stops))
                .await
                .is_ok()
        })
    }
}
