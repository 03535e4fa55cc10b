//! `QueueMeters` and `BusMeters`: the metric handles of one queue, and a bus's handles by queue name, for pushes.
//!
//! Handles are registered with the installed recorder once per queue (the
//! channel's when it starts, the bus's on the first push), so counting an
//! event is an atomic add, not a lookup of name and labels. Without the
//! feature `metrics` both types are empty and every method is an empty
//! inline function.

#[cfg(feature = "metrics")]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "metrics")]
use std::sync::{Arc, RwLock};
#[cfg(feature = "metrics")]
use std::time::{Instant, SystemTime};

#[cfg(feature = "metrics")]
use metrics::{Counter, Gauge, Histogram, Label, Unit};
#[cfg(feature = "metrics")]
use rustc_hash::FxHashMap;

use crate::config::DriverKind;
use crate::message_id::MessageId;
#[cfg(feature = "metrics")]
use crate::stats::QueueStats;

#[cfg(feature = "metrics")]
mod names {
    pub(super) const PUSHED: &str = "actorbus_pushed_total";
    pub(super) const PUSH_ERRORS: &str = "actorbus_push_errors_total";
    pub(super) const DELIVERED: &str = "actorbus_delivered_total";
    pub(super) const ACKED: &str = "actorbus_acked_total";
    pub(super) const RETRIED: &str = "actorbus_retried_total";
    pub(super) const DEAD_LETTERED: &str = "actorbus_dead_lettered_total";
    pub(super) const HANDLER_SECONDS: &str = "actorbus_handler_seconds";
    pub(super) const LATENCY_SECONDS: &str = "actorbus_delivery_latency_seconds";
    pub(super) const IN_FLIGHT: &str = "actorbus_in_flight";
    pub(super) const LISTENERS: &str = "actorbus_listeners";
    pub(super) const READY: &str = "actorbus_ready";
    pub(super) const DELAYED: &str = "actorbus_delayed";
    pub(super) const DEAD: &str = "actorbus_dead";
}

/// One queue's metric handles.
pub(crate) struct QueueMeters {
    #[cfg(feature = "metrics")]
    handles: Handles,
}

#[cfg(feature = "metrics")]
struct Handles {
    pushed: Counter,
    push_errors: Counter,
    delivered: Counter,
    acked: Counter,
    retried: Counter,
    dead_lettered: Counter,
    handler_seconds: Histogram,
    latency_seconds: Histogram,
    in_flight: Gauge,
    listeners: Gauge,
    ready: Gauge,
    delayed: Gauge,
    dead: Gauge,
}

/// When a handler started, to time it (empty without `metrics`).
pub(crate) struct Stopwatch {
    #[cfg(feature = "metrics")]
    started: Instant,
}

// Without the feature the parameters go unused: the bodies are empty.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
impl QueueMeters {
    /// Registers the handles of `queue` on `driver` with the installed recorder.
    pub(crate) fn new(queue: &str, driver: DriverKind) -> Self {
        #[cfg(feature = "metrics")]
        {
            describe();
            let labels = vec![
                Label::new("queue", Arc::<str>::from(queue)),
                Label::new("driver", super::driver_label(driver)),
            ];
            use names::*;
            QueueMeters {
                handles: Handles {
                    pushed: metrics::counter!(PUSHED, labels.clone()),
                    push_errors: metrics::counter!(PUSH_ERRORS, labels.clone()),
                    delivered: metrics::counter!(DELIVERED, labels.clone()),
                    acked: metrics::counter!(ACKED, labels.clone()),
                    retried: metrics::counter!(RETRIED, labels.clone()),
                    dead_lettered: metrics::counter!(DEAD_LETTERED, labels.clone()),
                    handler_seconds: metrics::histogram!(HANDLER_SECONDS, labels.clone()),
                    latency_seconds: metrics::histogram!(LATENCY_SECONDS, labels.clone()),
                    in_flight: metrics::gauge!(IN_FLIGHT, labels.clone()),
                    listeners: metrics::gauge!(LISTENERS, labels.clone()),
                    ready: metrics::gauge!(READY, labels.clone()),
                    delayed: metrics::gauge!(DELAYED, labels.clone()),
                    dead: metrics::gauge!(DEAD, labels.clone()),
                },
            }
        }
        #[cfg(not(feature = "metrics"))]
        QueueMeters {}
    }

