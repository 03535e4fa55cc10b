//! `RedisLink`: one bus's connections to Redis — the shared multiplexed connection of each thread, reconnection with backoff — over its [`Pools`].
//!
//! To a single Redis (`redis.url`) or, when `redis.cluster` names nodes, to
//! a Redis Cluster: the [`Conn`] kind and the keys' hash tags
//! ([`Keys`]) are decided here, once; the rest of the driver runs the same
//! commands on either.
//!
//! Every command that does not block goes over a shared multiplexed
//! connection, one per arbiter thread (made there, so its I/O task runs
//! beside the channels that use it), so concurrent pushes and settles
//! pipeline on it instead of waiting a round trip each, and the commands
//! one channel issues run in the order it issued them. An immediate
//! push sends its `XADD` from the caller's task: a caller on an actix
//! thread over that thread's own shared connection (made there on first
//! use), any other over its pusher's arbiter's, whose I/O runs there while
//! the caller only awaits the reply. Blocking reads (`XREADGROUP … BLOCK`)
//! each get a connection of their own, taken from the pool. A lost connection is
//! re-made on next use, with backoff, for as long as the caller's deadline
//! allows: an outage delays work, it does not fail it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use actix::ArbiterHandle;
use redis::{ErrorKind, RedisError, ServerErrorKind};
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::redis::RedisConfig;
use crate::config::value::redact_password;
use crate::driver::redis::conn::{Conn, Pooled};
use crate::driver::redis::keys::Keys;
use crate::driver::redis::pools::{timed, Pools, RESPONSE_TIMEOUT};
use crate::error::{Error, Result};

/// Longest `BLOCK` of a read. Short enough that a listener notices a dead
/// connection quickly, long enough that an idle listener costs little; the
/// pools' reply timeout ([`RESPONSE_TIMEOUT`]) must exceed it.
pub(crate) const BLOCK: Duration = Duration::from_secs(2);
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

/// Which of a thread's shared connections a command goes over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// Every command that does not block.
    Shared,
    /// Pushes followed by `WAIT` (`redis.wait_replicas`): Redis answers
    /// nothing else on a connection while its `WAIT` blocks, so these keep
    /// off the shared connection, where settles would queue behind them
    /// for as long as a replica is missing.
    Wait,
}

/// The connections of one bus.
pub(crate) struct RedisLink {
    /// Makes every connection, with the timeouts above.
    pool: Pools,
    /// The shared connection of each arbiter thread and its generation;
    /// removed when it broke. Kept without a response timeout (see
    /// [`shared_of`](Self::shared_of)); every other use sets one.
    shared: Mutex<FxHashMap<(ThreadId, Lane), (u64, Conn)>>,
    /// Caller threads whose shared connection is being made for their
    /// direct pushes ([`direct_of`](Self::direct_of)).
    making: Mutex<FxHashSet<ThreadId>>,
    /// Held while one caller re-makes the shared connection; counts generations.
    remaking: tokio::sync::Mutex<u64>,
    /// `CONFIG GET appendonly` said `yes` at connect.
    pub(crate) durable: bool,
    /// `redis.cluster` is not empty: a Redis Cluster.
    pub(crate) cluster: bool,
    /// `redis.wait_replicas`: a push returns once `WAIT` saw this many
    /// replicas have it (0: no `WAIT`).
    pub(crate) wait_replicas: u32,
    /// Set at shutdown: blocked receives give up, listeners stop reading.
    closing: watch::Sender<bool>,
    /// Set once the connections are closed: no new one is made.
    closed: AtomicBool,
    /// `redis.url` (or the `redis.cluster` nodes) without passwords, for messages.
    shown: String,
}

