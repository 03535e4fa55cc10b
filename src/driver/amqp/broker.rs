//! `AmqpBroker`: the bus's handle on the amqp driver (RabbitMQ through lapin).
//!
//! It starts the [`AmqpDriver`] and the bus's [`Channels`], one supervised
//! channel actor per queue over an [`AmqpBackend`], on the bus's arbiters.
//! Every broker I/O but a push runs on those arbiters, and the caller only
//! awaits replies; a push from a thread of an actix system publishes from
//! the caller's task (see `send`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use crate::channel::redrive::{in_steps, BROKER_STEP};
use crate::channel::retry::RetryPolicy;
use crate::config::{Config, DriverKind};
use crate::delivery::{Delivery, Envelope};
use crate::driver::amqp::backend::AmqpBackend;
use crate::driver::amqp::connect;
use crate::driver::amqp::driver::{self, AmqpDriver, Close, Publish, PublishBatch};
use crate::driver::amqp::link::{Link, Target};
use crate::driver::amqp::operate;
use crate::driver::amqp::replies::{Sink, DIRECT_REPLY_TO};
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::wire;
use crate::driver::channels::Channels;
use crate::driver::registry::{Open, Registry};
use crate::driver::{ReplySink, Unstored};
use crate::error::{Error, Result};
use crate::listener::{Listener, ListenerSpec};
use crate::runtime::Arbiters;
use crate::stats::QueueStats;

/// The bus's handle on the amqp driver.
pub(crate) struct AmqpBroker {
    /// Handles and settings every channel shares.
    shared: Arc<AmqpShared>,
    /// Where I/O for a queue without a channel runs.
    arbiters: Arbiters,
    /// The channel actors of the queues this bus used.
    channels: Channels<AmqpBackend>,
    /// Where direct replies go, once the bus made a request.
    sink: Sink,
}

impl Open for AmqpBackend {
    type Front = ();
    type Driver = Arc<AmqpShared>;
    const KIND: DriverKind = DriverKind::Amqp;

    fn open(
        shared: &Arc<AmqpShared>,
        _name: &Arc<str>,
        _arbiters: &Arbiters,
        _registry: &Addr<Registry<Self>>,
    ) -> (Self, ()) {
        (AmqpBackend::new(shared.clone()), ())
    }
}

