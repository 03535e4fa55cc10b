//! `Bus`: the handle users hold — one connection to one backend, and every queue on it.

mod consume;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use actix::{Actor, Addr};
use bytes::Bytes;
use rustc_hash::FxHashMap;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::channel::retry::RetryPolicy;
use crate::config::parse;
use crate::config::Config;
use crate::delivery::Envelope;
use crate::driver::memory::queue::{Crash, Enqueue, GetStats, Purge};
use crate::driver::memory::room::Admission;
use crate::driver::memory::store::ListenerId;
use crate::driver::registry::{Lookup, QueueHandle, QueueSettings, Registry, Shutdown};
use crate::driver::Broker;
use crate::error::{Error, Result};
use crate::message_id::MessageId;
use crate::options::PushOptions;
use crate::runtime::Runtime;
use crate::stats::QueueStats;
use crate::validate;

/// A connection to one backend and all the queues on it.
///
/// Cheap to clone: clones share the connection. When the last clone is
/// dropped the bus's actors stop; call [`shutdown`](Self::shutdown) first to
/// let handlers finish.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<BusInner>,
}

struct BusInner {
    config: Config,
    /// The broker driver; `None` on the memory driver, whose queues are the
    /// registry's actors.
    broker: Option<Broker>,
    registry: Addr<Registry>,
    /// Queue actors already looked up, so a push skips the registry.
    queues: RwLock<FxHashMap<Arc<str>, Arc<QueueHandle>>>,
    /// Set by `shutdown`: every later call is `Error::Closed`.
    closed: AtomicBool,
    next_listener: AtomicU64,
    /// Declared last: dropping it stops the actors above.
    runtime: Runtime,
}

impl Bus {
    /// A bus on the in-process memory driver with default settings.
    ///
    /// Needs no services. Everything it holds ends with the process (§3.4).
    ///
    /// # Panics
    ///
    /// Only if the operating system refuses to start the bus's threads.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// bus.push("my-queue", "hello world").await?;
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub fn memory() -> Bus {
        Bus::start(
            Config::default(),
            Runtime::start().expect("cannot start the actorbus runtime"),
            None,
        )
    }

    /// Builds a bus from `config`, connecting to its driver's backend.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid setting or a driver this build cannot
    /// use; [`Error::Backend`] when the backend cannot be reached.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = ?config.queue.driver))]
    pub async fn connect(config: Config) -> Result<Bus> {
        parse::check(&config)?;
        let runtime = Runtime::start()?;
        let broker = Broker::connect(&config, runtime.arbiters()).await;
        match broker {
            Ok(broker) => Ok(Bus::start(config, runtime, broker)),
            Err(error) => {
                runtime.stop();
                Err(error)
            }
        }
    }

    /// Reads `application.conf` at `path` (see [`Config::from_file`]) and connects.
    ///
    /// # Errors
    ///
    /// As [`Config::from_file`] and [`Bus::connect`].
    pub async fn from_config_file(path: impl AsRef<Path>) -> Result<Bus> {
        Bus::connect(Config::from_file(path)?).await
    }

    fn start(config: Config, runtime: Runtime, broker: Option<Broker>) -> Bus {
        let settings = Arc::new(QueueSettings {
            capacity: config.queue.memory.capacity,
            push_timeout: config.queue.push_timeout,
            retry: RetryPolicy::new(config.queue.retry.clone()),
        });
        let arbiters = runtime.arbiters().clone();
        let registry = Registry::start_in_arbiter(runtime.arbiters().next(), move |_| {
            Registry::new(arbiters, settings)
        });
        Bus {
            inner: Arc::new(BusInner {
                config,
                broker,
                registry,
                queues: RwLock::default(),
                closed: AtomicBool::new(false),
                next_listener: AtomicU64::new(1),
                runtime,
            }),
        }
    }

    /// The broker driver, unless this bus runs on memory.
    pub(crate) fn broker(&self) -> Option<&Broker> {
        self.inner.broker.as_ref()
    }

    pub(crate) fn next_listener_id(&self) -> ListenerId {
        self.inner.next_listener.fetch_add(1, Ordering::Relaxed)
    }

    /// The configuration this bus was built from.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// The actor of `queue`; started when `create` is set, else `None` for a
    /// queue never used.
    pub(crate) async fn queue(
        &self,
        queue: &str,
        create: bool,
    ) -> Result<Option<Arc<QueueHandle>>> {
        if let Some(handle) = self
            .inner
            .queues
            .read()
            .ok()
            .and_then(|q| q.get(queue).cloned())
        {
            return Ok(Some(handle));
        }
        let name: Arc<str> = queue.into();
        let found = self
            .inner
            .registry
            .send(Lookup {
                name: name.clone(),
                create,
            })
            .await
            .map_err(|_| Error::Closed)?;
        if let (Some(handle), Ok(mut cache)) = (&found, self.inner.queues.write()) {
            cache.insert(name, handle.clone());
        }
        Ok(found)
    }

    pub(crate) async fn queue_or_start(&self, queue: &str) -> Result<Arc<QueueHandle>> {
        self.queue(queue, true).await?.ok_or(Error::Closed)
    }

    /// Pushes `payload` onto `queue`.
    ///
    /// Returns once the message is stored where a listener will find it
    /// (§3.1); a message pushed before any listener waits for one. When the
    /// queue is full the push waits for room, up to `queue.push_timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`] and [`Error::PayloadTooLarge`] before any
    /// I/O; [`Error::Timeout`] when no room came in time; [`Error::Closed`]
    /// after [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let bus = actorbus::Bus::memory();
    /// let id = bus.push("my-queue", "hello world").await?;
    /// let delivery = bus.receive("my-queue", std::time::Duration::from_secs(1)).await?;
    /// assert_eq!(delivery.id(), &id);
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn push(&self, queue: &str, payload: impl Into<Bytes>) -> Result<MessageId> {
        self.push_with(queue, payload, PushOptions::default()).await
    }