impl RedisLink {
    /// Connects to `config.url` (or to the Redis Cluster of
    /// `config.cluster`), checks the server, and reads its durability.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `redis.url` (or `redis.cluster`) when it
    /// cannot be parsed; [`Error::Backend`] when Redis cannot be reached or
    /// refuses us.
    pub(crate) async fn connect(config: &RedisConfig) -> Result<RedisLink> {
        let (pool, shown) = if config.cluster.is_empty() {
            (Pools::node(config)?, redact_password(&config.url))
        } else {
            let shown: Vec<String> = config.cluster.iter().map(|u| redact_password(u)).collect();
            (Pools::cluster(config)?, shown.join(","))
        };
        let (closing, _) = watch::channel(false);
        let mut link = RedisLink {
            pool,
            shared: Mutex::default(),
            making: Mutex::default(),
            remaking: tokio::sync::Mutex::new(0),
            durable: false,
            cluster: !config.cluster.is_empty(),
            wait_replicas: config.wait_replicas,
            closing,
            closed: AtomicBool::new(false),
            shown,
        };
        let conn = link.fresh_bare().await.map_err(|e| {
            Error::backend(Failure {
                context: format!("cannot connect to Redis at {}", link.shown),
                source: e,
            })
        })?;
        link.durable = durable(&mut timed(conn.clone())).await;
        if !link.durable {
            tracing::warn!(url = %link.shown, "Redis runs without appendonly: a Redis restart loses queued messages");
        }
        lock(&link.shared).insert((std::thread::current().id(), Lane::Shared), (1, conn));
        *link.remaking.get_mut() = 1;
        Ok(link)
    }

    /// The keys of `queue`: hash-tagged on a Redis Cluster, so that they
    /// share one slot.
    pub(crate) fn keys(&self, queue: &str) -> Keys {
        Keys::new(queue, self.cluster)
    }

    /// A new connection of its own, outside the pool's count.
    pub(crate) async fn fresh(&self) -> std::result::Result<Conn, RedisError> {
        Ok(timed(self.fresh_bare().await?))
    }

    /// [`fresh`](Self::fresh) without a response timeout.
    async fn fresh_bare(&self) -> std::result::Result<Conn, RedisError> {
        self.pool.fresh().await
    }

    /// A connection from the pool, for a one-off blocking read; it goes
    /// back when dropped.
    pub(crate) async fn pooled(&self) -> std::result::Result<Pooled, RedisError> {
        self.pool.pooled().await
    }

    /// This thread's shared connection of `lane`, made (or re-made) if needed.
    async fn shared(&self, lane: Lane) -> std::result::Result<(u64, Conn), RedisError> {
        if let Some(shared) = self.current(lane) {
            return Ok(shared);
        }
        let mut generation = self.remaking.lock().await;
        if let Some(shared) = self.current(lane) {
            return Ok(shared);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(RedisError::from((
                ErrorKind::Io,
                "the bus is shutting down",
            )));
        }
        let conn = self.fresh_bare().await?;
        *generation += 1;
        tracing::debug!(url = %self.shown, "new shared connection to Redis");
        lock(&self.shared).insert(
            (std::thread::current().id(), lane),
            (*generation, conn.clone()),
        );
        Ok((*generation, timed(conn)))
    }

    fn current(&self, lane: Lane) -> Option<(u64, Conn)> {
        let shared = lock(&self.shared);
        let (generation, conn) = shared.get(&(std::thread::current().id(), lane))?;
        Some((*generation, timed(conn.clone())))
    }

    /// The shared connection of arbiter thread `thread`, if it has a
    /// working one. Its I/O runs there: a command sent through it from
    /// another thread only awaits the reply. On a single Redis it has no
    /// response timeout, so that awaiting it needs no timer: the caller
    /// bounds the wait (a direct push, by its deadline).
    pub(crate) fn shared_of(&self, thread: ThreadId) -> Option<(u64, Conn)> {
        lock(&self.shared).get(&(thread, Lane::Shared)).cloned()
    }

    /// The shared connection a direct push from this thread goes over,
    /// with its thread and generation. A caller on an actix thread
    /// (`here`, that thread's arbiter) gets its own thread's, so that
    /// neither the command nor its reply crosses threads (the caller's
    /// runtime does the I/O, as when it uses the redis crate itself); that
    /// connection is made in the background on first use, and until it
    /// works the push goes over `home`'s (its pusher's arbiter's), as any
    /// other caller's does. `None` when the one to use is missing.
    pub(crate) fn direct_of(
        self: &Arc<Self>,
        home: ThreadId,
        here: Option<&ArbiterHandle>,
    ) -> Option<(ThreadId, u64, Conn)> {
        if let Some(arbiter) = here {
            let thread = std::thread::current().id();
            if let Some((generation, conn)) = self.shared_of(thread) {
                return Some((thread, generation, conn));
            }
            self.make_on(thread, arbiter);
        }
        let (generation, conn) = self.shared_of(home)?;
        Some((home, generation, conn))
    }

