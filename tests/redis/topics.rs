//! Topics and request/reply from outside: a topic is one stream with a
//! consumer group per subscriber group, a publish is one entry, the README's
//! `redis-cli XADD` reaches every group, an entry stays until every group
//! acknowledged it, another bus knows a group by its queue name, and the
//! bus's reply stream has a time to live while the bus runs and is deleted
//! at shutdown.

use std::sync::Arc;
use std::time::Duration;

use crate::support::redis as redis_support;

use crate::support::{
    eventually, indexed, init_tracing, stats_until, unique_queue, Collector, LIMIT,
};
use actorbus::{Bus, Delivery, ListenerOptions};
use redis_support::{bus_on, cleanup, cli, SHARED_URL};
use tokio::sync::Semaphore;

/// Deletes the keys of `topic` and of its `groups`.
fn cleanup_topic(topic: &str, groups: &[&str]) {
    cleanup(topic);
    for group in groups {
        cleanup(&format!("{topic}.{group}"));
    }
}

/// `XLEN key` on the shared Redis.
fn xlen(key: &str) -> u64 {
    cli(&["XLEN", key])
        .trim()
        .parse()
        .expect("XLEN answers a number")
}

/// Joins `group` of `topic` and leaves it at once: the group stores what is
/// published from now on, and nothing reads it.
async fn join_idle(bus: &Bus, topic: &str, group: &str) {
    let listener = bus
        .add_subscriber(topic, group, |_d: Delivery| async { Ok(()) })
        .await
        .expect("add_subscriber");
    listener.remove().await.expect("remove");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_publish_reaches_every_group() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let topic = unique_queue("topic-interop");
    let seen: Collector<(String, String)> = Collector::new();
    let mut listeners = Vec::new();
    for group in ["a", "b"] {
        let s = seen.clone();
        let l = bus
            .add_subscriber(&topic, group, move |d: Delivery| {
                s.push((group.to_owned(), d.as_str().unwrap_or("?").to_owned()));
                async { Ok(()) }
            })
            .await
            .expect("add_subscriber");
        listeners.push(l);
    }
    let groups = cli(&["XINFO", "GROUPS", &topic]);
    for group in ["a", "b"] {
        assert!(
            groups.lines().any(|line| line.trim() == group),
            "consumer group {group} on {topic}: {groups}"
        );
    }
    // The README's line.
    cli(&["XADD", &topic, "*", "payload", "from cli"]);
    let mut got = seen.wait_for(2, LIMIT).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("a".to_owned(), "from cli".to_owned()),
            ("b".to_owned(), "from cli".to_owned())
        ]
    );
    for l in listeners {
        l.remove().await.unwrap();
    }
    eventually("both groups acknowledged: the entry is gone", LIMIT, || {
        let len = xlen(&topic);
        async move { len == 0 }
    })
    .await;
    bus.shutdown().await.unwrap();
    cleanup_topic(&topic, &["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_one_entry_in_the_topic_stream() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let topic = unique_queue("topic-one-entry");
    bus.publish(&topic, "to no one").await.expect("publish");
    assert_eq!(
        cli(&["EXISTS", &topic]).trim(),
        "0",
        "a publish to a topic without groups stores nothing"
    );
    for group in ["a", "b", "c"] {
        join_idle(&bus, &topic, group).await;
    }
    for i in 0..3 {
        bus.publish(&topic, indexed(i)).await.expect("publish");
    }
    assert_eq!(
        xlen(&topic),
        3,
        "one entry per publish, whatever the groups"
    );
    for group in ["a", "b", "c"] {
        let queue = format!("{topic}.{group}");
        assert_eq!(xlen(&queue), 0, "nothing copied into {queue}");
        let stats = bus.stats(&queue).await.expect("stats");
        assert_eq!((stats.ready, stats.in_flight), (3, 0), "{queue}: {stats:?}");
    }
    bus.shutdown().await.unwrap();
    cleanup_topic(&topic, &["a", "b", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_stays_until_every_group_acknowledged_it() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let topic = unique_queue("topic-retention");
    let (fast_queue, slow_queue) = (format!("{topic}.fast"), format!("{topic}.slow"));
    let fast = Collector::new();
    let fast_listener = bus
        .add_subscriber(&topic, "fast", fast.handler())
        .await
        .expect("add_subscriber");
    // `slow` holds its deliveries until the gate lets them through.
    let gate = Arc::new(Semaphore::new(0));
    let slow: Collector<Delivery> = Collector::new();
    let (g, s) = (gate.clone(), slow.clone());
    let slow_listener = bus
        .add_subscriber_with(
            &topic,
            "slow",
            ListenerOptions::default().with_concurrency(5),
            move |d: Delivery| {
                let (g, s) = (g.clone(), s.clone());
                async move {
                    g.acquire().await?.forget();
                    s.push(d);
                    Ok(())
                }
            },
        )
        .await
        .expect("add_subscriber");
    let all_acked = |s: &actorbus::QueueStats| s.in_flight == 0 && s.ready == 0;

    // Pending in one group: kept.
    for i in 0..5 {
        bus.publish(&topic, indexed(i)).await.expect("publish");
    }
    fast.wait_for(5, LIMIT).await;
    stats_until(&bus, &fast_queue, "fast acked all", all_acked).await;
    stats_until(&bus, &slow_queue, "slow holds all 5", |s| s.in_flight == 5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(xlen(&topic), 5, "entries `slow` has pending are kept");
    gate.add_permits(5);
    slow.wait_for(5, LIMIT).await;
    stats_until(&bus, &slow_queue, "slow acked all", all_acked).await;
    eventually("acknowledged by both groups: gone", LIMIT, || {
        let len = xlen(&topic);
        async move { len == 0 }
    })
    .await;

    // Not yet handed to one group: kept, until that group is purged.
    join_idle(&bus, &topic, "idle").await;
    gate.add_permits(5);
    for i in 5..10 {
        bus.publish(&topic, indexed(i)).await.expect("publish");
    }
    fast.wait_for(10, LIMIT).await;
    slow.wait_for(10, LIMIT).await;
    stats_until(&bus, &fast_queue, "fast acked all", all_acked).await;
    stats_until(&bus, &slow_queue, "slow acked all", all_acked).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        xlen(&topic),
        5,
        "entries `idle` was not handed yet are kept"
    );
    let idle_queue = format!("{topic}.idle");
    let stats = bus.stats(&idle_queue).await.expect("stats");
    assert_eq!(stats.ready, 5, "{stats:?}");
    assert_eq!(bus.purge(&idle_queue).await.expect("purge"), 5);
    assert_eq!(
        xlen(&topic),
        0,
        "acknowledged or purged by every group: gone"
    );
    assert_eq!(bus.stats(&idle_queue).await.expect("stats").ready, 0);

    fast_listener.remove().await.unwrap();
    slow_listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
    cleanup_topic(&topic, &["idle", "fast", "slow"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_bus_knows_a_group_by_its_queue_name() {
    init_tracing();
    let joined = bus_on(SHARED_URL, None).await;
    let topic = unique_queue("topic-other-bus");
    join_idle(&joined, &topic, "reports").await;
    join_idle(&joined, &topic, "audit").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(joined.publish(&topic, indexed(i)).await.expect("publish"));
    }
    joined.shutdown().await.unwrap();

    // A bus that never joined: `stats`, `peek`, `receive` and `purge` by name.
    let other = bus_on(SHARED_URL, None).await;
    let queue = format!("{topic}.reports");
    let stats = other.stats(&queue).await.expect("stats");
    assert_eq!((stats.ready, stats.in_flight), (4, 0), "{stats:?}");
    let peeked: Vec<_> = other
        .peek(&queue, 10)
        .await
        .expect("peek")
        .iter()
        .map(|d| d.id().clone())
        .collect();
    assert_eq!(peeked, ids);
    let first = other.receive(&queue, LIMIT).await.expect("receive");
    assert_eq!(first.id(), &ids[0]);
    assert_eq!(first.queue(), queue);
    assert_eq!(other.purge(&queue).await.expect("purge"), 3);
    let audit = other.stats(&format!("{topic}.audit")).await.expect("stats");
    assert_eq!(audit.ready, 4, "the other group still has all: {audit:?}");
    assert_eq!(xlen(&topic), 4, "`audit` has not acknowledged them");
    other.shutdown().await.unwrap();
    cleanup_topic(&topic, &["reports", "audit"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_stream_lives_with_its_bus() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let q = unique_queue("request-cleanup");
    let replier = bus.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            let bus = replier.clone();
            async move {
                bus.reply(&d, "pong").await?;
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    let reply = bus.request(&q, "ping", LIMIT).await.expect("request");
    let reply_stream = reply.queue().to_owned();
    assert_eq!(cli(&["EXISTS", &reply_stream]).trim(), "1");
    eventually(
        "the reply stream expires unless its bus lives",
        LIMIT,
        || {
            let ttl: i64 = cli(&["TTL", &reply_stream]).trim().parse().unwrap_or(-1);
            async move { ttl > 0 && ttl <= 300 }
        },
    )
    .await;
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
    assert_eq!(
        cli(&["EXISTS", &reply_stream]).trim(),
        "0",
        "the reply stream {reply_stream} outlived its bus"
    );
    cleanup(&q);
}
