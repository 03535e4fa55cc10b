//! The redis driver's Redis commands: reads (`XREADGROUP`, `XAUTOCLAIM`), settles, counts and purges.
//!
//! Free functions over a connection or the [`RedisLink`], so that the
//! backend only decides what to do and these do it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use redis::{FromRedisValue, RedisError, Script};

use crate::channel::retry::{HEADER_ERROR, HEADER_FAILED_AT};
use crate::delivery::Envelope;
use crate::driver::redis::conn::Conn;
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::scripts::{
    ARM, DROP_CONSUMER, GROUP_PURGE, GROUP_STATS, PROMOTE, PURGE, READ_PENDING, SETTLE, STATS,
    TAKE_OVER,
};
use crate::driver::redis::wire::{self, due_ms, Entry, EntryRef, Malformed};
use crate::error::Result;
use crate::stats::QueueStats;

/// A re-read cursor for a stream whose pending entries were all re-read:
/// past the largest entry id, so [`read_pending`] skips that stream.
pub(crate) const PAST_END: &str = "18446744073709551615-18446744073709551615";

/// `XREADGROUP` for `consumer` over the streams of `keys` (a subscriber
/// group reads its topic's shared stream and its own in one call): new
/// entries (`from = None`, blocking up to `block`), or its own pending
/// entries after the ids in `from`, one per stream (which raises their
/// delivery counts: the listeners re-read with [`read_pending`]). `count`
/// is per stream.
pub(crate) async fn read(
    conn: &mut Conn,
    keys: &Keys,
    consumer: &str,
    count: usize,
    from: Option<&[String]>,
    block: Duration,
) -> std::result::Result<Vec<Entry>, RedisError> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(&*keys.group)
        .arg(consumer)
        .arg("COUNT")
        .arg(count);
    if from.is_none() {
        cmd.arg("BLOCK")
            .arg(u64::try_from(block.as_millis()).unwrap_or(u64::MAX).max(1));
    }
    cmd.arg("STREAMS");
    for stream in keys.streams() {
        cmd.arg(&**stream);
    }
    match from {
        Some(ids) => {
            for id in ids {
                cmd.arg(id);
            }
        }
        None => {
            for _ in keys.streams() {
                cmd.arg(">");
            }
        }
    }
    let reply: redis::Value = cmd.query_async(conn).await?;
    Ok(Entry::from_read_reply(reply, keys.topic.as_deref()))
}

/// Takes over entries idle longer than `min_idle` (their consumer is
/// presumed dead) on each stream of `keys` for `consumer`, without raising
/// their delivery counts ([`TAKE_OVER`]).
pub(crate) async fn autoclaim(
    mut conn: Conn,
    keys: Keys,
    consumer: Arc<str>,
    min_idle: Duration,
    count: usize,
) -> std::result::Result<Vec<Entry>, RedisError> {
    let mut out = Vec::new();
    for stream in keys.streams() {
        let reply: redis::Value = TAKE_OVER
            .key(&**stream)
            .arg(&*keys.group)
            .arg(&*consumer)
            .arg(u64::try_from(min_idle.as_millis()).unwrap_or(u64::MAX))
            .arg(count)
            .invoke_async(&mut conn)
            .await?;
        out.extend(marked(&keys, stream, Entry::from_range_reply(reply)));
    }
    Ok(out)
}

/// `consumer`'s own pending entries on each stream of `keys` after the id
/// in `after` for that stream (`0`: from the start; [`PAST_END`]: none),
/// without raising their delivery counts ([`READ_PENDING`]). `count` is
/// per stream.
pub(crate) async fn read_pending(
    conn: &mut Conn,
    keys: &Keys,
    consumer: &str,
    after: &[String],
    count: usize,
) -> std::result::Result<Vec<Entry>, RedisError> {
    let mut out = Vec::new();
    for (stream, after) in keys.streams().zip(after) {
        if after == PAST_END {
            continue;
        }
        let reply: redis::Value = READ_PENDING
            .key(&**stream)
            .arg(&*keys.group)
            .arg(consumer)
            .arg(after)
            .arg(count)
            .invoke_async(conn)
            .await?;
        out.extend(marked(keys, stream, Entry::from_range_reply(reply)));
    }
    Ok(out)
}

