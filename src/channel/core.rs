//! `Core`: what a channel keeps for every driver — its listeners, the deliveries they hold, and the verdict on each.
//!
//! Pure bookkeeping inside the [`ChannelActor`](crate::channel::actor::ChannelActor):
//! a delivery gets an [`AckToken`] as it is handed to a listener and keeps
//! its backend's handle and envelope here until the listener's verdict
//! turns it into a [`Settlement`] (with the retry-or-dead-letter decision
//! made here, once for every driver).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use actix::Addr;
use rustc_hash::FxHashMap;
use tokio::sync::oneshot;

use crate::channel::actor::ChannelActor;
use crate::channel::backend::{Backend, Settlement};
use crate::channel::messages::Outcome;
use crate::channel::retry::{dead_letter_headers, RetryPolicy, Verdict};
use crate::channel::subscribers::Subscribers;
use crate::channel::suspect::{judge, Armed, Go};
use crate::delivery::{AckToken, Delivery, Envelope};
use crate::listener::actor::{Deliver, ListenerActor};
use crate::listener::ListenerId;
use crate::observe::Observer;

/// A delivery a listener holds.
struct Held<H> {
    /// Who holds it.
    listener: ListenerId,
    /// The message, for a release, retry or dead-letter copy.
    envelope: Envelope,
    /// What settles it on the backend.
    handle: H,
}

/// Held deliveries by token.
struct Ledger<H> {
    held: FxHashMap<AckToken, Held<H>>,
    /// The last token handed out; tokens grow in delivery order.
    next_token: u64,
}

impl<H> Ledger<H> {
    /// Records a delivery to `listener` under a new token.
    fn hold(
        &mut self,
        queue: &Arc<str>,
        listener: ListenerId,
        handle: H,
        envelope: Envelope,
    ) -> (AckToken, Delivery) {
        self.next_token += 1;
        let token = AckToken(self.next_token);
        let delivery = Delivery::new(envelope.clone(), queue.clone());
        self.held.insert(
            token,
            Held {
                listener,
                envelope,
                handle,
            },
        );
        (token, delivery)
    }
}

/// The driver-independent state of one channel.
pub(crate) struct Core<B: Backend> {
    /// The queue's name, shared by every delivery made from it.
    pub(crate) name: Arc<str>,
    /// Attached listeners, their windows and leases.
    listeners: Subscribers<Addr<ListenerActor<ChannelActor<B>>>>,
    /// Deliveries handed to listeners and not yet settled.
    ledger: Ledger<B::Handle>,
    /// Suspects being counted on the broker, and the listener waiting to
    /// run each (see [`suspect`](crate::channel::suspect)).
    arms: FxHashMap<AckToken, oneshot::Sender<Option<u32>>>,
    /// Retry and dead-letter decisions.
    retry: Arc<RetryPolicy>,
    /// Supervisor restarts, counted in `stats`.
    restarts: Arc<AtomicU64>,
    /// The queue's metrics and span fields.
    pub(crate) observer: Arc<Observer>,
    /// A handler that is to panic once (fault injection for the tests).
    #[cfg(feature = "test-util")]
    pub(crate) fault: Option<String>,
}

impl<B: Backend> Core<B> {
    pub(crate) fn new(name: Arc<str>, retry: Arc<RetryPolicy>, observer: Arc<Observer>) -> Self {
        Core {
            name,
            listeners: Subscribers::default(),
            ledger: Ledger {
                held: FxHashMap::default(),
                next_token: 0,
            },
            arms: FxHashMap::default(),
            retry,
            restarts: Arc::default(),
            observer,
            #[cfg(feature = "test-util")]
            fault: None,
        }
    }

    /// Panics when the tests asked handler `what` to (once), after its work:
    /// what the tests check is that a restart keeps and resumes everything.
    #[cfg(feature = "test-util")]
    pub(crate) fn trip(&mut self, what: &str) {
        if self.fault.as_deref() == Some(what) {
            self.fault = None;
            panic!("injected fault in {what}");
        }
    }

