//! `Pools`: the connection pool of a single Redis or of a Redis Cluster, with the driver's timeouts and silence detection.
//!
//! Every connection the driver uses comes from here: the shared
//! multiplexed ones (taken out of the pool's count), and the ones lent for
//! a blocking read. Each is made within [`CONNECT_TIMEOUT`], answers
//! within [`RESPONSE_TIMEOUT`] once [`timed`], and is dropped by the
//! kernel after [`SILENCE`] without an answer from the server.

use std::time::Duration;

use deadpool_redis::{Connection, Manager, Pool, Runtime};
use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{AsyncConnectionConfig, ErrorKind, IntoConnectionInfo, RedisError};

use crate::config::redis::RedisConfig;
use crate::config::value::redact_password;
use crate::driver::redis::cluster_pool::{ClusterManager, ClusterObject, ClusterPool};
use crate::driver::redis::conn::{Conn, Pooled};
use crate::error::{Error, Result};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a reply may take. It must exceed the longest `BLOCK` of a read
/// (`link::BLOCK`): redis 1.x's default of 500 ms would fail every
/// blocking read on an idle queue.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may go silent (sent data unacknowledged, or
/// keepalive probes unanswered) before the kernel drops it. Redis has no
/// heartbeat, and a push gives up (`queue.push_timeout`) before the
/// reply timeout marks a connection broken: without this, a silently cut
/// link would be used again after the cut until TCP's own retransmissions
/// resumed it, up to minutes later.
const SILENCE: Duration = Duration::from_secs(10);

/// The pool of a single Redis or of a Redis Cluster.
pub(crate) enum Pools {
    /// `redis.url`.
    Node(Pool),
    /// `redis.cluster`.
    Cluster(ClusterPool),
}

/// A pool of `$manager`'s connections with the driver's bounds: at most
/// `redis.pool.max_size`, each made, checked and waited for within
/// [`CONNECT_TIMEOUT`] / [`RESPONSE_TIMEOUT`]. (A macro: the single and the
/// cluster pool are different types.)
macro_rules! pool_of {
    ($pool:ty, $manager:expr, $config:expr) => {
        <$pool>::builder($manager)
            .max_size($config.pool_max_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(RESPONSE_TIMEOUT))
            .build()
            .map_err(Error::backend)?
    };
}

impl Pools {
    /// The pool of a single Redis at `config.url`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `redis.url` when it cannot be used.
    pub(crate) fn node(config: &RedisConfig) -> Result<Pools> {
        let shown = redact_password(&config.url);
        // No response timeout here: every handle handed out gets one
        // (`timed`) but the shared ones a direct push awaits
        // (`RedisLink::shared_of`).
        let settings = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None)
            .set_pipeline_buffer_size(1024);
        let manager = config
            .url
            .as_str()
            .into_connection_info()
            .and_then(|info| {
                let tcp = silence_detection(info.tcp_settings().clone());
                Manager::new_with_config(info.set_tcp_settings(tcp), settings)
            })
            .map_err(|e| Error::config("redis.url", format!("cannot use {shown:?}: {e}")))?;
        Ok(Pools::Node(pool_of!(Pool, manager, config)))
    }

    /// The pool of cluster connections to the nodes of `config.cluster`
    /// (each connection learns the whole cluster from whichever of these
    /// nodes answers), with the same silence detection as a single
    /// Redis's (see [`ClusterManager`] for why not deadpool-redis's own
    /// manager).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `redis.cluster` when a node cannot be used.
    pub(crate) fn cluster(config: &RedisConfig) -> Result<Pools> {
        let tcp = silence_detection(TcpSettings::default());
        let manager = ClusterManager::new(&config.cluster, tcp).map_err(|e| {
            let shown: Vec<String> = config.cluster.iter().map(|u| redact_password(u)).collect();
            Error::config("redis.cluster", format!("cannot use {shown:?}: {e}"))
        })?;
        Ok(Pools::Cluster(pool_of!(ClusterPool, manager, config)))
    }

    /// A new connection of its own, outside the pool's count, without a
    /// response timeout (see [`timed`]).
    pub(crate) async fn fresh(&self) -> std::result::Result<Conn, RedisError> {
        Ok(match self {
            Pools::Node(pool) => {
                Conn::Node(Connection::take(pool.get().await.map_err(pool_error)?))
            }
            Pools::Cluster(pool) => {
                Conn::Cluster(ClusterObject::take(pool.get().await.map_err(pool_error)?))
            }
        })
    }

    /// A connection lent by the pool, with the response timeout; it goes
    /// back when dropped.
    pub(crate) async fn pooled(&self) -> std::result::Result<Pooled, RedisError> {
        Ok(match self {
            Pools::Node(pool) => {
                let mut lent = Pooled::node(pool.get().await.map_err(pool_error)?);
                lent.set_response_timeout(RESPONSE_TIMEOUT);
                lent
            }
            Pools::Cluster(pool) => Pooled::cluster(pool.get().await.map_err(pool_error)?),
        })
    }

    /// Closes the pool: no connection is made or lent any more.
    pub(crate) fn close(&self) {
        match self {
            Pools::Node(pool) => pool.close(),
            Pools::Cluster(pool) => pool.close(),
        }
    }
}

/// `conn` with the driver's response timeout, [`RESPONSE_TIMEOUT`] (a
/// cluster connection keeps its own bound).
pub(crate) fn timed(mut conn: Conn) -> Conn {
    conn.set_response_timeout(RESPONSE_TIMEOUT);
    conn
}

/// A pool's failure as a Redis error (a connection that could not be made).
fn pool_error(error: deadpool_redis::PoolError) -> RedisError {
    match error {
        deadpool_redis::PoolError::Backend(e) => e,
        other => RedisError::from((ErrorKind::Io, "connection pool", other.to_string())),
    }
}

/// `base` with [`SILENCE`] as the TCP user timeout and keepalive probes
/// that find an idle dead connection within about the same time.
fn silence_detection(base: TcpSettings) -> TcpSettings {
    let probes = TcpKeepalive::new()
        .with_time(SILENCE / 2)
        .with_interval(SILENCE / 10);
    #[cfg(target_os = "linux")]
    let (probes, base) = (probes.with_retries(5), base.set_user_timeout(SILENCE));
    base.set_keepalive(probes)
}
