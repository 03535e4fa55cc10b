//! Supervision on amqp: a crashed channel actor is restarted by its supervisor
//! (counted in `stats.restarts`) and keeps its listeners and their
//! deliveries; RabbitMQ keeps the messages.
#![cfg(feature = "amqp")]

mod support;

use std::collections::BTreeSet;

use actorbus::Bus;
use support::{amqp, index_of, indexed, stats_until, unique_queue, Collector, LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_queue_actor_restarts_and_keeps_its_listeners() {
    support::init_tracing();
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("amqp-crash-actor");
    for i in 0..20 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    for crash in 1..=2u64 {
        actorbus::testing::crash_channel(&bus, &q)
            .await
            .expect("crash hook");
        let s = bus.stats(&q).await.expect("stats after a crash");
        assert_eq!(s.restarts, crash, "{s:?}");
        assert_eq!(s.ready, 20, "{s:?}");
    }
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    seen.wait_for(20, LIMIT).await;
    actorbus::testing::crash_channel(&bus, &q)
        .await
        .expect("crash hook");
    // The listener survives the restart and gets what comes next.
    for i in 20..40 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let got = seen.wait_for(40, LIMIT).await;
    let distinct: BTreeSet<u32> = got.iter().map(index_of).collect();
    assert_eq!(distinct, (0..40).collect(), "every message handled");
    let s = stats_until(&bus, &q, "all acknowledged", |s| s.ready + s.in_flight == 0).await;
    assert_eq!((s.restarts, s.listeners), (3, 1), "{s:?}");
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}
