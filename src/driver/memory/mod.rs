//! The memory driver: queues kept in the process, inside their channel actors.
//!
//! Its driver actor is the [`Registry`] itself: there is no connection to
//! own, only channels to start and dead letters to route.

pub(crate) mod backend;
pub(crate) mod inbox;
pub(crate) mod room;
pub(crate) mod store;
pub(crate) mod topics;
pub(crate) mod waiters;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;
use tokio::sync::oneshot;

use crate::channel::messages::Relay;
use crate::channel::redrive::in_steps;
use crate::channel::retry::RetryPolicy;
use crate::config::{Config, DriverKind};
use crate::delivery::{Delivery, Envelope};
use crate::driver::channels::{ask, Channels};
use crate::driver::registry::{Channel, Open, Registry};
use crate::driver::Unstored;
use crate::error::{Error, Result};
use crate::listener::{Listener, ListenerSpec};
use crate::runtime::Arbiters;
use crate::stats::QueueStats;
use crate::validate;

use backend::{MemoryBackend, MemoryEvent};
use inbox::Inbox;
use room::{Admission, Room};
use topics::Topics;

/// Most messages one redrive step moves: in-process, so larger than a
/// broker's step, and still short work for the dead queue's channel.
const REDRIVE_STEP: usize = 10_000;

/// Settings every queue of a memory bus shares.
#[derive(Debug)]
pub(crate) struct MemorySettings {
    /// Messages one queue holds before pushes wait.
    pub(crate) capacity: usize,
    /// How long a push may wait for room.
    pub(crate) push_timeout: Duration,
}

/// What the bus handles share with one queue's backend: its capacity
/// gauge, and the inbox that pushes with room go through.
pub(crate) struct MemoryFront {
    pub(crate) room: Room,
    pub(crate) inbox: Inbox,
}

/// The bus's handle on the memory driver.
pub(crate) struct Memory {
    channels: Channels<MemoryBackend>,
    /// The subscriber groups of each topic, with their channels.
    topics: Topics<Arc<Channel<MemoryBackend>>>,
}

/// Moves a message into a dead-letter queue, starting that queue if needed.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct DeadLetter {
    pub(crate) queue: String,
    pub(crate) envelope: Envelope,
}

impl Open for MemoryBackend {
    type Front = Arc<MemoryFront>;
    type Driver = Arc<MemorySettings>;
    const KIND: DriverKind = DriverKind::Memory;

    fn open(
        settings: &Arc<MemorySettings>,
        _name: &Arc<str>,
        _arbiters: &Arbiters,
        registry: &Addr<Registry<Self>>,
    ) -> (Self, Arc<MemoryFront>) {
        let front = Arc::new(MemoryFront {
            room: Room::new(settings.capacity),
            inbox: Inbox::default(),
        });
        let backend = MemoryBackend::new(settings.clone(), registry.clone(), front.clone());
        (backend, front)
    }
}

impl Handler<DeadLetter> for Registry<MemoryBackend> {
    type Result = ();

    fn handle(&mut self, msg: DeadLetter, ctx: &mut Context<Self>) {
        match self.get_or_start(msg.queue.into(), ctx) {
            Some(dead) => dead.addr.do_send(Relay(MemoryEvent::Enqueue {
                envelope: msg.envelope,
                delay: None,
                admission: Admission::Forced,
            })),
            // Only after shutdown, when everything the process holds ends.
            None => tracing::debug!(id = %msg.envelope.id, "dead letter after shutdown dropped"),
        }
    }
}

impl Memory {
    pub(crate) fn start(config: &Config, arbiters: &Arbiters) -> Self {
        let settings = Arc::new(MemorySettings {
            capacity: config.queue.memory.capacity,
            push_timeout: config.queue.push_timeout,
        });
        let retry = Arc::new(RetryPolicy::new(config.queue.retry.clone()));
        Memory {
            channels: Channels::start(arbiters, retry, settings, config.queue.idle_timeout),
            topics: Topics::default(),
        }
    }

