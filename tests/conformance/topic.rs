//! Topics with subscriber groups: every group gets every message, members of a group compete, a group is a durable queue.

use std::collections::{BTreeMap, HashSet};

use actorbus::{Delivery, Error, ListenerOptions};
use futures_util::future::try_join_all;

use super::{bus_with, settle_time, shutdown};
use crate::support::{
    fast_config, index_of, indexed, stats_until, unique_queue, BusFactory, Collector, LIMIT,
};

/// A handler that records `(group, delivery)` and acknowledges.
fn recorder(
    seen: &Collector<(String, Delivery)>,
    group: &str,
) -> impl Fn(Delivery) -> std::future::Ready<actorbus::HandlerResult> + Send + Sync + 'static {
    let (seen, group) = (seen.clone(), group.to_owned());
    move |d| {
        seen.push((group.clone(), d));
        std::future::ready(Ok(()))
    }
}

pub async fn publish_reaches_every_group(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let topic = unique_queue("topic");
    let seen = Collector::new();
    let mut listeners = Vec::new();
    for group in ["billing", "shipping", "audit"] {
        let l = bus
            .add_subscriber(&topic, group, recorder(&seen, group))
            .await
            .expect("add_subscriber");
        listeners.push(l);
    }
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(bus.publish(&topic, indexed(i)).await.expect("publish"));
    }
    let got = seen.wait_for(30, LIMIT).await;
    settle_time().await;
    assert_eq!(seen.len(), 30, "each group got each message once");
    let mut per_group: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (group, d) in &got {
        assert_eq!(d.queue(), format!("{topic}.{group}"), "a group is a queue");
        assert_eq!(
            d.id(),
            &ids[index_of(d) as usize],
            "the id is the published one"
        );
        per_group
            .entry(group.clone())
            .or_default()
            .push(index_of(d));
    }
    for (group, mut got) in per_group {
        got.sort_unstable();
        assert_eq!(got, (0..10).collect::<Vec<_>>(), "group {group}");
    }
    for l in listeners {
        l.remove().await.expect("remove");
    }
    shutdown(bus).await;
}

