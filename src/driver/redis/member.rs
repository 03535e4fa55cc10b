//! `Member`: one listener of a [`RedisQueue`] — its reader, the entries it holds, and what becomes of them.
//!
//! Each listener reads with `XREADGROUP` on a connection of its own, at
//! most its window at a time; after a (re)connect it first re-reads its own
//! pending entries (id `0`). These are the queue actor's methods that drive
//! that, and the reaper that takes over entries of dead consumers
//! (`XAUTOCLAIM`) while keeping those its own listeners hold fresh.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use redis::RedisError;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::channel::retry::Verdict;
use crate::delivery::{AckToken, Delivery, Envelope};
use crate::driver::redis::commands::{self, dead_fields, read, Reader, Records};
use crate::driver::redis::link::{no_group, BLOCK};
use crate::driver::redis::queue::RedisQueue;
use crate::driver::redis::wire::{decode, due_ms, Entry};
use crate::listener::actor::{Deliver, ListenerActor};
use crate::listener::ListenerId;

/// One attached listener.
pub(crate) struct Member {
    /// Its actor.
    pub(crate) addr: Addr<ListenerActor<RedisQueue>>,
    /// Its consumer name in the group.
    pub(crate) consumer: Arc<str>,
    /// Most deliveries it holds at once.
    pub(crate) window: usize,
    /// Deliveries it holds now.
    pub(crate) held: usize,
    /// Its idle reader; `None` while reading, connecting, or after a failure.
    pub(crate) reader: Option<Reader>,
    /// The reader's server-side id, to unblock a read on removal.
    pub(crate) client_id: Option<i64>,
    /// What the reader is doing.
    pub(crate) state: ReadState,
    /// Re-reading its own pending entries, after this id.
    pub(crate) cursor: Option<String>,
    /// Read failures in a row, for the backoff.
    pub(crate) failures: u32,
    /// Still taking deliveries (no `Unsubscribe` yet).
    pub(crate) active: bool,
    /// Its actor has stopped.
    pub(crate) detached: bool,
}

/// What a listener's reader is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadState {
    /// Nothing: ready for the next read.
    Idle,
    /// Opening its connection.
    Connecting,
    /// A read is in flight.
    Reading,
}

/// A delivery a listener holds.
pub(crate) struct Held {
    /// Who holds it.
    pub(crate) listener: ListenerId,
    /// Its stream entry id.
    pub(crate) entry: String,
    /// The message, for a retry, dead letter or hand-back copy.
    pub(crate) envelope: Envelope,
}

impl RedisQueue {
    /// Starts the next step of listener `id`'s reader: connect, or read as
    /// much as its window has room for.
    pub(crate) fn pump(&mut self, id: ListenerId, ctx: &mut Context<Self>) {
        let closing = self.link.is_closing();
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        if member.state != ReadState::Idle || !member.active || closing {
            return;
        }
        let Some(mut reader) = member.reader.take() else {
            member.state = ReadState::Connecting;
            let (link, consumer) = (self.link.clone(), member.consumer.clone());
            self.spawn_op(
                ctx,
                async move { Reader::open(&link, &consumer).await },
                move |opened, act, ctx| {
                    let Some(member) = act.members.get_mut(&id) else {
                        return;
                    };
                    member.state = ReadState::Idle;
                    match opened {
                        Ok(reader) => {
                            member.client_id = Some(reader.client_id);
                            member.reader = Some(reader);
                            // Entries read before a crash or a lost connection
                            // are still ours: take them back first.
                            member.cursor = Some("0".to_owned());
                            act.pump(id, ctx);
                        }
                        Err(error) => act.read_failed(id, &error, ctx),
                    }
                    act.finish_if_done(id);
                },
            );
            return;
        };
        let credit = member.window.saturating_sub(member.held);
        if credit == 0 {
            member.reader = Some(reader);
            return;
        }
        member.state = ReadState::Reading;
        let (stream, consumer) = (self.keys.stream.clone(), member.consumer.clone());
        let cursor = member.cursor.clone();
        let reading = async move {
            let got = read(
                &mut reader.conn,
                &stream,
                &consumer,
                credit,
                cursor.as_deref(),
                BLOCK,
            )
            .await;
            (reader, got)
        };
        self.spawn_op(ctx, reading, move |(reader, got), act, ctx| {
            act.on_read(id, reader, got, ctx);
        });
    }

