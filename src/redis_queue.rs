//! `RedisQueue`: one queue on Redis — batches its pushes, feeds its listeners from the stream, settles their verdicts.
//!
//! The stream holds the messages; this actor holds only what is in transit:
//! pushes not yet confirmed, and the deliveries its listeners hold (token →
//! stream entry). Each listener reads with `XREADGROUP` on a connection of
//! its own, at most its window at a time; after a (re)connect it first
//! re-reads its own pending entries (id `0`). Verdicts become one atomic
//! script per batch ([`SETTLE`](crate::redis_wire::SETTLE)). A timer moves
//! due delayed messages into the stream, and a reaper takes over entries
//! idle longer than `redis.claim_idle` (their consumer died) while
//! refreshing those its own listeners hold.
//!
//! The actor is `Supervised`: a panic restarts it with its state; the reads
//! and commands in flight are dropped, and each listener re-reads its
//! pending entries, so nothing is lost.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use actix::prelude::*;
use futures_util::future::join_all;
use redis::streams::StreamId;
use redis::RedisError;
use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::oneshot;

use crate::delivery::{AckToken, Delivery, Envelope};
use crate::error::{Error, Result};
use crate::listener_actor::{Deliver, ListenerActor, StopListener};
use crate::memory_store::ListenerId;
use crate::panic_guard;
use crate::redis_link::{create_group, no_group, RedisLink, BLOCK};
use crate::redis_reader::{self, dead_fields, read, Reader, ReceiveJob, Records};
use crate::redis_wire::{self, decode, due_ms, Keys, GROUP, PROMOTE, STATS};
use crate::retry::{RetryPolicy, Verdict};
use crate::settle::{Detached, Outcome, Settle, Unsubscribe};
use crate::stats::QueueStats;
use crate::timer::Timer;

/// Most pushes sent in one pipeline.
const PUSH_BATCH: usize = 512;
/// How often a queue with listeners looks for due delayed messages that
/// another process scheduled; its own are moved on time.
const PROMOTE_POLL: Duration = Duration::from_secs(1);
/// Most delayed messages moved by one script run.
const PROMOTE_BATCH: usize = 1000;

/// Settings every queue of a redis bus shares.
#[derive(Debug)]
pub(crate) struct RedisSettings {
    /// Retry and dead-letter decisions.
    pub(crate) retry: RetryPolicy,
    /// How long a push (and any command) may wait through an outage.
    pub(crate) push_timeout: Duration,
    /// `redis.claim_idle`.
    pub(crate) claim_idle: Duration,
    /// The prefix of this bus's consumer names.
    pub(crate) consumer: String,
}

/// One queue's actor on the redis driver.
pub(crate) struct RedisQueue {
    /// The queue's name, shared by every delivery made from it.
    name: Arc<str>,
    /// Its stream, delay set and dead-letter stream.
    keys: Keys,
    /// The bus's connections.
    link: Arc<RedisLink>,
    /// Bus-wide settings.
    settings: Arc<RedisSettings>,
    /// Attached listeners and their readers.
    members: FxHashMap<ListenerId, Member>,
    /// Deliveries listeners hold, by token.
    held: FxHashMap<AckToken, Held>,
    /// The last token handed out.
    next_token: u64,
    /// Pushes waiting for the next pipeline.
    outbox: Vec<Push>,
    /// A `Flush` is already queued.
    flush_queued: bool,
    /// Push pipelines in flight.
    pushing: usize,
    /// The delay timer: moves due messages into the stream.
    promote_timer: Timer,
    /// A promote script is running.
    promoting: bool,
    /// `receive`s waiting here; they need the delay timer too.
    receivers: usize,
    /// Redis commands of this actor in flight.
    busy: usize,
    /// Who waits for `busy` to reach 0 (shutdown).
    idle_waiters: Vec<oneshot::Sender<()>>,
    /// Supervisor restarts.
    restarts: Arc<AtomicU64>,
}

/// One attached listener.
struct Member {
    /// Its actor.
    addr: Addr<ListenerActor<RedisQueue>>,
    /// Its consumer name in the group.
    consumer: Arc<str>,
    /// Most deliveries it holds at once.
    window: usize,
    /// Deliveries it holds now.
    held: usize,
    /// Its idle reader; `None` while reading, connecting, or after a failure.
    reader: Option<Reader>,
    /// The reader's server-side id, to unblock a read on removal.
    client_id: Option<i64>,
    /// What the reader is doing.
    state: ReadState,
    /// Re-reading its own pending entries, after this id.
    cursor: Option<String>,
    /// Read failures in a row, for the backoff.
    failures: u32,
    /// Still taking deliveries (no `Unsubscribe` yet).
    active: bool,
    /// Its actor has stopped.
    detached: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Idle,
    Connecting,
    Reading,
}