    pub(crate) fn channels(&self) -> &Channels<MemoryBackend> {
        &self.channels
    }

    /// Starts a listener on `queue`.
    pub(crate) async fn attach(&self, queue: &str, spec: ListenerSpec) -> Result<Listener> {
        self.channels.attach(queue, spec).await
    }

    /// Takes one message of `queue`, acknowledged on hand-over.
    pub(crate) async fn receive(&self, queue: &str, timeout: Duration) -> Result<Delivery> {
        self.channels.receive(queue, timeout).await
    }

    /// Stores `envelope` in the channel of a known `queue` with room: one
    /// message into its mailbox and no reply to wait for. Otherwise gives
    /// it back for [`push`](Self::push).
    pub(crate) fn try_push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> std::result::Result<(), Envelope> {
        match self.channels.cached(queue) {
            Some(channel) => store_if_room(&channel, envelope, delay),
            None => Err(envelope),
        }
    }

    /// Stores `envelope` in `queue`'s channel (started on first use): with
    /// room at once, without parked there until room comes back or
    /// `queue.push_timeout` passes.
    pub(crate) async fn push(
        &self,
        queue: &str,
        envelope: Envelope,
        delay: Option<Duration>,
    ) -> Result<()> {
        let channel = self.channels.open(queue).await?;
        let Err(envelope) = store_if_room(&channel, envelope, delay) else {
            return Ok(());
        };
        let (reply, stored) = oneshot::channel();
        channel.addr.do_send(Relay(MemoryEvent::Enqueue {
            envelope,
            delay,
            admission: Admission::Wait(reply),
        }));
        stored.await.map_err(|_| Error::Closed)?
    }

    /// Stores `batch` in `queue`'s channel: with room for all of it, in one
    /// message to the channel actor; otherwise one by one, each waiting for
    /// room as a push does, until one times out.
    pub(crate) async fn push_batch(
        &self,
        queue: &str,
        batch: Vec<(Envelope, Option<Duration>)>,
    ) -> std::result::Result<(), Unstored> {
        let channel = match self.channels.cached(queue) {
            Some(channel) => channel,
            None => self.channels.open(queue).await.map_err(Unstored::none)?,
        };
        if channel.front.room.try_take_many(batch.len()) {
            if channel.front.inbox.put_all(batch) {
                channel.addr.do_send(Relay(MemoryEvent::Arrived));
            }
            return Ok(());
        }
        let mut stored = Vec::with_capacity(batch.len());
        for (index, (envelope, delay)) in batch.into_iter().enumerate() {
            if let Err(error) = self.push(queue, envelope, delay).await {
                return Err(Unstored { stored, error });
            }
            stored.push(index);
        }
        Ok(())
    }

    /// Stores a copy of `envelope` (same id) in the queue of every group of
    /// `topic`: first in every group with room, then in the others, each
    /// waiting as a push does; a timeout there leaves the copies stored.
    pub(crate) async fn publish(&self, topic: &str, mut envelope: Envelope) -> Result<()> {
        let groups = self.topics.groups(topic);
        if groups.len() > 1 {
            // Every group's copy, and each copy's ledger entry and delivery,
            // counts references on the payload: on a count of this message's
            // own, not on the caller's buffer, which may be shared by many
            // publishes (one body sent again and again) and whose count the
            // threads of every group would then contend for.
            envelope.payload = Bytes::from_owner(envelope.payload);
        }
        // The last group takes the envelope itself.
        let mut envelope = Some(envelope);
        let last = groups.len().saturating_sub(1);
        // The fast path for every group, through the channel the topic
        // keeps for it; what it leaves (a retired channel, or no room)
        // waits below.
        let mut unstored = Vec::new();
        for (i, group) in groups.iter().enumerate() {
            let copy = if i == last {
                envelope.take()
            } else {
                envelope.clone()
            };
            let Some(copy) = copy else { break };
            if let Err(copy) = store_if_room(&group.channel, copy, None) {
                unstored.push((i, copy));
            }
        }
        for (i, copy) in unstored {
            let group = &groups[i];
            // Boxed: the slow path would make every publish's future as
            // large as its own.
            Box::pin(self.push(&group.queue, copy, None)).await?;
            if group.channel.is_retired() {
                // Idle, it retired: the push started its successor, which
                // the topic keeps from now on.
                if let Some(channel) = self.channels.cached(&group.queue) {
                    self.topics.join(topic, &group.queue, channel);
                }
            }
        }
        Ok(())
    }