    pub(crate) fn on_read(
        &mut self,
        id: ListenerId,
        reader: Reader,
        got: std::result::Result<Vec<Entry>, RedisError>,
        ctx: &mut Context<Self>,
    ) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        member.state = ReadState::Idle;
        match got {
            Ok(entries) => {
                member.reader = Some(reader);
                member.failures = 0;
                if member.cursor.is_some() {
                    member.cursor = entries.last().map(|e| e.id.clone());
                }
                let known = member.cursor.is_some();
                self.take_entries(id, entries, known, ctx);
                self.pump(id, ctx);
            }
            Err(error) if no_group(&error) => {
                member.reader = Some(reader);
                let limit = self.settle_limit();
                let create = commands::ensure_group(self.link.clone(), self.keys.clone(), limit);
                self.spawn_op(ctx, create, move |_, act, ctx| act.pump(id, ctx));
            }
            Err(error) => self.read_failed(id, &error, ctx),
        }
        self.finish_if_done(id);
    }

    /// Drops the reader's connection and tries again after a backoff.
    pub(crate) fn read_failed(
        &mut self,
        id: ListenerId,
        error: &RedisError,
        ctx: &mut Context<Self>,
    ) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        member.reader = None;
        member.failures += 1;
        let backoff = Duration::from_millis(25 << member.failures.min(6));
        tracing::warn!(queue = %self.name, consumer = %member.consumer, %error, ?backoff, "listener read failed; reconnecting");
        ctx.run_later(backoff, move |act, ctx| act.pump(id, ctx));
    }

    /// Delivers read or claimed entries to listener `id`; a listener that
    /// left hands them back, and entries that are no message are dead-lettered.
    pub(crate) fn take_entries(
        &mut self,
        id: ListenerId,
        entries: Vec<Entry>,
        known: bool,
        ctx: &mut Context<Self>,
    ) {
        // New entries (`>`) were never delivered; a re-read of pending
        // entries or a claim may return some a listener here still holds.
        let holding: FxHashSet<&str> = if known {
            self.held.values().map(|h| h.entry.as_str()).collect()
        } else {
            FxHashSet::default()
        };
        let entries: Vec<Entry> = entries
            .into_iter()
            .filter(|e| !holding.contains(e.id.as_str()))
            .collect();
        drop(holding);
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let mut batch = Vec::with_capacity(entries.len());
        let mut records = Records::default();
        for mut entry in entries {
            let entry_id = std::mem::take(&mut entry.id);
            if entry.fields.is_empty() {
                // A pending entry whose data someone deleted (every added
                // entry has a field): nothing to deliver; clear it.
                tracing::debug!(queue = %self.name, entry = %entry_id, "pending entry was deleted");
                records.ack(entry_id);
                continue;
            }
            match decode(&entry_id, entry) {
                Ok(envelope) if member.active => {
                    self.next_token += 1;
                    let token = AckToken(self.next_token);
                    batch.push((token, Delivery::new(envelope.clone(), self.name.clone())));
                    self.held.insert(
                        token,
                        Held {
                            listener: id,
                            entry: entry_id,
                            envelope,
                        },
                    );
                    member.held += 1;
                }
                Ok(envelope) => records.hand_back(entry_id, &envelope),
                Err(bad) => records.malformed(&self.name, entry_id, bad),
            }
        }
        if !batch.is_empty() {
            member.addr.do_send(Deliver(batch));
        }
        self.settle(ctx, records);
    }

    /// The verdict on a failed delivery: a retry in the delay set, or a dead letter.
    pub(crate) fn fail(
        &mut self,
        held: Held,
        error: &str,
        records: &mut Records,
        ctx: &mut Context<Self>,
    ) {
        let mut envelope = held.envelope;
        match self
            .settings
            .retry
            .on_failure(envelope.attempt, error, SystemTime::now())
        {
            Verdict::Retry { attempt, after } => {
                envelope.attempt = attempt;
                records.retry(held.entry, &envelope, due_ms(after));
                self.arm_promote(ctx, Instant::now() + after);
            }
            Verdict::DeadLetter { headers } => {
                tracing::warn!(queue = %self.name, id = %envelope.id, attempts = envelope.attempt, error, "message dead-lettered");
                records.dead(held.entry, dead_fields(&envelope, headers));
            }
        }
    }

    /// Removes a stopped listener once its reader is done, and deletes its
    /// consumer from the group if it holds nothing.
    pub(crate) fn finish_if_done(&mut self, id: ListenerId) {
        let done = self
            .members
            .get(&id)
            .is_some_and(|m| m.detached && m.state == ReadState::Idle);
        if !done {
            return;
        }
        let Some(member) = self.members.remove(&id) else {
            return;
        };
        let dropped = commands::drop_consumer(
            self.link.clone(),
            self.keys.clone(),
            member.consumer,
            self.settle_limit(),
        );
        // Outside `spawn_op`: the consumer is dropped even when the actor is not.
        actix::spawn(async move {
            let _ = dropped.await;
        });
    }

    /// Listener `id` takes nothing more: its blocked read is woken, or it
    /// would take new entries for a listener that is gone, only to hand
    /// them back.
    pub(crate) fn unsubscribe(&mut self, id: ListenerId, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        member.active = false;
        if let (ReadState::Reading, Some(client_id)) = (member.state, member.client_id) {
            let link = self.link.clone();
            self.spawn_op(
                ctx,
                async move { link.unblock(client_id).await },
                |(), _, _| {},
            );
        }
    }

    /// Listener `id`'s actor stopped: what it still held never reached its
    /// handler, so it goes back to the stream; the listener leaves once its
    /// reader is done.
    pub(crate) fn detach(&mut self, id: ListenerId, ctx: &mut Context<Self>) {
        let orphans: Vec<AckToken> = self
            .held
            .iter()
            .filter(|(_, h)| h.listener == id)
            .map(|(token, _)| *token)
            .collect();
        let mut records = Records::default();
        for token in orphans {
            if let Some(held) = self.held.remove(&token) {
                records.hand_back(held.entry, &held.envelope);
            }
        }
        self.settle(ctx, records);
        if let Some(member) = self.members.get_mut(&id) {
            member.active = false;
            member.detached = true;
            member.held = 0;
        }
        self.finish_if_done(id);
    }

    /// Takes over entries of dead consumers for listeners with room, and
    /// keeps what listeners hold from looking dead.
    pub(crate) fn reap(&mut self, ctx: &mut Context<Self>) {
        let mut holding: FxHashMap<ListenerId, Vec<String>> = FxHashMap::default();
        for held in self.held.values() {
            holding
                .entry(held.listener)
                .or_default()
                .push(held.entry.clone());
        }
        let claim_idle = self.settings.claim_idle;
        let ids: Vec<ListenerId> = self.members.keys().copied().collect();
        for id in ids {
            let Some(member) = self.members.get(&id) else {
                continue;
            };
            if !member.active {
                continue;
            }
            let (stream, consumer) = (self.keys.stream.clone(), member.consumer.clone());
            let credit = member.window.saturating_sub(member.held).min(256);
            let limit = self.settle_limit();
            if let Some(entries) = holding.remove(&id) {
                let (link, stream, consumer) =
                    (self.link.clone(), stream.clone(), consumer.clone());
                let entries: Arc<[String]> = entries.into();
                let run = async move {
                    link.run(limit, |conn| {
                        commands::refresh(conn, stream.clone(), consumer.clone(), entries.clone())
                    })
                    .await
                };
                self.spawn_op(ctx, run, |_, _, _| {});
            }
            if credit > 0 {
                let link = self.link.clone();
                let run = async move {
                    link.run(limit, |conn| {
                        commands::autoclaim(
                            conn,
                            stream.clone(),
                            consumer.clone(),
                            claim_idle,
                            credit,
                        )
                    })
                    .await
                };
                self.spawn_op(ctx, run, move |claimed, act, ctx| match claimed {
                    Ok(entries) if !entries.is_empty() => {
                        tracing::info!(queue = %act.name, count = entries.len(), "took over deliveries of a dead consumer");
                        act.take_entries(id, entries, true, ctx);
                    }
                    Ok(_) => {}
                    Err(error) => tracing::debug!(queue = %act.name, %error, "XAUTOCLAIM failed"),
                });
            }
        }
    }

    pub(crate) fn consumer_name(&self, id: ListenerId) -> Arc<str> {
        format!("{}-{id}", self.settings.consumer).into()
    }
}
