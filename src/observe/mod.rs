//! Observing the bus: metrics (feature `metrics`), a span per push and per delivery, and (feature `otel`) the W3C trace context carried in message headers.
//!
//! - `meters`: [`QueueMeters`](meters::QueueMeters) and [`BusMeters`](meters::BusMeters), the
//!   metric handles of one queue and of one bus;
//! - `sampler`: ready / delayed / dead per queue, once a second (feature `metrics`);
//! - `spans`: the `tracing` spans of a push and of a delivery;
//! - `propagate`: `traceparent` / `tracestate` into and out of headers (feature `otel`).
//!
//! Each call site is one method call here. With a feature off the method's
//! body is empty and `#[inline(always)]`, and the types behind it are empty,
//! so the call sites compile to nothing.
//!
//! # Metrics
//!
//! Through the [`metrics`](https://docs.rs/metrics) facade: whatever
//! recorder the application installed (Prometheus, StatsD, OpenTelemetry…)
//! gets them. Every one is labelled `queue` (the queue's name; a topic's
//! name for [`Bus::publish`](crate::Bus::publish)) and `driver` (`memory`,
//! `amqp` or `redis`). A queue's handles are registered once, when the
//! bus first uses the queue, so a recorder must be installed before that.
//! Each event is counted in the code every driver shares, once on every driver.
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `actorbus_pushed_total` | counter | messages stored by a push (also `publish`, `request`, `reply`) |
//! | `actorbus_push_errors_total` | counter | pushes to a valid queue name that failed (payload too large, timeout, broker error, closed) |
//! | `actorbus_delivered_total` | counter | deliveries handed to a handler or to `receive` (each attempt counts) |
//! | `actorbus_acked_total` | counter | deliveries acknowledged: handled, or taken by `receive` |
//! | `actorbus_retried_total` | counter | failed deliveries stored again for another attempt |
//! | `actorbus_dead_lettered_total` | counter | messages moved to `<queue>.dead` (last attempt failed, or rejected) |
//! | `actorbus_handler_seconds` | histogram | how long a handler ran, to its verdict |
//! | `actorbus_delivery_latency_seconds` | histogram | from the push to the handler's start (or `receive`'s hand-over): the time in the message id (UUIDv7, millisecond resolution, the pushing machine's clock); delays and retry backoffs count; ids of foreign publishers carry no time and are left out |
//! | `actorbus_in_flight` | gauge | deliveries listeners of this bus hold, as the queue's channel knows it |
//! | `actorbus_listeners` | gauge | listeners of this bus attached to the queue |
//! | `actorbus_ready` | gauge | messages waiting for a listener, sampled once a second |
//! | `actorbus_delayed` | gauge | messages held back by a delay or retry backoff, sampled once a second |
//! | `actorbus_dead` | gauge | messages in `<queue>.dead`, sampled once a second |
//!
//! The sampled gauges are [`Bus::stats`](crate::Bus::stats) of every queue
//! the bus pushed to or listened on, read at most once a second.
//!
//! # Spans
//!
//! Always on: `tracing` spans cost next to nothing while no subscriber
//! wants them. Both are `INFO` spans of target `actorbus`.
//!
//! | span | fields |
//! |---|---|
//! | `actorbus.publish` (OpenTelemetry name `<queue> publish`, kind producer): one per push or publish | `messaging.system` (`memory`, `rabbitmq`, `redis`), `messaging.destination.name`, `messaging.message.id`, `messaging.operation = "publish"`, `otel.status_code = "ERROR"` when the push failed |
//! | `actorbus.process` (OpenTelemetry name `<queue> process`, kind consumer): one per delivery to a handler; the handler runs inside it | the same four, `messaging.operation = "process"`, `messaging.actorbus.attempt` (1, then one more per retry), `otel.status_code = "ERROR"` when the handler failed |
//!
//! With the feature `otel`, a push writes the W3C `traceparent` and
//! `tracestate` of its publish span into the message's headers (unless the
//! caller set a `traceparent` itself), and a delivery's process span takes
//! them as its parent: the handler continues the pusher's trace, across
//! processes, retries and dead letters (copies keep their headers).

pub(crate) mod meters;
#[cfg(feature = "otel")]
mod propagate;
#[cfg(feature = "metrics")]
pub(crate) mod sampler;
pub(crate) mod spans;

use crate::config::DriverKind;
use meters::QueueMeters;

/// What one queue's channel and its listeners report under.
pub(crate) struct Observer {
    /// `messaging.system` of the queue's spans.
    pub(crate) system: &'static str,
    /// The queue's metric handles (empty without `metrics`).
    pub(crate) meters: QueueMeters,
}

impl Observer {
    /// The observer of `queue` on `driver`, its metric handles registered.
    pub(crate) fn new(queue: &str, driver: DriverKind) -> Self {
        Observer {
            system: messaging_system(driver),
            meters: QueueMeters::new(queue, driver),
        }
    }
}

/// The `driver` label of a driver's metrics.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn driver_label(driver: DriverKind) -> &'static str {
    match driver {
        DriverKind::Memory => "memory",
        DriverKind::Amqp => "amqp",
        DriverKind::Redis => "redis",
    }
}

/// The OpenTelemetry `messaging.system` of a driver.
pub(crate) fn messaging_system(driver: DriverKind) -> &'static str {
    match driver {
        DriverKind::Memory => "memory",
        DriverKind::Amqp => "rabbitmq",
        DriverKind::Redis => "redis",
    }
}
