//! `Reader`: one listener's reading side on Redis — its consumer, its own connection, and the reaper that takes over entries of dead consumers.
//!
//! Each listener reads with `XREADGROUP` on a connection of its own, at
//! most its credit at a time; after a (re)connect it first re-reads its own
//! pending entries. These are the backend's methods that drive that, and
//! the reaper that takes over entries of dead consumers (`XAUTOCLAIM`)
//! while keeping those its own listeners hold fresh. Neither a re-read nor
//! a take-over raises an entry's delivery count, and both make the entry a
//! suspect: its count is raised just before its handler starts (`ARM`).

use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::oneshot;

use super::RedisBackend;
use crate::channel::backend::Cx;
use crate::driver::redis::commands::{self, read, read_pending, Records, PAST_END};
use crate::driver::redis::conn::Conn;
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::{client_id, no_group, RedisLink, BLOCK};
use crate::driver::redis::wire::{decode, Entry, EntryRef};
use crate::listener::ListenerId;

/// Most entries one `XAUTOCLAIM` takes over.
const CLAIM_BATCH: usize = 256;

/// One listener's reader.
pub(super) struct Reader {
    /// Its consumer name in the group.
    pub(super) consumer: Arc<str>,
    /// Its idle connection; `None` while reading, connecting, or after a failure.
    conn: Option<Conn>,
    /// The connection's server-side id, to unblock a read on removal.
    client_id: Option<i64>,
    /// What the reader is doing.
    state: ReadState,
    /// Re-reading its own pending entries, after these ids (one per
    /// stream it reads).
    cursor: Option<Vec<String>>,
    /// Read failures in a row, for the backoff.
    failures: u32,
    /// Its listener's actor has stopped: the reader goes once its read ends.
    pub(crate) detached: bool,
    /// Removals waiting for the reader to go: answered once no read of it
    /// is in flight, so that nothing pushed after a removal returned is
    /// read for the listener that left.
    pub(crate) gone: Vec<oneshot::Sender<()>>,
}

/// What a listener's reader is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// Nothing: ready for the next read.
    Idle,
    /// Opening its connection.
    Connecting,
    /// A read is in flight.
    Reading,
}

impl Reader {
    fn new(consumer: Arc<str>) -> Self {
        Reader {
            consumer,
            conn: None,
            client_id: None,
            state: ReadState::Idle,
            cursor: None,
            failures: 0,
            detached: false,
            gone: Vec::new(),
        }
    }

    /// Forgets the read in flight and its connection: they died with a
    /// restarted channel's context.
    pub(super) fn reset(&mut self) {
        self.state = ReadState::Idle;
        self.conn = None;
    }
}

/// Opens a reader's connection of its own, named after its consumer so
/// that `CLIENT LIST` shows whose it is; answers it with its client id at
/// the server of `stream`, where its reads block.
async fn connect(
    link: &RedisLink,
    consumer: &str,
    stream: &str,
) -> std::result::Result<(Conn, i64), RedisError> {
    let mut conn = link.fresh().await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(consumer)
        .query_async::<()>(&mut conn)
        .await?;
    let id = client_id(&mut conn, stream).await?;
    Ok((conn, id))
}

