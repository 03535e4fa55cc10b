//! Topics on redis: each subscriber group is the stream `<topic>.<group>`, listed in the set `<topic>.groups`; a publish adds one entry to each, in one script.

use std::sync::Arc;
use std::time::Duration;

use crate::delivery::Envelope;
use crate::driver::redis::commands::{ensure_group, invoke};
use crate::driver::redis::link::RedisLink;
use crate::driver::redis::scripts::PUBLISH;
use crate::driver::redis::wire;
use crate::error::Result;

/// Adds `envelope` to the stream of every group of `topic`, in one script.
pub(crate) async fn publish(
    link: Arc<RedisLink>,
    topic: String,
    envelope: Envelope,
    limit: Duration,
) -> Result<()> {
    let mut fields: Vec<Vec<u8>> = Vec::new();
    wire::write_fields(&envelope, |part| fields.push(part.to_vec()));
    let args: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let groups = wire::groups_key(&topic);
    invoke::<i64>(&link, limit, &PUBLISH, &[&groups], &args).await?;
    Ok(())
}

/// Makes the group whose stream is `queue` durable on `topic`: creates the
/// stream and its consumer group, then adds it to the topic's group set, so
/// it stores every later publish.
pub(crate) async fn join(
    link: Arc<RedisLink>,
    topic: String,
    queue: String,
    limit: Duration,
) -> Result<()> {
    ensure_group(link.clone(), link.keys(&queue), limit).await?;
    let groups = wire::groups_key(&topic);
    link.run(limit, |mut conn| {
        let (groups, queue) = (groups.clone(), queue.clone());
        async move {
            redis::cmd("SADD")
                .arg(&groups)
                .arg(&queue)
                .query_async::<()>(&mut conn)
                .await
        }
    })
    .await
}
