//! The redis backend's side of counting suspects: the `ARM` script just before a suspect's handler starts, once the verdicts before it are settled.
//!
//! A listener sends its verdicts before it asks for a suspect to be
//! counted; the count waits for the settle scripts already sent, so that a
//! suspect that kills the process never leaves the entry handled before it
//! pending (it would be counted for that crash).

use super::RedisBackend;
use crate::channel::backend::Cx;
use crate::channel::messages::Relay;
use crate::channel::suspect::Armed;
use crate::delivery::AckToken;
use crate::driver::redis::backend::RedisEvent;
use crate::driver::redis::commands::{self, Records};

impl RedisBackend {
    /// Counts suspect `token` once every settle script sent so far is done.
    pub(super) fn arm_after_settles(&mut self, token: AckToken, cx: &mut Cx<'_, Self>) {
        if self.settles_in_flight.is_empty() {
            self.arm_now(token, cx);
        } else {
            self.deferred_arms.push((self.settle_seq, token));
        }
    }

    /// Settle script `seq` is done: counts the suspects that waited for it.
    pub(super) fn settled(&mut self, seq: u64, cx: &mut Cx<'_, Self>) {
        self.settles_in_flight.remove(&seq);
        let oldest = self.settles_in_flight.first().copied().unwrap_or(u64::MAX);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deferred_arms)
            .into_iter()
            .partition(|&(upto, _)| upto < oldest);
        self.deferred_arms = waiting;
        for (_, token) in ready {
            self.arm_now(token, cx);
        }
    }

    /// Counts the start of suspect `token` on Redis (`ARM`), outside the
    /// channel's context; the outcome comes back as [`RedisEvent::Armed`].
    fn arm_now(&mut self, token: AckToken, cx: &mut Cx<'_, Self>) {
        let Some((listener, entry, envelope)) = cx.holding(token) else {
            return;
        };
        let (entry, stored) = (entry.clone(), envelope.attempt);
        let Some(reader) = self.readers.get(&listener) else {
            let left = Ok(None); // Its listener left: the entry stays pending, for a take-over.
            self.armed(token, stored, left, cx);
            return;
        };
        let (link, keys, limit) = (self.link.clone(), self.keys.clone(), self.settle_limit());
        let (consumer, channel) = (reader.consumer.clone(), cx.address());
        // Not in the channel's context: a restart must not lose the count.
        actix::spawn(async move {
            let before = commands::arm(&link, &keys, &consumer, &entry, limit).await;
            channel.do_send(Relay(RedisEvent::Armed {
                token,
                stored,
                before,
            }));
        });
    }

    /// The start of suspect `token` was counted (`before`: its delivery
    /// count until then): the listener runs it as the attempt that makes,
    /// or it is dead-lettered. An entry no longer this consumer's, or one
    /// that could not be counted, is left pending: its consumer (or a
    /// take-over after `redis.claim_idle`) brings it back, count intact.
    pub(super) fn armed(
        &mut self,
        token: AckToken,
        stored: u32,
        before: crate::error::Result<Option<u32>>,
        cx: &mut Cx<'_, Self>,
    ) {
        let armed = match before {
            // The first read is counted too, and may not have started.
            Ok(Some(before)) => Armed::Counted {
                previous: stored.saturating_add(before - 1),
                started: before >= 2,
            },
            Ok(None) => Armed::Gone,
            Err(error) => {
                tracing::warn!(queue = %cx.name(), %error, "cannot count a redelivery; it stays pending");
                Armed::Gone
            }
        };
        if let Some(settlement) = cx.armed(token, armed, |_| {}) {
            let mut records = Records::default();
            self.record(settlement, &mut records, cx);
            self.settle_records(records, cx);
        }
    }
}
