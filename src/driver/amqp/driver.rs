//! `AmqpDriver`: owns the amqp driver's connections, publishes with confirms, and reconnects with backoff after an outage.
//!
//! The current [`Link`] is published on a `watch` channel: pushes, channel
//! backends and receives read it from there. A push that loses its link waits
//! for the next one and publishes again (a push is only `Ok` after a
//! confirm), until `queue.push_timeout`. Any party that sees a link die sends
//! [`Broken`]; the driver then reconnects with exponential backoff and
//! jitter, and every channel's listeners consume again when the new link
//! appears (each backend watches the links). A push nacked without a break
//! for [`STUCK_AFTER`] sends [`Stuck`]: the link is replaced the same way.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::watch;

use crate::config::amqp::{AmqpConfig, AmqpQueueType};
use crate::delivery::Envelope;
use crate::driver::amqp::batch::publish_batch;
use crate::driver::amqp::link::{Fault, Link, Target};
use crate::driver::amqp::replies::Sink;
use crate::driver::amqp::wire;
use crate::error::{Error, Result};
use crate::timer::deadline;

/// The current link, or `None` while reconnecting.
pub(crate) type Links = watch::Receiver<Option<Arc<Link>>>;

/// First wait between reconnect attempts; doubled per failure.
const BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest wait between reconnect attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Pause before publishing again after a link failed under a push.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// First pause before publishing again a message the broker nacked;
/// doubled per nack of the same push, up to [`REFUSED_PAUSE_MAX`].
const REFUSED_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between two publishes of a nacked message.
const REFUSED_PAUSE_MAX: Duration = Duration::from_secs(1);
/// How often a link's health is checked.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How long one push may be nacked without a break on one link before
/// that link is taken for stuck and replaced. A quorum queue's leader
/// election takes a few seconds; but RabbitMQ 3.10 keeps nacking every
/// publish to a quorum queue on a channel that first published to it while
/// its leader's node was down, after a new leader is elected (seen for
/// 180 s in the cluster failover test): only a new channel gets through.
const STUCK_AFTER: Duration = Duration::from_secs(5);
/// Least time between two replacements of a stuck link: a quorum queue at
/// its length limit (`reject-publish`) nacks every publish too, and a new
/// link does not help it, while the listeners draining it resume on each.
const STUCK_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// The amqp driver's actor, one per bus: it owns the publish link, keeps
/// confirms in flight, and reconnects after an outage.
///
/// [`Bus::connect`](crate::Bus::connect) starts it when `queue.driver =
/// amqp`.
pub(crate) struct AmqpDriver {
    /// `amqp.*` settings, for reconnecting.
    config: AmqpConfig,
    /// Where the consuming connection's I/O runs.
    consume_on: ArbiterHandle,
    /// Publishes the current link.
    links: watch::Sender<Option<Arc<Link>>>,
    /// Generation of the newest link.
    generation: u64,
    /// A reconnect loop is running.
    reconnecting: bool,
    /// Shut down: never reconnect.
    closed: bool,
    /// When a stuck link was last replaced.
    unstuck: Option<Instant>,
    /// Where direct replies go, handed to every new link.
    sink: Sink,
}

/// Publishes a message with confirm, through outages up to `timeout`.
#[derive(Message)]
#[rtype(result = "Result<()>")]
pub(crate) struct Publish {
    pub(crate) target: Target,
    pub(crate) envelope: Envelope,
    pub(crate) timeout: Duration,
}

/// Publishes a batch with confirms, all in flight at once; answers each
/// message's outcome in batch order.
#[derive(Message)]
#[rtype(result = "Vec<Result<()>>")]
pub(crate) struct PublishBatch {
    pub(crate) batch: Vec<(Target, Envelope)>,
    pub(crate) timeout: Duration,
}

/// A link died: reconnect, unless that link was already replaced.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Broken {
    pub(crate) generation: u64,
}

/// A link is up but stuck: every publish on it has been nacked for
/// [`STUCK_AFTER`]. Replace it (unless already replaced) and close it.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Stuck {
    pub(crate) generation: u64,
}

/// Shutdown: close the connections for good.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Close;

/// Internal: a reconnect attempt finished.
#[derive(Message)]
#[rtype(result = "()")]
struct Reconnected(Link);