/// A delivery a listener holds.
struct Held {
    listener: ListenerId,
    entry: String,
    envelope: Envelope,
}

/// Stores a message; answered once Redis has it (§3.1).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Push {
    pub(crate) envelope: Envelope,
    pub(crate) delay: Option<Duration>,
    pub(crate) reply: oneshot::Sender<Result<()>>,
}

/// Attaches a started listener actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Subscribe {
    pub(crate) id: ListenerId,
    pub(crate) addr: Addr<ListenerActor<RedisQueue>>,
    pub(crate) window: usize,
}

/// Takes one message, acknowledged on hand-over, or `Error::Timeout`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Receive {
    pub(crate) timeout: Duration,
    pub(crate) reply: oneshot::Sender<Result<Delivery>>,
}

/// The queue's stop message (`bus.remove`): stops every listener, keeps the messages.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopListeners;

/// Counts the queue.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct GetStats {
    pub(crate) reply: oneshot::Sender<Result<QueueStats>>,
}

/// Drops the ready messages; answers how many.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Purge {
    pub(crate) reply: oneshot::Sender<Result<u64>>,
}

/// Answered once no command of this queue is in flight (shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Idle {
    pub(crate) reply: oneshot::Sender<()>,
}

/// Fault injection for the supervision tests: panics inside the actor.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Crash;

/// Internal: sends the waiting pushes.
#[derive(Message)]
#[rtype(result = "()")]
struct Flush;

impl RedisQueue {
    pub(crate) fn new(name: Arc<str>, link: Arc<RedisLink>, settings: Arc<RedisSettings>) -> Self {
        RedisQueue {
            keys: Keys::new(&name),
            name,
            link,
            settings,
            members: FxHashMap::default(),
            held: FxHashMap::default(),
            next_token: 0,
            outbox: Vec::new(),
            flush_queued: false,
            pushing: 0,
            promote_timer: Timer::default(),
            promoting: false,
            receivers: 0,
            busy: 0,
            idle_waiters: Vec::new(),
            restarts: Arc::default(),
        }
    }

    /// Runs a handler body; a panic stops the actor so its supervisor restarts it.
    fn guarded(
        &mut self,
        ctx: &mut Context<Self>,
        body: impl FnOnce(&mut Self, &mut Context<Self>),
    ) {
        if let Err(panic) = panic_guard::catch(|| body(self, ctx)) {
            tracing::error!(queue = %self.name, %panic, "redis queue actor panicked; restarting");
            ctx.stop();
        }
    }

