//! `actorbus dead peek | redrive | purge QUEUE`: the dead letters of a
//! queue, `<queue>.dead`.

use actorbus::Bus;
use serde_json::json;

use crate::args::PurgeArgs;
use crate::confirm;
use crate::failure::Failure;
use crate::output;

/// The dead-letter queue of `queue`.
fn dead_queue(queue: &str) -> String {
    format!("{queue}.dead")
}

/// Drops the dead letters of the queue, after asking.
pub(crate) async fn purge(bus: &Bus, args: PurgeArgs, json: bool) -> Result<(), Failure> {
    let queue = &args.queue;
    let dead = dead_queue(queue);
    let stats = bus.stats(queue).await.map_err(Failure::doing(format!(
        "cannot count the dead letters of `{queue}`"
    )))?;
    let purged = if stats.dead == 0 {
        0
    } else {
        confirm::ask(
            args.yes,
            &format!(
                "Drop the {} dead letters of `{queue}` ({dead})?",
                stats.dead
            ),
        )?;
        bus.purge(&dead)
            .await
            .map_err(Failure::doing(format!("cannot purge `{dead}`")))?
    };
    if json {
        output::print_json(&json!({ "queue": queue, "purged": purged }))
    } else {
        output::print(&format!("dropped {purged} dead letters of `{queue}`\n"))
    }
}