    /// Pushes `value` encoded as JSON.
    ///
    /// # Errors
    ///
    /// [`Error::Codec`] when `value` cannot be encoded; otherwise as [`push`](Self::push).
    pub async fn push_json<T: Serialize + ?Sized>(
        &self,
        queue: &str,
        value: &T,
    ) -> Result<MessageId> {
        let payload = serde_json::to_vec(value).map_err(Error::codec)?;
        self.push(queue, payload).await
    }

    /// Pushes onto the bus's default queue (`queue.default`).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub async fn push_default(&self, payload: impl Into<Bytes>) -> Result<MessageId> {
        self.push(&self.inner.config.queue.default, payload).await
    }

    /// Pushes with a delay and/or headers.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// use std::time::Duration;
    /// use actorbus::PushOptions;
    ///
    /// let bus = actorbus::Bus::memory();
    /// let opts = PushOptions::default().with_delay(Duration::from_millis(50));
    /// bus.push_with("reminders", "wake up", opts).await?;
    /// assert_eq!(bus.stats("reminders").await?.delayed, 1);
    /// # bus.shutdown().await?;
    /// # Ok::<_, actorbus::Error>(())
    /// # }).unwrap();
    /// ```
    #[tracing::instrument(level = "debug", skip_all, fields(queue = %queue))]
    pub async fn push_with(
        &self,
        queue: &str,
        payload: impl Into<Bytes>,
        opts: PushOptions,
    ) -> Result<MessageId> {
        let payload = payload.into();
        self.check_open()?;
        validate::queue_name(queue)?;
        validate::payload(payload.len(), self.inner.config.queue.max_payload)?;
        let headers = (!opts.headers.is_empty()).then(|| Arc::new(opts.headers));
        let envelope = Envelope::new(payload, headers);
        let id = envelope.id.clone();
        if let Some(broker) = self.broker() {
            broker.push(queue, envelope, opts.delay).await?;
            return Ok(id);
        }
        let queue = self.queue_or_start(queue).await?;
        if queue.room.try_take() {
            queue.addr.do_send(Enqueue {
                envelope,
                delay: opts.delay,
                admission: Admission::Reserved,
            });
            return Ok(id);
        }
        let (reply, stored) = oneshot::channel();
        queue.addr.do_send(Enqueue {
            envelope,
            delay: opts.delay,
            admission: Admission::Wait(reply),
        });
        stored.await.map_err(|_| Error::Closed)??;
        Ok(id)
    }

    /// Counts the messages of `queue` and of `<queue>.dead`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`]; [`Error::Closed`] after shutdown.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.check_open()?;
        validate::queue_name(queue)?;
        if let Some(broker) = self.broker() {
            return broker.stats(queue).await;
        }
        let mut stats = self.local_stats(queue).await?;
        let dead = self.local_stats(&validate::dead_letter_name(queue)).await?;
        stats.dead = dead.ready + dead.delayed + dead.in_flight;
        Ok(stats)
    }

    async fn local_stats(&self, queue: &str) -> Result<QueueStats> {
        match self.queue(queue, false).await? {
            Some(queue) => queue.addr.send(GetStats).await.map_err(|_| Error::Closed),
            None => Ok(QueueStats::default()),
        }
    }

    /// Drops the ready messages of `queue` and says how many. Messages in
    /// flight or delayed stay.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`]; [`Error::Closed`] after shutdown.
    pub async fn purge(&self, queue: &str) -> Result<u64> {
        self.check_open()?;
        validate::queue_name(queue)?;
        if let Some(broker) = self.broker() {
            return broker.purge(queue).await;
        }
        match self.queue(queue, false).await? {
            Some(queue) => queue.addr.send(Purge).await.map_err(|_| Error::Closed),
            None => Ok(0),
        }
    }

    /// Stops taking work, lets handlers in flight finish (up to
    /// `queue.shutdown_timeout`), then stops the bus's actors (§3.8).
    ///
    /// Later calls on any clone fail with [`Error::Closed`]; a second
    /// `shutdown` is `Ok`. On the memory driver whatever is still queued
    /// ends here.
    ///
    /// # Errors
    ///
    /// None on the memory driver; broker drivers report a failed close.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn shutdown(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let timeout = self.inner.config.queue.shutdown_timeout;
        let drained = match self.broker() {
            Some(broker) => broker.shutdown(timeout).await,
            None => Ok(self
                .inner
                .registry
                .send(Shutdown { timeout })
                .await
                .unwrap_or(false)),
        };
        let drained = match drained {
            Ok(drained) => drained,
            Err(error) => {
                self.inner.runtime.stop();
                return Err(error);
            }
        };
        if !drained {
            tracing::warn!(
                ?timeout,
                "shutdown timeout passed with handlers still running"
            );
        }
        self.inner.runtime.stop();
        Ok(())
    }

    /// Fault injection for supervision tests: makes `queue`'s actor panic.
    /// Not part of the API.
    #[doc(hidden)]
    pub async fn __crash_queue_actor(&self, queue: &str) -> Result<()> {
        if let Some(broker) = self.broker() {
            return broker.crash_queue_actor(queue).await;
        }
        let queue = self.queue_or_start(queue).await?;
        queue.addr.send(Crash).await.map_err(|_| Error::Closed)
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("driver", &self.inner.config.queue.driver)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

// The contract (§1) promises a handle that can go anywhere; this fails to
// compile if a field ever takes that away.
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<Bus>();
    sendable::<crate::Delivery>();
    sendable::<crate::Listener>();
};
