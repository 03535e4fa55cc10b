//! `RedisLink`: one bus's connections to Redis — the pool, the shared multiplexed connection, reconnection with backoff.
//!
//! Every command that does not block goes over a shared multiplexed
//! connection, one per arbiter thread (made there, so its I/O task runs
//! beside the channels that use it), so concurrent pushes and settles
//! pipeline on it instead of waiting a round trip each, and the commands
//! one channel issues run in the order it issued them. An immediate
//! push sends its `XADD` through its pusher's arbiter's connection from the
//! caller's task: the I/O still runs on that arbiter, the caller only
//! awaits the reply. Blocking reads (`XREADGROUP … BLOCK`) each get a
//! connection of their own, taken from the pool. A lost connection is
//! re-made on next use, with backoff, for as long as the caller's deadline
//! allows: an outage delays work, it does not fail it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Duration;

use deadpool_redis::{Connection, Manager, Pool, Runtime};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, ServerErrorKind};
use rustc_hash::FxHashMap;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::redis::RedisConfig;
use crate::config::value::redact_password;
use crate::driver::redis::wire::Keys;
use crate::error::{Error, Result};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest `BLOCK` of a read. Short enough that a listener notices a dead
/// connection quickly, long enough that an idle listener costs little.
pub(crate) const BLOCK: Duration = Duration::from_secs(2);
/// How long a reply may take. It must exceed [`BLOCK`]: redis 1.x's default
/// of 500 ms would fail every blocking read on an idle queue.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// First and longest wait between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(25), Duration::from_secs(1));

/// A Redis failure with what the driver was doing; keeps the redis error as
/// its source without leaking its type.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub(crate) struct Failure {
    context: String,
    #[source]
    source: RedisError,
}

/// The connections of one bus.
pub(crate) struct RedisLink {
    /// Makes every connection, with the timeouts above.
    pool: Pool,
    /// The shared connection of each arbiter thread and its generation;
    /// removed when it broke.
    shared: Mutex<FxHashMap<ThreadId, (u64, MultiplexedConnection)>>,
    /// Held while one caller re-makes the shared connection; counts generations.
    remaking: tokio::sync::Mutex<u64>,
    /// `CONFIG GET appendonly` said `yes` at connect.
    pub(crate) durable: bool,
    /// Set at shutdown: blocked receives give up, listeners stop reading.
    closing: watch::Sender<bool>,
    /// Set once the connections are closed: no new one is made.
    closed: AtomicBool,
    /// `redis.url` without its password, for messages.
    shown: String,
}

