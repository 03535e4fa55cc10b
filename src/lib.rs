//! actorbus: an actor-based message bus for actix and tokio applications.
//!
//! One API — [`Bus::push`], [`Bus::add_listener`], [`Bus::remove`] — over a
//! driver chosen in `application.conf` with `queue.driver = memory | amqp |
//! redis`. Like its ancestor, the queue module of hunt-framework, a bus is a
//! *connection* to one backend, and a connection holds any number of named
//! *queues*. Unlike it, every driver gives the same promises (see
//! [Semantics](#semantics)): at-least-once delivery, retries with exponential
//! backoff, dead letters, delayed messages, backpressure, and competing
//! consumers.
//!
//! # Quickstart
//!
//! ```
//! use std::time::Duration;
//! use actorbus::Bus;
//!
//! # actix::System::new().block_on(async {
//! let bus = Bus::memory();
//! let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
//! bus.add_listener("my-queue", move |delivery| {
//!     let _ = tx.send(delivery.as_str().map(str::to_owned));
//!     async { Ok(()) }
//! })
//! .await?;
//!
//! bus.push("my-queue", "hello world").await?;
//! assert_eq!(rx.recv().await.unwrap()?, "hello world");
//! bus.shutdown().await?;
//! # Ok::<_, actorbus::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Components
//!
//! | module | what it is |
//! |---|---|
//! | `bus` | [`Bus`], the handle users hold: producing, consuming, topics, operating |
//! | `channel` | the supervised actor of one queue, the same for every driver, over a driver's `Backend` |
//! | `listener` | [`Listener`] and the actor that runs one handler |
//! | `driver` | the drivers (`memory/`, `amqp/`, `redis/`), each a `Backend` and a driver actor, and the one name → channel registry |
//! | `typed` | [`Queue`], a typed handle on a queue; [`Typed`], the decoded delivery; [`Codec`] ([`Json`] and, with `msgpack`, `MessagePack`) |
//! | `reject` | [`Reject`], the handler error that dead-letters at once |
//! | `config` | [`Config`] from `application.conf` (HOCON) and `ACTORBUS_*` variables, each key read into the field of its name by serde |
//! | `observe` | metrics (`metrics`), the spans of a push and of a delivery, W3C trace context in headers (`otel`); the lists are under [Observability](#observability) |
//! | `delivery`, `message_id`, `options`, `stats`, `error` | the public types: [`Delivery`], [`MessageId`], [`PushOptions`], [`ListenerOptions`], [`QueueStats`], [`Error`] |
//! | `runtime`, `timer`, `validate`, `panic_guard` | the arbiters a bus runs on; one timer for many deadlines; input checks; panics as values |
//!
//! # Features
//!
//! | feature | default | gives |
//! |---|---|---|
//! | `amqp` | on | `queue.driver = amqp`: RabbitMQ through lapin, [`AmqpConfig`] |
//! | `amqps` | off | `amqps://` urls (rustls); without it such a url is [`Error::Config`] naming `amqp.url` |
//! | `redis` | on | `queue.driver = redis`: Redis Streams through deadpool-redis, [`RedisConfig`] |
//! | `msgpack` | off | `MessagePack`, a [`Codec`] for typed queues (rmp-serde) |
//! | `metrics` | off | counters, histograms and gauges per queue through the `metrics` facade, for any exporter (see [Observability](#observability)) |
//! | `otel` | off | the pushing span's W3C `traceparent` / `tracestate` in the message headers, continued by the handler's span (opentelemetry, tracing-opentelemetry) |
//! | `cli` | on | the `actorbus` command (`cargo install --path .`): push, peek, receive, stats, dead letters, bench; pulls clap, plotters, indicatif. A library user opts out with `default-features = false` (then names the drivers it wants) |
//! | `test-util` | off | `actorbus::testing`: fault injection (make a queue's actor panic) for supervision tests |
//!
//! The memory driver is always there.

