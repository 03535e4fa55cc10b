//! The one-shot `receive` on Redis: one entry read as a consumer of its own, acknowledged as the caller takes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::delivery::Delivery;
use crate::driver::redis::commands::{create_groups, push_pipeline, read, settle, Records};
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::{client_id, no_group, transient, RedisLink, BLOCK};
use crate::driver::redis::pusher;
use crate::driver::redis::wire::{decode, Entry, EntryRef};
use crate::error::{Error, Result};

/// What a one-shot receive needs.
pub(crate) struct ReceiveJob {
    pub(crate) link: Arc<RedisLink>,
    pub(crate) keys: Keys,
    pub(crate) queue: Arc<str>,
    pub(crate) consumer: Arc<str>,
    pub(crate) timeout: Duration,
    pub(crate) limit: Duration,
}

/// Takes one message as a one-shot consumer: the entry is acknowledged only
/// once the caller has it, and handed back if the caller gave up.
pub(crate) async fn receive(job: ReceiveJob, mut reply: oneshot::Sender<Result<Delivery>>) {
    let deadline = Instant::from_std(crate::timer::deadline(
        std::time::Instant::now(),
        job.timeout,
    ));
    let mut conn = None;
    let mut backoff = Duration::from_millis(25);
    loop {
        if job.link.is_closing() {
            let _ = reply.send(Err(Error::Closed));
            return;
        }
        if reply.is_closed() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            let _ = reply.send(Err(Error::Timeout));
            return;
        }
        let taken = match conn.take() {
            Some(taken) => Ok(taken),
            None => match job.link.pooled().await {
                Ok(mut fresh) => client_id(&mut fresh, &job.keys.stream)
                    .await
                    .map(|id| (fresh, id)),
                Err(e) => Err(e),
            },
        };
        let (mut fresh, id) = match taken {
            Ok(taken) => taken,
            Err(e) if transient(&e) => {
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
            Err(e) => {
                let _ = reply.send(Err(Error::backend(e)));
                return;
            }
        };
        let block = (deadline - now).min(BLOCK);
        let outcome = {
            let read = read(&mut fresh, &job.keys, &job.consumer, 1, None, block);
            tokio::pin!(read);
            tokio::select! {
                got = &mut read => got,
                () = reply.closed() => {
                    job.link.unblock(id, &job.keys.stream).await;
                    read.await
                }
                () = job.link.closing() => {
                    job.link.unblock(id, &job.keys.stream).await;
                    read.await
                }
            }
        };
        match outcome {
            Ok(entries) => {
                conn = Some((fresh, id));
                // A subscriber group reads two streams, one entry each: what
                // comes after the one handed over goes back to the group.
                let mut entries = entries.into_iter();
                while let Some(entry) = entries.next() {
                    match hand_over(&job, entry, reply).await {
                        Some(back) => reply = back,
                        None => {
                            hand_back_rest(&job, entries).await;
                            return;
                        }
                    }
                }
            }
            Err(e) if no_group(&e) => {
                if let Err(e) = create_groups(&mut fresh, &job.keys).await {
                    tracing::debug!(error = %e, "cannot create the consumer group");
                }
                conn = Some((fresh, id));
            }
            Err(e) if transient(&e) => {
                tokio::time::sleep(backoff.min(deadline - Instant::now().min(deadline))).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                let _ = reply.send(Err(Error::backend(e)));
                return;
            }
        }
    }
}

/// Hands one read entry to the receive's caller. Gives the reply back when
/// the entry was no message (dead-lettered) so the receive goes on.
async fn hand_over(
    job: &ReceiveJob,
    entry: Entry,
    reply: oneshot::Sender<Result<Delivery>>,
) -> Option<oneshot::Sender<Result<Delivery>>> {
    let entry_id = EntryRef {
        id: entry.id.clone(),
        shared: entry.shared,
    };
    let mut records = Records::default();
    let mut back = None;
    match decode(&entry_id.id, entry) {
        Err(bad) => {
            records.malformed(&job.queue, entry_id.clone(), bad);
            back = Some(reply);
        }
        Ok(envelope) if job.link.is_closing() || reply.is_closed() => {
            records.hand_back(entry_id.clone(), &envelope);
            if job.link.is_closing() {
                let _ = reply.send(Err(Error::Closed));
            }
        }
        Ok(envelope) => {
            // Acknowledged before it is handed over, so that the
            // caller who has it sees it gone from every count.
            records.ack(entry_id.clone());
            if let Err(error) = settle(&job.link, &job.keys, records, job.limit).await {
                let _ = reply.send(Err(error));
                return None;
            }
            let delivery = Delivery::new(envelope, job.queue.clone());
            if let Err(Ok(unsent)) = reply.send(Ok(delivery)) {
                // The caller gave up in between: store it again, unchanged.
                let envelope = unsent.into_envelope();
                let (pipe, _) = push_pipeline(&job.keys, std::iter::once((&envelope, None)));
                if let Err(error) = pusher::send(&job.link, &job.keys, pipe, job.limit).await {
                    tracing::error!(%error, id = %envelope.id, "cannot put back a message whose receive was abandoned");
                }
            }
            return None;
        }
    }
    if let Err(error) = settle(&job.link, &job.keys, records, job.limit).await {
        tracing::warn!(%error, entry = %entry_id.id, "cannot settle a received entry; it will be redelivered");
    }
    back
}

/// Hands back entries read beyond the one a receive took.
async fn hand_back_rest(job: &ReceiveJob, rest: impl Iterator<Item = Entry>) {
    let mut records = Records::default();
    for entry in rest {
        let entry_ref = EntryRef {
            id: entry.id.clone(),
            shared: entry.shared,
        };
        match decode(&entry_ref.id, entry) {
            Ok(envelope) => records.hand_back(entry_ref, &envelope),
            Err(bad) => records.malformed(&job.queue, entry_ref, bad),
        }
    }
    if records.is_empty() {
        return;
    }
    if let Err(error) = settle(&job.link, &job.keys, records, job.limit).await {
        tracing::warn!(%error, "cannot hand back entries a receive read; they will be redelivered");
    }
}
