//! `Bus`: the handle users hold — one connection to one backend, and every queue on it.

mod batch;
pub(crate) mod consume;
mod operate;
mod produce;
pub(crate) mod request;
mod topic;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::rules;
use crate::config::Config;
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::listener::ListenerId;
use crate::observe::meters::BusMeters;
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
    /// The driver the config chose, with its channels.
    driver: Driver,
    /// Set by `shutdown`: every later call is `Error::Closed`.
    closed: AtomicBool,
    next_listener: AtomicU64,
    /// The reply address and its listener (none on amqp), started by the
    /// first `request`.
    replies: tokio::sync::OnceCell<request::Replies>,
    /// Push counters by queue (empty without the feature `metrics`).
    meters: BusMeters,
    /// Declared last: dropping it stops the actors above.
    runtime: Runtime,
}

impl Bus {
    /// A bus on the in-process memory driver with default settings.
    ///
    /// Needs no services. Everything it holds ends with the process.
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
        let config = Config::default();
        let runtime = Runtime::start().expect("cannot start the actorbus runtime");
        let driver = Driver::Memory(crate::driver::memory::Memory::start(
            &config,
            runtime.arbiters(),
        ));
        Bus::start(config, runtime, driver)
    }

    /// Builds a bus from `config`, connecting to its driver's backend.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid setting or a driver this build cannot
    /// use; [`Error::Backend`] when the backend cannot be reached.
    #[tracing::instrument(level = "debug", skip_all, fields(driver = ?config.queue.driver))]
    pub async fn connect(config: Config) -> Result<Bus> {
        rules::check(&config)?;
        let runtime = Runtime::start()?;
        match Driver::connect(&config, runtime.arbiters()).await {
            Ok(driver) => Ok(Bus::start(config, runtime, driver)),
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

    fn start(config: Config, runtime: Runtime, driver: Driver) -> Bus {
        let meters = BusMeters::new(config.queue.driver);
        let bus = Bus {
            inner: Arc::new(BusInner {
                config,
                driver,
                closed: AtomicBool::new(false),
                next_listener: AtomicU64::new(1),
                replies: tokio::sync::OnceCell::new(),
                meters,
                runtime,
            }),
        };
        #[cfg(feature = "metrics")]
        crate::observe::sampler::start(&bus);
        bus
    }

    pub(crate) fn meters(&self) -> &BusMeters {
        &self.inner.meters
    }

    /// The `messaging.system` of this bus's spans.
    pub(crate) fn messaging_system(&self) -> &'static str {
        crate::observe::messaging_system(self.inner.config.queue.driver)
    }

    /// A handle that does not keep the bus alive.
    #[cfg(feature = "metrics")]
    pub(crate) fn downgrade(&self) -> WeakBus {
        WeakBus(Arc::downgrade(&self.inner))
    }

    /// Runs `task` on one of the bus's arbiters; it ends with the bus.
    #[cfg(feature = "metrics")]
    pub(crate) fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.runtime.arbiters().next().spawn(task);
    }

    pub(crate) fn driver(&self) -> &Driver {
        &self.inner.driver
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

    /// Counts the messages of `queue` and of `<queue>.dead`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidQueueName`]; [`Error::Closed`] after shutdown.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats> {
        self.check_open()?;
        validate::queue_name(queue)?;
        self.driver().stats(queue).await
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
        self.driver().purge(queue).await
    }

    /// Stops taking work, lets handlers in flight finish (up to
    /// `queue.shutdown_timeout`), then stops the bus's actors.
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
        let doomed = self.close_replies();
        let timeout = self.inner.config.queue.shutdown_timeout;
        let drained = match self.driver().shutdown(timeout, doomed).await {
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
}

/// A bus handle that does not keep the bus alive (the metrics sampler's).
#[cfg(feature = "metrics")]
pub(crate) struct WeakBus(std::sync::Weak<BusInner>);

#[cfg(feature = "metrics")]
impl WeakBus {
    /// The bus, while some handle to it is still held.
    pub(crate) fn upgrade(&self) -> Option<Bus> {
        self.0.upgrade().map(|inner| Bus { inner })
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

// The API promises a handle that can go anywhere; this fails to
// compile if a field ever takes that away.
const _: fn() = || {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<Bus>();
    sendable::<crate::Delivery>();
    sendable::<crate::Listener>();
};