    pub(crate) fn restarted(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub(crate) fn attach(
        &mut self,
        id: ListenerId,
        addr: Addr<ListenerActor<ChannelActor<B>>>,
        window: usize,
    ) {
        self.listeners.attach(id, addr, window);
    }

    /// Listener `id` takes nothing more; its leases stay to be settled.
    pub(crate) fn detach(&mut self, id: ListenerId) {
        self.listeners.detach(id);
    }

    /// Detaches every listener, returning their addresses (to stop them).
    pub(crate) fn detach_all(&mut self) -> Vec<Addr<ListenerActor<ChannelActor<B>>>> {
        self.listeners.drain()
    }

    pub(crate) fn listener_count(&self) -> usize {
        self.listeners.len()
    }

    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))] // brokers only
    pub(crate) fn credit(&self, id: ListenerId) -> usize {
        self.listeners.credit(id)
    }

    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn is_active(&self, id: ListenerId) -> bool {
        self.listeners.contains(id)
    }

    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn active(&self) -> Vec<ListenerId> {
        self.listeners.ids()
    }

    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the redis reaper
    pub(crate) fn held(&self) -> impl Iterator<Item = (ListenerId, &B::Handle)> {
        self.ledger.held.values().map(|h| (h.listener, &h.handle))
    }

    pub(crate) fn held_len(&self) -> usize {
        self.ledger.held.len()
    }

    /// Sets the in-flight and listener gauges to what the channel holds now.
    #[inline(always)]
    pub(crate) fn report_occupancy(&self) {
        (self.observer.meters).occupancy(self.held_len(), self.listener_count());
    }

    /// Hands `items` to `listener`; returns them all when it takes nothing more.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn deliver(
        &mut self,
        listener: ListenerId,
        items: Vec<(B::Handle, Envelope)>,
    ) -> Vec<(B::Handle, Envelope)> {
        if items.is_empty() || !self.listeners.contains(listener) {
            return items;
        }
        let (ledger, name) = (&mut self.ledger, &self.name);
        let batch: Vec<(AckToken, Delivery)> = items
            .into_iter()
            .map(|(handle, envelope)| ledger.hold(name, listener, handle, envelope))
            .collect();
        if let Some(addr) = self.listeners.lease(listener, batch.len()) {
            addr.do_send(Deliver(batch));
        }
        Vec::new()
    }

    /// Hands what `next` yields to listeners with room, one each in turn.
    pub(crate) fn assign(&mut self, mut next: impl FnMut() -> Option<(B::Handle, Envelope)>) {
        let (ledger, name) = (&mut self.ledger, &self.name);
        self.listeners.assign(
            |listener| {
                let (handle, envelope) = next()?;
                Some(ledger.hold(name, listener, handle, envelope))
            },
            |addr, batch| addr.do_send(Deliver(batch)),
        );
    }

    /// Turns a listener's verdicts into settlements, in token order:
    /// releases as they are, failures into a retry copy with `attempt + 1`
    /// or a dead letter with its why-headers. Tokens already settled are
    /// skipped, so a duplicate verdict never counts twice.
    pub(crate) fn settle(
        &mut self,
        mut outcomes: Vec<(AckToken, Outcome)>,
        batch: &mut Vec<Settlement<B::Handle>>,
    ) {
        outcomes.sort_unstable_by_key(|(token, _)| *token);
        for (token, outcome) in outcomes {
            let Some(Held {
                listener,
                envelope,
                handle,
            }) = self.ledger.held.remove(&token)
            else {
                continue;
            };
            self.listeners.returned(listener, 1);
            batch.push(match outcome {
                Outcome::Ack => {
                    self.observer.meters.acked();
                    Settlement::Ack(handle)
                }
                Outcome::Release => Settlement::Release(handle, envelope),
                Outcome::Fail(error) => self.failed(handle, envelope, &error),
                Outcome::Reject(error) => {
                    // No retry can fix it: dead-letter on this attempt.
                    tracing::warn!(queue = %self.name, id = %envelope.id, attempts = envelope.attempt, %error, "message rejected; dead-lettered");
                    let headers = dead_letter_headers(envelope.attempt, &error, SystemTime::now());
                    self.observer.meters.dead_lettered();
                    dead(handle, envelope, headers)
                }
            });
        }
    }

    /// The verdict on a delivery that failed with `error`: a copy with
    /// `attempt + 1` after the backoff, or, after the last attempt, a dead
    /// letter with the why-headers.
    fn failed(
        &self,
        handle: B::Handle,
        mut envelope: Envelope,
        error: &str,
    ) -> Settlement<B::Handle> {
        match self
            .retry
            .on_failure(envelope.attempt, error, SystemTime::now())
        {
            Verdict::Retry { attempt, after } => {
                tracing::debug!(queue = %self.name, id = %envelope.id, attempt = envelope.attempt, error, ?after, "delivery failed; retrying");
                envelope.attempt = attempt;
                self.observer.meters.retried();
                Settlement::Retry(handle, envelope, after)
            }
            Verdict::DeadLetter { headers } => {
                tracing::warn!(queue = %self.name, id = %envelope.id, attempts = envelope.attempt, error, "message dead-lettered");
                self.observer.meters.dead_lettered();
                dead(handle, envelope, headers)
            }
        }
    }

    /// A listener is about to start the suspect `token`: keeps its `reply`
    /// until the backend reports through [`armed`](Self::armed). `false`
    /// (answered `None`) when the channel no longer holds `token`.
    pub(crate) fn arming(&mut self, token: AckToken, reply: oneshot::Sender<Option<u32>>) -> bool {
        if !self.ledger.held.contains_key(&token) {
            let _ = reply.send(None);
            return false;
        }
        self.arms.insert(token, reply);
        true
    }

    /// Who holds the delivery `token`, its handle and its message.
    #[cfg_attr(not(any(feature = "amqp", feature = "redis")), allow(dead_code))]
    pub(crate) fn holding(&self, token: AckToken) -> Option<(ListenerId, &B::Handle, &Envelope)> {
        self.ledger
            .held
            .get(&token)
            .map(|h| (h.listener, &h.handle, &h.envelope))
    }

    /// What a suspect becomes if its previous delivery ran as `previous`
    /// (and surely `started`, or maybe not).
    pub(crate) fn judge(&self, previous: u32, started: bool) -> Go {
        judge(
            previous,
            started,
            self.retry.max_attempts(),
            SystemTime::now(),
        )
    }

    /// The backend counted the suspect `token` (or could not): answers the
    /// listener waiting to run it. `mark` updates its handle once counted
    /// (the backend's record of the start, which its verdict then clears).
    /// Returns a settlement for the backend to carry out: the dead letter of
    /// a message out of attempts, or the hand-back of one that could not be
    /// counted.
    pub(crate) fn armed(
        &mut self,
        token: AckToken,
        armed: Armed,
        mark: impl FnOnce(&mut B::Handle),
    ) -> Option<Settlement<B::Handle>> {
        let reply = self.arms.remove(&token);
        let answer = |attempt| {
            if let Some(reply) = reply {
                let _ = reply.send(attempt);
            }
        };
        let go = match armed {
            Armed::Counted { previous, started } => self.judge(previous, started),
            Armed::Gone => {
                // Another consumer has it, or it was settled: nothing to do here.
                self.forget(token);
                answer(None);
                return None;
            }
            Armed::Failed(error) => {
                let held = self.forget(token);
                answer(None);
                let held = held?;
                tracing::warn!(queue = %self.name, id = %held.envelope.id, %error, "cannot count a redelivery; handing it back");
                return Some(Settlement::Release(held.handle, held.envelope));
            }
        };
        match go {
            Go::Run { attempt, .. } => {
                let Some(held) = self.ledger.held.get_mut(&token) else {
                    answer(None);
                    return None;
                };
                mark(&mut held.handle);
                held.envelope.attempt = attempt;
                answer(Some(attempt));
                None
            }
            Go::Dead(headers) => {
                let held = self.forget(token);
                answer(None);
                let Held {
                    mut handle,
                    envelope,
                    ..
                } = held?;
                mark(&mut handle);
                tracing::warn!(queue = %self.name, id = %envelope.id, attempts = envelope.attempt, "message dead-lettered: delivery limit reached without a verdict");
                self.observer.meters.dead_lettered();
                Some(dead(handle, envelope, headers))
            }
        }
    }

    /// Drops `token` from the ledger, returning its window slot.
    fn forget(&mut self, token: AckToken) -> Option<Held<B::Handle>> {
        let held = self.ledger.held.remove(&token)?;
        self.listeners.returned(held.listener, 1);
        Some(held)
    }

    /// Releases whatever `listener` still holds: it stopped before its
    /// verdicts on them (they never reached its handler).
    pub(crate) fn orphans(&mut self, listener: ListenerId, batch: &mut Vec<Settlement<B::Handle>>) {
        let mut tokens: Vec<AckToken> = self
            .ledger
            .held
            .iter()
            .filter(|(_, h)| h.listener == listener)
            .map(|(token, _)| *token)
            .collect();
        tokens.sort_unstable();
        batch.extend(
            tokens
                .into_iter()
                .filter_map(|token| self.ledger.held.remove(&token))
                .map(|h| Settlement::Release(h.handle, h.envelope)),
        );
    }
}

/// The dead-letter settlement of `envelope`, with its why-`headers` added
/// to the user's.
fn dead<H>(
    handle: H,
    mut envelope: Envelope,
    headers: std::collections::BTreeMap<String, String>,
) -> Settlement<H> {
    Arc::make_mut(envelope.headers.get_or_insert_with(Default::default)).extend(headers);
    Settlement::Dead(handle, envelope)
}