    /// Spawns a Redis command; `then` runs on the actor with its outcome.
    /// Commands are spawned in order, and the shared connection keeps it.
    fn spawn_op<T: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        op: impl Future<Output = T> + 'static,
        then: impl FnOnce(T, &mut Self, &mut Context<Self>) + 'static,
    ) {
        self.busy += 1;
        ctx.spawn(op.into_actor(self).map(move |out, act, ctx| {
            act.busy -= 1;
            act.guarded(ctx, |act, ctx| then(out, act, ctx));
            act.check_idle();
        }));
    }

    fn check_idle(&mut self) {
        if self.busy == 0 {
            for waiter in self.idle_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Longest a settle may retry through an outage; after that the entry
    /// stays pending and is redelivered.
    fn settle_limit(&self) -> Duration {
        self.settings.push_timeout.max(Duration::from_secs(30))
    }

    fn settle(&mut self, ctx: &mut Context<Self>, records: Records) {
        if records.is_empty() {
            return;
        }
        let (link, keys, limit) = (self.link.clone(), self.keys.clone(), self.settle_limit());
        let queue = self.name.clone();
        self.spawn_op(
            ctx,
            async move { redis_reader::settle(&link, &keys, records, limit).await },
            move |done, _, _| {
                if let Err(error) = done {
                    tracing::warn!(%queue, %error, "cannot settle deliveries; they will be redelivered");
                }
            },
        );
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_queued = false;
        while !self.outbox.is_empty() {
            let take = self.outbox.len().min(PUSH_BATCH);
            let batch: Vec<Push> = self.outbox.drain(..take).collect();
            let mut pipe = redis::Pipeline::with_capacity(batch.len());
            let mut latest = None;
            for push in &batch {
                match push.delay.filter(|d| !d.is_zero()) {
                    Some(delay) => {
                        latest = latest.max(Some(delay));
                        pipe.cmd("ZADD")
                            .arg(&*self.keys.delayed)
                            .arg(due_ms(delay))
                            .arg(redis_wire::member(&push.envelope))
                            .ignore();
                    }
                    None => {
                        // Sized up front: growing each command's buffer
                        // showed in profiles.
                        let size = self.keys.stream.len() + push.envelope.payload.len() + 96;
                        let mut cmd = redis::Cmd::with_capacity(9, size);
                        cmd.arg("XADD").arg(&*self.keys.stream).arg("*");
                        redis_wire::write_fields(&push.envelope, |part| {
                            cmd.arg(part);
                        });
                        pipe.add_command(cmd).ignore();
                    }
                }
            }
            let (link, limit) = (self.link.clone(), self.settings.push_timeout);
            let pipe = Arc::new(pipe);
            let sent = async move {
                link.run(limit, |mut conn| {
                    let pipe = pipe.clone();
                    async move { pipe.query_async::<()>(&mut conn).await }
                })
                .await
            };
            self.pushing += 1;
            self.spawn_op(ctx, sent, move |sent, act, ctx| {
                act.pushing -= 1;
                for push in batch {
                    let _ = push.reply.send(match &sent {
                        Ok(()) => Ok(()),
                        Err(e) => Err(copy_error(e)),
                    });
                }
                if let (Ok(()), Some(delay)) = (&sent, latest) {
                    // The latest due time covers the batch: earlier ones are
                    // moved by the same run.
                    act.arm_promote(ctx, Instant::now() + delay);
                }
            });
        }
    }

    /// Makes sure delayed messages are looked at no later than `at`.
    fn arm_promote(&mut self, ctx: &mut Context<Self>, at: Instant) {
        self.promote_timer.arm(ctx, at, |act: &mut Self, ctx| {
            act.promote_timer.disarm();
            act.promote(ctx);
        });
    }

    fn promote(&mut self, ctx: &mut Context<Self>) {
        if self.promoting {
            return;
        }
        self.promoting = true;
        let (link, keys, limit) = (self.link.clone(), self.keys.clone(), self.settle_limit());
        let run = async move {
            link.run(limit, |mut conn| {
                let keys = keys.clone();
                async move {
                    PROMOTE
                        .key(&*keys.delayed)
                        .key(&*keys.stream)
                        .arg(due_ms(Duration::ZERO))
                        .arg(PROMOTE_BATCH)
                        .invoke_async::<(usize, i64)>(&mut conn)
                        .await
                }
            })
            .await
        };
        self.spawn_op(ctx, run, |moved, act, ctx| {
            act.promoting = false;
            let watching = !act.members.is_empty() || act.receivers > 0;
            let next = match moved {
                Ok((moved, _)) if moved >= PROMOTE_BATCH => Some(Duration::ZERO),
                Ok((_, wait)) if wait >= 0 => {
                    let wait = Duration::from_millis(wait.unsigned_abs());
                    Some(if watching {
                        wait.min(PROMOTE_POLL)
                    } else {
                        wait
                    })
                }
                Ok(_) => watching.then_some(PROMOTE_POLL),
                Err(error) => {
                    tracing::warn!(queue = %act.name, %error, "cannot move due delayed messages");
                    Some(PROMOTE_POLL)
                }
            };
            if let Some(next) = next {
                act.arm_promote(ctx, Instant::now() + next);
            }
        });
    }

    /// Starts the next step of listener `id`'s reader: connect, or read as
    /// much as its window has room for.
    fn pump(&mut self, id: ListenerId, ctx: &mut Context<Self>) {
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

    fn on_read(
        &mut self,
        id: ListenerId,
        reader: Reader,
        got: std::result::Result<Vec<StreamId>, RedisError>,
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
                let (link, stream) = (self.link.clone(), self.keys.stream.clone());
                let limit = self.settle_limit();
                let create = async move {
                    link.run(limit, |mut conn| {
                        let stream = stream.clone();
                        async move { create_group(&mut conn, &stream).await }
                    })
                    .await
                };
                self.spawn_op(ctx, create, move |_, act, ctx| act.pump(id, ctx));
            }
            Err(error) => self.read_failed(id, &error, ctx),
        }
        self.finish_if_done(id);
    }

    /// Drops the reader's connection and tries again after a backoff.
    fn read_failed(&mut self, id: ListenerId, error: &RedisError, ctx: &mut Context<Self>) {
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
    fn take_entries(
        &mut self,
        id: ListenerId,
        entries: Vec<StreamId>,
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
        let entries: Vec<StreamId> = entries
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
    fn fail(&mut self, held: Held, error: &str, records: &mut Records, ctx: &mut Context<Self>) {
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
    fn finish_if_done(&mut self, id: ListenerId) {
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
        let (link, stream, limit) = (
            self.link.clone(),
            self.keys.stream.clone(),
            self.settle_limit(),
        );
        let consumer = member.consumer;
        // Outside `spawn_op`: the consumer is dropped even when the actor is not.
        actix::spawn(async move {
            let _ = link
                .run(limit, |mut conn| {
                    let (stream, consumer) = (stream.clone(), consumer.clone());
                    async move {
                        redis_wire::DROP_CONSUMER
                            .key(&*stream)
                            .arg(GROUP)
                            .arg(&*consumer)
                            .invoke_async::<i64>(&mut conn)
                            .await
                    }
                })
                .await;
        });
    }

    /// Takes over entries of dead consumers for listeners with room, and
    /// keeps what listeners hold from looking dead.
    fn reap(&mut self, ctx: &mut Context<Self>) {
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
                        redis_reader::refresh(
                            conn,
                            stream.clone(),
                            consumer.clone(),
                            entries.clone(),
                        )
                    })
                    .await
                };
                self.spawn_op(ctx, run, |_, _, _| {});
            }
            if credit > 0 {
                let link = self.link.clone();
                let run = async move {
                    link.run(limit, |conn| {
                        redis_reader::autoclaim(
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

    fn consumer_name(&self, id: ListenerId) -> Arc<str> {
        format!("{}-{id}", self.settings.consumer).into()
    }
}

/// The same error again, for each push of a failed batch.
fn copy_error(error: &Error) -> Error {
    match error {
        Error::Timeout => Error::Timeout,
        Error::Closed => Error::Closed,
        other => Error::backend(other.to_string()),
    }
}

impl Actor for RedisQueue {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Also runs after a restart, whose context lost the timers and reads.
        let every = (self.settings.claim_idle / 2).max(Duration::from_millis(10));
        ctx.run_interval(every, |act, ctx| act.guarded(ctx, Self::reap));
        self.promote(ctx);
        let ids: Vec<ListenerId> = self.members.keys().copied().collect();
        for id in ids {
            self.pump(id, ctx);
        }
        if !self.outbox.is_empty() {
            self.flush_queued = true;
            ctx.notify(Flush);
        }
    }
}

impl Supervised for RedisQueue {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.promote_timer.disarm();
        self.promoting = false;
        self.flush_queued = false;
        self.pushing = 0;
        self.busy = 0;
        self.check_idle();
        for member in self.members.values_mut() {
            // The reads in flight died with the old context, and their
            // connections with them.
            member.state = ReadState::Idle;
            member.reader = None;
        }
        let done: Vec<ListenerId> = self.members.keys().copied().collect();
        for id in done {
            self.finish_if_done(id);
        }
    }
}

impl Handler<Push> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Push, ctx: &mut Context<Self>) {
        self.outbox.push(msg);
        if self.pushing == 0 {
            // Nothing in flight: send at once (latency). Under load the
            // pushes that come meanwhile gather into the next pipeline.
            self.guarded(ctx, Self::flush);
        } else if !self.flush_queued {
            self.flush_queued = true;
            ctx.notify(Flush);
        }
    }
}

impl Handler<Subscribe> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let consumer = act.consumer_name(msg.id);
            act.members.insert(
                msg.id,
                Member {
                    addr: msg.addr,
                    consumer,
                    window: msg.window.max(1),
                    held: 0,
                    reader: None,
                    client_id: None,
                    state: ReadState::Idle,
                    cursor: None,
                    failures: 0,
                    active: true,
                    detached: false,
                },
            );
            act.pump(msg.id, ctx);
            act.promote(ctx);
        });
    }
}

