//! The redis driver's Redis commands: reads (`XREADGROUP`, `XAUTOCLAIM`), settles, and the one-shot `receive`.
//!
//! Free functions over a connection or the [`RedisLink`], so that the
//! backend only decides what to do and these do it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::{FromRedisValue, RedisError, Script};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::channel::retry::{HEADER_ERROR, HEADER_FAILED_AT};
use crate::delivery::{Delivery, Envelope};
use crate::driver::redis::conn::Conn;
use crate::driver::redis::link::{client_id, create_group, no_group, transient, RedisLink, BLOCK};
use crate::driver::redis::pusher;
use crate::driver::redis::scripts::{
    ARM, DROP_CONSUMER, PROMOTE, PURGE, READ_PENDING, SETTLE, STATS, TAKE_OVER,
};
use crate::driver::redis::wire::{self, decode, due_ms, Entry, Keys, Malformed, GROUP};
use crate::error::{Error, Result};
use crate::stats::QueueStats;

/// `XREADGROUP` for `consumer`: new entries (`from = None`, blocking up to
/// `block`), or its own pending entries after id `from` (which raises
/// their delivery counts: the listeners re-read with [`read_pending`]).
pub(crate) async fn read(
    conn: &mut Conn,
    stream: &str,
    consumer: &str,
    count: usize,
    from: Option<&str>,
    block: Duration,
) -> std::result::Result<Vec<Entry>, RedisError> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if from.is_none() {
        cmd.arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1));
    }
    cmd.arg("STREAMS").arg(stream).arg(from.unwrap_or(">"));
    let reply: redis::Value = cmd.query_async(conn).await?;
    Ok(Entry::from_read_reply(reply))
}

/// Takes over entries idle longer than `min_idle` (their consumer is
/// presumed dead) for `consumer`, without raising their delivery counts
/// ([`TAKE_OVER`]).
pub(crate) async fn autoclaim(
    mut conn: Conn,
    stream: Arc<str>,
    consumer: Arc<str>,
    min_idle: Duration,
    count: usize,
) -> std::result::Result<Vec<Entry>, RedisError> {
    let reply: redis::Value = TAKE_OVER
        .key(&*stream)
        .arg(GROUP)
        .arg(&*consumer)
        .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
        .arg(count)
        .invoke_async(&mut conn)
        .await?;
    Ok(Entry::from_range_reply(reply))
}

/// `consumer`'s own pending entries after id `after` (`0`: from the
/// start), without raising their delivery counts ([`READ_PENDING`]).
pub(crate) async fn read_pending(
    conn: &mut Conn,
    stream: &str,
    consumer: &str,
    after: &str,
    count: usize,
) -> std::result::Result<Vec<Entry>, RedisError> {
    let reply: redis::Value = READ_PENDING
        .key(stream)
        .arg(GROUP)
        .arg(consumer)
        .arg(after)
        .arg(count)
        .invoke_async(conn)
        .await?;
    Ok(Entry::from_range_reply(reply))
}

/// Counts the start of the suspect `entry` of `consumer` ([`ARM`]): its
/// delivery count before, or `None` when it is no longer `consumer`'s.
pub(crate) async fn arm(
    link: &RedisLink,
    keys: &Keys,
    consumer: &str,
    entry: &str,
    limit: Duration,
) -> Result<Option<u32>> {
    let args = [GROUP.as_bytes(), consumer.as_bytes(), entry.as_bytes()];
    let before: i64 = invoke(link, limit, &ARM, &[&keys.stream], &args).await?;
    Ok(u32::try_from(before).ok().filter(|&n| n >= 1))
}

/// `XCLAIM … JUSTID` on entries `consumer` holds: resets their idle time, so
/// that no reaper takes a delivery whose handler is merely slow.
pub(crate) async fn refresh(
    mut conn: Conn,
    stream: Arc<str>,
    consumer: Arc<str>,
    ids: Arc<[String]>,
) -> std::result::Result<(), RedisError> {
    let mut cmd = redis::cmd("XCLAIM");
    cmd.arg(&*stream).arg(GROUP).arg(&*consumer).arg(0);
    for id in ids.iter() {
        cmd.arg(id);
    }
    cmd.arg("JUSTID");
    cmd.query_async::<redis::Value>(&mut conn).await.map(drop)
}

