//! Topics on redis: topic `<t>` is one stream `<t>`; each subscriber group `<g>` is a consumer group `<g>` on it, beside a stream `<t>.<g>` of its own.
//!
//! A publish is one `XADD <t> NOMKSTREAM`: no copy per group, and nothing
//! stored while no group has joined (joining creates the stream). A group
//! reads the shared stream and its own stream `<t>.<g>` (retries, hand-backs,
//! redriven messages, direct pushes to `<t>.<g>`: what only that group must
//! see) in one `XREADGROUP`. Entries of the shared stream are acknowledged
//! per group and deleted by the retention rule in
//! [`SETTLE`](crate::driver::redis::scripts::SETTLE) once every group has
//! acknowledged them. On a Redis Cluster every key of a topic carries the
//! topic's hash tag (`{<t>}`, `{<t>}.<g>`…, see [`Keys::group`]), so that
//! each of those scripts touches one slot.

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::Envelope;
use crate::driver::redis::commands::{ensure_group, invoke};
use crate::driver::redis::keys::Keys;
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::scripts::IS_GROUP;
use crate::driver::redis::wire::{self};
use crate::error::Result;

/// Adds `envelope` to the stream of `topic`, unless no group joined yet.
pub(crate) async fn publish(
    link: Arc<RedisLink>,
    topic: String,
    envelope: Envelope,
    limit: Duration,
) -> Result<()> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(Keys::topic_stream(&topic, link.cluster))
        .arg("NOMKSTREAM")
        .arg("*");
    wire::write_fields(&envelope, |part| {
        cmd.arg(part);
    });
    let cmd = Arc::new(cmd);
    link.run(limit, |mut conn| {
        let cmd = cmd.clone();
        // Nil when the stream does not exist: no group, no one to reach.
        async move { cmd.query_async::<redis::Value>(&mut conn).await }
    })
    .await?;
    Ok(())
}

/// Makes the group of `keys` durable: creates its consumer group on the
/// topic's stream at `$` (it stores every later publish) and on its own
/// stream, creating the streams as needed.
pub(crate) async fn join(link: Arc<RedisLink>, keys: Keys, limit: Duration) -> Result<()> {
    ensure_group(link, keys, limit).await
}

/// The keys of `queue`: a subscriber group's when its name is
/// `<topic>.<group>` and the topic's stream has the consumer group
/// `<group>`; on a Redis Cluster that group's dead letters' when it is
/// `<topic>.<group>.dead` (see [`Keys::candidate`]); else an ordinary
/// queue's.
pub(crate) async fn resolve(link: Arc<RedisLink>, queue: String, limit: Duration) -> Result<Keys> {
    let tagged = link.cluster;
    let Some((topic, group)) = Keys::candidate(&queue, tagged) else {
        return Ok(link.keys(&queue));
    };
    let shared = Keys::topic_stream(topic, tagged);
    let found: i64 = invoke(&link, limit, &IS_GROUP, &[&shared], &[group.as_bytes()]).await?;
    Ok(match found {
        1 if queue.len() == topic.len() + 1 + group.len() => Keys::group(topic, group, tagged),
        1 => Keys::group_dead(topic, group, &queue, tagged),
        _ => link.keys(&queue),
    })
}
