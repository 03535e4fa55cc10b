//! The direct push path of the redis driver: an immediate push, or batch, sent straight over a shared connection from the caller's task.
//!
//! The `XADD`s go from the caller's task, without the hops to and from the
//! pusher actor (fewer wake-ups per push; measured in the bench's `redis
//! push-only`, `redis push_batch` and `redis latency` rows). A caller on
//! a thread of an actix system sends them over its own thread's shared
//! connection, whose I/O runs on that thread, so that nothing crosses
//! threads: the same work as using the redis crate from there (made on
//! first use; until then, as for any other caller, the connection of the
//! queue's pusher's arbiter, whose I/O runs there). A push
//! answered `Some` here is stored; `None` when that connection is missing
//! or the send failed: the pusher then stores it, reconnecting with
//! backoff. What failed may have been stored all the same, so it may be
//! stored twice (at-least-once, as any retried push).
//!
//! The wait for the reply is bounded by the push's deadline, which needs a
//! clock where the reply is awaited. A thread of an actix system has
//! timers: a caller there sets its deadline as the reply timeout. Any other
//! caller (a plain tokio runtime, which may be built without timers, or no
//! runtime at all) awaits the reply just the same, on a handle without a
//! reply timeout, and its deadline is the [`Watchdog`]'s. (On a Redis
//! Cluster, whose connection times its replies itself, such a caller's
//! command is awaited by a task on the arbiter instead.)

use std::future::Future;
use std::time::Duration;

use actix::{Arbiter, System};
use redis::RedisResult;
use tokio::sync::oneshot;

use super::RedisBroker;
use crate::delivery::Envelope;
use crate::driver::redis::commands;
use crate::driver::redis::conn::Conn;
use crate::driver::redis::link::transient;
use crate::driver::redis::pusher::{Home, PUSH_BATCH};

impl RedisBroker {
    /// Stores an immediate push with one `XADD` (see the module's doc).
    pub(super) async fn push_direct(
        &self,
        queue: &str,
        envelope: &Envelope,
        limit: Duration,
    ) -> Option<()> {
        let (cmd, home) = {
            let channel = self.channels.cached(queue)?;
            let home = channel.front.inbox.home.get()?.clone();
            (commands::xadd(&channel.front.keys, envelope), home)
        };
        self.direct(home, limit, move |mut conn| async move {
            cmd.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// Stores an immediate batch of up to the pusher's pipeline size
    /// ([`PUSH_BATCH`]) as one pipeline of `XADD`s; `None` (nothing sent)
    /// for a batch with a delay or a larger one, which the pusher stores.
    pub(super) async fn push_batch_direct(
        &self,
        queue: &str,
        batch: &[(Envelope, Option<Duration>)],
        limit: Duration,
    ) -> Option<()> {
        let delayed = batch.iter().any(|(_, d)| d.is_some_and(|d| !d.is_zero()));
        if delayed || batch.len() > PUSH_BATCH {
            return None;
        }
        let (pipe, home, stream) = {
            let channel = self.channels.cached(queue)?;
            let home = channel.front.inbox.home.get()?.clone();
            let keys = &channel.front.keys;
            let parts = batch.iter().map(|(e, d)| (e, *d));
            let (pipe, _) = commands::push_pipeline(keys, parts);
            (pipe, home, keys.stream.clone())
        };
        self.direct(home, limit, move |mut conn| async move {
            conn.pipeline_at(&stream, &pipe).await.map(drop)
        })
        .await
    }

    /// Runs `op` on the shared connection of this thread (an actix one) or
    /// of `home`'s arbiter
    /// ([`RedisLink::direct_of`](crate::driver::redis::link::RedisLink::direct_of)), for up to
    /// `limit`; `None` when there is no such connection or `op` failed (a
    /// connection that failed is forgotten, to be re-made).
    async fn direct<F, Fut>(&self, home: Home, limit: Duration, op: F) -> Option<()>
    where
        F: FnOnce(Conn) -> Fut + Send + 'static,
        Fut: Future<Output = RedisResult<()>> + Send + 'static,
    {
        // A push that waits for replicas (`redis.wait_replicas`) needs its
        // `WAIT` on the connection of its `XADD`: the pusher sends both.
        if self.link.wait_replicas > 0 {
            return None;
        }
        let in_actix = System::try_current().is_some();
        let here = in_actix.then(Arbiter::try_current).flatten();
        let (thread, generation, mut conn) = self.link.direct_of(home.thread, here.as_ref())?;
        if in_actix {
            conn.set_response_timeout(limit);
        }
        let bare = !in_actix && matches!(conn, Conn::Node(_));
        let link = self.link.clone();
        let sent = async move {
            let stored = op(conn).await;
            if stored.as_ref().is_err_and(transient) {
                link.broken_of(thread, generation);
            }
            stored.ok()
        };
        if in_actix {
            return sent.await;
        }
        if bare {
            let expired = self.watchdog.expiry(limit, &home.arbiter)?;
            return tokio::select! {
                biased;
                stored = sent => stored,
                () = expired => None,
            };
        }
        let (reply, stored) = oneshot::channel();
        let spawned = home.arbiter.spawn(async move {
            let _ = reply.send(sent.await);
        });
        if !spawned {
            return None;
        }
        stored.await.ok().flatten()
    }
}
