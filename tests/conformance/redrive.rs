//! Redrive: dead letters back to their queue at attempt 1, with `x-redriven` and their last `x-error`.

use std::collections::BTreeSet;

use actorbus::{Bus, Delivery, ListenerOptions, MessageId, PushOptions, Reject};
use tokio::sync::Semaphore;

use super::{bus_with, shutdown};
use crate::support::{
    fast_config, index_of, indexed, stats_until, unique_queue, BusFactory, Collector, LIMIT,
};

/// Lets a listener whose handler rejects every message of `q` with `error`
/// dead-letter them, until `count` are dead; then removes it.
async fn kill_all(bus: &Bus, q: &str, count: u64, error: &'static str) {
    let failing = bus
        .add_listener(q, move |_d: Delivery| async move {
            Err(Reject::new(error).into())
        })
        .await
        .expect("add_listener");
    stats_until(bus, q, "every message dead", |s| s.dead == count).await;
    failing.remove().await.expect("remove");
}

/// Pushes `count` numbered messages to `q` and lets them die.
async fn dead_letters(bus: &Bus, q: &str, count: u32) {
    for i in 0..count {
        bus.push(q, indexed(i)).await.expect("push");
    }
    kill_all(bus, q, count.into(), "nope").await;
}

fn ids(deliveries: &[Delivery]) -> BTreeSet<MessageId> {
    deliveries.iter().map(|d| d.id().clone()).collect()
}

pub async fn redrive_brings_dead_letters_back_at_attempt_one(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("redrive");
    let dead_q = format!("{q}.dead");
    let mut pushed = BTreeSet::new();
    for i in 0..3 {
        let opts = PushOptions::default().with_header("tenant", "acme");
        pushed.insert(bus.push_with(&q, indexed(i), opts).await.expect("push"));
    }
    kill_all(&bus, &q, 3, "boom").await;
    let dead = bus.peek(&dead_q, 10).await.expect("peek dead");
    assert_eq!(ids(&dead), pushed, "peek shows the dead letters");
    assert!(
        dead.iter().all(|d| d.headers()["x-error"] == "boom"),
        "{dead:?}"
    );

    assert_eq!(bus.redrive(&q, 100).await.expect("redrive"), 3);
    let s = bus.stats(&q).await.expect("stats");
    assert_eq!((s.ready, s.dead), (3, 0), "{s:?}");
    let back = bus.peek(&q, 10).await.expect("peek back");
    assert_eq!(ids(&back), pushed, "same ids");
    let mut payloads: Vec<u32> = back.iter().map(index_of).collect();
    payloads.sort_unstable();
    assert_eq!(payloads, [0, 1, 2], "same payloads");
    for d in &back {
        let h = d.headers();
        assert_eq!(d.attempt(), 1, "{h:?}");
        assert_eq!(h.get("x-redriven").map(String::as_str), Some("1"), "{h:?}");
        assert_eq!(h.get("x-error").map(String::as_str), Some("boom"), "{h:?}");
        assert_eq!(h.get("tenant").map(String::as_str), Some("acme"), "{h:?}");
        assert!(
            !h.contains_key("x-attempts") && !h.contains_key("x-failed-at"),
            "{h:?}"
        );
    }

    // They die again: a second redrive counts 2 and keeps the newer error.
    kill_all(&bus, &q, 3, "boom again").await;
    assert_eq!(bus.redrive(&q, 100).await.expect("redrive again"), 3);
    let again = bus.peek(&q, 10).await.expect("peek again");
    assert_eq!(ids(&again), pushed);
    for d in &again {
        let h = d.headers();
        assert_eq!((d.attempt(), h["x-redriven"].as_str()), (1, "2"), "{h:?}");
        assert_eq!(h["x-error"], "boom again", "{h:?}");
    }

    // Redriven messages are delivered like any other.
    let got = Collector::new();
    let listener = got.listen(&bus, &q).await;
    let delivered = got.wait_for(3, LIMIT).await;
    assert_eq!(ids(&delivered), pushed);
    assert!(delivered.iter().all(|d| d.attempt() == 1));
    stats_until(&bus, &q, "all acknowledged", |s| {
        s.ready + s.in_flight + s.dead == 0
    })
    .await;
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn redrive_moves_at_most_max(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("redrive-max");
    assert_eq!(
        bus.redrive(&unique_queue("redrive-never-used"), 10)
            .await
            .expect("redrive unknown"),
        0
    );
    dead_letters(&bus, &q, 5).await;

    assert_eq!(bus.redrive(&q, 2).await.expect("redrive 2"), 2);
    let s = bus.stats(&q).await.expect("stats");
    assert_eq!((s.ready, s.dead), (2, 3), "{s:?}");
    assert_eq!(bus.redrive(&q, 0).await.expect("redrive 0"), 0);
    assert_eq!(bus.redrive(&q, usize::MAX).await.expect("redrive all"), 3);
    assert_eq!(bus.redrive(&q, usize::MAX).await.expect("nothing left"), 0);
    let s = bus.stats(&q).await.expect("stats");
    assert_eq!((s.ready, s.dead), (5, 0), "{s:?}");
    shutdown(bus).await;
}

pub async fn redrive_leaves_dead_letters_a_listener_holds(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("redrive-held");
    let dead_q = format!("{q}.dead");
    dead_letters(&bus, &q, 4).await;

    // A listener of the dead letters holds exactly one, and waits.
    let gate = std::sync::Arc::new(Semaphore::new(0));
    let held: Collector = Collector::new();
    let (g, h) = (gate.clone(), held.clone());
    let opts = ListenerOptions::default()
        .with_concurrency(1)
        .with_prefetch(0);
    let holder = bus
        .add_listener_with(&dead_q, opts, move |d: Delivery| {
            h.push(d);
            let g = g.clone();
            async move {
                g.acquire().await.expect("gate").forget();
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    let holding = held.wait_for(1, LIMIT).await;
    stats_until(&bus, &dead_q, "one held", |s| {
        s.in_flight == 1 && s.ready == 3
    })
    .await;

    assert_eq!(bus.redrive(&q, 100).await.expect("redrive"), 3);
    let back = bus.peek(&q, 10).await.expect("peek");
    assert_eq!(back.len(), 3);
    assert!(
        back.iter().all(|d| d.id() != holding[0].id()),
        "the held dead letter stays with its listener"
    );
    gate.add_permits(1);
    stats_until(&bus, &dead_q, "the held one handled", |s| {
        s.in_flight + s.ready == 0
    })
    .await;
    assert_eq!(held.len(), 1, "the listener got no redriven message");
    holder.remove().await.expect("remove");
    shutdown(bus).await;
}