pub async fn members_of_a_group_compete(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let topic = unique_queue("topic-compete");
    let seen = Collector::new();
    let a = bus
        .add_subscriber(&topic, "workers", recorder(&seen, "a"))
        .await
        .expect("add_subscriber");
    let b = bus
        .add_subscriber_with(
            &topic,
            "workers",
            ListenerOptions::default().with_concurrency(2),
            recorder(&seen, "b"),
        )
        .await
        .expect("add_subscriber_with");
    for i in 0..40 {
        bus.publish(&topic, indexed(i)).await.expect("publish");
    }
    let got = seen.wait_for(40, LIMIT).await;
    settle_time().await;
    assert_eq!(seen.len(), 40, "no message reached two members");
    let distinct: HashSet<u32> = got.iter().map(|(_, d)| index_of(d)).collect();
    assert_eq!(distinct.len(), 40, "every message reached one member");
    a.remove().await.expect("remove");
    b.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn group_stores_while_no_member_runs(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let topic = unique_queue("topic-durable");
    let group_queue = format!("{topic}.reports");
    let seen = Collector::new();
    let first = bus
        .add_subscriber(&topic, "reports", recorder(&seen, "reports"))
        .await
        .expect("add_subscriber");
    first.remove().await.expect("remove");
    for i in 0..5 {
        bus.publish(&topic, indexed(i)).await.expect("publish");
    }
    let stats = stats_until(&bus, &group_queue, "ready == 5", |s| s.ready == 5).await;
    assert_eq!(stats.listeners, 0);
    assert!(seen.is_empty(), "no member ran");

    let again = bus
        .add_subscriber(&topic, "reports", recorder(&seen, "reports"))
        .await
        .expect("add_subscriber");
    let mut got: Vec<u32> = seen
        .wait_for(5, LIMIT)
        .await
        .iter()
        .map(|(_, d)| index_of(d))
        .collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4], "what waited is delivered");
    again.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn failing_group_retries_and_dead_letters_alone(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.retry.max_attempts = 2;
    let bus = bus_with(factory, config).await;
    let topic = unique_queue("topic-dead");
    let attempts: Collector<u32> = Collector::new();
    let a = attempts.clone();
    let failing = bus
        .add_subscriber(&topic, "strict", move |d: Delivery| {
            a.push(d.attempt());
            async { Err("cannot handle it".into()) }
        })
        .await
        .expect("add_subscriber");
    let seen = Collector::new();
    let fine = bus
        .add_subscriber(&topic, "lenient", recorder(&seen, "lenient"))
        .await
        .expect("add_subscriber");
    let id = bus.publish(&topic, "hard one").await.expect("publish");

    let dead_queue = format!("{topic}.strict.dead");
    stats_until(&bus, &format!("{topic}.strict"), "dead == 1", |s| {
        s.dead == 1
    })
    .await;
    let dead = bus.receive(&dead_queue, LIMIT).await.expect("dead letter");
    assert_eq!(dead.id(), &id);
    assert_eq!(
        dead.headers().get("x-attempts").map(String::as_str),
        Some("2")
    );
    assert_eq!(attempts.snapshot(), [1, 2], "retried within its group");
    seen.wait_for(1, LIMIT).await;
    settle_time().await;
    assert_eq!(seen.len(), 1, "the retry did not reach the other group");
    let other = bus.stats(&format!("{topic}.lenient")).await.expect("stats");
    assert_eq!(other.dead, 0);
    failing.remove().await.expect("remove");
    fine.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn group_joined_later_gets_only_later_messages(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let topic = unique_queue("topic-late");
    // Published before any group: reaches no one, and is not an error.
    bus.publish(&topic, indexed(0))
        .await
        .expect("publish to no group");
    let seen = Collector::new();
    let early = bus
        .add_subscriber(&topic, "early", recorder(&seen, "early"))
        .await
        .expect("add_subscriber");
    bus.publish(&topic, indexed(1)).await.expect("publish");
    seen.wait_for(1, LIMIT).await;
    let late = bus
        .add_subscriber(&topic, "late", recorder(&seen, "late"))
        .await
        .expect("add_subscriber");
    bus.publish(&topic, indexed(2)).await.expect("publish");
    seen.wait_for(3, LIMIT).await;
    settle_time().await;
    let mut got: Vec<(String, u32)> = seen
        .snapshot()
        .iter()
        .map(|(g, d)| (g.clone(), index_of(d)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("early".to_owned(), 1),
            ("early".to_owned(), 2),
            ("late".to_owned(), 2)
        ]
    );
    early.remove().await.expect("remove");
    late.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn stopped_group_does_not_slow_another(factory: &BusFactory) {
    const N: u32 = 10_000;
    let bus = bus_with(factory, fast_config()).await;
    let topic = unique_queue("topic-slow");
    let stopped = bus
        .add_subscriber(&topic, "stopped", |_d: Delivery| async { Ok(()) })
        .await
        .expect("add_subscriber");
    stopped.remove().await.expect("remove");
    let seen: Collector<u32> = Collector::new();
    let s = seen.clone();
    let draining = bus
        .add_subscriber_with(
            &topic,
            "draining",
            ListenerOptions::default().with_concurrency(16),
            move |d: Delivery| {
                s.push(index_of(&d));
                async { Ok(()) }
            },
        )
        .await
        .expect("add_subscriber");
    for chunk in (0..N).collect::<Vec<_>>().chunks(250) {
        let publishes = chunk.iter().map(|&i| bus.publish(&topic, indexed(i)));
        try_join_all(publishes).await.expect("publish");
    }
    let got = seen.wait_for(N as usize, LIMIT * 4).await;
    let distinct: HashSet<u32> = got.into_iter().collect();
    assert_eq!(
        distinct.len(),
        N as usize,
        "the draining group got everything"
    );
    let held = bus.stats(&format!("{topic}.stopped")).await.expect("stats");
    assert_eq!(
        held.ready, N as u64,
        "the stopped group holds every message for later"
    );
    assert_eq!(
        bus.purge(&format!("{topic}.stopped")).await.expect("purge"),
        N as u64
    );
    draining.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn bad_topic_or_group_names_are_refused(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let topic = unique_queue("topic-names");
    for group in ["", "a.b", "tab\t"] {
        match bus
            .add_subscriber(&topic, group, |_d| async { Ok(()) })
            .await
        {
            Err(Error::InvalidQueueName { name, .. }) => assert_eq!(name, group),
            other => panic!("group {group:?}: expected InvalidQueueName, got {other:?}"),
        }
    }
    assert!(matches!(
        bus.publish("amq.topic", "x").await,
        Err(Error::InvalidQueueName { .. })
    ));
    assert!(matches!(
        bus.add_subscriber(&"t".repeat(199), "g", |_d| async { Ok(()) })
            .await,
        Err(Error::InvalidQueueName { .. })
    ));
    shutdown(bus).await;
}