impl AmqpBroker {
    /// Opens the connections (on a bus arbiter) and starts the driver.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a malformed `amqp.url` or `amqp.urls` (or
    /// `amqps://` without the `amqps` feature); [`Error::Backend`] when no
    /// node can be reached or RabbitMQ refuses the credentials or vhost,
    /// within a few seconds per node and without retrying.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn connect(config: &Config, arbiters: Arbiters) -> Result<Self> {
        connect::nodes(&config.amqp)?;
        let amqp = config.amqp.clone();
        let (tx, rx) = oneshot::channel();
        let (home, consume_on) = (arbiters.next().clone(), arbiters.next().clone());
        let sink = Sink::default();
        let link_sink = sink.clone();
        home.spawn(async move {
            let started = Link::open(&amqp, 1, &consume_on, link_sink.clone(), None).await;
            let started = started.map(|link| {
                let (driver, links) = AmqpDriver::new(amqp, link, consume_on, link_sink);
                (driver.start(), links)
            });
            let _ = tx.send(started);
        });
        let (driver, links) = rx.await.map_err(|_| Error::Closed)??;
        let shared = Arc::new(AmqpShared::new(
            driver,
            links,
            config.queue.push_timeout,
            config.amqp.prefetch,
            config.amqp.redelivery_lease,
        ));
        let retry = Arc::new(RetryPolicy::new(config.queue.retry.clone()));
        Ok(AmqpBroker {
            channels: Channels::start(&arbiters, retry, shared.clone(), config.queue.idle_timeout),
            shared,
            arbiters,
            sink,
        })
    }

    pub(crate) fn channels(&self) -> &Channels<AmqpBackend> {
        &self.channels
    }

    /// Starts a listener on `queue`.
    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        self.channels.attach(queue, spec).await
    }

    /// Takes one message of `queue`, acknowledged on hand-over.
    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        self.channels.receive(queue, timeout).await
    }

    /// Publishes `envelope` to `queue` (through its wait queue after
    /// `delay`), returning once the broker confirmed it.
    pub(crate) async fn push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> Result<()> {
        // Headers that do not fit in one frame make RabbitMQ drop the whole
        // connection: refuse them before any I/O.
        wire::check_frame(&envelope, self.shared.frame_max())?;
        let target = self.shared.target(queue, delay);
        self.send(target, envelope).await
    }

    /// Publishes `envelope` to `target`, returning once the broker
    /// confirmed it, through outages up to `queue.push_timeout`.
    ///
    /// A caller on a thread of an actix system publishes from its own task,
    /// with the driver's own [`publish`](driver::publish): lapin's I/O
    /// thread writes the frames either way, and going through the driver
    /// actor adds two thread hops per push (to its arbiter and back): 8–17%
    /// of the process's CPU in the bench's `amqp e2e c64 x64 pushers` row,
    /// which shares the machine with RabbitMQ. Any other caller (a plain
    /// tokio runtime, which may be built without the timers that bound the
    /// wait) goes through the driver actor.
    async fn send(&self, target: Target, envelope: Envelope) -> Result<()> {
        if System::try_current().is_some() {
            let shared = &self.shared;
            let (links, me) = (shared.links.clone(), shared.driver.clone());
            return driver::publish(links, me, target, &envelope, shared.push_timeout).await;
        }
        self.shared
            .driver
            .send(Publish {
                target,
                envelope,
                timeout: self.shared.push_timeout,
            })
            .await
            .map_err(|_| Error::Closed)?
    }

    /// Publishes `batch` with all its confirms in flight at once, after
    /// checking every message's headers fit in a frame.
    pub(crate) async fn push_batch(
        &self,
        queue: &str,
        batch: Vec<(Envelope, Option<Duration>)>,
    ) -> std::result::Result<(), Unstored> {
        let frame_max = self.shared.frame_max();
        for (envelope, _) in &batch {
            wire::check_frame(envelope, frame_max).map_err(Unstored::none)?;
        }
        let batch = batch
            .into_iter()
            .map(|(envelope, delay)| (self.shared.target(queue, delay), envelope))
            .collect();
        let outcomes = self
            .shared
            .driver
            .send(PublishBatch {
                batch,
                timeout: self.shared.push_timeout,
            })
            .await
            .map_err(|_| Unstored::none(Error::Closed))?;
        Unstored::gather(outcomes)
    }

    /// Publishes `envelope` to the fanout exchange `<topic>`, returning once
    /// the broker confirmed it (every bound group's queue has its copy).
    pub(crate) async fn publish(&self, topic: &str, envelope: Envelope) -> Result<()> {
        self.send(Target::Topic(topic.to_owned()), envelope).await
    }

    /// Sends this bus's direct replies to `sink` from now on, answering
    /// the address its requests carry: `amq.rabbitmq.reply-to`.
    pub(crate) fn direct_replies(&self, sink: ReplySink) -> &'static str {
        let _ = self.sink.set(sink);
        DIRECT_REPLY_TO
    }

    /// Publishes a reply to a direct reply-to `address`, returning once the
    /// broker confirmed it (it reached the requester's channel, or found it
    /// gone and dropped it: nobody waits for it then).
    pub(crate) async fn reply(&self, address: &str, envelope: Envelope) -> Result<()> {
        wire::check_frame(&envelope, self.shared.frame_max())?;
        self.send(Target::Reply(address.to_owned()), envelope).await
    }

    /// Declares `<topic>` and the group's queue, and binds them.
    pub(crate) async fn join(&self, topic: &str, group_queue: &str) -> Result<()> {
        let (shared, topic, queue) = (
            self.shared.clone(),
            topic.to_owned(),
            group_queue.to_owned(),
        );
        self.on_arbiter(async move { shared.link().await?.join_topic(&topic, &queue).await })
            .await
    }

    /// Counts `queue` through its channel, or on the broker for a queue
    /// this bus never used (nothing in flight, no listener).
    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats> {
        match self.channels.stats(queue).await? {
            Some(stats) => Ok(stats),
            None => self.on_arbiter(self.shared.stats(queue, 0)).await,
        }
    }

    /// Purges `queue` through its channel, or on the broker for a queue
    /// this bus never used.
    pub(crate) async fn purge(&self, queue: &str) -> Result<u64> {
        match self.channels.purge(queue).await? {
            Some(purged) => Ok(purged),
            None => self.on_arbiter(self.shared.purge(queue)).await,
        }
    }

    /// Copies up to `max` ready messages of `queue`, through its channel,
    /// or on the broker for a queue this bus never used.
    pub(crate) async fn peek(&self, queue: &str, max: usize) -> Result<Vec<Delivery>> {
        match self.channels.peek(queue, max).await? {
            Some(copies) => Ok(copies),
            None => {
                let shared = self.shared.clone();
                self.on_arbiter(operate::peek(shared, queue.into(), max))
                    .await
            }
        }
    }

    /// Moves up to `max` dead letters of `queue` back to it, in steps on
    /// the bus's arbiters (a step runs to its end even if the caller gives
    /// up).
    pub(crate) async fn redrive(&self, queue: &str, max: usize) -> Result<u64> {
        in_steps(max, BROKER_STEP, (), |(), max| {
            let step = operate::redrive_step(self.shared.clone(), queue.to_owned(), max);
            let run = self.on_arbiter(step);
            async move {
                let moved = run.await?;
                Ok(((), moved, moved == max as u64))
            }
        })
        .await
    }

    /// Stops every listener (waiting up to `timeout` for their handlers),
    /// lets the copies in flight be confirmed, deletes the `doomed` queues,
    /// then closes the connections.
    #[tracing::instrument(level = "debug", skip_all)]
    pub(crate) async fn shutdown(&self, timeout: Duration, doomed: Vec<String>) -> Result<bool> {
        let drained = self.channels.close(timeout).await;
        for queue in doomed {
            let shared = self.shared.clone();
            let deleted = self
                .on_arbiter(async move { shared.link().await?.delete(&queue).await })
                .await;
            if let Err(error) = deleted {
                tracing::warn!(%error, "could not delete a queue of this bus at shutdown");
            }
        }
        let _ = self.shared.driver.send(Close).await;
        Ok(drained)
    }

    /// Runs `op` on one of the bus's arbiters, never on the caller's runtime.
    async fn on_arbiter<T: Send + 'static>(
        &self,
        op: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.arbiters.next().spawn(async move {
            let _ = tx.send(op.await);
        });
        rx.await.map_err(|_| Error::Closed)?
    }
}
