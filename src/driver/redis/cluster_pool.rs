//! `ClusterManager`: makes and checks the pool's Redis Cluster connections, with the driver's TCP settings.
//!
//! deadpool-redis's own cluster `Manager` builds its `ClusterClient` from
//! the node urls alone, and redis-rs takes a cluster connection's TCP
//! settings only from `ClusterClientBuilder::tcp_settings` (not from the
//! nodes' connection info): through it, cluster connections would get no
//! TCP user timeout or keepalive, and a silently cut link to a master
//! would go unnoticed until TCP's own retransmissions gave up, minutes
//! later. This manager is that one with the settings passed in.

use std::sync::atomic::{AtomicUsize, Ordering};

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use deadpool_redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConnection};
use redis::io::tcp::TcpSettings;
use redis::RedisError;

/// The pool of cluster connections.
pub(crate) type ClusterPool = deadpool::managed::Pool<ClusterManager>;

/// A connection lent by a [`ClusterPool`]; it goes back when dropped.
pub(crate) type ClusterObject = deadpool::managed::Object<ClusterManager>;

/// Makes cluster connections to the nodes it was given, each with the same
/// TCP settings, and checks a returned one with a `PING`.
pub(crate) struct ClusterManager {
    /// The client every connection is made from: the nodes and settings.
    client: ClusterClient,
    /// Numbers the `PING`s, so that a stale reply is not taken for fresh.
    pings: AtomicUsize,
}

impl ClusterManager {
    /// A manager for the cluster that `nodes` (urls) belong to, whose
    /// connections use `tcp`.
    ///
    /// # Errors
    ///
    /// The redis error when a url cannot be read or the urls disagree
    /// (passwords, TLS).
    pub(crate) fn new(nodes: &[String], tcp: TcpSettings) -> Result<Self, RedisError> {
        let client = ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .tcp_settings(tcp)
            .build()?;
        Ok(ClusterManager {
            client,
            pings: AtomicUsize::new(0),
        })
    }
}

impl Manager for ClusterManager {
    type Type = ClusterConnection;
    type Error = RedisError;

    async fn create(&self) -> Result<ClusterConnection, RedisError> {
        self.client.get_async_connection().await
    }

    async fn recycle(
        &self,
        conn: &mut ClusterConnection,
        _: &Metrics,
    ) -> RecycleResult<RedisError> {
        let ping = self.pings.fetch_add(1, Ordering::Relaxed).to_string();
        let echoed: String = redis::cmd("PING").arg(&ping).query_async(conn).await?;
        if echoed == ping {
            Ok(())
        } else {
            Err(RecycleError::message("unexpected PING reply"))
        }
    }
}
