//! `AmqpShared`: what the amqp driver's bus handle, backends and receives share — and the counting and purging they all use.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix::Addr;
use rustc_hash::FxHashMap;

use crate::delivery::Envelope;
use crate::driver::amqp::driver::{self, AmqpDriver, Links};
use crate::driver::amqp::link::{Link, Target};
use crate::driver::amqp::wire;
use crate::error::Result;
use crate::stats::QueueStats;
use crate::timer::deadline;
use crate::validate;

/// RabbitMQ's default `frame_max`.
const DEFAULT_FRAME_MAX: usize = 131_072;

/// Settings and handles of one amqp bus.
pub(crate) struct AmqpShared {
    /// The driver actor, told about dead links.
    pub(crate) driver: Addr<AmqpDriver>,
    /// The current link.
    pub(crate) links: Links,
    /// `queue.push_timeout`: the longest a publish waits through an outage.
    pub(crate) push_timeout: Duration,
    /// `amqp.prefetch`: the cap on one consumer's unacknowledged deliveries.
    pub(crate) prefetch: u16,
    /// `amqp.redelivery_lease`: how long a lease copy waits (see `lease`).
    pub(crate) lease: Duration,
    /// The wait queues used per queue (name → delays in ms), counted as `delayed`.
    waits: Mutex<FxHashMap<String, BTreeSet<u64>>>,
}

impl AmqpShared {
    pub(crate) fn new(
        driver: Addr<AmqpDriver>,
        links: Links,
        push_timeout: Duration,
        prefetch: u16,
        lease: Duration,
    ) -> Self {
        AmqpShared {
            driver,
            links,
            push_timeout,
            prefetch,
            lease,
            waits: Mutex::default(),
        }
    }

    /// The target of a push to `queue` after `delay`.
    pub(crate) fn target(&self, queue: &str, delay: Option<Duration>) -> Target {
        match delay.filter(|d| !d.is_zero()) {
            None => Target::Queue(queue.to_owned()),
            Some(delay) => {
                if let Ok(mut waits) = self.waits.lock() {
                    waits
                        .entry(queue.to_owned())
                        .or_default()
                        .insert(wire::wait_ms(delay));
                }
                Target::Wait {
                    target: queue.to_owned(),
                    delay,
                }
            }
        }
    }

    /// The delays (ms) of the wait queues of `queue` that this bus used.
    pub(crate) fn wait_delays(&self, queue: &str) -> Vec<u64> {
        let waits = self.waits.lock().ok();
        let delays = waits.as_ref().and_then(|w| w.get(queue));
        delays.into_iter().flatten().copied().collect()
    }

    /// Forgets a wait queue found empty; the next push with that delay
    /// brings it back.
    pub(crate) fn forget_wait(&self, queue: &str, ms: u64) {
        if let Ok(mut waits) = self.waits.lock() {
            if let Some(delays) = waits.get_mut(queue) {
                delays.remove(&ms);
            }
        }
    }

    /// Publishes `envelope` to `target` with confirm (see [`driver::publish`]).
    pub(crate) fn publish(
        &self,
        target: Target,
        envelope: Envelope,
    ) -> impl Future<Output = Result<()>> + Send + 'static {
        let (links, driver, timeout) = (self.links.clone(), self.driver.clone(), self.push_timeout);
        async move { driver::publish(links, driver, target, &envelope, timeout).await }
    }

    /// The largest frame of the current link (RabbitMQ's default while
    /// there is none): a message's headers must fit in one.
    pub(crate) fn frame_max(&self) -> usize {
        self.links
            .borrow()
            .as_ref()
            .map_or(DEFAULT_FRAME_MAX, |link| link.frame_max())
    }

    /// The current link, waiting up to `push_timeout` through an outage.
    pub(crate) async fn link(&self) -> Result<Arc<Link>> {
        let mut links = self.links.clone();
        driver::wait_link(&mut links, deadline(Instant::now(), self.push_timeout)).await
    }

    /// Counts `queue` on the broker: `ready` in the queue, `delayed` in the
    /// wait queues this bus used, `dead` in `<queue>.dead`; `in_flight` is
    /// the caller's (what its listeners hold). The listener and restart
    /// counts are left for the channel to fill in.
    pub(crate) fn stats(
        self: &Arc<Self>,
        queue: &str,
        in_flight: u64,
    ) -> impl Future<Output = Result<QueueStats>> + Send + 'static {
        let delays = self.wait_delays(queue);
        let (target, dead) = (
            wire::wire_name(queue),
            wire::wire_name(&validate::dead_letter_name(queue)),
        );
        let mut queues = Vec::with_capacity(2 + delays.len());
        queues.extend(delays.iter().map(|&ms| {
            let delay = Duration::from_millis(ms);
            let args = wire::wait_arguments(&target, delay);
            (wire::wait_name(queue, delay), args)
        }));
        let (shared, queue) = (self.clone(), queue.to_owned());
        async move {
            let link = shared.link().await?;
            let args = &link.queue_args;
            queues.extend([(target, args.clone()), (dead, args.clone())]);
            let mut counts = link.counts(&queues).await?;
            let (dead, ready) = (counts.pop().unwrap_or(0), counts.pop().unwrap_or(0));
            // A wait queue with nothing in it may expire (`x-expires`):
            // stop counting it (which would keep it alive) until a push
            // uses that delay again.
            for (ms, count) in delays.iter().zip(&counts) {
                if *count == 0 {
                    shared.forget_wait(&queue, *ms);
                }
            }
            Ok(QueueStats {
                ready,
                in_flight,
                delayed: counts.iter().sum(),
                dead,
                durable: true,
                ..QueueStats::default()
            })
        }
    }

    /// Drops the ready messages of `queue` on the broker, answering how many.
    pub(crate) fn purge(
        self: &Arc<Self>,
        queue: &str,
    ) -> impl Future<Output = Result<u64>> + Send + 'static {
        let (shared, wire) = (self.clone(), wire::wire_name(queue));
        async move { shared.link().await?.purge(&wire).await }
    }
}