/// One argument of a [`SETTLE`] call.
enum Piece {
    /// A record kind.
    Kind(&'static [u8]),
    /// An entry id, a field, a count.
    Owned(Vec<u8>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Kind(kind) => kind,
            Piece::Owned(bytes) => bytes,
        }
    }
}

/// The records of one [`SETTLE`] call.
#[derive(Default)]
pub(crate) struct Records(Vec<Piece>);

impl Records {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Acknowledge and delete `entry`.
    pub(crate) fn ack(&mut self, entry: String) {
        self.0
            .extend([Piece::Kind(b"a"), Piece::Owned(entry.into_bytes())]);
    }

    /// Replace `entry` by `envelope` in the delay set, due at `due` (ms).
    pub(crate) fn retry(&mut self, entry: String, envelope: &Envelope, due: u64) {
        self.0.extend([
            Piece::Kind(b"r"),
            Piece::Owned(entry.into_bytes()),
            Piece::Owned(due.to_string().into_bytes()),
            Piece::Owned(wire::member(envelope)),
        ]);
    }

    /// Replace `entry` by an entry of `fields` in the dead-letter stream.
    pub(crate) fn dead(&mut self, entry: String, fields: Vec<(Vec<u8>, Vec<u8>)>) {
        self.0.extend([
            Piece::Kind(b"d"),
            Piece::Owned(entry.into_bytes()),
            Piece::Owned((fields.len() * 2).to_string().into_bytes()),
        ]);
        for (field, value) in fields {
            self.0.extend([Piece::Owned(field), Piece::Owned(value)]);
        }
    }

    /// Replace `entry` by a fresh copy of `envelope` at the end of the
    /// stream: handed back, it is delivered again at once.
    pub(crate) fn hand_back(&mut self, entry: String, envelope: &Envelope) {
        let mut parts = Vec::new();
        wire::write_fields(envelope, |part| parts.push(Piece::Owned(part.to_vec())));
        self.0.extend([
            Piece::Kind(b"b"),
            Piece::Owned(entry.into_bytes()),
            Piece::Owned(parts.len().to_string().into_bytes()),
        ]);
        self.0.extend(parts);
    }

    /// Dead-letters a stream entry that is no message.
    pub(crate) fn malformed(&mut self, queue: &str, entry: String, bad: Malformed) {
        tracing::warn!(queue, %entry, reason = %bad.reason, "stream entry is not a message; dead-lettered");
        let mut fields = bad.fields;
        let failed_at = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        for (name, value) in [(HEADER_ERROR, bad.reason), (HEADER_FAILED_AT, failed_at)] {
            fields.push((format!("h:{name}").into_bytes(), value.into_bytes()));
        }
        self.dead(entry, fields);
    }
}

/// One pipeline storing messages: an `XADD` to the stream each, or a `ZADD`
/// to the delay set for a delayed one. Also answers the longest delay.
pub(crate) fn push_pipeline<'a>(
    keys: &Keys,
    pushes: impl Iterator<Item = (&'a Envelope, Option<Duration>)>,
) -> (redis::Pipeline, Option<Duration>) {
    let mut pipe = redis::Pipeline::with_capacity(pushes.size_hint().0);
    let mut latest = None;
    for (envelope, delay) in pushes {
        match delay.filter(|d| !d.is_zero()) {
            Some(delay) => {
                latest = latest.max(Some(delay));
                pipe.cmd("ZADD")
                    .arg(&*keys.delayed)
                    .arg(due_ms(delay))
                    .arg(wire::member(envelope))
                    .ignore();
            }
            None => {
                pipe.add_command(xadd(keys, envelope)).ignore();
            }
        }
    }
    (pipe, latest)
}

/// The `XADD` storing `envelope` in the stream.
pub(crate) fn xadd(keys: &Keys, envelope: &Envelope) -> redis::Cmd {
    // Sized up front: growing each command's buffer showed in profiles.
    let size = keys.stream.len() + envelope.payload.len() + 96;
    let mut cmd = redis::Cmd::with_capacity(9, size);
    cmd.arg("XADD").arg(&*keys.stream).arg("*");
    wire::write_fields(envelope, |part| {
        cmd.arg(part);
    });
    cmd
}

