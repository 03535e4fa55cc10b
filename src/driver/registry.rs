//! `Registry`: the actor that maps queue names to channel actors, one per bus, the same for every driver.
//!
//! It is the only place channel actors are created, so two concurrent first
//! uses of a queue still make one actor. Each channel is placed on the next
//! of the bus's arbiters, and its listeners run there too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::BoxFuture;
use rustc_hash::FxHashMap;

use crate::channel::actor::ChannelActor;
use crate::channel::backend::Backend;
use crate::channel::retire::{Retirement, Succession};
use crate::channel::retry::RetryPolicy;
use crate::config::DriverKind;
use crate::driver::reclaim::{self, Next, Reclaim};
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
    /// Set when the channel retired: a handle that sees it looks the queue
    /// up again.
    pub(crate) retired: Arc<AtomicBool>,
}

impl<B: Open> Channel<B> {
    /// Whether the channel retired (idle), so that its queue needs a new one.
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }
}

/// The channels a bus handle already looked up, shared with the registry,
/// which takes retired ones out.
pub(crate) type Cache<B> = Arc<RwLock<FxHashMap<Arc<str>, Arc<Channel<B>>>>>;

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
    /// `queue.idle_timeout`, handed to every new channel.
    idle: Duration,
    /// The bus handle's cache of channels.
    cache: Cache<B>,
    /// Retirements since memory was last returned to the system.
    reclaim: Reclaim,
}

/// Finds a channel, starting it when `create` is set.
#[derive(Message)]
#[rtype(result = "Option<Arc<Channel<B>>>")]
pub(crate) struct Lookup<B: Open> {
    pub(crate) name: Arc<str>,
    pub(crate) create: bool,
    pub(crate) marker: std::marker::PhantomData<fn() -> B>,
}

/// A channel retired: forget it (unless it was already replaced).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Retired {
    pub(crate) name: Arc<str>,
    pub(crate) flag: Arc<AtomicBool>,
}

/// A channel's way back to its registry ([`Succession`]).
struct RegistryLink<B: Open> {
    registry: Addr<Registry<B>>,
    name: Arc<str>,
    flag: Arc<AtomicBool>,
}

impl<B: Open> Succession<B> for RegistryLink<B> {
    fn retired(&self) {
        self.registry.do_send(Retired {
            name: self.name.clone(),
            flag: self.flag.clone(),
        });
    }

    fn successor(&self) -> BoxFuture<'static, Option<Addr<ChannelActor<B>>>> {
        let lookup = self.registry.send(Lookup {
            name: self.name.clone(),
            create: true,
            marker: std::marker::PhantomData,
        });
        Box::pin(async move { lookup.await.ok().flatten().map(|c| c.addr.clone()) })
    }
}

/// Every channel, and no new one from now on (shutdown).
#[derive(Message)]
#[rtype(result = "Vec<Arc<Channel<B>>>")]
pub(crate) struct CloseAll<B: Open>(pub(crate) std::marker::PhantomData<fn() -> B>);

impl<B: Open> Registry<B> {
    pub(crate) fn new(
        arbiters: Arbiters,
        retry: Arc<RetryPolicy>,
        driver: B::Driver,
        idle: Duration,
        cache: Cache<B>,
    ) -> Self {
        Registry {
            channels: HashMap::new(),
            arbiters,
            retry,
            driver,
            closed: false,
            idle,
            cache,
            reclaim: Reclaim::default(),
        }
    }

    /// Carries out what [`Reclaim`] asks for after a retirement or a check.
    fn carry_out(&mut self, next: Next, ctx: &mut Context<Self>) {
        match next {
            Next::Nothing => {}
            Next::CheckIn(after) => {
                ctx.run_later(after, |act, ctx| {
                    let next = act.reclaim.check(Instant::now());
                    act.carry_out(next, ctx);
                });
            }
            Next::Trim => {
                // The maps keep the room of every channel they ever held.
                self.channels.shrink_to_fit();
                if let Ok(mut cache) = self.cache.write() {
                    cache.shrink_to_fit();
                }
                reclaim::release();
            }
        }
    }

    /// The channel of `name`, started on first use (`None` once closed).
    pub(crate) fn get_or_start(
        &mut self,
        name: Arc<str>,
        ctx: &mut Context<Self>,
    ) -> Option<Arc<Channel<B>>> {
        if let Some(channel) = self.channels.get(&name) {
            // A retired channel whose notice is still on its way is replaced now.
            if !channel.is_retired() {
                return Some(channel.clone());
            }
        }
        if self.closed {
            return None;
        }
        let (backend, front) = B::open(&self.driver, &name, &self.arbiters, &ctx.address());
        let arbiter = self.arbiters.next().clone();
        let observer = Arc::new(Observer::new(&name, B::KIND));
        let (queue, retry, observed) = (name.clone(), self.retry.clone(), observer.clone());
        let retired = Arc::new(AtomicBool::new(false));
        let link = RegistryLink {
            registry: ctx.address(),
            name: name.clone(),
            flag: retired.clone(),
        };
        let retirement = Retirement::new(self.idle, retired.clone(), Arc::new(link));
        let addr = Supervisor::start_in_arbiter(&arbiter, move |_| {
            ChannelActor::new(queue, retry, backend, observed, retirement)
        });
        tracing::debug!(queue = %name, "channel started");
        let channel = Arc::new(Channel {
            addr,
            arbiter,
            front,
            observer,
            retired,
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
            let found = self.channels.get(&msg.name);
            found.filter(|c| !c.is_retired()).cloned()
        }
    }
}

impl<B: Open> Handler<Retired> for Registry<B> {
    type Result = ();

    fn handle(&mut self, msg: Retired, ctx: &mut Context<Self>) {
        let next = self.reclaim.retired(Instant::now());
        self.carry_out(next, ctx);
        let this = |c: &Arc<Channel<B>>| Arc::ptr_eq(&c.retired, &msg.flag);
        if self.channels.get(&msg.name).is_some_and(this) {
            self.channels.remove(&msg.name);
        }
        if let Ok(mut cache) = self.cache.write() {
            if cache.get(&msg.name).is_some_and(this) {
                cache.remove(&msg.name);
            }
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
