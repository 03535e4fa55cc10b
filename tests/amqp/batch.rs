//! `push_batch` on amqp beyond the conformance suite: a batch whose
//! publishes come back unroutable (its queue was deleted behind the bus's
//! back) goes out again message by message, and each is stored once.

use std::collections::HashMap;
use std::time::Duration;

use crate::support::{amqp, unique_queue};
use actorbus::{Bus, Error};

/// The bus remembers the queue as declared, so the batch's first publishes
/// are unroutable: only the retry of each, alone, declares it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_to_a_queue_deleted_behind_the_bus_is_stored_once_each() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("batch-deleted");
    bus.push(&q, "declares the queue").await.expect("push");
    amqp::delete_queues(amqp::URL, &[&q]).await;
    let payloads: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    let ids = bus
        .push_batch(&q, payloads.clone())
        .await
        .expect("push_batch");
    assert_eq!(ids.len(), payloads.len());
    let expected: HashMap<_, _> = ids.iter().cloned().zip(payloads).collect();
    let mut seen = HashMap::new();
    for _ in 0..expected.len() {
        let d = bus
            .receive(&q, Duration::from_secs(10))
            .await
            .expect("every message of the batch is stored");
        let payload = d.as_str().expect("utf-8").to_owned();
        assert_eq!(expected.get(d.id()), Some(&payload), "id and payload match");
        assert!(
            seen.insert(d.id().clone(), payload).is_none(),
            "a duplicate"
        );
    }
    let more = bus.receive(&q, Duration::from_millis(500)).await;
    assert!(matches!(more, Err(Error::Timeout)), "{more:?}");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}