    /// A push was stored (`Ok`) or failed.
    #[cfg(feature = "metrics")]
    fn pushed<T>(&self, result: &crate::error::Result<T>) {
        match result {
            Ok(_) => self.handles.pushed.increment(1),
            Err(_) => self.handles.push_errors.increment(1),
        }
    }

    /// The message `id` reaches a handler now: counts it, records its
    /// latency, and starts timing the handler.
    #[inline(always)]
    pub(crate) fn delivered(&self, id: &MessageId) -> Stopwatch {
        #[cfg(feature = "metrics")]
        {
            self.handles.delivered.increment(1);
            if let Some(waited) = id
                .pushed_at()
                .and_then(|at| SystemTime::now().duration_since(at).ok())
            {
                self.handles.latency_seconds.record(waited.as_secs_f64());
            }
            Stopwatch {
                started: Instant::now(),
            }
        }
        #[cfg(not(feature = "metrics"))]
        Stopwatch {}
    }

    /// The handler started at `watch` came to its verdict.
    #[inline(always)]
    pub(crate) fn handled(&self, watch: Stopwatch) {
        #[cfg(feature = "metrics")]
        self.handles
            .handler_seconds
            .record(watch.started.elapsed().as_secs_f64());
    }

    /// `receive` handed the message `id` over, acknowledged.
    #[inline(always)]
    pub(crate) fn received(&self, id: &MessageId) {
        let _ = self.delivered(id);
        self.acked();
    }

    /// A delivery was acknowledged.
    #[inline(always)]
    pub(crate) fn acked(&self) {
        #[cfg(feature = "metrics")]
        self.handles.acked.increment(1);
    }

    /// A failed delivery goes to another attempt.
    #[inline(always)]
    pub(crate) fn retried(&self) {
        #[cfg(feature = "metrics")]
        self.handles.retried.increment(1);
    }

    /// A message goes to `<queue>.dead`.
    #[inline(always)]
    pub(crate) fn dead_lettered(&self) {
        #[cfg(feature = "metrics")]
        self.handles.dead_lettered.increment(1);
    }

    /// What the channel knows now: deliveries held, listeners attached.
    #[inline(always)]
    pub(crate) fn occupancy(&self, in_flight: usize, listeners: usize) {
        #[cfg(feature = "metrics")]
        {
            self.handles.in_flight.set(in_flight as f64);
            self.handles.listeners.set(listeners as f64);
        }
    }

    /// A sample of the queue's counts.
    #[cfg(feature = "metrics")]
    pub(crate) fn depth(&self, stats: &QueueStats) {
        self.handles.ready.set(stats.ready as f64);
        self.handles.delayed.set(stats.delayed as f64);
        self.handles.dead.set(stats.dead as f64);
    }
}

/// A bus's queue handles by name: a push finds its queue's counters with
/// one map lookup, and the sampler knows which queues to count.
pub(crate) struct BusMeters {
    #[cfg(feature = "metrics")]
    driver: DriverKind,
    #[cfg(feature = "metrics")]
    queues: RwLock<FxHashMap<Arc<str>, Arc<Metered>>>,
}

/// One name the bus pushed to or listened on.
#[cfg(feature = "metrics")]
pub(crate) struct Metered {
    pub(crate) meters: QueueMeters,
    /// A queue (sampled), not only a topic (which has no counts of its own).
    queue: AtomicBool,
}

#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
impl BusMeters {
    pub(crate) fn new(driver: DriverKind) -> Self {
        BusMeters {
            #[cfg(feature = "metrics")]
            driver,
            #[cfg(feature = "metrics")]
            queues: RwLock::default(),
        }
    }

