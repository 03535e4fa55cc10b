//! What passes between a listener and its queue: joining, verdicts on deliveries, leaving.
//!
//! Every queue actor (the memory driver's [`QueueActor`](crate::driver::memory::queue::QueueActor)
//! and the broker drivers' queue actors) accepts these, so one
//! [`ListenerActor`](crate::listener::actor::ListenerActor) serves them all.

use actix::prelude::*;

use crate::delivery::AckToken;
use crate::driver::memory::store::ListenerId;
use crate::listener::actor::ListenerActor;

/// Attaches a started listener actor to its queue actor `Q`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Subscribe<Q: ListenerQueue> {
    pub(crate) id: ListenerId,
    pub(crate) addr: Addr<ListenerActor<Q>>,
    /// Most deliveries it holds at once.
    pub(crate) window: usize,
}

/// What a listener did with a delivery.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Handled: gone for good.
    Ack,
    /// The handler failed (or panicked) with this error.
    Fail(String),
    /// Never started: hand it back untouched.
    Release,
}

/// A batch of verdicts from one listener.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Settle {
    pub(crate) listener: ListenerId,
    pub(crate) outcomes: Vec<(AckToken, Outcome)>,
}

/// A listener is stopping: send it nothing more.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unsubscribe {
    pub(crate) listener: ListenerId,
}

/// A listener actor has stopped: whatever it still leases was never handled.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Detached {
    pub(crate) listener: ListenerId,
}

/// A queue actor that listeners can report to.
pub(crate) trait ListenerQueue:
    Actor<Context = Context<Self>> + Handler<Settle> + Handler<Unsubscribe> + Handler<Detached>
{
}

impl<Q> ListenerQueue for Q where
    Q: Actor<Context = Context<Q>> + Handler<Settle> + Handler<Unsubscribe> + Handler<Detached>
{
}
