//! Leases: how the amqp driver counts a redelivery on a classic queue, which has no delivery counter and cannot change a stored message.
//!
//! Just before a suspect (a `redelivered` message, or a copy back from a
//! lease) reaches its handler, the backend publishes (confirmed) a copy with
//! the attempt it counts as and the private marker [`wire::LEASED`] into its
//! listener's *lease queue*, `<queue>.lease.<id>`, and acknowledges the
//! original. The lease queue holds each copy for `amqp.redelivery_lease`,
//! then dead-letters it into `<queue>` (default exchange). The handler's
//! verdict cancels the lease — the copy is the head of the listener's own
//! lease queue, as a listener runs one suspect at a time: `basic.get` and
//! `basic.ack` — after its retry or dead-letter copy is confirmed. A process
//! that dies in between leaves the copy, which comes back into `<queue>`
//! with the attempt raised. Messages merely prefetched are never copied,
//! so they are never counted.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions};
use lapin::types::FieldTable;

use crate::driver::amqp::link::backend;
use crate::driver::amqp::shared::AmqpShared;
use crate::driver::amqp::wire::{self, MAX_WAIT_MS};
use crate::error::Result;
use crate::message_id::MessageId;
use crate::validate::LEASE_INFIX;

/// How long an unused lease queue outlives its lease before RabbitMQ
/// deletes it, beyond twice the lease: far longer than any copy stays in it
/// (a copy leaves after one lease), so none is ever dropped with it.
const LEASE_QUEUE_GRACE: Duration = Duration::from_secs(60);

/// A delivery whose start was recorded in a lease queue.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    /// The lease queue's wire name.
    pub(crate) queue: Arc<str>,
    /// The id of the copy in it.
    pub(crate) id: MessageId,
}

/// The lease queue of one listener of `queue` in this process: unique per
/// process and listener, a wire name.
pub(crate) fn queue_name(queue: &str, listener: u64) -> Arc<str> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let id = format!("{:x}-{nanos:x}-{listener}", std::process::id());
    wire::wire_name(&format!("{queue}{LEASE_INFIX}{id}")).into()
}

/// A lease in whole milliseconds, at least 1, at most what `x-expires`
/// (twice the lease plus the grace, in 32 bits) can follow.
fn lease_ms(lease: Duration) -> u64 {
    let ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX);
    ms.clamp(1, (MAX_WAIT_MS - LEASE_QUEUE_GRACE.as_millis() as u64) / 2)
}

/// The arguments of a lease queue in front of `target` (a wire name).
pub(crate) fn arguments(target: &str, lease: Duration) -> FieldTable {
    let ms = lease_ms(lease);
    wire::ttl_arguments(target, ms, 2 * ms + LEASE_QUEUE_GRACE.as_millis() as u64)
}

/// Cancels `lease`: takes its copy (the head of the lease queue) and
/// acknowledges it. A head that is another copy (an older lease of this
/// listener that expired meanwhile) is handed back; an empty queue means
/// the lease ran out first and the copy is back in its queue: it will be
/// delivered again (a handler slower than the lease gets a duplicate).
pub(crate) async fn cancel(shared: Arc<AmqpShared>, lease: Lease) -> Result<()> {
    let link = shared.link().await?;
    let ch = link.consume.create_channel().await.map_err(backend)?;
    let got = ch
        .basic_get(
            wire::short(&lease.queue)?,
            BasicGetOptions { no_ack: false },
        )
        .await
        .map_err(backend);
    let outcome = match got {
        Ok(Some(message)) => {
            let delivery = message.delivery;
            let theirs = wire::envelope(&delivery.properties, Vec::new()).id;
            if theirs == lease.id {
                ch.basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                    .await
                    .map_err(backend)
            } else {
                tracing::warn!(lease = %lease.queue, id = %lease.id, "lease ran out before its verdict; the message will be delivered again");
                let back = BasicNackOptions {
                    multiple: false,
                    requeue: true,
                };
                ch.basic_nack(delivery.delivery_tag, back)
                    .await
                    .map_err(backend)
            }
        }
        Ok(None) => {
            tracing::warn!(lease = %lease.queue, id = %lease.id, "lease ran out before its verdict; the message will be delivered again");
            Ok(())
        }
        Err(error) => Err(error),
    };
    let _ = ch.close(200, "lease".into()).await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_queues_are_no_valid_user_queue_and_hold_copies_within_expiry() {
        let name = queue_name("jobs", 7);
        assert!(name.starts_with("jobs.lease."), "{name}");
        assert!(crate::validate::queue_name(&name).is_err(), "{name}");
        assert_ne!(name, queue_name("jobs", 8));
        for lease in [Duration::ZERO, Duration::from_secs(60), Duration::MAX] {
            let ms = lease_ms(lease);
            let expires = 2 * ms + LEASE_QUEUE_GRACE.as_millis() as u64;
            assert!(
                ms >= 1 && expires > ms && expires <= u64::from(u32::MAX),
                "{lease:?}"
            );
        }
    }
}