    /// Makes the shared connection of `thread`, whose arbiter is
    /// `arbiter`, there, unless that is under way: one attempt at a time
    /// per thread, and a failed one holds the next back by the longest
    /// backoff, so that an outage does not turn every push into a connect.
    fn make_on(self: &Arc<Self>, thread: ThreadId, arbiter: &ArbiterHandle) {
        if !lock(&self.making).insert(thread) {
            return;
        }
        let link = self.clone();
        let started = arbiter.spawn(async move {
            if link.shared(Lane::Shared).await.is_err() {
                tokio::time::sleep(BACKOFF.1).await;
            }
            lock(&link.making).remove(&thread);
        });
        if !started {
            lock(&self.making).remove(&thread);
        }
    }

    /// Forgets `thread`'s shared connection of `generation`: it broke; the
    /// next command run there re-makes it.
    pub(crate) fn broken_of(&self, thread: ThreadId, generation: u64) {
        self.broken_in((thread, Lane::Shared), generation);
    }

    fn broken_in(&self, at: (ThreadId, Lane), generation: u64) {
        let mut shared = lock(&self.shared);
        if shared.get(&at).is_some_and(|(g, _)| *g == generation) {
            tracing::warn!(url = %self.shown, "lost the connection to Redis; reconnecting");
            shared.remove(&at);
        }
    }

    /// Runs `op` on the shared connection; after a lost connection it
    /// reconnects with backoff and runs `op` again, until `limit` has passed
    /// ([`Error::Timeout`]). `op` may thus run more than once: what it sends
    /// must be safe to repeat (at-least-once).
    pub(crate) async fn run<T, F, Fut>(&self, limit: Duration, op: F) -> Result<T>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<T, RedisError>>,
    {
        self.run_in(Lane::Shared, limit, op).await
    }

    /// [`run`](Self::run) over this thread's connection of `lane`.
    pub(crate) async fn run_in<T, F, Fut>(
        &self,
        lane: Lane,
        limit: Duration,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut(Conn) -> Fut,
        Fut: Future<Output = std::result::Result<T, RedisError>>,
    {
        let deadline = Instant::now() + limit;
        let attempts = async {
            let mut backoff = BACKOFF.0;
            loop {
                let failed = match self.shared(lane).await {
                    Ok((generation, conn)) => match op(conn).await {
                        Ok(value) => return Ok(value),
                        Err(e) if transient(&e) => {
                            self.broken_in((std::thread::current().id(), lane), generation);
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

    /// Wakes a connection blocked in `XREADGROUP` on `stream` (it returns
    /// as if timed out); on a cluster, at the master owning `stream`.
    pub(crate) async fn unblock(&self, client_id: i64, stream: &str) {
        let mut cmd = redis::cmd("CLIENT");
        cmd.arg("UNBLOCK").arg(client_id);
        let cmd = &cmd;
        let sent = self
            .run(RESPONSE_TIMEOUT, |mut conn| async move {
                conn.query_at::<i64>(stream, cmd).await
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
        lock(&self.shared).clear();
        self.pool.close();
    }
}

/// `mutex`'s guard, also after a panic elsewhere poisoned it: what they
/// guard (maps of connections) is valid at every step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    // A Redis Cluster in a failover: its slots come back
                    // once a replica is promoted.
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
}

/// Whether `error` says the consumer group (or the stream) does not exist.
pub(crate) fn no_group(error: &RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

/// The connection's client id at the server holding `stream` (where its
/// reads block), for `CLIENT UNBLOCK`.
pub(crate) async fn client_id(
    conn: &mut Conn,
    stream: &str,
) -> std::result::Result<i64, RedisError> {
    conn.query_at(stream, &redis::cmd("CLIENT").arg("ID").clone())
        .await
}

/// `CONFIG GET appendonly` is `yes`. A server that refuses `CONFIG` (managed
/// Redis often does) counts as not durable.
async fn durable(conn: &mut Conn) -> bool {
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
