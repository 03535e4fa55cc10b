//! `RedisBackend`: the I/O of one queue on Redis — its stream, delay set and dead-letter stream.
//!
//! The stream holds the messages; the channel holds the deliveries its
//! listeners hold, each under its stream entry id. The backend reads for
//! the listeners (one reader each, in the `reader` module),
//! turns each batch of verdicts into one atomic settle script
//! ([`SETTLE`](crate::driver::redis::scripts::SETTLE)), counts a suspect's
//! start before its handler runs (the `suspects` module), and moves due
//! delayed messages into the stream on a timer.
//!
//! Reads and other commands run in the channel's context: a restart drops
//! those in flight, and each listener's reader then re-reads its own
//! pending entries, so nothing is lost. Settles run outside it, so that a
//! restart does not turn a verdict already given into a redelivery.

mod reader;
mod suspects;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::vec::Drain;

use actix::Addr;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::channel::backend::{Backend, Cx, Reply, Settlement};
use crate::channel::messages::Relay;
use crate::config::DriverKind;
use crate::delivery::{AckToken, Delivery};
use crate::driver::redis::commands::{self, Records};
use crate::driver::redis::driver::RedisShared;
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::operate;
use crate::driver::redis::pusher::{Inbox, RedisPusher, Watch};
use crate::driver::redis::receive::{self, ReceiveJob};
use crate::driver::redis::wire::{due_ms, fields, EntryRef};
use crate::driver::registry::{Open, Registry};
use crate::listener::ListenerId;
use crate::runtime::Arbiters;
use crate::stats::QueueStats;
use crate::timer::{deadline, Timer};

use reader::Reader;

/// How often a queue with listeners looks for due delayed messages that
/// another process scheduled; its own are moved on time.
const PROMOTE_POLL: Duration = Duration::from_secs(1);
/// Most delayed messages moved by one script run.
const PROMOTE_BATCH: usize = 1000;

/// One queue of the redis driver.
pub(crate) struct RedisBackend {
    /// Its streams, delay set and dead-letter stream.
    keys: Keys,
    /// The bus's connections.
    link: Arc<RedisLink>,
    /// Bus-wide settings.
    shared: Arc<RedisShared>,
    /// The queue's push side, told where to report delayed messages.
    pusher: Addr<RedisPusher>,
    /// Each listener's reader, until its listener left and its read ended.
    readers: FxHashMap<ListenerId, Reader>,
    /// The delay timer: moves due messages into the stream.
    promote_timer: Timer,
    /// A promote script is running.
    promoting: bool,
    /// `receive`s waiting here; they need the delay timer too.
    receivers: usize,
    /// Redis commands in flight in the channel's context.
    busy: usize,
    /// Settle scripts in flight; they run outside the channel's context,
    /// so that a restart does not drop a verdict (the entry would be
    /// re-read from the pending list and delivered again).
    settling: Arc<AtomicUsize>,
    /// Who waits for `busy` and `settling` to reach 0 (shutdown).
    idle_waiters: Vec<Reply<()>>,
    /// Numbers the settle scripts, in the order they are sent.
    settle_seq: u64,
    /// The settle scripts in flight, by number.
    settles_in_flight: BTreeSet<u64>,
    /// Suspects waiting to be counted until every settle script sent
    /// before them (up to the number given) is done (see `suspects`).
    deferred_arms: Vec<(u64, AckToken)>,
}

/// What the redis driver (and the backend itself) sends a channel.
pub(crate) enum RedisEvent {
    /// Delayed messages were stored: look for due ones no later than `at`.
    Promote { at: Instant },
    /// Settle script `seq` finished (sent by its task): shutdown and
    /// suspects may wait for it.
    Settled { seq: u64 },
    /// The queue turned out to be a topic's subscriber group (it was joined
    /// after this channel started as an ordinary queue): read it so.
    Regroup(Keys),
    /// The start of suspect `token` (stored as attempt `stored`) was
    /// counted: its delivery count before, `None` when it is no longer
    /// this consumer's.
    Armed {
        token: AckToken,
        stored: u32,
        before: crate::error::Result<Option<u32>>,
    },
}

/// What the bus keeps beside a redis channel: its push side.
pub(crate) struct RedisFront {
    /// The queue's keys, for the `XADD` of a direct push.
    pub(crate) keys: Keys,
    /// The pusher actor, woken when its inbox gets pushes.
    pub(crate) pusher: Addr<RedisPusher>,
    /// Where pushes wait for the pusher.
    pub(crate) inbox: Arc<Inbox>,
}

impl Open for RedisBackend {
    type Front = RedisFront;
    type Driver = Arc<RedisShared>;
    const KIND: DriverKind = DriverKind::Redis;