impl Handler<Settle> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Settle, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let mut records = Records::default();
            for (token, outcome) in msg.outcomes {
                let Some(held) = act.held.remove(&token) else {
                    continue;
                };
                if let Some(member) = act.members.get_mut(&held.listener) {
                    member.held = member.held.saturating_sub(1);
                }
                match outcome {
                    Outcome::Ack => records.ack(held.entry),
                    Outcome::Fail(error) => act.fail(held, &error, &mut records, ctx),
                    Outcome::Release => records.hand_back(held.entry, &held.envelope),
                }
            }
            act.settle(ctx, records);
            act.pump(msg.listener, ctx);
        });
    }
}

impl Handler<Unsubscribe> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let Some(member) = act.members.get_mut(&msg.listener) else {
                return;
            };
            member.active = false;
            if let (ReadState::Reading, Some(client_id)) = (member.state, member.client_id) {
                // Its blocked read would otherwise take new entries for a
                // listener that is gone, only to hand them back.
                let link = act.link.clone();
                act.spawn_op(
                    ctx,
                    async move { link.unblock(client_id).await },
                    |(), _, _| {},
                );
            }
        });
    }
}

impl Handler<Detached> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Detached, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let orphans: Vec<AckToken> = act
                .held
                .iter()
                .filter(|(_, h)| h.listener == msg.listener)
                .map(|(token, _)| *token)
                .collect();
            let mut records = Records::default();
            for token in orphans {
                if let Some(held) = act.held.remove(&token) {
                    records.hand_back(held.entry, &held.envelope);
                }
            }
            act.settle(ctx, records);
            if let Some(member) = act.members.get_mut(&msg.listener) {
                member.active = false;
                member.detached = true;
                member.held = 0;
            }
            act.finish_if_done(msg.listener);
        });
    }
}

