//! Helpers shared by the behaviour tests: unique queue names, a collector for
//! deliveries, bounded waits, and the bus factories the conformance suite runs on.
//!
//! Every wait here is bounded by a generous limit: the limits are there so that
//! a broken bus fails a test instead of hanging it, never to assert speed.

#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod child;
#[cfg(all(feature = "cli", feature = "amqp", feature = "redis"))]
pub mod cli;
pub mod config;
#[cfg(any(feature = "amqp", feature = "redis"))]
pub mod faults;
#[cfg(any(feature = "amqp", feature = "redis"))]
pub mod firewall;
#[cfg(any(feature = "amqp", feature = "redis"))]
pub mod flow;
#[cfg(any(feature = "amqp", feature = "redis"))]
pub mod group_share;
#[cfg(any(feature = "amqp", feature = "redis"))]
pub mod ledger;
#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(any(feature = "amqp", feature = "redis"))]
pub mod poison;
pub mod ports;
#[cfg(feature = "amqp")]
pub mod rabbit_cluster;
#[cfg(feature = "amqp")]
pub mod rabbit_node;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "redis")]
pub mod redis_cluster;
#[cfg(any(feature = "amqp", feature = "redis"))]
pub mod redrive_crash;
pub mod sweep;
pub mod web_service;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actorbus::{Bus, Config, Delivery, HandlerResult, Listener, QueueStats};
use tokio::sync::Notify;

/// The upper bound of every wait in the tests: generous, a correctness bound only.
pub const LIMIT: Duration = Duration::from_secs(30);

/// A boxed, sendable future, as bus factories return it.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Builds a bus of one driver from a config the test adjusted.
///
/// The conformance suite takes one of these per driver; a driver gets the
/// whole suite with one line: `conformance_suite!(amqp, amqp_bus);`.
pub type BusFactory = dyn Fn(Config) -> BoxFuture<Bus> + Send + Sync;

/// The memory driver's factory: `Bus::connect(config)`.
pub fn memory_bus(config: Config) -> BoxFuture<Bus> {
    Box::pin(async move {
        Bus::connect(config)
            .await
            .expect("Bus::connect with a memory config must succeed")
    })
}

/// The amqp driver's factory: the config with `queue.driver = amqp`, on the
/// RabbitMQ that `scripts/test` makes sure of (`amqp.url`'s default).
#[cfg(feature = "amqp")]
pub fn amqp_bus(mut config: Config) -> BoxFuture<Bus> {
    config.queue.driver = actorbus::DriverKind::Amqp;
    Box::pin(async move {
        Bus::connect(config)
            .await
            .expect("RabbitMQ must be reachable at amqp.url (scripts/test starts it)")
    })
}

/// The redis driver's factory: the config with `queue.driver = redis`, on the
/// Redis that `scripts/test` makes sure of (`redis.url`'s default).
#[cfg(feature = "redis")]
pub fn redis_bus(mut config: Config) -> BoxFuture<Bus> {
    config.queue.driver = actorbus::DriverKind::Redis;
    Box::pin(async move {
        Bus::connect(config)
            .await
            .expect("Redis must be reachable at redis.url (scripts/test starts it)")
    })
}

/// Logs to the test output when `RUST_LOG` is set (and, with `otel`, adds
/// the trace tests' layer); harmless when called twice.
pub fn init_tracing() {
    use tracing_subscriber::prelude::*;
    let logs = tracing_subscriber::fmt::layer()
        .with_test_writer()
        .with_filter(tracing_subscriber::EnvFilter::from_default_env());
    let subscriber = tracing_subscriber::registry().with(logs);
    #[cfg(feature = "otel")]
    let subscriber = subscriber.with(otel::layer());
    let _ = subscriber.try_init();
}

/// A queue name no other test (or earlier run against a broker) uses:
/// `<prefix>-<pid>-<nanos>-<counter>`; a live [`sweep::Sweep`] on this
/// thread deletes what is made under it.
pub fn unique_queue(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!("test-{prefix}-{}-{nanos:x}-{n}", std::process::id());
    sweep::record(&name);
    name
}

/// `Config::default()` with short retry backoffs, so retry tests run quickly.
pub fn fast_config() -> Config {
    let mut config = Config::default();
    config.queue.retry.backoff = Duration::from_millis(10);
    config.queue.retry.max_backoff = Duration::from_millis(50);
    config
}

/// Awaits `fut`, failing the test with `what` if it takes longer than `limit`.
pub async fn bounded<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?} waiting for: {what}"),
    }
}

