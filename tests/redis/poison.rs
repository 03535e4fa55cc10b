//! A poison message that kills its process every time (the fault
//! probe): a child consumes 1 poison + 2,500 others and aborts on the
//! poison; restarted each time, it dead-letters the poison after at most
//! `max_attempts` deliveries, counted by the pending list's delivery count,
//! and every other message gets through. Once with a restarted consumer
//! that re-reads its own pending entries, once with a new consumer per
//! process that takes the dead one's entries over. See `support::poison`.

use std::time::Duration;

use crate::support::poison::{self, check};
use crate::support::redis::{cleanup, config_on, SHARED_URL};
use crate::support::{init_tracing, unique_queue};
use actorbus::Bus;

/// Where the child finds its consumer name (unset: one per process).
const CONSUMER_VAR: &str = "ACTORBUS_POISON_CONSUMER";

/// The child: consumes the queue its parent names, aborting on the poison.
#[test]
#[ignore = "the child process of the poison tests"]
fn poison_child() {
    let mut config = config_on(SHARED_URL);
    // A dead process's entries are taken over soon (a new name per process).
    config.redis.claim_idle = Duration::from_secs(1);
    if let Ok(consumer) = std::env::var(CONSUMER_VAR) {
        config.redis.consumer = consumer;
    }
    poison::child(config);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_is_dead_lettered_by_a_consumer_restarted_under_its_name() {
    init_tracing();
    let q = unique_queue("poison-reread");
    let consumer = unique_queue("poison-worker");
    let bus = Bus::connect(config_on(SHARED_URL)).await.expect("connect");
    let vars = [(CONSUMER_VAR, consumer.as_ref())];
    let figures = poison::run(&bus, &q, "redis::poison::poison_child", &vars).await;
    bus.shutdown().await.expect("shutdown");
    cleanup(&q);
    check("redis, same consumer", &figures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_is_dead_lettered_by_consumers_taking_over() {
    init_tracing();
    let q = unique_queue("poison-claim");
    let bus = Bus::connect(config_on(SHARED_URL)).await.expect("connect");
    let figures = poison::run(&bus, &q, "redis::poison::poison_child", &[]).await;
    bus.shutdown().await.expect("shutdown");
    cleanup(&q);
    check("redis, new consumers", &figures);
}
