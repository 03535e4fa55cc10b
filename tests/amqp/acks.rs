//! Acknowledgements on RabbitMQ: a listener's acks are gathered and sent
//! together (one `multiple` ack for many deliveries), and none is held
//! back for long: the broker soon counts nothing unacknowledged, however
//! few messages came.

use std::process::Command;

use actorbus::{Bus, ListenerOptions};

use crate::support::{amqp, eventually, indexed, init_tracing, unique_queue, Collector, LIMIT};

/// The broker's count of `queue`'s delivered and unacknowledged messages,
/// as `rabbitmqctl` reports it.
fn unacknowledged(queue: &str) -> Option<u64> {
    let out = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_unacknowledged",
        ])
        .output()
        .expect("rabbitmqctl runs (scripts/test starts RabbitMQ)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(queue))
                .then(|| fields.next().and_then(|n| n.parse().ok()))
                .flatten()
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_reach_the_broker_soon_for_few_messages_and_for_many() {
    init_tracing();
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("acks");
    let handled: Collector<u32> = Collector::new();
    let seen = handled.clone();
    // A prefetch of 128: acks are sent per 64 gathered, so that 10
    // messages are acknowledged only by the ack timer.
    let opts = ListenerOptions::default().with_concurrency(64);
    let listener = bus
        .add_listener_with(&q, opts, move |d: actorbus::Delivery| {
            seen.push(crate::support::index_of(&d));
            async { Ok(()) }
        })
        .await
        .expect("add_listener");
    for (round, n) in [(0u32, 10u32), (1, 1000)] {
        let base = round * 10_000;
        let total = handled.len() + n as usize;
        bus.push_batch(&q, (base..base + n).map(indexed))
            .await
            .expect("push_batch");
        handled.wait_for(total, LIMIT).await;
        eventually("the broker counts no unacknowledged message", LIMIT, || {
            let q = q.clone();
            async move {
                tokio::task::spawn_blocking(move || unacknowledged(&q) == Some(0))
                    .await
                    .unwrap_or(false)
            }
        })
        .await;
    }
    assert_eq!(handled.len(), 1010, "each message handled once");
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}
