//! The redis channel actor under its supervisor: a crash restarts it (counted
//! in `stats.restarts`) and loses nothing — stored messages stay in Redis,
//! and a listener's reads in flight are re-read from its pending entries.

#![cfg(feature = "redis")]

mod support;

use support::redis as redis_support;

use std::collections::BTreeSet;
use std::time::Duration;

use actorbus::ListenerOptions;
use redis_support::{bus_on, cleanup, SHARED_URL};
use support::{
    bounded, index_of, indexed, init_tracing, stats_until, unique_queue, Collector, LIMIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_are_counted_and_lose_nothing() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let q = unique_queue("redis-crash-actor");
    for i in 0..20 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    for crash in 1..=2u64 {
        bounded("crash", LIMIT, actorbus::testing::crash_channel(&bus, &q))
            .await
            .expect("crash hook");
        let s = bus.stats(&q).await.expect("stats after a crash");
        assert_eq!((s.restarts, s.ready), (crash, 20), "{s:?}");
    }

    // A listener, crashed under while it works: every message still arrives.
    let seen = Collector::new();
    let opts = ListenerOptions::default().with_concurrency(4);
    let listener = bus
        .add_listener_with(&q, opts, seen.handler())
        .await
        .expect("add_listener");
    for i in 20..40 {
        bus.push(&q, indexed(i)).await.expect("push");
        if i % 7 == 0 {
            actorbus::testing::crash_channel(&bus, &q)
                .await
                .expect("crash hook");
        }
    }
    let wanted: BTreeSet<u32> = (0..40).collect();
    support::eventually("every message handled", LIMIT, || {
        let seen = seen.clone();
        let wanted = wanted.clone();
        async move {
            seen.snapshot()
                .iter()
                .map(index_of)
                .collect::<BTreeSet<_>>()
                == wanted
        }
    })
    .await;
    let s = stats_until(&bus, &q, "all acknowledged", |s| {
        (s.ready, s.in_flight) == (0, 0)
    })
    .await;
    assert_eq!((s.restarts, s.listeners), (5, 1), "{s:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    cleanup(&q);
}
