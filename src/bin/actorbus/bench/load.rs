//! The bench's producers: `--producers` tasks pushing stamped payloads
//! round-robin over the queues for `--duration`, at `--rate` if given.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actorbus::Bus;
use tokio::task::JoinSet;

use crate::args::BenchArgs;
use crate::failure::Failure;

use super::recorder::Recorder;

/// Pushes until `--duration` has passed; the first failed push stops every
/// producer and is the error.
pub(crate) async fn push(
    bus: &Bus,
    args: &BenchArgs,
    queues: &[String],
    recorder: &Arc<Recorder>,
) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + args.duration;
    let failed = Arc::new(AtomicBool::new(false));
    // Each producer's share of `--rate`, as the time between its pushes.
    let period = (args.rate > 0)
        .then(|| Duration::from_secs_f64(f64::from(args.producers) / args.rate as f64));
    let mut producers = JoinSet::new();
    for producer in 0..args.producers as usize {
        let bus = bus.clone();
        let recorder = recorder.clone();
        let failed = failed.clone();
        let queues = queues.to_vec();
        let size = args.payload;
        producers.spawn(async move {
            let mut next = producer;
            let mut due = tokio::time::Instant::now();
            while tokio::time::Instant::now() < deadline && !failed.load(Ordering::Relaxed) {
                if let Some(period) = period {
                    // Pushes that fall behind the rate are not made up in a burst.
                    due = (due + period).max(tokio::time::Instant::now());
                    tokio::time::sleep_until(due.min(deadline)).await;
                    if due >= deadline {
                        break;
                    }
                }
                let queue = &queues[next % queues.len()];
                next += 1;
                if let Err(error) = bus.push(queue, recorder.payload(size)).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(Failure::doing(format!("cannot push to `{queue}`"))(error));
                }
                recorder.pushed();
            }
            Ok(())
        });
    }
    let mut outcome = Ok(());
    while let Some(joined) = producers.join_next().await {
        let result = joined.unwrap_or_else(|panic| Err(Failure::Other(panic.to_string())));
        outcome = outcome.and(result);
    }
    outcome
}
