//! The messages a channel actor takes: from its listeners, from the bus, and from its driver.
//!
//! Requests that want an answer carry a [`Reply`]; the channel (or its
//! backend, after its I/O) answers there. Everything else is fire and forget.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::channel::backend::Reply;
use crate::delivery::{AckToken, Delivery};
use crate::listener::actor::ListenerActor;
use crate::listener::ListenerId;
use crate::stats::QueueStats;

/// Attaches a started listener actor to its channel `Q`.
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
    /// The handler failed (or panicked) with this error: retry it.
    Fail(String),
    /// The handler rejected it ([`Reject`](crate::Reject)) with this error:
    /// dead-letter it at once.
    Reject(String),
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

/// A listener is about to start a suspect delivery (see
/// [`suspect`](crate::channel::suspect)): count it on the broker first.
/// Answered with the attempt to run it as, or `None`: do not run it (the
/// channel settled it, or it is no longer this listener's).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Arm {
    pub(crate) token: AckToken,
    pub(crate) reply: oneshot::Sender<Option<u32>>,
}

/// A listener is stopping: send it nothing more.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unsubscribe {
    pub(crate) listener: ListenerId,
}

/// A listener actor has stopped: whatever it still leases was never handled.
/// `done` is answered once the channel has handed all of it back (on amqp,
/// once the broker closed the listener's consumer channel), so that a
/// removal returns only when its messages are back in the queue.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Detached {
    pub(crate) listener: ListenerId,
    pub(crate) done: oneshot::Sender<()>,
}

/// The channel's stop message (`bus.remove`): stops every listener, keeps
/// the messages. Answered once every listener has stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopListeners {
    pub(crate) reply: oneshot::Sender<()>,
}

/// Counts the queue, `dead` included.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct GetStats {
    pub(crate) reply: Reply<QueueStats>,
}

/// Drops the ready messages; answers how many.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Purge {
    pub(crate) reply: Reply<u64>,
}

/// Copies up to `max` ready messages, in delivery order, without taking them.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Peek {
    pub(crate) max: usize,
    pub(crate) reply: Reply<Vec<Delivery>>,
}

/// Takes one message, acknowledged on hand-over, or `Error::Timeout`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Receive {
    pub(crate) timeout: Duration,
    pub(crate) reply: Reply<Delivery>,
}

/// Answered once the backend's I/O in flight is done (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Drain {
    pub(crate) reply: Reply<()>,
}

/// Fault injection for the supervision tests: panics inside the actor now,
/// or (with a handler's name) the next time that handler runs.
#[cfg(feature = "test-util")]
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Crash {
    pub(crate) on_next: Option<String>,
}

/// An event for the channel's backend, from its driver or itself.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Relay<E: Send + 'static>(pub(crate) E);

/// A channel that listeners can report to.
pub(crate) trait ListenerQueue:
    Actor<Context = Context<Self>>
    + Handler<Settle>
    + Handler<Arm>
    + Handler<Unsubscribe>
    + Handler<Detached>
{
}

impl<Q> ListenerQueue for Q where
    Q: Actor<Context = Context<Q>>
        + Handler<Settle>
        + Handler<Arm>
        + Handler<Unsubscribe>
        + Handler<Detached>
{
}
