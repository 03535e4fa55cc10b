//! The amqp backend's side of counting suspects: a lease copy before the handler starts, its cancel after the verdict (see `lease`).

use lapin::options::BasicAckOptions;

use crate::channel::backend::{Cx, Settlement};
use crate::channel::messages::Relay;
use crate::channel::suspect::{Armed, Go};
use crate::delivery::AckToken;
use crate::driver::amqp::backend::{AmqpBackend, AmqpEvent};
use crate::driver::amqp::lease::{self, Lease};
use crate::driver::amqp::link::Target;
use crate::driver::amqp::tags::AmqpHandle;
use crate::error::Error;

impl AmqpBackend {
    /// Counts the suspect `token` before its handler starts: a confirmed
    /// lease copy with the attempt it counts as, then the original's ack
    /// (in [`armed`](Self::armed)). One out of attempts is dead-lettered
    /// at once, without a copy.
    pub(super) fn arm_suspect(&mut self, token: AckToken, cx: &mut Cx<'_, Self>) {
        if self.settling_leases > 0 {
            self.deferred_arms.push(token);
            return;
        }
        let Some((listener, handle, envelope)) = cx.holding(token) else {
            return;
        };
        let (previous, started) = (envelope.attempt, handle.from_lease);
        let record = match cx.judge(previous, started) {
            Go::Run { record, .. } => record,
            Go::Dead(_) => {
                let counted = Armed::Counted { previous, started };
                let dead = cx.armed(token, counted, |_| {});
                self.settle_now(dead, cx);
                return;
            }
        };
        let Some(slot) = self.consumers.get(&listener) else {
            let gone = Error::backend("the listener left before its delivery was counted");
            let back = cx.armed(token, Armed::Failed(gone), |_| {});
            self.settle_now(back, cx);
            return;
        };
        let mut copy = envelope.clone();
        copy.attempt = record;
        let target = Target::Lease {
            target: cx.name().to_string(),
            lease: slot.lease.clone(),
            ttl: self.shared.lease,
        };
        self.moving += 1;
        let publish = self.shared.publish(target, copy);
        let (me, original) = (cx.address(), handle.clone());
        // Not in the actor's context: a restart must not lose the outcome.
        actix::spawn(async move {
            let error = publish.await.err();
            if error.is_none() && original.live() {
                // Sent before the handler starts, so that a handler that
                // kills the process leaves the lease copy only (lapin
                // answers once the frame is written). A channel that died
                // requeued the original: it comes again as well.
                let ack = original
                    .channel
                    .basic_ack(original.tag, BasicAckOptions::default());
                if let Err(error) = ack.await {
                    tracing::debug!(%error, "cannot acknowledge a leased delivery; it comes again");
                }
            }
            me.do_send(Relay(AmqpEvent::Armed { token, error }));
        });
    }

    /// The lease copy of `token` was confirmed (or not, `error`): the
    /// original is acknowledged and the handler runs, or it is handed back.
    pub(super) fn armed(&mut self, token: AckToken, error: Option<Error>, cx: &mut Cx<'_, Self>) {
        self.moved_one();
        let Some((listener, handle, envelope)) = cx.holding(token) else {
            return; // Settled meanwhile.
        };
        let (previous, started) = (envelope.attempt, handle.from_lease);
        let settled = match error {
            None => {
                // The copy stands for it now; the original was acknowledged.
                self.tags.forget(handle);
                let lease = Lease {
                    queue: self.consumers.get(&listener).map_or_else(
                        || lease::queue_name(cx.name(), listener),
                        |slot| slot.lease.clone(),
                    ),
                    id: envelope.id.clone(),
                };
                let counted = Armed::Counted { previous, started };
                cx.armed(token, counted, move |handle| handle.lease = Some(lease))
            }
            Some(error) => cx.armed(token, Armed::Failed(error), |_| {}),
        };
        self.settle_now(settled, cx);
    }

    /// What a settlement of a counted suspect does: an ack cancels its
    /// lease; a release leaves the lease to bring it back; a retry or dead
    /// letter goes on (its copy is moved, then the lease cancelled).
    /// Settlements of other deliveries pass through.
    pub(super) fn settle_leased(
        &mut self,
        settlement: Settlement<AmqpHandle>,
        cx: &mut Cx<'_, Self>,
    ) -> Option<Settlement<AmqpHandle>> {
        match settlement {
            Settlement::Ack(handle) if handle.lease.is_some() => {
                self.settling_leases += 1;
                self.cancel_lease(handle.lease?, cx);
                None
            }
            Settlement::Release(handle, _) if handle.lease.is_some() => {
                tracing::debug!(queue = %cx.name(), "a counted delivery was handed back; its lease brings it back");
                None
            }
            Settlement::Retry(ref handle, ..) | Settlement::Dead(ref handle, _)
                if handle.lease.is_some() =>
            {
                // Its copy is moved first, then its lease cancelled.
                self.settling_leases += 1;
                Some(settlement)
            }
            other => Some(other),
        }
    }

    /// A counted suspect's lease was cancelled (or is left to run out):
    /// the suspects waiting for that are counted now.
    pub(super) fn lease_settled(&mut self, cx: &mut Cx<'_, Self>) {
        self.settling_leases = self.settling_leases.saturating_sub(1);
        if self.settling_leases == 0 {
            for token in std::mem::take(&mut self.deferred_arms) {
                self.arm_suspect(token, cx);
            }
        }
    }

    /// Cancels `lease` outside the actor (counted until done, for `drain`).
    pub(super) fn cancel_lease(&mut self, lease: Lease, cx: &mut Cx<'_, Self>) {
        self.moving += 1;
        let (shared, me) = (self.shared.clone(), cx.address());
        actix::spawn(async move {
            if let Err(error) = lease::cancel(shared, lease).await {
                tracing::warn!(%error, "cannot cancel a lease; its message will be delivered again");
            }
            me.do_send(Relay(AmqpEvent::Cancelled));
        });
    }

    /// Carries out one settlement the channel decided on its own.
    fn settle_now(&mut self, settlement: Option<Settlement<AmqpHandle>>, cx: &mut Cx<'_, Self>) {
        if let Some(settlement) = settlement {
            crate::channel::backend::Backend::settle(self, vec![settlement].drain(..), cx);
        }
    }
}
