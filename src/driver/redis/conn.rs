//! `Conn`: one connection of the redis driver, to a single Redis or to a Redis Cluster; the rest of the driver does not tell them apart.
//!
//! A single Redis is one multiplexed connection. A Redis Cluster is
//! redis-rs's cluster connection: one multiplexed connection per master,
//! each command routed to the master owning its key's hash slot, following
//! `MOVED`/`ASK` and re-reading the slot map after a failover. Every key of
//! one queue shares a hash slot (`keys::Keys`), so every script and
//! pipeline of a queue goes to one master.
//!
//! A blocking `XREADGROUP` holds the connection to its node until it
//! returns: the cluster connection sends everything for that node over
//! that one connection, so a blocked read would stall every other command
//! for the node. Each listener's reader thus gets a cluster connection of
//! its own (as on a single Redis it gets a connection of its own).
//!
//! Commands about the connection itself (`CLIENT ID`, `CLIENT UNBLOCK`)
//! and `WAIT` must reach the master of the queue's slot, where the read
//! blocks or the writes went: [`Conn::query_at`] and [`Conn::pipeline_at`]
//! route them there; redis-rs would send them to a random node (or, for
//! `WAIT`, to every master).

use std::time::Duration;

use deadpool_redis::cluster::ClusterConnection;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, Value};

use crate::driver::redis::cluster_pool::ClusterObject;

/// A connection to a single Redis or to a Redis Cluster. Cheap to clone:
/// clones share the underlying connections.
#[derive(Clone)]
pub(crate) enum Conn {
    /// `redis.url`: one server.
    Node(MultiplexedConnection),
    /// `redis.cluster`: every master of a cluster.
    Cluster(ClusterConnection),
}

/// Longest wait for a reply over a cluster connection. Cluster clients
/// are built without a response timeout; this bound
/// (above the longest `BLOCK`) keeps a silent node from hanging a reader.
const CLUSTER_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// `fut`, failing as an I/O timeout after [`CLUSTER_RESPONSE_TIMEOUT`].
async fn bounded<T>(
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(CLUSTER_RESPONSE_TIMEOUT, fut).await {
        Ok(reply) => reply,
        Err(_) => Err(RedisError::from((
            ErrorKind::Io,
            "no reply from the Redis Cluster node in time",
        ))),
    }
}

impl Conn {
    /// Sets how long a reply may take on a single Redis (the direct push
    /// path bounds its `XADD` by the push's deadline). A cluster connection
    /// keeps its own bound, [`CLUSTER_RESPONSE_TIMEOUT`].
    pub(crate) fn set_response_timeout(&mut self, limit: Duration) {
        if let Conn::Node(conn) = self {
            conn.set_response_timeout(limit);
        }
    }

    /// Runs `cmd` on the server that holds `key`: the connection's only
    /// server, or the master owning `key`'s hash slot.
    pub(crate) async fn query_at<T: FromRedisValue>(
        &mut self,
        key: &str,
        cmd: &Cmd,
    ) -> redis::RedisResult<T> {
        match self {
            Conn::Node(conn) => cmd.query_async(conn).await,
            Conn::Cluster(conn) => {
                let routing = RoutingInfo::SingleNode(master_of(key));
                let reply = bounded(conn.route_command(cmd.clone(), routing)).await?;
                T::from_redis_value(reply.extract_error()?).map_err(RedisError::from)
            }
        }
    }

    /// Sends `pipe` to the server that holds `key`, over one connection,
    /// in order (so that a trailing `WAIT` covers the writes before it);
    /// answers every command's reply, the ignored ones too.
    pub(crate) async fn pipeline_at(
        &mut self,
        key: &str,
        pipe: &Pipeline,
    ) -> redis::RedisResult<Vec<Value>> {
        let replies = match self {
            Conn::Node(conn) => conn.req_packed_commands(pipe, 0, pipe.len()).await?,
            Conn::Cluster(conn) => {
                let routed = conn.route_pipeline(pipe.clone(), 0, pipe.len(), master_of(key));
                bounded(routed).await?
            }
        };
        replies.into_iter().map(Value::extract_error).collect()
    }
}

/// The route to the master owning `key`'s hash slot.
fn master_of(key: &str) -> SingleNodeRoutingInfo {
    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master))
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Node(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => Box::pin(bounded(conn.req_packed_command(cmd))),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Node(conn) => conn.req_packed_commands(cmd, offset, count),
            Conn::Cluster(conn) => Box::pin(bounded(conn.req_packed_commands(cmd, offset, count))),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Node(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// A connection lent by the pool (for a one-off blocking read); it goes
/// back when dropped.
pub(crate) struct Pooled {
    /// A handle on the lent connection.
    conn: Conn,
    /// The pool's object (of either pool), returned to it on drop.
    _lent: Box<dyn std::any::Any + Send>,
}

impl Pooled {
    pub(crate) fn node(lent: deadpool_redis::Connection) -> Self {
        let conn = Conn::Node((*lent).clone());
        Pooled {
            conn,
            _lent: Box::new(lent),
        }
    }

    pub(crate) fn cluster(lent: ClusterObject) -> Self {
        let conn = Conn::Cluster((*lent).clone());
        Pooled {
            conn,
            _lent: Box::new(lent),
        }
    }
}

impl std::ops::Deref for Pooled {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}
