//! `RedisQueue`: one queue on Redis — feeds its listeners from the stream, settles their verdicts, moves due delayed messages.
//!
//! The stream holds the messages; this actor holds only what is in transit:
//! pushes not yet confirmed, and the deliveries its listeners hold (token →
//! stream entry; the reading side is in [`Member`]). Verdicts become one
//! atomic script per batch ([`SETTLE`](crate::driver::redis::scripts::SETTLE)); a timer
//! moves due delayed messages into the stream.
//!
//! The actor is `Supervised`: a panic restarts it with its state; the reads
//! and commands in flight are dropped, and each listener re-reads its
//! pending entries, so nothing is lost.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures_util::future::join_all;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::channel::messages::{Detached, Outcome, Settle, Subscribe, Unsubscribe};
use crate::delivery::AckToken;
use crate::driver::memory::queue::{Crash, Receive, StopListeners};
use crate::driver::redis::commands::{self, ReceiveJob, Records};
use crate::driver::redis::driver::RedisSettings;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::member::{Held, Member, ReadState};
use crate::driver::redis::wire::Keys;
use crate::error::Result;
use crate::listener::actor::StopListener;
use crate::listener::ListenerId;
use crate::panic_guard;
use crate::stats::QueueStats;
use crate::timer::Timer;

/// How often a queue with listeners looks for due delayed messages that
/// another process scheduled; its own are moved on time.
const PROMOTE_POLL: Duration = Duration::from_secs(1);
/// Most delayed messages moved by one script run.
const PROMOTE_BATCH: usize = 1000;

/// One queue's actor on the redis driver.
pub(crate) struct RedisQueue {
    /// The queue's name, shared by every delivery made from it.
    pub(crate) name: Arc<str>,
    /// Its stream, delay set and dead-letter stream.
    pub(crate) keys: Keys,
    /// The bus's connections.
    pub(crate) link: Arc<RedisLink>,
    /// Bus-wide settings.
    pub(crate) settings: Arc<RedisSettings>,
    /// Attached listeners and their readers.
    pub(crate) members: FxHashMap<ListenerId, Member>,
    /// Deliveries listeners hold, by token.
    pub(crate) held: FxHashMap<AckToken, Held>,
    /// The last token handed out.
    pub(crate) next_token: u64,
    /// The delay timer: moves due messages into the stream.
    pub(crate) promote_timer: Timer,
    /// A promote script is running.
    pub(crate) promoting: bool,
    /// `receive`s waiting here; they need the delay timer too.
    pub(crate) receivers: usize,
    /// Redis commands of this actor in flight.
    pub(crate) busy: usize,
    /// Who waits for `busy` to reach 0 (shutdown).
    pub(crate) idle_waiters: Vec<oneshot::Sender<()>>,
    /// Supervisor restarts.
    pub(crate) restarts: Arc<AtomicU64>,
}

/// Delayed messages were stored: look for due ones no later than `at`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Promote {
    pub(crate) at: Instant,
}

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
            promote_timer: Timer::default(),
            promoting: false,
            receivers: 0,
            busy: 0,
            idle_waiters: Vec::new(),
            restarts: Arc::default(),
        }
    }

    /// Runs a handler body; a panic stops the actor so its supervisor restarts it.
    pub(crate) fn guarded(
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
    pub(crate) fn spawn_op<T: 'static>(
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
    pub(crate) fn settle_limit(&self) -> Duration {
        self.settings.push_timeout.max(Duration::from_secs(30))
    }

    pub(crate) fn settle(&mut self, ctx: &mut Context<Self>, records: Records) {
        if records.is_empty() {
            return;
        }
        let (link, keys, limit) = (self.link.clone(), self.keys.clone(), self.settle_limit());
        let queue = self.name.clone();
        self.spawn_op(
            ctx,
            async move { commands::settle(&link, &keys, records, limit).await },
            move |done, _, _| {
                if let Err(error) = done {
                    tracing::warn!(%queue, %error, "cannot settle deliveries; they will be redelivered");
                }
            },
        );
    }

    /// Makes sure delayed messages are looked at no later than `at`.
    pub(crate) fn arm_promote(&mut self, ctx: &mut Context<Self>, at: Instant) {
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
        let run = commands::promote(
            self.link.clone(),
            self.keys.clone(),
            self.settle_limit(),
            PROMOTE_BATCH,
        );
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
    }
}

impl Supervised for RedisQueue {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.promote_timer.disarm();
        self.promoting = false;
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

impl Handler<Promote> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Promote, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| act.arm_promote(ctx, msg.at));
    }
}

impl Handler<Subscribe<RedisQueue>> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Subscribe<RedisQueue>, ctx: &mut Context<Self>) {
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
        self.guarded(ctx, |act, ctx| act.unsubscribe(msg.listener, ctx));
    }
}

impl Handler<Detached> for RedisQueue {
    type Result = ();

    fn handle(&mut self, msg: Detached, ctx: &mut Context<Self>) {
        self.guarded(ctx, |act, ctx| act.detach(msg.listener, ctx));
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
            act.spawn_op(ctx, commands::receive(job, msg.reply), |(), act, _| {
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
        let limit = self.settings.push_timeout;
        let counted = commands::count(self.link.clone(), self.keys.clone(), limit);
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
        let limit = self.settings.push_timeout;
        let purged = commands::purge(self.link.clone(), self.keys.clone(), limit);
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
