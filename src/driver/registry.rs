//! `Registry`: the actor that maps queue names to channel actors, one per bus, the same for every driver.
//!
//! It is the only place channel actors are created, so two concurrent first
//! uses of a queue still make one actor. Each channel is placed on the next
//! of the bus's arbiters, and its listeners run there too.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use crate::channel::actor::ChannelActor;
use crate::channel::backend::Backend;
use crate::channel::retry::RetryPolicy;
use crate::config::DriverKind;
use crate::observe::Observer;
use crate::runtime::Arbiters;

/// How a driver makes the backend of a new channel.
pub(crate) trait Open: Backend {
    /// What the bus keeps beside a channel's address, for pushes that skip
    /// the channel's mailbox or reply (memory: its capacity gauge; redis:
    /// its pusher).
    type Front: Send + Sync + 'static;
    /// The driver's shared state every new backend needs.
    type Driver: Send + Unpin + 'static;
    /// Which driver this is, for metric labels and span fields.
    const KIND: DriverKind;

    /// The backend of channel `name`, and its front.
    fn open(
        driver: &Self::Driver,
        name: &Arc<str>,
        arbiters: &Arbiters,
        registry: &Addr<Registry<Self>>,
    ) -> (Self, Self::Front);
}

/// What the bus needs to reach one queue.
pub(crate) struct Channel<B: Open> {
    /// The queue's channel actor.
    pub(crate) addr: Addr<ChannelActor<B>>,
    /// The arbiter it runs on; its listeners run there too, so a delivery
    /// and its acknowledgement never cross threads.
    pub(crate) arbiter: ArbiterHandle,
    /// The driver's extra handle on it.
    pub(crate) front: B::Front,
    /// Its metric handles and span fields, shared with its listeners.
    pub(crate) observer: Arc<Observer>,
}

/// The registry's actor.
pub(crate) struct Registry<B: Open> {
    /// Every channel of the bus.
    channels: HashMap<Arc<str>, Arc<Channel<B>>>,
    /// Where new channels are placed, in turn.
    arbiters: Arbiters,
    /// Retry settings handed to every new channel.
    retry: Arc<RetryPolicy>,
    /// What new backends are made from.
    driver: B::Driver,
    /// Closed at shutdown: no new channel after that.
    closed: bool,
}

/// Finds a channel, starting it when `create` is set.
#[derive(Message)]
#[rtype(result = "Option<Arc<Channel<B>>>")]
pub(crate) struct Lookup<B: Open> {
    pub(crate) name: Arc<str>,
    pub(crate) create: bool,
    pub(crate) marker: std::marker::PhantomData<fn() -> B>,
}

/// Every channel, and no new one from now on (shutdown).
#[derive(Message)]
#[rtype(result = "Vec<Arc<Channel<B>>>")]
pub(crate) struct CloseAll<B: Open>(pub(crate) std::marker::PhantomData<fn() -> B>);

impl<B: Open> Registry<B> {
    pub(crate) fn new(arbiters: Arbiters, retry: Arc<RetryPolicy>, driver: B::Driver) -> Self {
        Registry {
            channels: HashMap::new(),
            arbiters,
            retry,
            driver,
            closed: false,
        }
    }

    /// The channel of `name`, started on first use (`None` once closed).
    pub(crate) fn get_or_start(
        &mut self,
        name: Arc<str>,
        ctx: &mut Context<Self>,
    ) -> Option<Arc<Channel<B>>> {
        if let Some(channel) = self.channels.get(&name) {
            return Some(channel.clone());
        }
        if self.closed {
            return None;
        }
        let (backend, front) = B::open(&self.driver, &name, &self.arbiters, &ctx.address());
        let arbiter = self.arbiters.next().clone();
        let observer = Arc::new(Observer::new(&name, B::KIND));
        let (queue, retry, observed) = (name.clone(), self.retry.clone(), observer.clone());
        let addr = Supervisor::start_in_arbiter(&arbiter, move |_| {
            ChannelActor::new(queue, retry, backend, observed)
        });
        tracing::debug!(queue = %name, "channel started");
        let channel = Arc::new(Channel {
            addr,
            arbiter,
            front,
            observer,
        });
        self.channels.insert(name, channel.clone());
        Some(channel)
    }
}

impl<B: Open> Actor for Registry<B> {
    type Context = Context<Self>;
}

impl<B: Open> Handler<Lookup<B>> for Registry<B> {
    type Result = Option<Arc<Channel<B>>>;

    fn handle(&mut self, msg: Lookup<B>, ctx: &mut Context<Self>) -> Self::Result {
        if msg.create {
            self.get_or_start(msg.name, ctx)
        } else {
            self.channels.get(&msg.name).cloned()
        }
    }
}

impl<B: Open> Handler<CloseAll<B>> for Registry<B> {
    type Result = Vec<Arc<Channel<B>>>;

    fn handle(&mut self, _: CloseAll<B>, _ctx: &mut Context<Self>) -> Self::Result {
        self.closed = true;
        self.channels.values().cloned().collect()
    }
}