/// `entries` of `stream`, marked as the topic's shared stream's if it is.
fn marked<'a>(
    keys: &Keys,
    stream: &Arc<str>,
    entries: Vec<Entry>,
) -> impl Iterator<Item = Entry> + 'a {
    let shared = keys.topic.as_ref() == Some(stream);
    entries.into_iter().map(move |e| Entry { shared, ..e })
}

/// Counts the start of the suspect `entry` of `consumer` ([`ARM`]), on
/// the stream that holds it: its delivery count before, or `None` when it
/// is no longer `consumer`'s.
pub(crate) async fn arm(
    link: &RedisLink,
    keys: &Keys,
    consumer: &str,
    entry: &EntryRef,
    limit: Duration,
) -> Result<Option<u32>> {
    let stream = match (&keys.topic, entry.shared) {
        (Some(topic), true) => topic,
        _ => &keys.stream,
    };
    let args = [
        keys.group.as_bytes(),
        consumer.as_bytes(),
        entry.id.as_bytes(),
    ];
    let before: i64 = invoke(link, limit, &ARM, &[&**stream], &args).await?;
    Ok(u32::try_from(before).ok().filter(|&n| n >= 1))
}

/// `XCLAIM … JUSTID` on entries `consumer` holds: resets their idle time, so
/// that no reaper takes a delivery whose handler is merely slow.
pub(crate) async fn refresh(
    mut conn: Conn,
    keys: Keys,
    consumer: Arc<str>,
    held: Arc<[EntryRef]>,
) -> std::result::Result<(), RedisError> {
    for stream in keys.streams() {
        let shared = keys.topic.as_ref() == Some(stream);
        let mut ids = held.iter().filter(|e| e.shared == shared).peekable();
        if ids.peek().is_none() {
            continue;
        }
        let mut cmd = redis::cmd("XCLAIM");
        cmd.arg(&**stream).arg(&*keys.group).arg(&*consumer).arg(0);
        for entry in ids {
            cmd.arg(&entry.id);
        }
        cmd.arg("JUSTID");
        cmd.query_async::<redis::Value>(&mut conn).await?;
    }
    Ok(())
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

    /// The record kind `lower`, in capitals for an entry of the shared stream.
    fn kind(entry: &EntryRef, lower: &'static [u8; 1], upper: &'static [u8; 1]) -> Piece {
        Piece::Kind(if entry.shared { upper } else { lower })
    }

    /// Acknowledge (and delete, or leave to the retention rule) `entry`.
    pub(crate) fn ack(&mut self, entry: EntryRef) {
        let kind = Self::kind(&entry, b"a", b"A");
        self.0.extend([kind, Piece::Owned(entry.id.into_bytes())]);
    }

    /// Replace `entry` by `envelope` in the delay set, due at `due` (ms).
    pub(crate) fn retry(&mut self, entry: EntryRef, envelope: &Envelope, due: u64) {
        self.0.extend([
            Self::kind(&entry, b"r", b"R"),
            Piece::Owned(entry.id.into_bytes()),
            Piece::Owned(due.to_string().into_bytes()),
            Piece::Owned(wire::member(envelope)),
        ]);
    }

    /// Replace `entry` by an entry of `fields` in the dead-letter stream.
    pub(crate) fn dead(&mut self, entry: EntryRef, fields: Vec<(Vec<u8>, Vec<u8>)>) {
        self.0.extend([
            Self::kind(&entry, b"d", b"D"),
            Piece::Owned(entry.id.into_bytes()),
            Piece::Owned((fields.len() * 2).to_string().into_bytes()),
        ]);
        for (field, value) in fields {
            self.0.extend([Piece::Owned(field), Piece::Owned(value)]);
        }
    }

    /// Replace `entry` by a fresh copy of `envelope` at the end of the
    /// queue's own stream (a subscriber group's private one): handed back,
    /// it is delivered again at once, to that group only.
    pub(crate) fn hand_back(&mut self, entry: EntryRef, envelope: &Envelope) {
        let mut parts = Vec::new();
        wire::write_fields(envelope, |part| parts.push(Piece::Owned(part.to_vec())));
        self.0.extend([
            Self::kind(&entry, b"b", b"B"),
            Piece::Owned(entry.id.into_bytes()),
            Piece::Owned(parts.len().to_string().into_bytes()),
        ]);
        self.0.extend(parts);
    }

    /// Dead-letters a stream entry that is no message.
    pub(crate) fn malformed(&mut self, queue: &str, entry: EntryRef, bad: Malformed) {
        tracing::warn!(queue, entry = %entry.id, reason = %bad.reason, "stream entry is not a message; dead-lettered");
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
    args.push(keys.group.as_bytes());
    args.extend(records.0.iter().map(Piece::bytes));
    let mut stream_keys = vec![&*keys.stream, &*keys.delayed, &*keys.dead];
    stream_keys.extend(keys.topic.as_deref());
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
    let mut stream_keys = vec![&*keys.stream, &*keys.delayed, &*keys.dead];
    let script = match keys.topic.as_deref() {
        Some(topic) => {
            stream_keys.push(topic);
            &GROUP_STATS
        }
        None => &STATS,
    };
    let group = [keys.group.as_bytes()];
    let (ready, in_flight, delayed, dead) =
        invoke(&link, limit, script, &stream_keys, &group).await?;
    Ok(QueueStats {
        ready,
        in_flight,
        delayed,
        dead,
        durable: link.durable,
        ..QueueStats::default()
    })
}

/// Deletes the entries of `keys.stream` no consumer was handed yet; for a
/// subscriber group, also moves it past the shared stream's.
pub(crate) async fn purge(link: Arc<RedisLink>, keys: Keys, limit: Duration) -> Result<u64> {
    let group = [keys.group.as_bytes()];
    match keys.topic.as_deref() {
        Some(topic) => invoke(&link, limit, &GROUP_PURGE, &[&keys.stream, topic], &group).await,
        None => invoke(&link, limit, &PURGE, &[&keys.stream], &group).await,
    }
}

/// Deletes `consumer` from the group of each stream where it holds nothing.
pub(crate) async fn drop_consumer(
    link: Arc<RedisLink>,
    keys: Keys,
    consumer: Arc<str>,
    limit: Duration,
) -> Result<i64> {
    let args = [keys.group.as_bytes(), consumer.as_bytes()];
    let streams: Vec<&str> = keys.streams().map(|s| &**s).collect();
    invoke(&link, limit, &DROP_CONSUMER, &streams, &args).await
}

/// Creates the consumer groups over the shared connection (at join, or
/// after a `NOGROUP`).
pub(crate) async fn ensure_group(link: Arc<RedisLink>, keys: Keys, limit: Duration) -> Result<()> {
    link.run(limit, |mut conn| {
        let keys = keys.clone();
        async move { create_groups(&mut conn, &keys).await }
    })
    .await
}

/// Creates the consumer groups of `keys`, and their streams if needed: a
/// queue's group `actorbus` at id 0 (so entries added before it are
/// delivered too); a subscriber group's on the topic's shared stream at `$`
/// (it gets only what is published from now on) and on its own stream at 0.
pub(crate) async fn create_groups(
    conn: &mut Conn,
    keys: &Keys,
) -> std::result::Result<(), RedisError> {
    if let Some(topic) = &keys.topic {
        create_group(conn, topic, &keys.group, "$").await?;
    }
    create_group(conn, &keys.stream, &keys.group, "0").await
}

/// `XGROUP CREATE <stream> <group> <start> MKSTREAM`; an existing group is fine.
async fn create_group(
    conn: &mut Conn,
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