impl RedisLink {
    /// Connects to `config.url`, checks the server, and reads its durability.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `redis.url` when it cannot be parsed;
    /// [`Error::Backend`] when Redis cannot be reached or refuses us.
    pub(crate) async fn connect(config: &RedisConfig) -> Result<RedisLink> {
        let shown = redact_password(&config.url);
        let settings = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_pipeline_buffer_size(1024);
        let manager = Manager::new_with_config(config.url.as_str(), settings)
            .map_err(|e| Error::config("redis.url", format!("cannot use {shown:?}: {e}")))?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_max_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(RESPONSE_TIMEOUT))
            .build()
            .map_err(Error::backend)?;
        let (closing, _) = watch::channel(false);
        let mut link = RedisLink {
            pool,
            shared: Mutex::default(),
            remaking: tokio::sync::Mutex::new(0),
            durable: false,
            closing,
            closed: AtomicBool::new(false),
            shown,
        };
        let mut conn = link.fresh().await.map_err(|e| {
            Error::backend(Failure {
                context: format!("cannot connect to Redis at {}", link.shown),
                source: e,
            })
        })?;
        link.durable = durable(&mut conn).await;
        if !link.durable {
            tracing::warn!(url = %link.shown, "Redis runs without appendonly: a Redis restart loses queued messages");
        }
        link.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(std::thread::current().id(), (1, conn));
        *link.remaking.get_mut() = 1;
        Ok(link)
    }

    /// A new connection of its own, outside the pool's count.
    pub(crate) async fn fresh(&self) -> std::result::Result<MultiplexedConnection, RedisError> {
        match self.pool.get().await {
            Ok(conn) => Ok(Connection::take(conn)),
            Err(deadpool_redis::PoolError::Backend(e)) => Err(e),
            Err(other) => Err(RedisError::from((
                ErrorKind::Io,
                "connection pool",
                other.to_string(),
            ))),
        }
    }

    /// A connection from the pool, for a one-off blocking read; it goes
    /// back when dropped.
    pub(crate) async fn pooled(&self) -> std::result::Result<Connection, RedisError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_redis::PoolError::Backend(e) => e,
            other => RedisError::from((ErrorKind::Io, "connection pool", other.to_string())),
        })
    }

    /// This thread's shared connection, made (or re-made) if needed.
    async fn shared(&self) -> std::result::Result<(u64, MultiplexedConnection), RedisError> {
        if let Some(shared) = self.current() {
            return Ok(shared);
        }
        let mut generation = self.remaking.lock().await;
        if let Some(shared) = self.current() {
            return Ok(shared);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(RedisError::from((
                ErrorKind::Io,
                "the bus is shutting down",
            )));
        }
        let conn = self.fresh().await?;
        *generation += 1;
        tracing::debug!(url = %self.shown, "new shared connection to Redis");
        let shared = (*generation, conn);
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(std::thread::current().id(), shared.clone());
        Ok(shared)
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.shared_of(std::thread::current().id())
    }

    /// The shared connection of arbiter thread `thread`, if it has a
    /// working one. Its I/O runs there: a command sent through it from
    /// another thread only awaits the reply.
    pub(crate) fn shared_of(&self, thread: ThreadId) -> Option<(u64, MultiplexedConnection)> {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&thread)
            .cloned()
    }

    /// Forgets this thread's shared connection of `generation`: it broke.
    fn broken(&self, generation: u64) {
        self.broken_of(std::thread::current().id(), generation);
    }

    /// Forgets `thread`'s shared connection of `generation`: it broke; the
    /// next command run there re-makes it.
    pub(crate) fn broken_of(&self, thread: ThreadId, generation: u64) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        if shared.get(&thread).is_some_and(|(g, _)| *g == generation) {
            tracing::warn!(url = %self.shown, "lost the connection to Redis; reconnecting");
            shared.remove(&thread);
        }
    }

    /// Runs `op` on the shared connection; after a lost connection it
    /// reconnects with backoff and runs `op` again, until `limit` has passed
    /// ([`Error::Timeout`]). `op` may thus run more than once: what it sends
    /// must be safe to repeat (at-least-once).
    pub(crate) async fn run<T, F, Fut>(&self, limit: Duration, mut op: F) -> Result<T>
    where
        F: FnMut(MultiplexedConnection) -> Fut,
        Fut: Future<Output = std::result::Result<T, RedisError>>,
    {
        let deadline = Instant::now() + limit;
        let attempts = async {
            let mut backoff = BACKOFF.0;
            loop {
                let failed = match self.shared().await {
                    Ok((generation, conn)) => match op(conn).await {
                        Ok(value) => return Ok(value),
                        Err(e) if transient(&e) => {
                            self.broken(generation);
                            e
                        }
                        Err(e) => return Err(e),
                    },
                    Err(e) => e,
                };
                if self.closed.load(Ordering::Acquire) {
                    return Err(failed);
                }
                tracing::debug!(error = %failed, ?backoff, "redis command failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
            }
        };
        match tokio::time::timeout_at(deadline, attempts).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(Error::backend(Failure {
                context: format!("Redis at {} refused a command", self.shown),
                source: e,
            })),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Wakes a connection blocked in `XREADGROUP` (it returns as if timed out).
    pub(crate) async fn unblock(&self, client_id: i64) {
        let sent = self
            .run(RESPONSE_TIMEOUT, |mut conn| async move {
                redis::cmd("CLIENT")
                    .arg("UNBLOCK")
                    .arg(client_id)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        if let Err(error) = sent {
            tracing::debug!(%error, client_id, "CLIENT UNBLOCK failed");
        }
    }

    /// Resolves once the bus is shutting down.
    pub(crate) fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }

    /// Whether the bus is shutting down.
    pub(crate) fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Starts the shutdown: blocked receives give up (`Error::Closed`) and
    /// listeners read no more; commands on open connections still run.
    pub(crate) fn start_closing(&self) {
        self.closing.send_replace(true);
    }

    /// Ends the shutdown: the connections close.
    pub(crate) fn close(&self) {
        self.closing.send_replace(true);
        self.closed.store(true, Ordering::Release);
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.pool.close();
    }
}

/// The same error again, for each push of a failed batch.
pub(crate) fn copy_error(error: &Error) -> Error {
    match error {
        Error::Timeout => Error::Timeout,
        Error::Closed => Error::Closed,
        other => Error::backend(other.to_string()),
    }
}

/// Whether `error` means the connection (or the server's state) is
/// temporarily unusable, so that trying again later may succeed.
pub(crate) fn transient(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain)
        )
}

/// Whether `error` says the consumer group (or the stream) does not exist.
pub(crate) fn no_group(error: &RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

/// The connection's client id, for `CLIENT UNBLOCK`.
pub(crate) async fn client_id(
    conn: &mut MultiplexedConnection,
) -> std::result::Result<i64, RedisError> {
    redis::cmd("CLIENT").arg("ID").query_async(conn).await
}

/// `CONFIG GET appendonly` is `yes`. A server that refuses `CONFIG` (managed
/// Redis often does) counts as not durable.
async fn durable(conn: &mut MultiplexedConnection) -> bool {
    let reply: std::result::Result<Vec<String>, RedisError> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(conn)
        .await;
    match reply {
        Ok(pair) => pair.get(1).is_some_and(|v| v == "yes"),
        Err(error) => {
            tracing::debug!(%error, "CONFIG GET appendonly refused; taking Redis as not durable");
            false
        }
    }
}

/// Creates the consumer groups of `keys`, and their streams if needed: a
/// queue's group `actorbus` at id 0 (so entries added before it are
/// delivered too); a subscriber group's on the topic's shared stream at `$`
/// (it gets only what is published from now on) and on its own stream at 0.
pub(crate) async fn create_groups(
    conn: &mut MultiplexedConnection,
    keys: &Keys,
) -> std::result::Result<(), RedisError> {
    if let Some(topic) = &keys.topic {
        create_group(conn, topic, &keys.group, "$").await?;
    }
    create_group(conn, &keys.stream, &keys.group, "0").await
}

/// `XGROUP CREATE <stream> <group> <start> MKSTREAM`; an existing group is fine.
async fn create_group(
    conn: &mut MultiplexedConnection,
    stream: &str,
    group: &str,
    start: &str,
) -> std::result::Result<(), RedisError> {
    let created: std::result::Result<(), RedisError> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg(start)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}