impl Handler<Receive> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Receive, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| {
            let job = ReceiveJob {
                link: act.link.clone(),
                keys: act.keys.clone(),
                queue: act.name.clone(),
                consumer: format!("{}-receive", act.settings.consumer).into(),
                timeout: msg.timeout,
                limit: act.settle_limit(),
            };
            act.receivers += 1;
            act.promote(ctx);
            act.spawn_op(ctx, redis_reader::receive(job, msg.reply), |(), act, _| {
                act.receivers -= 1;
            });
        });
    }
}

impl Handler<StopListeners> for RedisQueue {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopListeners, _ctx: &mut Context<Self>) -> Self::Result {
        let stops: Vec<_> = self
            .members
            .values()
            .filter(|m| m.active)
            .map(|m| m.addr.send(StopListener))
            .collect();
        Box::pin(async move {
            join_all(stops).await;
        })
    }
}

impl Handler<GetStats> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: GetStats, ctx: &mut Context<Self>) {
        let (link, keys, limit) = (
            self.link.clone(),
            self.keys.clone(),
            self.settings.push_timeout,
        );
        let counted = async move {
            link.run(limit, |mut conn| {
                let keys = keys.clone();
                async move {
                    STATS
                        .key(&*keys.stream)
                        .key(&*keys.delayed)
                        .key(&*keys.dead)
                        .arg(GROUP)
                        .invoke_async::<(u64, u64, u64, u64)>(&mut conn)
                        .await
                }
            })
            .await
        };
        self.spawn_op(ctx, counted, move |counted, act, _| {
            let stats = counted.map(|(ready, in_flight, delayed, dead)| QueueStats {
                ready,
                in_flight,
                delayed,
                dead,
                listeners: act.members.values().filter(|m| m.active).count() as u64,
                restarts: act.restarts.load(Ordering::Relaxed),
                durable: act.link.durable,
            });
            let _ = msg.reply.send(stats);
        });
    }
}

impl Handler<Purge> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Purge, ctx: &mut Context<Self>) {
        let (link, stream, limit) = (
            self.link.clone(),
            self.keys.stream.clone(),
            self.settings.push_timeout,
        );
        let purged = async move {
            link.run(limit, |mut conn| {
                let stream = stream.clone();
                async move {
                    redis_wire::PURGE
                        .key(&*stream)
                        .arg(GROUP)
                        .invoke_async::<u64>(&mut conn)
                        .await
                }
            })
            .await
        };
        self.spawn_op(ctx, purged, move |purged, _, _| {
            let _ = msg.reply.send(purged);
        });
    }
}

impl Handler<Idle> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Idle, _ctx: &mut Context<Self>) {
        self.idle_waiters.push(msg.reply);
        self.check_idle();
    }
}

impl Handler<Crash> for RedisQueue {
    type Result = ();

    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        self.guarded(ctx, |_, _| panic!("injected fault"));
    }
}

impl Handler<Flush> for RedisQueue {
    type Result = ();

    fn handle(&mut self, _: Flush, ctx: &mut Context<Self>) {
        self.guarded(ctx, Self::flush);
    }
}
