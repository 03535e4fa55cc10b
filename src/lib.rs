//! actorbus: an actor-based message bus for actix and tokio applications.
//!
//! One API — [`Bus::push`], [`Bus::add_listener`], [`Bus::remove`] — over a
//! driver chosen in `application.conf` with `queue.driver = memory | amqp |
//! redis`. Like its ancestor, the queue module of hunt-framework, a bus is a
//! *connection* to one backend, and a connection holds any number of named
//! *queues*. Unlike it, every driver gives the same promises: at-least-once
//! delivery, retries with exponential backoff, dead letters, delayed
//! messages, backpressure, and competing consumers.
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
//! # Layout
//!
//! | module | concept |
//! |---|---|
//! | `bus` | [`Bus`]: building a bus, producing, stats, purge, shutdown |
//! | `bus_consume` | consuming: [`Bus::add_listener`], [`Bus::subscribe`], [`Bus::receive`], [`Bus::remove`] |
//! | `listener` | [`Listener`]: the handle that removes one listener |
//! | `delivery` | [`Delivery`], the received message, and the stored envelope behind it |
//! | `message_id` | [`MessageId`], kept across retries and dead-lettering |
//! | `options` | [`PushOptions`], [`ListenerOptions`] |
//! | `stats` | [`QueueStats`] |
//! | `config`, `amqp_config`, `redis_config` | [`Config`] from `application.conf` (HOCON) and `ACTORBUS_*` variables |
//! | `config_parse` | each key applied to its field, and the rules every [`Config`] keeps, parsed or built in code |
//! | `config_value`, `config_size`, `config_duration` | one raw value to a typed setting: strings, driver, queue names, urls, integers; sizes; durations |
//! | `hocon_text` | HOCON text to a tree, safely: hocon 0.9's panics, misreads and unbounded nesting kept out |
//! | `error` | [`Error`], the one error type, and [`Result`] |
//! | `registry` | the actor mapping queue names to queue actors |
//! | `queue_actor` | the supervised actor of one queue |
//! | `listener_actor` | the actor of one listener, running its handler |
//! | `memory_store` | the memory driver's messages of one queue: ready, delayed, in flight |
//! | `subscribers` | which listener gets the next message (windows, round robin) |
//! | `room` | a queue's capacity gauge: backpressure without a reply per push |
//! | `waiters` | pushes waiting for room, receives waiting for a message |
//! | `timer` | one actor timer for the earliest of many deadlines |
//! | `retry` | retry-or-dead-letter decisions and the why-headers |
//! | `runtime` | the actix system and arbiters a bus runs on |
//! | `validate` | queue-name and payload checks, before any I/O |
//! | `panic_guard` | panics turned into failed deliveries and actor restarts |
//! | `amqp_broker` | the bus's handle on the amqp driver: starts its actors, forwards calls |
//! | `amqp_driver` | [`AmqpDriver`]: the publish link, confirms, reconnection with backoff |
//! | `amqp_link` | one generation of the two RabbitMQ connections; declares, counts, purges |
//! | `amqp_queue` | the supervised actor of one RabbitMQ queue: consumers, tags, acks, retries |
//! | `amqp_consumer` | one listener's consumer channel and its relay task |
//! | `amqp_receive` | `receive` by `basic.get` polling, acknowledged on hand-over |
//! | `amqp_shared` | settings and handles shared by the amqp actors |
//! | `amqp_tags` | held deliveries by token: channel and delivery tag, `multiple` acks, requeues |
//! | `amqp_wire` | queue names, wait queues, message properties (§6) |
//! | `redis_broker` | the bus's handle on the redis driver (Redis Streams) |
//! | `redis_driver` | [`RedisDriver`]: the redis driver's actor, its connections and one queue actor per queue |
//! | `redis_queue` | the supervised actor of one queue on Redis: settles, delays, stats |
//! | `redis_pusher` | the push side of one queue on Redis: pipelined `XADD`s, on another arbiter |
//! | `redis_member` | one listener on Redis: its reader (`XREADGROUP`), the reaper (`XAUTOCLAIM`) |
//! | `redis_link` | a bus's Redis connections: pool, shared connections, reconnection |
//! | `redis_reader` | the Redis commands: reads, settle and other scripts, the one-shot receive |
//! | `redis_wire` | how messages look in Redis: entry fields, delay-set members |
//! | `redis_scripts` | the Lua scripts: settle, promote due delays, stats, purge, drop a consumer |
//!
//! # Features
//!
//! | feature | default | gives |
//! |---|---|---|
//! | `amqp` | on | `queue.driver = amqp`: RabbitMQ through lapin, [`AmqpConfig`], [`AmqpDriver`] |
//! | `amqps` | off | `amqps://` urls (rustls); without it such a url is [`Error::Config`] naming `amqp.url` |
//! | `redis` | on | `queue.driver = redis`: Redis Streams through deadpool-redis, [`RedisConfig`], [`RedisDriver`] |
//!
//! The memory driver is always there.
//!
//! # How it works
//!
//! Every bus runs actors on actix arbiters, one per core: the caller's actix
//! system when there is one (`#[actix::main]`, actix-web), or a system of the
//! bus's own otherwise, so the same code works from `#[tokio::main]` or a
//! plain thread.
//!
//! ```text
//!  Bus ──Enqueue / Receive / Purge / GetStats──▶ QueueActor ──Deliver(batch)──▶ ListenerActor ──▶ handler
//!   │                                            ▲    │                             │
//!   │                                            │    └─DeadLetter─▶ Registry ─Enqueue─▶ QueueActor (<q>.dead)
//!   │                                            └────Settle(Ack | Fail | Release)──┘
//!   └──Subscribe / StopListeners──▶ QueueActor         ListenerActor ──Unsubscribe, then Detached──▶ QueueActor
//! ```
//!
//! - The **registry** actor maps names to queue actors and starts them,
//!   spread over the arbiters; the bus caches what it learns there.
//! - A **queue actor** (one per queue, `Supervised`) owns every message from
//!   the moment a push is stored until a listener settles it with `Ack`. A
//!   push first reserves room on the queue's capacity gauge (`Room`), then
//!   puts the message in the queue actor's mailbox and returns: the mailbox
//!   belongs to the actor, survives its restarts, and is read in order, so
//!   any later request — a listener, a `receive`, `stats` — finds the
//!   message. Only a push that finds the queue full waits, parked in the
//!   actor until room comes back or `queue.push_timeout` passes. While a
//!   listener holds a message it is *leased*: still owned by the queue,
//!   tagged with an acknowledgement token and the listener's id. `Fail`
//!   becomes a delayed retry or a dead letter; `Release` puts the message
//!   back, unattempted, at the front.
//! - A **listener actor** (one per listener, on its queue's arbiter, so a
//!   delivery and its verdict never cross threads) holds at most its window of
//!   leases, runs at most `concurrency` handlers, and sends verdicts back
//!   in batches. Its stop message makes it hand back what it has not
//!   started, finish what is in hand, and stop; its final `Detached` makes
//!   the queue reclaim any lease still on its way to it. So a message is gone
//!   only after an `Ack`, and a removed listener's handler is never called
//!   again.
//! - The **memory driver** keeps the store inside the queue actor.
//! - The **broker drivers** keep the listener side as it is (the same
//!   `ListenerActor`, the same `Settle` / `Unsubscribe` / `Detached`
//!   protocol) and swap the store for the broker. A driver actor
//!   ([`AmqpDriver`], [`RedisDriver`]) owns the connections and reconnects
//!   with backoff; a supervised queue actor per queue (`AmqpQueue`,
//!   `RedisQueue`) holds that queue's listeners, relays the broker's
//!   deliveries to them, and turns their verdicts into broker operations,
//!   with each acknowledgement token mapped to an AMQP delivery tag (on the
//!   channel that delivered it) or a stream entry id. `Ack` is a broker
//!   acknowledgement (`basic.ack`, or `XACK` + `XDEL`); `Fail` is a
//!   confirmed copy with `attempt + 1` into a TTL wait queue (amqp) or a
//!   delay sorted set (redis), or into `<q>.dead`, before the original is
//!   acknowledged; `Release` hands the message back to the broker
//!   unacknowledged. A push returns after the broker's confirm (amqp) or
//!   Redis's reply (redis).
//!
//! # Semantics
//!
//! The promises are those of the contract: a push is stored before it
//! returns; a delivery is acknowledged only after its handler returned `Ok`;
//! `Err` or a panic is retried after `queue.retry.backoff` (doubling, capped
//! by `queue.retry.max_backoff`) up to `queue.retry.max_attempts`, then the
//! message moves to `<queue>.dead` with `x-error`, `x-attempts` and
//! `x-failed-at` headers; the listeners of a queue compete, each message
//! reaching one; order is FIFO for one listener with concurrency 1 and no
//! retries. The memory driver keeps everything in the process: what it holds
//! ends with the process.

mod bus;
mod channel;
mod config;
mod delivery;
mod driver;
mod error;
mod listener;
mod message_id;
mod options;
mod panic_guard;
mod runtime;
mod stats;
#[cfg(feature = "test-util")]
pub mod testing;
mod timer;
mod validate;

pub use bus::Bus;
#[cfg(feature = "amqp")]
pub use config::AmqpConfig;
#[cfg(feature = "redis")]
pub use config::RedisConfig;
pub use config::{Config, DriverKind, MemoryConfig, QueueConfig, RetryConfig};
pub use delivery::{Delivery, HandlerResult};
#[cfg(feature = "amqp")]
pub use driver::AmqpDriver;
#[cfg(feature = "redis")]
pub use driver::RedisDriver;
pub use error::{BoxError, Error, Result};
pub use listener::Listener;
pub use message_id::MessageId;
pub use options::{ListenerOptions, PushOptions};
pub use stats::QueueStats;
