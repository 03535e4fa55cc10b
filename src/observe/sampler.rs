//! The depth sampler: `actorbus_ready`, `actorbus_delayed` and `actorbus_dead` of every queue a bus uses, once a second (feature `metrics`).
//!
//! It reads [`Bus::stats`], the same counts on every driver (the memory
//! driver's dead letters live in another channel than their queue, so no
//! single channel could count them). One task per bus, on one of the bus's
//! arbiters; it holds the bus only while it counts, and ends with the bus.

use std::time::Duration;

use crate::bus::{Bus, WeakBus};
use crate::error::Error;

/// How often the counts are read, at most.
const EVERY: Duration = Duration::from_secs(1);

/// Starts sampling `bus`'s queues.
pub(crate) fn start(bus: &Bus) {
    bus.spawn(run(bus.downgrade()));
}

async fn run(bus: WeakBus) {
    let mut ticks = tokio::time::interval(EVERY);
    // A slow round (a broker that is down) delays the next; none piles up.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(bus) = bus.upgrade() else {
            return;
        };
        for (queue, metered) in bus.meters().queues() {
            match bus.stats(&queue).await {
                Ok(stats) => metered.meters.depth(&stats),
                Err(Error::Closed) => return,
                Err(error) => {
                    tracing::debug!(%queue, %error, "metrics: cannot count the queue");
                }
            }
        }
    }
}