impl AmqpDriver {
    /// A driver for the already open `link`; returns it with the link watch.
    pub(crate) fn new(
        config: AmqpConfig,
        link: Link,
        consume_on: ArbiterHandle,
        sink: Sink,
    ) -> (Self, Links) {
        let generation = link.generation;
        let (links, rx) = watch::channel(Some(Arc::new(link)));
        let driver = AmqpDriver {
            config,
            consume_on,
            links,
            generation,
            reconnecting: false,
            closed: false,
            unstuck: None,
            sink,
        };
        (driver, rx)
    }

    /// Watches `link` and reports it when it goes down.
    fn watch(&self, link: Arc<Link>, ctx: &mut Context<Self>) {
        let me = ctx.address();
        actix::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            loop {
                tick.tick().await;
                if !link.is_up() {
                    me.do_send(Broken {
                        generation: link.generation,
                    });
                    return;
                }
                if !me.connected() {
                    return;
                }
            }
        });
    }

    /// Opens a new link, trying `last` (the node of the link that died)
    /// after the other nodes.
    fn reconnect(&mut self, ctx: &mut Context<Self>, last: Option<String>) {
        if self.reconnecting || self.closed {
            return;
        }
        self.reconnecting = true;
        let (config, consume_on) = (self.config.clone(), self.consume_on.clone());
        let sink = self.sink.clone();
        let generation = self.generation + 1;
        let me = ctx.address();
        actix::spawn(async move {
            let mut wait = BACKOFF_START;
            for attempt in 1u32.. {
                match Link::open(
                    &config,
                    generation,
                    &consume_on,
                    sink.clone(),
                    last.as_deref(),
                )
                .await
                {
                    Ok(link) => {
                        tracing::info!(attempt, generation, "reconnected to RabbitMQ");
                        me.do_send(Reconnected(link));
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(attempt, %error, "reconnect to RabbitMQ failed");
                    }
                }
                if !me.connected() {
                    return;
                }
                tokio::time::sleep(jitter(wait)).await;
                wait = (wait * 2).min(BACKOFF_MAX);
            }
        });
    }
}

/// `wait` plus up to half of it again, so that many clients restarted by
/// one outage do not reconnect in lockstep.
fn jitter(wait: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    wait + wait.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

/// Waits for a link, up to `deadline`.
///
/// # Errors
///
/// [`Error::Timeout`] at the deadline; [`Error::Closed`] once the driver is gone.
pub(crate) async fn wait_link(links: &mut Links, deadline: Instant) -> Result<Arc<Link>> {
    loop {
        if let Some(link) = links.borrow_and_update().clone() {
            if link.is_up() {
                return Ok(link);
            }
        }
        match tokio::time::timeout_at(deadline.into(), links.changed()).await {
            Err(_) => return Err(Error::Timeout),
            Ok(Err(_)) => return Err(Error::Closed),
            Ok(Ok(())) => {}
        }
    }
}

/// Publishes `envelope` to `target` and waits for the broker's confirm,
/// publishing again on the next link when the current one dies, and after
/// a growing pause when the broker nacked it (a quorum queue electing a
/// new leader), up to `timeout`: a push is only `Ok` once the broker stored
/// it, outage or not.
///
/// # Errors
///
/// [`Error::Timeout`] when no link confirmed in time, [`Error::Backend`]
/// when the broker refused the message.
pub(crate) async fn publish(
    mut links: Links,
    driver: Addr<AmqpDriver>,
    target: Target,
    envelope: &Envelope,
    timeout: Duration,
) -> Result<()> {
    let deadline = deadline(Instant::now(), timeout);
    let mut properties = wire::properties(envelope)?;
    if let Target::Lease { .. } = target {
        properties = wire::leased(properties);
    }
    let payload: &Bytes = &envelope.payload;
    let mut refused_pause = REFUSED_PAUSE;
    // Since when this push has been nacked on which link, without a break.
    let mut refused_since: Option<(u64, Instant)> = None;
    loop {
        let link = wait_link(&mut links, deadline).await?;
        let sent = link.publish(&target, payload, &properties);
        match tokio::time::timeout_at(deadline.into(), sent).await {
            Err(_) => return Err(Error::Timeout),
            Ok(Ok(())) => return Ok(()),
            Ok(Err(Fault::Fatal(error))) => return Err(error),
            Ok(Err(Fault::Refused)) => {
                tracing::debug!(?target, "RabbitMQ nacked a message; publishing it again");
                let since = match refused_since {
                    Some((generation, at)) if generation == link.generation => at,
                    _ => refused_since.insert((link.generation, Instant::now())).1,
                };
                if since.elapsed() >= STUCK_AFTER {
                    driver.do_send(Stuck {
                        generation: link.generation,
                    });
                    refused_since = None;
                }
                let pause = tokio::time::Instant::from_std(deadline)
                    .min(tokio::time::Instant::now() + refused_pause);
                refused_pause = (refused_pause * 2).min(REFUSED_PAUSE_MAX);
                tokio::time::sleep_until(pause).await;
            }
            Ok(Err(Fault::Link)) => {
                // Unconfirmed: it goes out again on the next link. The pause
                // keeps a link whose status does not show its death yet
                // from being retried in a tight loop.
                driver.do_send(Broken {
                    generation: link.generation,
                });
                let pause = tokio::time::Instant::from_std(deadline)
                    .min(tokio::time::Instant::now() + RETRY_PAUSE);
                tokio::time::sleep_until(pause).await;
            }
        }
    }
}

impl Actor for AmqpDriver {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(link) = self.links.borrow().clone() {
            self.watch(link, ctx);
        }
    }
}

