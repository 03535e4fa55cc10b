//! `AmqpShared`: what the amqp driver's broker handle, queue actors and receives share.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix::Addr;
use rustc_hash::FxHashMap;

use crate::channel::retry::{RetryPolicy, Verdict};
use crate::delivery::Envelope;
use crate::driver::amqp::driver::{self, AmqpDriver, Links};
use crate::driver::amqp::link::{Link, Target};
use crate::driver::amqp::wire;
use crate::error::Result;
use crate::validate;

/// Settings and handles of one amqp bus.
pub(crate) struct AmqpShared {
    /// The driver actor, told about dead links.
    pub(crate) driver: Addr<AmqpDriver>,
    /// The current link.
    pub(crate) links: Links,
    /// `queue.retry.*`.
    pub(crate) retry: RetryPolicy,
    /// `queue.push_timeout`: the longest a publish waits through an outage.
    pub(crate) push_timeout: Duration,
    /// `amqp.prefetch`: the cap on one consumer's unacknowledged deliveries.
    pub(crate) prefetch: u16,
    /// The wait queues used per queue (name → delays in ms), counted as `delayed`.
    waits: Mutex<FxHashMap<String, BTreeSet<u64>>>,
}

impl AmqpShared {
    pub(crate) fn new(
        driver: Addr<AmqpDriver>,
        links: Links,
        retry: RetryPolicy,
        push_timeout: Duration,
        prefetch: u16,
    ) -> Self {
        AmqpShared {
            driver,
            links,
            retry,
            push_timeout,
            prefetch,
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

    /// Where a delivery of `queue` that failed with `error` goes, and as
    /// what: its wait queue with `attempt + 1` (retry after the backoff),
    /// or `<queue>.dead` with the why-headers (§3.3).
    pub(crate) fn after_failure(
        &self,
        queue: &str,
        mut envelope: Envelope,
        error: &str,
    ) -> (Target, Envelope) {
        match self
            .retry
            .on_failure(envelope.attempt, error, SystemTime::now())
        {
            Verdict::Retry { attempt, after } => {
                envelope.attempt = attempt;
                (self.target(queue, Some(after)), envelope)
            }
            Verdict::DeadLetter { headers } => {
                Arc::make_mut(envelope.headers.get_or_insert_with(Default::default))
                    .extend(headers);
                tracing::warn!(%queue, id = %envelope.id, attempts = envelope.attempt, error, "message dead-lettered");
                (Target::Queue(validate::dead_letter_name(queue)), envelope)
            }
        }
    }

    /// The delays (ms) of the wait queues of `queue` that this bus used.
    pub(crate) fn wait_delays(&self, queue: &str) -> Vec<u64> {
        let waits = self.waits.lock().ok();
        let delays = waits.as_ref().and_then(|w| w.get(queue));
        delays.into_iter().flatten().copied().collect()
    }

    /// Forgets a wait queue found gone; the next push with that delay
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

    /// The current link, waiting up to `push_timeout` through an outage.
    pub(crate) async fn link(&self) -> Result<Arc<Link>> {
        let mut links = self.links.clone();
        driver::wait_link(&mut links, Instant::now() + self.push_timeout).await
    }
}
