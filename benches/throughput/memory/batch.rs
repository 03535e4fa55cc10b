//! Push-only batches on the memory driver: `push_batch` of 100 from 64
//! pushers, timed until every batch returned (stored), with no listener.

use std::time::Instant;

use actorbus::{Bus, Config};
use serde_json::json;

use crate::harness::args::Opts;
use crate::harness::row::{Kind, Row};
use crate::harness::sink::settle_down;
use crate::harness::stats::measured;
use crate::payload;

pub(crate) const NAME: &str = "memory push_batch 100 push-only";
/// Messages per batch.
const BATCH: usize = 100;
/// Pushing tasks, as the e2e rows' pushers.
const PUSHERS: usize = 64;

/// The batch row, when the filter selects it.
pub(crate) async fn rows(opts: &Opts) -> Vec<Row> {
    if !opts.wants(NAME) {
        return Vec::new();
    }
    vec![measured(NAME, opts.reps, || push_batches(opts.n)).await]
}

async fn push_batches(n: usize) -> Row {
    let mut config = Config::default();
    // Room for the whole run: this row measures pushing, not backpressure.
    config.queue.memory.capacity = n + BATCH * PUSHERS;
    let bus = Bus::connect(config).await.expect("memory bus");
    let queue = "bench-batch";
    let shared = payload();
    let batches = n.div_ceil(BATCH);
    let run = |batches: usize| {
        let (bus, shared) = (bus.clone(), shared.clone());
        async move {
            let start = Instant::now();
            let tasks: Vec<_> = (0..PUSHERS)
                .map(|t| {
                    let (bus, shared) = (bus.clone(), shared.clone());
                    actix::spawn(async move {
                        let mut i = t;
                        while i < batches {
                            let batch = std::iter::repeat_n(shared.clone(), BATCH);
                            bus.push_batch(queue, batch).await.expect("push_batch");
                            i += PUSHERS;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("pusher task");
            }
            start.elapsed()
        }
    };
    run(batches / 10 + 1).await; // warm-up: starts the queue actor
    bus.purge(queue).await.expect("purge");
    let elapsed = run(batches).await;
    let stored = bus.stats(queue).await.expect("stats").ready;
    assert_eq!(stored, (batches * BATCH) as u64, "every batch is stored");
    bus.shutdown().await.expect("shutdown");
    drop(bus);
    settle_down().await;
    Row::rate(NAME, Kind::E2e { seq: false }, batches * BATCH, elapsed)
        .with("batch", json!(BATCH))
        .with("producers", json!(PUSHERS))
}