    /// A push to `queue` ended with `result`. Only a push that stored its
    /// message makes the queue one the sampler counts: counting a queue a
    /// refused push named (too large a payload, a bad name) would be I/O
    /// for nothing, and on amqp would declare it.
    #[inline(always)]
    pub(crate) fn pushed<T>(&self, queue: &str, result: &crate::error::Result<T>) {
        #[cfg(feature = "metrics")]
        self.entry(queue, result.is_ok()).meters.pushed(result);
    }

    /// A publish to `topic` ended with `result`.
    #[inline(always)]
    pub(crate) fn published<T>(&self, topic: &str, result: &crate::error::Result<T>) {
        #[cfg(feature = "metrics")]
        self.entry(topic, false).meters.pushed(result);
    }

    /// The bus listens on (or receives from) `queue`: sample its counts.
    #[inline(always)]
    pub(crate) fn listened(&self, queue: &str) {
        #[cfg(feature = "metrics")]
        self.entry(queue, true);
    }

    /// The queues to sample.
    #[cfg(feature = "metrics")]
    pub(crate) fn queues(&self) -> Vec<(Arc<str>, Arc<Metered>)> {
        let Ok(queues) = self.queues.read() else {
            return Vec::new();
        };
        queues
            .iter()
            .filter(|(_, m)| m.queue.load(Ordering::Relaxed))
            .map(|(name, m)| (name.clone(), m.clone()))
            .collect()
    }

    /// The handles of `name`, registered on first use; `queue` marks it as
    /// a queue to sample.
    #[cfg(feature = "metrics")]
    fn entry(&self, name: &str, queue: bool) -> Arc<Metered> {
        if let Some(found) = self.queues.read().ok().and_then(|q| q.get(name).cloned()) {
            if queue && !found.queue.load(Ordering::Relaxed) {
                found.queue.store(true, Ordering::Relaxed);
            }
            return found;
        }
        let made = Arc::new(Metered {
            meters: QueueMeters::new(name, self.driver),
            queue: AtomicBool::new(queue),
        });
        match self.queues.write() {
            Ok(mut queues) => {
                let kept = queues.entry(name.into()).or_insert(made).clone();
                if queue {
                    kept.queue.store(true, Ordering::Relaxed);
                }
                kept
            }
            // Only after a panic elsewhere: count anyway, unsampled.
            Err(_) => made,
        }
    }
}

/// Tells the installed recorder what each metric means. Again for every
/// queue: a recorder installed after the first queue still learns it.
#[cfg(feature = "metrics")]
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use names::*;
    {
        describe_counter!(
            PUSHED,
            "Messages stored by a push, publish, request or reply."
        );
        describe_counter!(PUSH_ERRORS, "Pushes to a valid queue name that failed.");
        describe_counter!(
            DELIVERED,
            "Deliveries handed to a handler or to receive, every attempt."
        );
        describe_counter!(
            ACKED,
            "Deliveries acknowledged: handled, or taken by receive."
        );
        describe_counter!(
            RETRIED,
            "Failed deliveries stored again for another attempt."
        );
        describe_counter!(DEAD_LETTERED, "Messages moved to <queue>.dead.");
        describe_histogram!(
            HANDLER_SECONDS,
            Unit::Seconds,
            "How long a handler ran, to its verdict."
        );
        describe_histogram!(
            LATENCY_SECONDS,
            Unit::Seconds,
            "From the push to the handler's start."
        );
        describe_gauge!(IN_FLIGHT, "Deliveries this bus's listeners hold.");
        describe_gauge!(LISTENERS, "Listeners of this bus on the queue.");
        describe_gauge!(
            READY,
            "Messages waiting for a listener (sampled once a second)."
        );
        describe_gauge!(
            DELAYED,
            "Messages held back by a delay or backoff (sampled once a second)."
        );
        describe_gauge!(DEAD, "Messages in <queue>.dead (sampled once a second).");
    }
}