/// Polls `check` every 10 ms until it is true, failing the test with `what`
/// after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        if start.elapsed() > limit {
            panic!("condition not reached within {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `bus.stats(queue)` until `check` accepts it; returns the accepted stats.
pub async fn stats_until(
    bus: &Bus,
    queue: &str,
    what: &str,
    check: impl Fn(&QueueStats) -> bool,
) -> QueueStats {
    let start = Instant::now();
    loop {
        let stats = bus.stats(queue).await.expect("stats");
        if check(&stats) {
            return stats;
        }
        if start.elapsed() > LIMIT {
            panic!("stats of {queue:?} never reached {what}; last: {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Collects what handlers see, and lets the test wait for a count.
///
/// Cheap to clone: clones share the same list.
#[derive(Debug)]
pub struct Collector<T = Delivery> {
    inner: Arc<CollectorInner<T>>,
}

#[derive(Debug)]
struct CollectorInner<T> {
    items: Mutex<Vec<T>>,
    changed: Notify,
}

impl<T> Clone for Collector<T> {
    fn clone(&self) -> Self {
        Collector {
            inner: self.inner.clone(),
        }
    }
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector {
            inner: Arc::new(CollectorInner {
                items: Mutex::new(Vec::new()),
                changed: Notify::new(),
            }),
        }
    }
}

impl<T: Clone + Send + 'static> Collector<T> {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        // A panicking handler must not poison the collector for the test.
        self.inner.items.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one item and wakes waiters.
    pub fn push(&self, item: T) {
        self.lock().push(item);
        self.inner.changed.notify_waiters();
    }

    /// How many items were recorded so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }

    /// Waits until at least `n` items were recorded and returns them all;
    /// fails the test if that takes longer than `limit`.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<T> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            // Register before checking, so a push in between is not missed.
            notified.as_mut().enable();
            {
                let items = self.lock();
                if items.len() >= n {
                    return items.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.len();
                if got >= n {
                    return self.snapshot();
                }
                panic!("expected at least {n} items within {limit:?}, got {got}");
            }
        }
    }
}

impl Collector<Delivery> {
    /// A handler that records each delivery and acknowledges it.
    pub fn handler(&self) -> impl Fn(Delivery) -> BoxFuture<HandlerResult> + Send + Sync + 'static {
        let collector = self.clone();
        move |delivery| {
            collector.push(delivery);
            Box::pin(async { Ok(()) })
        }
    }

    /// Adds a listener to `queue` whose handler is [`Collector::handler`]:
    /// every delivery it gets is recorded here.
    pub async fn listen(&self, bus: &Bus, queue: &str) -> Listener {
        bus.add_listener(queue, self.handler())
            .await
            .expect("add_listener")
    }
}

/// What a report that walks `error`'s `source()` chain prints: each
/// error's own text, outermost first.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        chain.push(cause.to_string());
        next = cause.source();
    }
    chain
}

/// Fails the test if a text of `error`'s chain says again what an earlier
/// one said (the same cause printed twice), or if a piece of a text comes
/// twice in the whole report (`outer: cause: cause`). Returns the report.
pub fn assert_chain_never_repeats(error: &(dyn std::error::Error + 'static)) -> String {
    let chain = error_chain(error);
    for (i, later) in chain.iter().enumerate() {
        for earlier in &chain[..i] {
            assert!(
                !earlier.contains(later.as_str()),
                "{later:?} repeats what {earlier:?} said: {chain:#?}"
            );
        }
    }
    let report = chain.join(": ");
    let pieces: Vec<&str> = report.split(": ").filter(|p| p.len() > 3).collect();
    for (i, piece) in pieces.iter().enumerate() {
        assert!(
            !pieces[..i].contains(piece),
            "{piece:?} printed twice in {report:?}"
        );
    }
    report
}

/// Fails the test unless `error` prints as one line that says it all (its
/// chain adds nothing), with `phrase` in it once; returns that line.
pub fn assert_reads_once(error: &actorbus::Error, phrase: &str) -> String {
    let report = assert_chain_never_repeats(error);
    assert_eq!(
        report,
        error.to_string(),
        "the error's own line says it all"
    );
    assert_eq!(
        report.matches(phrase).count(),
        1,
        "{phrase:?} once in {report:?}"
    );
    report
}

/// The payload of message number `i`, as tests that count messages push it.
pub fn indexed(i: u32) -> Vec<u8> {
    i.to_be_bytes().to_vec()
}

/// The number in a payload made by [`indexed`].
pub fn index_of(delivery: &Delivery) -> u32 {
    let bytes: [u8; 4] = delivery.payload()[..].try_into().unwrap_or_else(|_| {
        panic!(
            "payload is not an indexed message: {:?}",
            delivery.payload()
        )
    });
    u32::from_be_bytes(bytes)
}

/// An actor running in an actix system of its own thread, for tests that
/// run on plain tokio (as the conformance suite does); the system stops
/// when this is dropped.
pub struct ActorThread<A: actix::Actor> {
    /// The actor's address.
    pub addr: actix::Addr<A>,
    system: actix::System,
}

impl<A> ActorThread<A>
where
    A: actix::Actor<Context = actix::Context<A>>,
{
    /// Starts the actor `make` builds on a new thread with its own system.
    pub fn start(make: impl FnOnce() -> A + Send + 'static) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let system = actix::System::new();
            system.block_on(async move {
                let _ = tx.send((actix::Actor::start(make()), actix::System::current()));
            });
            let _ = system.run();
        });
        let (addr, system) = rx.recv_timeout(LIMIT).expect("actor thread started");
        ActorThread { addr, system }
    }
}

impl<A: actix::Actor> Drop for ActorThread<A> {
    fn drop(&mut self) {
        self.system.stop();
    }
}