    fn open(
        shared: &Arc<RedisShared>,
        name: &Arc<str>,
        arbiters: &Arbiters,
        _registry: &Addr<Registry<Self>>,
    ) -> (Self, RedisFront) {
        let keys = shared.keys_of(name);
        let inbox = Arc::new(Inbox::default());
        // The channel goes on the next arbiter: storing and delivering use both cores.
        let (pusher_keys, link, pusher_inbox) = (keys.clone(), shared.link.clone(), inbox.clone());
        let pusher = actix::Actor::start_in_arbiter(arbiters.next(), move |_| {
            RedisPusher::new(pusher_keys, link, pusher_inbox)
        });
        let backend = RedisBackend {
            keys: keys.clone(),
            link: shared.link.clone(),
            shared: shared.clone(),
            pusher: pusher.clone(),
            readers: FxHashMap::default(),
            promote_timer: Timer::default(),
            promoting: false,
            receivers: 0,
            busy: 0,
            settling: Arc::default(),
            idle_waiters: Vec::new(),
            settle_seq: 0,
            settles_in_flight: BTreeSet::new(),
            deferred_arms: Vec::new(),
        };
        let front = RedisFront {
            keys,
            pusher,
            inbox,
        };
        (backend, front)
    }
}

impl RedisBackend {
    /// Runs a Redis command in the channel's context; `then` gets its
    /// outcome there. Commands are spawned in order, and the shared
    /// connection keeps it. Counted until done, for `drain`.
    pub(crate) fn run<T: 'static>(
        &mut self,
        cx: &mut Cx<'_, Self>,
        op: impl Future<Output = T> + 'static,
        then: impl FnOnce(T, &mut Self, &mut Cx<'_, Self>) + 'static,
    ) {
        self.busy += 1;
        cx.spawn(op, move |out, b, cx| {
            b.busy -= 1;
            then(out, b, cx);
            b.check_idle();
        });
    }

    /// Runs a request's command and answers `reply` with its outcome.
    fn answer<T: 'static>(
        &mut self,
        reply: Reply<T>,
        op: impl Future<Output = crate::error::Result<T>> + 'static,
        cx: &mut Cx<'_, Self>,
    ) {
        self.run(cx, op, move |out, _, _| {
            let _ = reply.send(out);
        });
    }

    fn check_idle(&mut self) {
        if self.busy == 0 && self.settling.load(Ordering::Acquire) == 0 {
            for waiter in self.idle_waiters.drain(..) {
                let _ = waiter.send(Ok(()));
            }
        }
    }

    /// Longest a command may retry through an outage; after that a settle
    /// leaves the entry pending, and it is redelivered.
    pub(crate) fn settle_limit(&self) -> Duration {
        self.shared.push_timeout.max(Duration::from_secs(30))
    }

    /// Sends one settle script for `records`.
    pub(crate) fn settle_records(&mut self, records: Records, cx: &mut Cx<'_, Self>) {
        if records.is_empty() {
            return;
        }
        let (link, keys, limit) = (self.link.clone(), self.keys.clone(), self.settle_limit());
        let (queue, channel, settling) = (cx.name().clone(), cx.address(), self.settling.clone());
        settling.fetch_add(1, Ordering::AcqRel);
        self.settle_seq += 1;
        let seq = self.settle_seq;
        self.settles_in_flight.insert(seq);
        actix::spawn(async move {
            if let Err(error) = commands::settle(&link, &keys, records, limit).await {
                tracing::warn!(%queue, %error, "cannot settle deliveries; they will be redelivered");
            }
            settling.fetch_sub(1, Ordering::AcqRel);
            channel.do_send(Relay(RedisEvent::Settled { seq }));
        });
    }

    /// Adds what `settlement` does to the next settle script.
    fn record(
        &mut self,
        settlement: Settlement<EntryRef>,
        records: &mut Records,
        cx: &mut Cx<'_, Self>,
    ) {
        match settlement {
            Settlement::Ack(entry) => records.ack(entry),
            Settlement::Release(entry, envelope) => records.hand_back(entry, &envelope),
            Settlement::Retry(entry, envelope, after) => {
                records.retry(entry, &envelope, due_ms(after));
                self.arm_promote(deadline(Instant::now(), after), cx);
            }
            Settlement::Dead(entry, envelope) => records.dead(entry, fields(&envelope)),
        }
    }

    /// Makes sure delayed messages are looked at no later than `at`.
    fn arm_promote(&mut self, at: Instant, cx: &mut Cx<'_, Self>) {
        self.promote_timer.arm(cx.ctx(), at, |act, ctx| {
            act.with_backend(ctx, "timer", |b, cx| {
                b.promote_timer.disarm();
                b.promote(cx);
            });
        });
    }

    /// Moves due delayed messages into the stream, then arms the timer for
    /// the next one (and, while someone waits here, at least every second,
    /// for those other processes scheduled).
    fn promote(&mut self, cx: &mut Cx<'_, Self>) {
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
        self.run(cx, run, |moved, b, cx| {
            b.promoting = false;
            let watching = !cx.active().is_empty() || b.receivers > 0;
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
                    tracing::warn!(queue = %cx.name(), %error, "cannot move due delayed messages");
                    Some(PROMOTE_POLL)
                }
            };
            if let Some(next) = next {
                b.arm_promote(deadline(Instant::now(), next), cx);
            }
        });
    }

    /// Runs the reaper every half `redis.claim_idle`, for as long as this
    /// context lives (a restart schedules it again).
    fn schedule_reap(&mut self, cx: &mut Cx<'_, Self>) {
        let every = (self.shared.claim_idle / 2).max(Duration::from_millis(10));
        cx.run_later(every, |b, cx| {
            b.schedule_reap(cx);
            b.reap(cx);
        });
    }
}