/// Runs `script` with `keys` and `args` over the shared connection,
/// retrying through an outage for up to `limit`.
pub(crate) async fn invoke<T: FromRedisValue>(
    link: &RedisLink,
    limit: Duration,
    script: &'static Script,
    keys: &[&str],
    args: &[&[u8]],
) -> Result<T> {
    let mut call = script.prepare_invoke();
    for key in keys {
        call.key(*key);
    }
    for arg in args {
        call.arg(*arg);
    }
    let call = Arc::new(call);
    link.run(limit, |mut conn| {
        let call = call.clone();
        async move { call.invoke_async(&mut conn).await }
    })
    .await
}

/// Runs one [`SETTLE`] over the shared connection, retrying through an
/// outage for up to `limit`.
pub(crate) async fn settle(
    link: &RedisLink,
    keys: &Keys,
    records: Records,
    limit: Duration,
) -> Result<i64> {
    let mut args: Vec<&[u8]> = Vec::with_capacity(records.0.len() + 1);
    args.push(GROUP.as_bytes());
    args.extend(records.0.iter().map(Piece::bytes));
    let stream_keys = [&*keys.stream, &*keys.delayed, &*keys.dead];
    invoke(link, limit, &SETTLE, &stream_keys, &args).await
}

/// Moves up to `batch` due delayed messages into the stream; answers how
/// many, and the ms until the next is due (-1: none left).
pub(crate) async fn promote(
    link: Arc<RedisLink>,
    keys: Keys,
    limit: Duration,
    batch: usize,
) -> Result<(usize, i64)> {
    let now = due_ms(Duration::ZERO).to_string();
    let batch = batch.to_string();
    let args = [now.as_bytes(), batch.as_bytes()];
    invoke(
        &link,
        limit,
        &PROMOTE,
        &[&keys.delayed, &keys.stream],
        &args,
    )
    .await
}

/// Counts a queue: `ready` (entries no consumer was handed yet),
/// `in_flight` (pending entries of every consumer, `XPENDING`), `delayed`,
/// `dead`, and `durable` from the link. The channel fills in its own
/// `listeners` and `restarts`; a queue without a channel has none.
pub(crate) async fn count(link: Arc<RedisLink>, keys: Keys, limit: Duration) -> Result<QueueStats> {
    let stream_keys = [&*keys.stream, &*keys.delayed, &*keys.dead];
    let (ready, in_flight, delayed, dead) =
        invoke(&link, limit, &STATS, &stream_keys, &[GROUP.as_bytes()]).await?;
    Ok(QueueStats {
        ready,
        in_flight,
        delayed,
        dead,
        durable: link.durable,
        ..QueueStats::default()
    })
}

/// Deletes the entries of `keys.stream` no consumer was handed yet.
pub(crate) async fn purge(link: Arc<RedisLink>, keys: Keys, limit: Duration) -> Result<u64> {
    invoke(&link, limit, &PURGE, &[&keys.stream], &[GROUP.as_bytes()]).await
}

/// Deletes `consumer` from the group if it holds nothing.
pub(crate) async fn drop_consumer(
    link: Arc<RedisLink>,
    keys: Keys,
    consumer: Arc<str>,
    limit: Duration,
) -> Result<i64> {
    let args = [GROUP.as_bytes(), consumer.as_bytes()];
    invoke(&link, limit, &DROP_CONSUMER, &[&keys.stream], &args).await
}

/// Creates the group over the shared connection (after a `NOGROUP`).
pub(crate) async fn ensure_group(link: Arc<RedisLink>, keys: Keys, limit: Duration) -> Result<()> {
    link.run(limit, |mut conn| {
        let stream = keys.stream.clone();
        async move { create_group(&mut conn, &stream).await }
    })
    .await
}

/// Deletes the stream, delay set and dead letters of a queue.
pub(crate) async fn delete(link: &RedisLink, keys: &Keys, limit: Duration) -> Result<()> {
    let mut cmd = redis::cmd("DEL");
    cmd.arg(&*keys.stream).arg(&*keys.delayed).arg(&*keys.dead);
    let cmd = Arc::new(cmd);
    link.run(limit, |mut conn| {
        let cmd = cmd.clone();
        async move { cmd.query_async::<()>(&mut conn).await }
    })
    .await
}

/// What a one-shot receive needs.
pub(crate) struct ReceiveJob {
    pub(crate) link: Arc<RedisLink>,
    pub(crate) keys: Keys,
    pub(crate) queue: Arc<str>,
    pub(crate) consumer: Arc<str>,
    pub(crate) timeout: Duration,
    pub(crate) limit: Duration,
}

