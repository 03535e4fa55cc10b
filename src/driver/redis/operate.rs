//! Peek and redrive on Redis: reading a stream's ready entries, and moving dead letters back in atomic steps.
//!
//! Ready entries are those after the consumer group's last delivered id
//! (see [`PEEK`]). A redrive step reads the first ready dead letters, makes
//! each one's copy with the bus's redrive rule, and hands the copies to
//! [`REDRIVE`], which adds each to the queue's stream and deletes its dead
//! entry in one step: nothing is lost and nothing moved twice, whenever the
//! process dies.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use crate::channel::redrive::redriven;
use crate::delivery::Delivery;
use crate::driver::redis::commands::invoke;
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::scripts::{GROUP_PEEK, PEEK, REDRIVE};
use crate::driver::redis::wire::{decode, fields, Entry, GROUP};
use crate::error::Result;

/// Where a read of ready entries starts when it has no cursor.
const START: &str = "0-0";

/// The first `max` ready entries of `stream` after `cursor`.
async fn ready(
    link: &RedisLink,
    stream: &str,
    max: usize,
    cursor: &str,
    limit: Duration,
) -> Result<Vec<Entry>> {
    // `XRANGE … COUNT` takes a signed 64-bit count.
    let max = max.min(i64::MAX as usize).to_string();
    let args = [GROUP.as_bytes(), max.as_bytes(), cursor.as_bytes()];
    let reply: Value = invoke(link, limit, &PEEK, &[stream], &args).await?;
    Ok(Entry::from_range_reply(reply))
}

/// Copies of the first `max` ready messages of the queue of `keys` (a
/// subscriber group's: those of the topic's stream it was not handed yet,
/// then its own stream's). Entries that are not messages (no `payload`)
/// are left out.
pub(crate) async fn peek(
    link: Arc<RedisLink>,
    keys: Keys,
    max: usize,
    limit: Duration,
) -> Result<Vec<Delivery>> {
    let entries = match keys.topic.as_deref() {
        Some(topic) => {
            let max = max.min(i64::MAX as usize).to_string();
            let args = [keys.group.as_bytes(), max.as_bytes()];
            let streams = [topic, &*keys.stream];
            let reply: Value = invoke(&link, limit, &GROUP_PEEK, &streams, &args).await?;
            Entry::from_range_reply(reply)
        }
        None => ready(&link, &keys.stream, max, START, limit).await?,
    };
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            let id = entry.id.clone();
            decode(&id, entry).ok()
        })
        .map(|envelope| Delivery::new(envelope, keys.queue.clone()))
        .collect())
}

/// What one redrive step did.
#[derive(Debug)]
pub(crate) struct Step {
    /// Dead letters moved back.
    pub(crate) moved: u64,
    /// Dead entries read: fewer than asked means the dead stream had no more.
    pub(crate) read: usize,
    /// The last entry read: the next step reads after it, past entries
    /// that are not messages (they stay in `<queue>.dead`).
    pub(crate) cursor: String,
}

/// Moves up to `max` ready dead letters of the queue of `keys`, read after
/// `cursor`, back to its stream in one script.
pub(crate) async fn redrive_step(
    link: Arc<RedisLink>,
    keys: Keys,
    cursor: String,
    max: usize,
    limit: Duration,
) -> Result<Step> {
    let entries = ready(&link, &keys.dead, max, &cursor, limit).await?;
    let read = entries.len();
    let cursor = entries.last().map_or(cursor, |entry| entry.id.clone());
    let mut args: Vec<Vec<u8>> = vec![GROUP.into()];
    for entry in entries {
        let id = entry.id.clone();
        match decode(&id, entry) {
            Ok(envelope) => {
                let copy = fields(&redriven(envelope));
                args.push(id.into_bytes());
                args.push((copy.len() * 2).to_string().into_bytes());
                args.extend(copy.into_iter().flat_map(|(field, value)| [field, value]));
            }
            Err(bad) => {
                tracing::debug!(stream = %keys.dead, entry = %id, reason = %bad.reason, "dead entry is not a message; not redriven");
            }
        }
    }
    let moved = if args.len() > 1 {
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        invoke(&link, limit, &REDRIVE, &[&keys.dead, &keys.stream], &args).await?
    } else {
        0
    };
    Ok(Step {
        moved,
        read,
        cursor,
    })
}