//! # Observability
//!
//! With the feature `metrics`, every queue reports these through the
//! [`metrics`](https://docs.rs/metrics) facade, labelled `queue` and
//! `driver` (`memory`, `amqp`, `redis`): install a recorder (for example
//! `metrics-exporter-prometheus`, as `examples/prometheus.rs` does) before
//! the bus first uses a queue.
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `actorbus_pushed_total` | counter | messages stored by a push (also publish, request, reply) |
//! | `actorbus_push_errors_total` | counter | pushes to a valid queue name that failed |
//! | `actorbus_delivered_total` | counter | deliveries handed to a handler or to [`Bus::receive`], each attempt |
//! | `actorbus_acked_total` | counter | deliveries acknowledged |
//! | `actorbus_retried_total` | counter | failed deliveries stored again for another attempt |
//! | `actorbus_dead_lettered_total` | counter | messages moved to `<queue>.dead` |
//! | `actorbus_handler_seconds` | histogram | handler run time, to its verdict |
//! | `actorbus_delivery_latency_seconds` | histogram | push to handler start, from the time in the message id (millisecond resolution) |
//! | `actorbus_in_flight`, `actorbus_listeners` | gauge | what this bus's listeners hold, and how many there are |
//! | `actorbus_ready`, `actorbus_delayed`, `actorbus_dead` | gauge | [`Bus::stats`] of each queue the bus uses, sampled once a second |
//!
//! Always, whatever the features: an `INFO` span of target `actorbus` per
//! push (`actorbus.publish`) and per delivery (`actorbus.process`, the
//! handler runs inside it), with the OpenTelemetry messaging fields
//! `messaging.system` (`memory`, `rabbitmq`, `redis`),
//! `messaging.destination.name`, `messaging.message.id`,
//! `messaging.operation` (`publish`, `process`) and, on a delivery,
//! `messaging.actorbus.attempt`; `otel.name` is `<queue> publish` or
//! `<queue> process`, and `otel.status_code` is `ERROR` when the push or
//! the handler failed. With the feature `otel` and a `tracing-opentelemetry`
//! layer installed, a push writes its span's `traceparent` / `tracestate`
//! into the message's headers (a `traceparent` the caller set wins) and
//! the delivery's span continues that trace: across processes, retries
//! and dead letters alike.
//!
//! # How it works
//!
//! Every bus runs its actors on actix arbiters of its own, one per core, in
//! an actix system of its own: the same code works from `#[actix::main]`,
//! actix-web, `#[tokio::main]` or a plain thread, and an application whose
//! system stops (actix-web stops it on SIGTERM or Ctrl-C) can still call
//! [`Bus::shutdown`] afterwards to drain.
//!
//! ```text
//!  Bus ──push──▶ driver ──(memory: Relay(Enqueue) │ broker: publish, confirm)
//!   │                                     │
//!   │                                     ▼
//!   ├──Receive / GetStats / Purge──▶ ChannelActor<Backend> ◀──Relay(event)── driver actor ◀── broker
//!   │                                 │        ▲
//!   │                     Deliver(batch)      Settle(Ack | Fail | Release)
//!   │                                 ▼        │
//!   └──Subscribe / StopListeners──▶  ListenerActor ──▶ handler
//!                                    ListenerActor ──Unsubscribe, then Detached──▶ ChannelActor
//! ```
//!
//! - The **registry** (one per bus) maps queue names to channel actors and
//!   starts them, spread over the arbiters; the bus caches what it learns.
//! - A **channel actor** (one per queue, `Supervised`) is the same code for
//!   every driver. It owns the queue's listeners and their windows, every
//!   delivery a listener holds (under an acknowledgement token, with the
//!   backend's handle for it), the retry-or-dead-letter decision, the stop
//!   fan-out, and one panic guard around every handler: a panic restarts the
//!   actor with its state, counted in [`QueueStats::restarts`].
//! - An idle channel (no listener, nothing held, no call for
//!   `queue.idle_timeout`; memory driver) **retires**: the registry forgets
//!   it, what still reaches it is forwarded to the queue's next channel,
//!   and the actor ends once its last handle is gone.
//! - A **backend** is a driver's I/O for one queue, inside its channel actor:
//!   the memory backend keeps the messages themselves; the amqp backend maps
//!   tokens to consumer channels and delivery tags, and a failed delivery to
//!   a confirmed copy in a TTL wait queue or `<queue>.dead` before the
//!   original is acknowledged; the redis backend reads the stream with a
//!   consumer group (a topic's subscriber group: the topic's one stream,
//!   with a consumer group per subscriber group, and a stream of its own
//!   for its retries) and settles entries in Lua scripts.
//! - A **driver actor** per bus owns the broker connections and reconnects
//!   with backoff ([`Bus::connect`] starts it); the memory driver needs none
//!   (its registry routes dead letters).
//! - A **listener actor** (one per listener, on its queue's arbiter, so a
//!   delivery and its verdict never cross threads) holds at most its window
//!   of deliveries, runs at most `concurrency` handlers, and sends verdicts
//!   back in batches. Its stop message makes it hand back what it has not
//!   started, finish what is in hand, and stop; its final `Detached` makes
//!   the channel release anything still on its way to it.
//!
//! # Semantics
//!
//! The same on every driver.
//!
//! - **Stored before success.** `push` returns `Ok` only once the message
//!   is stored where a listener will find it: in the queue's channel actor
//!   (memory), confirmed by RabbitMQ (amqp, publisher confirms), or
//!   acknowledged by Redis (redis). Messages pushed while a queue has no
//!   listener wait for one.
//! - **Batches.** [`Bus::push_batch`] stores every message of a batch
//!   with the same promise as `push`, cheaper (memory: one hand-off to the
//!   queue's actor; amqp: published in order, confirms awaited together;
//!   redis: one pipeline). The whole batch is checked before any I/O; a
//!   batch that fails part-way is [`Error::PartialBatch`] with the ids
//!   that were stored.
//! - **At-least-once.** A delivery is acknowledged (gone for good) only
//!   after its handler returned `Ok`. `Err` or a panic in a handler never
//!   loses the message: it is retried. A process that dies mid-handling gets
//!   its unacknowledged messages redelivered (amqp, redis) when a listener
//!   next runs.
//! - **Retries and dead letters.** A failed delivery is delivered again with
//!   `attempt() + 1` after `queue.retry.backoff`, doubling per attempt up to
//!   `queue.retry.max_backoff`, up to `queue.retry.max_attempts`. Then it
//!   moves to `<queue>.dead` with the headers `x-error`, `x-attempts` and
//!   `x-failed-at`. `<queue>.dead` is an ordinary queue: it can be listened
//!   to, received from, counted and purged. Nothing is dropped silently.
//! - **Poison messages.** On amqp and redis every delivery that reached a
//!   handler counts toward `queue.retry.max_attempts`, however it ended
//!   (`Err`, a panic, the process dying, the connection dropping): a
//!   redelivered message is counted on the broker just before its handler
//!   starts (amqp: a lease copy, `amqp.redelivery_lease`; redis: the
//!   pending list's delivery count), so messages merely prefetched are
//!   never counted. A message that kills its process every time moves to
//!   `<queue>.dead` after `max_attempts` deliveries, with an `x-error`
//!   saying so, and the messages behind it get through.
//! - **Peek and redrive.** [`Bus::peek`] shows copies of the ready
//!   messages without taking them (on amqp by taking and handing them back;
//!   its docs say what that costs). [`Bus::redrive`] moves dead letters back
//!   to their queue at attempt 1, with `x-redriven` and their last
//!   `x-error`, each stored there before it leaves `<queue>.dead`.
//! - **Reject.** A handler error that is (or wraps) a [`Reject`] moves the
//!   message to `<queue>.dead` at once, on the attempt it failed, with the
//!   same headers; a payload of a typed [`Queue`] that does not decode goes
//!   the same way. Neither is retried.
//! - **Topics.** [`Bus::publish`] gives every subscriber group of a topic
//!   a copy; the members of a group ([`Bus::add_subscriber`]) compete. A
//!   group is the ordinary queue `<topic>.<group>`, with every promise
//!   above, and is durable once joined: it stores what is published while
//!   none of its members runs. A group gets only what was published after
//!   it was first joined. (amqp: a fanout exchange and a queue per group;
//!   redis: one stream per topic, read by a consumer group per group, an
//!   entry deleted once every group acknowledged it.)
//! - **Request/reply.** [`Bus::request`] pushes with a reply address and a
//!   correlation id (headers `x-reply-to`, `x-correlation-id`; on amqp the
//!   properties `reply_to` and `correlation_id`) and waits for the answer
//!   [`Bus::reply`] sends there: RabbitMQ's direct reply-to on amqp, the
//!   bus's reply queue elsewhere. A reply after the timeout is dropped and
//!   counted ([`Bus::late_replies`]), never given to another request.
//! - **Delays.** [`PushOptions::delay`] holds a message back for that long;
//!   it survives a restart on amqp and redis. The memory driver keeps
//!   everything in the process: what it holds ends with the process.
//! - **Competing consumers.** Each message reaches exactly one listener of
//!   its queue (across processes too, on amqp and redis).
//!   [`ListenerOptions::concurrency`] bounds how many deliveries one
//!   listener handles at once, and a broker never hands one listener more
//!   than its window.
//! - **Order.** FIFO per queue for one listener with concurrency 1 and no
//!   retries; otherwise no order is promised.
//! - **Removal by stop message.** [`Listener::remove`] sends that listener's
//!   actor a stop message; [`Bus::remove`] sends the queue's channel actor
//!   one, which stops all its listeners. A stopped listener finishes the
//!   delivery in hand, hands back (does not acknowledge) what it prefetched,
//!   and its handler is never called again. Messages stay in the queue;
//!   [`Bus::purge`] is the only way to drop them.
//! - **Shutdown.** [`Bus::shutdown`] stops taking pushes
//!   ([`Error::Closed`]), waits for handlers in flight up to
//!   `queue.shutdown_timeout`, returns what is unacknowledged, flushes
//!   confirms, and closes connections.
//! - **Bad input.** A queue name is 1 to 200 bytes of UTF-8 without control
//!   characters, not starting with `amq.`; anything else is
//!   [`Error::InvalidQueueName`] before any I/O. A payload over
//!   `queue.max_payload` is [`Error::PayloadTooLarge`] before any I/O. A bad
//!   config is [`Error::Config`] naming the key. No input makes the library
//!   panic.
//! - **Broker outages.** Losing the broker connection never loses a
//!   confirmed push and never hangs a caller: the driver reconnects with
//!   backoff, restores its queues and listeners, and re-sends what was not
//!   confirmed; a push waits up to `queue.push_timeout` and then fails with
//!   [`Error::Timeout`].
//! - **receive.** [`Bus::receive`] takes the next message as a one-shot
//!   listener and acknowledges it as it hands it over: from then on the
//!   caller owns it.
//! - **Supervision.** A panic inside a queue's channel actor restarts it
//!   with its listeners, stored messages and deliveries in flight; a call
//!   whose answer was under way when it panicked may get [`Error::Closed`].

mod bus;
mod channel;
mod config;
mod delivery;
mod driver;
mod error;
mod listener;
mod message_id;
mod observe;
mod options;
mod panic_guard;
mod reject;
mod runtime;
mod stats;
#[cfg(feature = "test-util")]
pub mod testing;
mod timer;
mod typed;
mod validate;

pub use bus::Bus;
#[cfg(feature = "redis")]
pub use config::RedisConfig;
#[cfg(feature = "amqp")]
pub use config::{AmqpConfig, AmqpQueueType};
pub use config::{Config, DriverKind, MemoryConfig, QueueConfig, RetryConfig};
pub use delivery::{Delivery, HandlerResult};
pub use error::{BoxError, Error, Result};
pub use listener::Listener;
pub use message_id::MessageId;
pub use options::{ListenerOptions, PushOptions};
pub use reject::Reject;
pub use stats::QueueStats;
#[cfg(feature = "msgpack")]
pub use typed::codec::MessagePack;
pub use typed::codec::{Codec, Json};
pub use typed::message::Typed;
pub use typed::queue::Queue;