impl Handler<Publish> for AmqpDriver {
    type Result = ResponseFuture<Result<()>>;

    fn handle(&mut self, msg: Publish, ctx: &mut Context<Self>) -> Self::Result {
        // Each publish is its own future: many confirms are in flight at once.
        let (links, me) = (self.links.subscribe(), ctx.address());
        Box::pin(async move { publish(links, me, msg.target, &msg.envelope, msg.timeout).await })
    }
}

impl Handler<PublishBatch> for AmqpDriver {
    type Result = ResponseFuture<Vec<Result<()>>>;

    fn handle(&mut self, msg: PublishBatch, ctx: &mut Context<Self>) -> Self::Result {
        let (links, me) = (self.links.subscribe(), ctx.address());
        Box::pin(publish_batch(links, me, msg.batch, msg.timeout))
    }
}

impl Handler<Broken> for AmqpDriver {
    type Result = ();

    fn handle(&mut self, msg: Broken, ctx: &mut Context<Self>) {
        if msg.generation != self.generation || self.reconnecting || self.closed {
            return;
        }
        tracing::warn!(
            generation = msg.generation,
            "lost the RabbitMQ connection; reconnecting"
        );
        let dead = self.links.send_replace(None);
        self.reconnect(ctx, dead.map(|link| link.node.clone()));
    }
}

impl Handler<Stuck> for AmqpDriver {
    type Result = ();

    fn handle(&mut self, msg: Stuck, ctx: &mut Context<Self>) {
        if msg.generation != self.generation || self.reconnecting || self.closed {
            return;
        }
        // Classic queues do not get stuck so: their nacks are a full queue's.
        let quorum = self.config.queue_type == AmqpQueueType::Quorum;
        if !quorum
            || self
                .unstuck
                .is_some_and(|at| at.elapsed() < STUCK_AT_MOST_EVERY)
        {
            return;
        }
        self.unstuck = Some(Instant::now());
        tracing::warn!(
            generation = msg.generation,
            ?STUCK_AFTER,
            "RabbitMQ nacked every publish on this connection; reconnecting"
        );
        let stuck = self.links.send_replace(None);
        self.reconnect(ctx, stuck.as_ref().map(|link| link.node.clone()));
        if let Some(link) = stuck {
            // Up, so nobody else closes it: what its consumers held goes
            // back to the queues, and its confirms are awaited first.
            actix::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), link.close()).await;
            });
        }
    }
}

impl Handler<Close> for AmqpDriver {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Close, _ctx: &mut Context<Self>) -> Self::Result {
        self.closed = true;
        let link = self.links.send_replace(None);
        Box::pin(async move {
            if let Some(link) = link {
                let _ = tokio::time::timeout(Duration::from_secs(5), link.close()).await;
            }
        })
    }
}

impl Handler<Reconnected> for AmqpDriver {
    type Result = ();

    fn handle(&mut self, msg: Reconnected, ctx: &mut Context<Self>) {
        self.reconnecting = false;
        if self.closed {
            return;
        }
        let link = Arc::new(msg.0);
        self.generation = link.generation;
        self.links.send_replace(Some(link.clone()));
        self.watch(link, ctx);
    }
}
