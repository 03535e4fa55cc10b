//! A poison message that kills its process every time (the fault
//! probe): a child consumes 1 poison + 2,500 others and aborts on the
//! poison; restarted each time, it dead-letters the poison after at most
//! `max_attempts` deliveries, counted by the pending list's delivery count,
//! and every other message gets through. Once with a restarted consumer
//! that re-reads its own pending entries, once with a new consumer per
//! process that takes the dead one's entries over; and both again on a
//! topic's subscriber group, whose entries lie in the topic's shared
//! stream (re-read, taken over and counted there). See `support::poison`.

use std::time::Duration;

use crate::support::poison::{self, check, Figures};
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

/// Runs the poison on group `worker` of a fresh topic; `consumer`: the
/// child's consumer name (else one per process).
async fn on_a_topic_group(name: &str, consumer: Option<&str>) -> Figures {
    let topic = unique_queue(name);
    let bus = Bus::connect(config_on(SHARED_URL)).await.expect("connect");
    let vars: Vec<(&str, &std::ffi::OsStr)> = consumer
        .iter()
        .map(|c| (CONSUMER_VAR, c.as_ref()))
        .collect();
    let child = "redis::poison::poison_child";
    let figures = poison::run_topic(&bus, &topic, "worker", child, &vars).await;
    bus.shutdown().await.expect("shutdown");
    cleanup(&topic);
    cleanup(&format!("{topic}.worker"));
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_on_a_topic_group_is_dead_lettered_by_a_consumer_restarted_under_its_name() {
    init_tracing();
    let consumer = unique_queue("poison-group-worker");
    let figures = on_a_topic_group("poison-group-reread", Some(&consumer)).await;
    check("redis topic group, same consumer", &figures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_on_a_topic_group_is_dead_lettered_by_consumers_taking_over() {
    init_tracing();
    let figures = on_a_topic_group("poison-group-claim", None).await;
    check("redis topic group, new consumers", &figures);
}