/// Takes one message as a one-shot consumer: the entry is acknowledged only
/// once the caller has it, and handed back if the caller gave up.
pub(crate) async fn receive(job: ReceiveJob, mut reply: oneshot::Sender<Result<Delivery>>) {
    let deadline = Instant::from_std(crate::timer::deadline(
        std::time::Instant::now(),
        job.timeout,
    ));
    let mut conn = None;
    let mut backoff = Duration::from_millis(25);
    loop {
        if job.link.is_closing() {
            let _ = reply.send(Err(Error::Closed));
            return;
        }
        if reply.is_closed() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = reply.send(Err(Error::Timeout));
            return;
        }
        let taken = match conn.take() {
            Some(taken) => Ok(taken),
            None => match job.link.pooled().await {
                Ok(mut fresh) => client_id(&mut fresh, &job.keys.stream)
                    .await
                    .map(|id| (fresh, id)),
                Err(e) => Err(e),
            },
        };
        let (mut fresh, id) = match taken {
            Ok(taken) => taken,
            Err(e) if transient(&e) => {
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            Err(e) => {
                let _ = reply.send(Err(Error::backend(e)));
                return;
            }
        };
        let block = (deadline - now).min(BLOCK);
        let outcome = {
            let read = read(&mut fresh, &job.keys.stream, &job.consumer, 1, None, block);
            tokio::pin!(read);
            tokio::select! {
                got = &mut read => got,
                () = reply.closed() => {
                    job.link.unblock(id, &job.keys.stream).await;
                    read.await
                }
                () = job.link.closing() => {
                    job.link.unblock(id, &job.keys.stream).await;
                    read.await
                }
            }
        };
        match outcome {
            Ok(entries) => {
                conn = Some((fresh, id));
                for entry in entries {
                    match hand_over(&job, entry, reply).await {
                        Some(back) => reply = back,
                        None => return,
                    }
                }
            }
            Err(e) if no_group(&e) => {
                if let Err(e) = create_group(&mut fresh, &job.keys.stream).await {
                    tracing::debug!(error = %e, "cannot create the consumer group");
                }
                conn = Some((fresh, id));
            }
            Err(e) if transient(&e) => {
                tokio::time::sleep(backoff.min(deadline - Instant::now().min(deadline))).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                let _ = reply.send(Err(Error::backend(e)));
                return;
            }
        }
    }
}

/// Hands one read entry to the receive's caller. Gives the reply back when
/// the entry was no message (dead-lettered) so the receive goes on.
async fn hand_over(
    job: &ReceiveJob,
    entry: Entry,
    reply: oneshot::Sender<Result<Delivery>>,
) -> Option<oneshot::Sender<Result<Delivery>>> {
    let entry_id = entry.id.clone();
    let mut records = Records::default();
    let mut back = None;
    match decode(&entry_id, entry) {
        Err(bad) => {
            records.malformed(&job.queue, entry_id.clone(), bad);
            back = Some(reply);
        }
        Ok(envelope) if job.link.is_closing() || reply.is_closed() => {
            records.hand_back(entry_id.clone(), &envelope);
            if job.link.is_closing() {
                let _ = reply.send(Err(Error::Closed));
            }
        }
        Ok(envelope) => {
            // Acknowledged before it is handed over, so that the
            // caller who has it sees it gone from every count.
            records.ack(entry_id.clone());
            if let Err(error) = settle(&job.link, &job.keys, records, job.limit).await {
                let _ = reply.send(Err(error));
                return None;
            }
            let delivery = Delivery::new(envelope, job.queue.clone());
            if let Err(Ok(unsent)) = reply.send(Ok(delivery)) {
                // The caller gave up in between: store it again, unchanged.
                let envelope = unsent.into_envelope();
                let (pipe, _) = push_pipeline(&job.keys, std::iter::once((&envelope, None)));
                if let Err(error) = pusher::send(&job.link, &job.keys, pipe, job.limit).await {
                    tracing::error!(%error, id = %envelope.id, "cannot put back a message whose receive was abandoned");
                }
            }
            return None;
        }
    }
    if let Err(error) = settle(&job.link, &job.keys, records, job.limit).await {
        tracing::warn!(%error, entry = %entry_id, "cannot settle a received entry; it will be redelivered");
    }
    back
}