impl RedisBackend {
    /// Starts the next step of listener `id`'s reader: connect, or read as
    /// much as its listener can take.
    pub(super) fn pump(&mut self, id: ListenerId, cx: &mut Cx<'_, Self>) {
        if self.link.is_closing() || !cx.is_active(id) {
            return;
        }
        let prefix = &self.shared.consumer;
        let reader = self
            .readers
            .entry(id)
            .or_insert_with(|| Reader::new(format!("{prefix}-{id}").into()));
        if reader.state != ReadState::Idle {
            return;
        }
        let Some(mut conn) = reader.conn.take() else {
            reader.state = ReadState::Connecting;
            let (link, consumer) = (self.link.clone(), reader.consumer.clone());
            let stream = self.keys.stream.clone();
            let opening = async move { connect(&link, &consumer, &stream).await };
            self.run(cx, opening, move |opened, b, cx| {
                let Some(reader) = b.readers.get_mut(&id) else {
                    return;
                };
                reader.state = ReadState::Idle;
                match opened {
                    Ok((conn, client_id)) => {
                        reader.client_id = Some(client_id);
                        reader.conn = Some(conn);
                        // Entries read before a crash or a lost connection
                        // are still ours: take them back first.
                        let streams = b.keys.streams().count();
                        reader.cursor = Some(vec!["0".to_owned(); streams]);
                        b.pump(id, cx);
                    }
                    Err(error) => b.read_failed(id, &error, cx),
                }
                b.finish_if_done(id);
            });
            return;
        };
        let credit = cx.credit(id);
        if credit == 0 {
            reader.conn = Some(conn);
            return;
        }
        reader.state = ReadState::Reading;
        let streams = self.keys.streams().count();
        if reader.cursor.as_ref().is_some_and(|c| c.len() != streams) {
            // The queue was regrouped: re-read its pending entries anew.
            reader.cursor = Some(vec!["0".to_owned(); streams]);
        }
        let (keys, consumer) = (self.keys.clone(), reader.consumer.clone());
        let cursor = reader.cursor.clone();
        // COUNT is per stream: a subscriber group reads two, so each gets
        // half the credit (a credit of 1 may bring 2, which the listener
        // queues).
        let count = if keys.topic.is_some() {
            credit.div_ceil(2)
        } else {
            credit
        };
        let reading = async move {
            let got = match cursor.as_deref() {
                // Its own entries, as they were: a reconnect is no delivery.
                Some(after) => read_pending(&mut conn, &keys, &consumer, after, count).await,
                None => read(&mut conn, &keys, &consumer, count, None, BLOCK).await,
            };
            (conn, got)
        };
        self.run(cx, reading, move |(conn, got), b, cx| {
            b.on_read(id, conn, got, cx);
        });
    }

    fn on_read(
        &mut self,
        id: ListenerId,
        conn: Conn,
        got: std::result::Result<Vec<Entry>, RedisError>,
        cx: &mut Cx<'_, Self>,
    ) {
        let Some(reader) = self.readers.get_mut(&id) else {
            return;
        };
        reader.state = ReadState::Idle;
        match got {
            Ok(entries) => {
                reader.conn = Some(conn);
                reader.failures = 0;
                if let Some(cursor) = reader.cursor.take() {
                    reader.cursor = next_cursor(&self.keys, cursor, &entries);
                }
                let known = reader.cursor.is_some();
                self.take_entries(id, entries, known, cx);
                self.pump(id, cx);
            }
            Err(error) if no_group(&error) => {
                reader.conn = Some(conn);
                let limit = self.settle_limit();
                let create = commands::ensure_group(self.link.clone(), self.keys.clone(), limit);
                self.run(cx, create, move |_, b, cx| b.pump(id, cx));
            }
            Err(error) => self.read_failed(id, &error, cx),
        }
        self.finish_if_done(id);
    }

    /// Drops the reader's connection and tries again after a backoff.
    fn read_failed(&mut self, id: ListenerId, error: &RedisError, cx: &mut Cx<'_, Self>) {
        let Some(reader) = self.readers.get_mut(&id) else {
            return;
        };
        reader.conn = None;
        reader.failures += 1;
        let backoff = Duration::from_millis(25 << reader.failures.min(6));
        tracing::warn!(queue = %cx.name(), consumer = %reader.consumer, %error, ?backoff, "listener read failed; reconnecting");
        cx.run_later(backoff, move |b, cx| b.pump(id, cx));
    }