    /// Adds a group to `topic` and starts its queue's channel, which
    /// stores what is published from now on.
    pub(crate) async fn join(&self, topic: &str, group_queue: &str) -> Result<()> {
        let channel = self.channels.open(group_queue).await?;
        self.topics.join(topic, group_queue, channel);
        Ok(())
    }

    /// Counts `queue`, with `dead` from `<queue>.dead`; a queue never used is empty.
    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats> {
        // `<queue>.dead` first: a message only ever moves from the queue to
        // its dead letters, so a dead letter counted here is no longer
        // counted in the queue read after it (the other order could count
        // one message in both, read from two actors at two moments).
        let dead_queue = validate::dead_letter_name(queue);
        let dead = self.channels.stats(&dead_queue).await?;
        let mut stats = self.channels.stats(queue).await?.unwrap_or_default();
        if let Some(dead) = dead {
            stats.dead = dead.ready + dead.delayed + dead.in_flight;
        }
        Ok(stats)
    }

    /// Drops the ready messages of `queue`; a queue never used has none.
    pub(crate) async fn purge(&self, queue: &str) -> Result<u64> {
        Ok(self.channels.purge(queue).await?.unwrap_or(0))
    }

    /// Copies up to `max` ready messages of `queue`; a queue never used has none.
    pub(crate) async fn peek(&self, queue: &str, max: usize) -> Result<Vec<Delivery>> {
        Ok(self.channels.peek(queue, max).await?.unwrap_or_default())
    }

    /// Moves up to `max` ready messages of `<queue>.dead` back to `queue`,
    /// in steps inside `<queue>.dead`'s channel, so that it never works
    /// long on one message; a queue whose dead letters were never used
    /// starts nothing.
    pub(crate) async fn redrive(&self, queue: &str, max: usize) -> Result<u64> {
        let dead_queue = validate::dead_letter_name(queue);
        let Some(dead) = self.channels.get(&dead_queue, false).await? else {
            return Ok(0);
        };
        let into = self.channels.open(queue).await?.addr.clone();
        in_steps(max, REDRIVE_STEP, (), |(), max| {
            let (dead, into) = (dead.clone(), into.clone());
            async move {
                let moved = ask(|reply| {
                    dead.addr
                        .do_send(Relay(MemoryEvent::Redrive { max, into, reply }));
                })
                .await?;
                Ok(((), moved, moved == max as u64))
            }
        })
        .await
    }

    /// Stops every listener, waiting up to `timeout` for their handlers.
    /// The `doomed` queues end with the rest of what the process holds.
    pub(crate) async fn shutdown(&self, timeout: Duration, _doomed: Vec<String>) -> Result<bool> {
        Ok(self.channels.close(timeout).await)
    }
}

/// Takes a place on `channel`'s capacity gauge and, with one, hands it
/// `envelope` through its inbox: stored once it is there. Without room,
/// gives it back.
fn store_if_room(
    channel: &Channel<MemoryBackend>,
    envelope: Envelope,
    delay: Option<Duration>,
) -> std::result::Result<(), Envelope> {
    if !channel.front.room.try_take() {
        return Err(envelope);
    }
    if channel.front.inbox.put((envelope, delay)) {
        channel.addr.do_send(Relay(MemoryEvent::Arrived));
    }
    Ok(())
}
