//! `Listener`: the handle to one attached handler, used to remove it.

pub(crate) mod actor;

use std::fmt;
use std::sync::Arc;

use actix::{Actor, Addr, ArbiterHandle, Recipient};

use crate::channel::messages::{ListenerQueue, Subscribe};
use crate::error::{Error, Result};
use crate::listener::actor::{HandlerFn, ListenerActor, StopListener};
use crate::observe::Observer;

/// Identifies a listener within its bus.
pub(crate) type ListenerId = u64;

/// A handler attached to a queue by [`Bus::add_listener`](crate::Bus::add_listener)
/// or [`Bus::subscribe`](crate::Bus::subscribe).
///
/// Dropping the handle leaves the listener running; call
/// [`remove`](Self::remove) to stop it, or [`Bus::remove`](crate::Bus::remove)
/// to stop every listener of its queue.
pub struct Listener {
    id: ListenerId,
    queue: Arc<str>,
    /// The listener actor's stop message slot; the actor's type depends on
    /// the driver, its stop message does not.
    stop: Recipient<StopListener>,
}

/// A listener to attach, as the bus hands it to a driver.
pub(crate) struct ListenerSpec {
    /// Its id, unique within the bus.
    pub(crate) id: ListenerId,
    /// The user's handler.
    pub(crate) handler: HandlerFn,
    /// Most handlers running at once (`ListenerOptions.concurrency`, ≥ 1).
    pub(crate) concurrency: usize,
    /// Most deliveries held at once, running or waiting (`ListenerOptions::window`).
    pub(crate) window: usize,
}

impl Listener {
    /// Starts `spec`'s listener actor on `arbiter` (its channel's, so a
    /// delivery and its verdict never cross threads) and subscribes it to
    /// the channel actor `queue_addr`.
    pub(crate) async fn start<Q>(
        queue: &str,
        spec: ListenerSpec,
        queue_addr: &Addr<Q>,
        arbiter: &ArbiterHandle,
        observer: &Arc<Observer>,
    ) -> Result<Listener>
    where
        Q: ListenerQueue + actix::Handler<Subscribe<Q>>,
    {
        let ListenerSpec {
            id,
            handler,
            concurrency,
            window,
        } = spec;
        let (reports, observer) = (queue_addr.clone(), observer.clone());
        let listener = ListenerActor::start_in_arbiter(arbiter, move |_| {
            ListenerActor::new(id, reports, handler, concurrency, window, observer)
        });
        queue_addr
            .send(Subscribe {
                id,
                addr: listener.clone(),
                window,
            })
            .await
            .map_err(|_| Error::Closed)?;
        Ok(Listener {
            id,
            queue: queue.into(),
            stop: listener.recipient(),
        })
    }

    /// The queue this listener takes from.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Whether the listener's actor is still running.
    pub fn is_running(&self) -> bool {
        self.stop.connected()
    }

    /// Stops this listener only, by sending its actor a stop message.
    ///
    /// Returns once the actor has stopped: the delivery in hand was finished,
    /// what it had prefetched went back to the queue unacknowledged, and the
    /// handler will not be called again. Removing a listener twice is fine.
    ///
    /// # Errors
    ///
    /// None today; the `Result` leaves room for broker drivers, whose
    /// consumer cancel can fail.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// let listener = bus.add_listener("jobs", |_delivery| async { Ok(()) }).await?;
    /// listener.remove().await?;
    /// assert!(!listener.is_running());
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(level = "debug", skip_all, fields(queue = %self.queue, listener = self.id))]
    pub async fn remove(&self) -> Result<()> {
        // A mailbox error means the actor is already gone, which is what was asked.
        let _ = self.stop.send(StopListener).await;
        Ok(())
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("id", &self.id)
            .field("queue", &self.queue)
            .field("running", &self.is_running())
            .finish()
    }
}