impl Backend for RedisBackend {
    type Handle = EntryRef;
    type Event = RedisEvent;

    fn started(&mut self, cx: &mut Cx<'_, Self>) {
        // Also runs after a restart, whose context lost the timers and reads.
        self.pusher.do_send(Watch(cx.address()));
        self.schedule_reap(cx);
        self.promote(cx);
        let mut ids: Vec<ListenerId> = self.readers.keys().copied().collect();
        ids.extend(cx.active());
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            self.pump(id, cx);
        }
    }

    fn restarting(&mut self, _cx: &mut Cx<'_, Self>) {
        self.promote_timer.disarm();
        self.promoting = false;
        // Receives, reads and commands in flight died with the old context.
        self.receivers = 0;
        self.busy = 0;
        self.check_idle();
        for reader in self.readers.values_mut() {
            reader.reset();
        }
        let ids: Vec<ListenerId> = self.readers.keys().copied().collect();
        for id in ids {
            self.finish_if_done(id);
        }
    }

    fn attached(&mut self, listener: ListenerId, cx: &mut Cx<'_, Self>) {
        self.pump(listener, cx);
        self.promote(cx);
    }

    fn credit(&mut self, listener: ListenerId, cx: &mut Cx<'_, Self>) {
        self.pump(listener, cx);
    }

    fn unsubscribed(&mut self, listener: ListenerId, cx: &mut Cx<'_, Self>) {
        self.unblock(listener, cx);
    }

    fn detached(
        &mut self,
        listener: ListenerId,
        done: oneshot::Sender<()>,
        _cx: &mut Cx<'_, Self>,
    ) {
        // Its deliveries were handed back (copies at the end of the stream)
        // by the settle just before, in a script of their own. A read still
        // in flight (woken by `unsubscribed`) is waited for: what it brings
        // is handed back too, and nothing later is read for this listener.
        match self.readers.get_mut(&listener) {
            Some(reader) => {
                reader.detached = true;
                reader.gone.push(done);
            }
            None => {
                let _ = done.send(());
            }
        }
        self.finish_if_done(listener);
    }

    fn settle(&mut self, batch: Drain<'_, Settlement<EntryRef>>, cx: &mut Cx<'_, Self>) {
        let mut records = Records::default();
        for settlement in batch {
            self.record(settlement, &mut records, cx);
        }
        self.settle_records(records, cx);
    }

    fn on_event(&mut self, event: RedisEvent, cx: &mut Cx<'_, Self>) {
        match event {
            RedisEvent::Promote { at } => self.arm_promote(at, cx),
            RedisEvent::Settled { seq } => {
                self.check_idle();
                self.settled(seq, cx);
            }
            RedisEvent::Regroup(keys) => self.keys = keys,
            RedisEvent::Armed {
                token,
                stored,
                before,
            } => self.armed(token, stored, before, cx),
        }
    }

    fn stats(&mut self, reply: Reply<QueueStats>, cx: &mut Cx<'_, Self>) {
        let limit = self.shared.push_timeout;
        let counted = commands::count(self.link.clone(), self.keys.clone(), limit);
        self.answer(reply, counted, cx);
    }

    fn purge(&mut self, reply: Reply<u64>, cx: &mut Cx<'_, Self>) {
        let limit = self.shared.push_timeout;
        let purged = commands::purge(self.link.clone(), self.keys.clone(), limit);
        self.answer(reply, purged, cx);
    }

    fn peek(&mut self, max: usize, reply: Reply<Vec<Delivery>>, cx: &mut Cx<'_, Self>) {
        let limit = self.shared.push_timeout;
        let copies = operate::peek(self.link.clone(), self.keys.clone(), max, limit);
        self.answer(reply, copies, cx);
    }

    fn receive(&mut self, timeout: Duration, reply: Reply<Delivery>, cx: &mut Cx<'_, Self>) {
        let job = ReceiveJob {
            link: self.link.clone(),
            keys: self.keys.clone(),
            queue: cx.name().clone(),
            consumer: format!("{}-receive", self.shared.consumer).into(),
            timeout,
            limit: self.settle_limit(),
        };
        self.receivers += 1;
        self.promote(cx);
        self.run(cx, receive::receive(job, reply), |(), b, _| {
            b.receivers = b.receivers.saturating_sub(1);
        });
    }

    fn arm(&mut self, token: AckToken, cx: &mut Cx<'_, Self>) {
        self.arm_after_settles(token, cx);
    }

    fn drain(&mut self, reply: Reply<()>, _cx: &mut Cx<'_, Self>) {
        // Only sent at shutdown, once every listener stopped: from now on
        // blocked receives give up and readers read no more, while the
        // settles still in flight finish on open connections.
        self.link.start_closing();
        self.idle_waiters.push(reply);
        self.check_idle();
    }
}