    /// Delivers read or claimed entries to listener `id`. What it cannot
    /// take (it left) goes back to the stream; entries that are no message
    /// are dead-lettered as they are.
    fn take_entries(
        &mut self,
        id: ListenerId,
        entries: Vec<Entry>,
        known: bool,
        cx: &mut Cx<'_, Self>,
    ) {
        // New entries (`>`) were never delivered; a re-read of pending
        // entries or a claim may return some a listener here still holds.
        let holding: FxHashSet<(&str, bool)> = if known {
            cx.held()
                .map(|(_, entry)| (entry.id.as_str(), entry.shared))
                .collect()
        } else {
            FxHashSet::default()
        };
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| !holding.contains(&(e.id.as_str(), e.shared)))
            .collect();
        drop(holding);
        let mut items = Vec::with_capacity(entries.len());
        let mut records = Records::default();
        for mut entry in entries {
            let entry_id = EntryRef {
                id: std::mem::take(&mut entry.id),
                shared: entry.shared,
            };
            if entry.fields.is_empty() {
                // A pending entry whose data someone deleted (every added
                // entry has a field): nothing to deliver; clear it.
                tracing::debug!(queue = %cx.name(), entry = %entry_id.id, "pending entry was deleted");
                records.ack(entry_id);
                continue;
            }
            match decode(&entry_id.id, entry) {
                Ok(mut envelope) => {
                    // Taken back from a pending list: it may have started.
                    envelope.suspect = known;
                    items.push((entry_id, envelope));
                }
                Err(bad) => records.malformed(cx.name(), entry_id, bad),
            }
        }
        for (entry, envelope) in cx.deliver(id, items) {
            records.hand_back(entry, &envelope);
        }
        self.settle_records(records, cx);
    }

    /// Removes a stopped listener's reader once its read is done (and
    /// answers who waits for that), and deletes its consumer from the
    /// group if it holds nothing.
    pub(super) fn finish_if_done(&mut self, id: ListenerId) {
        let done = self
            .readers
            .get(&id)
            .is_some_and(|r| r.detached && r.state == ReadState::Idle);
        if !done {
            return;
        }
        let Some(mut reader) = self.readers.remove(&id) else {
            return;
        };
        for waiter in reader.gone.drain(..) {
            let _ = waiter.send(());
        }
        let dropped = commands::drop_consumer(
            self.link.clone(),
            self.keys.clone(),
            reader.consumer,
            self.settle_limit(),
        );
        // Outside the channel's context: the consumer is dropped even when
        // the channel restarts meanwhile.
        actix::spawn(async move {
            let _ = dropped.await;
        });
    }

    /// Listener `id` takes nothing more: its blocked read is woken, or it
    /// would take new entries for a listener that is gone, only to hand
    /// them back.
    pub(super) fn unblock(&mut self, id: ListenerId, cx: &mut Cx<'_, Self>) {
        let Some(reader) = self.readers.get(&id) else {
            return;
        };
        if let (ReadState::Reading, Some(client_id)) = (reader.state, reader.client_id) {
            let (link, stream) = (self.link.clone(), self.keys.stream.clone());
            self.run(
                cx,
                async move { link.unblock(client_id, &stream).await },
                |(), _, _| {},
            );
        }
    }

    /// Takes over entries of dead consumers for listeners with credit, and
    /// keeps what listeners hold from looking dead.
    pub(super) fn reap(&mut self, cx: &mut Cx<'_, Self>) {
        let mut holding: FxHashMap<ListenerId, Vec<EntryRef>> = FxHashMap::default();
        for (listener, entry) in cx.held() {
            holding.entry(listener).or_default().push(entry.clone());
        }
        let (claim_idle, limit) = (self.shared.claim_idle, self.settle_limit());
        for (id, entries) in holding {
            let Some(reader) = self.readers.get(&id) else {
                continue;
            };
            let (link, keys, consumer) = (
                self.link.clone(),
                self.keys.clone(),
                reader.consumer.clone(),
            );
            let entries: Arc<[EntryRef]> = entries.into();
            let run = async move {
                link.run(limit, |conn| {
                    commands::refresh(conn, keys.clone(), consumer.clone(), entries.clone())
                })
                .await
            };
            self.run(cx, run, |_, _, _| {});
        }
        for id in cx.active() {
            let credit = cx.credit(id).min(CLAIM_BATCH);
            let Some(reader) = self.readers.get(&id).filter(|_| credit > 0) else {
                continue;
            };
            let (link, keys, consumer) = (
                self.link.clone(),
                self.keys.clone(),
                reader.consumer.clone(),
            );
            let run = async move {
                link.run(limit, |conn| {
                    commands::autoclaim(conn, keys.clone(), consumer.clone(), claim_idle, credit)
                })
                .await
            };
            self.run(cx, run, move |claimed, b, cx| match claimed {
                Ok(entries) if !entries.is_empty() => {
                    tracing::info!(queue = %cx.name(), count = entries.len(), "took over deliveries of a dead consumer");
                    b.take_entries(id, entries, true, cx);
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(queue = %cx.name(), %error, "XAUTOCLAIM failed"),
            });
        }
    }
}

/// Where a re-read of pending entries goes on after `entries`: per stream,
/// after the last entry it returned; a stream that returned none is done
/// (read after the largest id). `None` once every stream is done: from then
/// on the reader takes new entries.
fn next_cursor(keys: &Keys, cursor: Vec<String>, entries: &[Entry]) -> Option<Vec<String>> {
    let next: Vec<String> = keys
        .streams()
        .zip(cursor)
        .map(|(stream, _)| {
            let shared = keys.topic.as_ref() == Some(stream);
            entries
                .iter()
                .rev()
                .find(|e| e.shared == shared)
                .map_or_else(|| PAST_END.to_owned(), |e| e.id.clone())
        })
        .collect();
    next.iter().any(|id| id != PAST_END).then_some(next)
}
