//! Backpressure with a bounded store (`queue.memory.capacity`): push waits, times out, is released.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actorbus::{Delivery, Error, PushOptions};

use super::{bus_with, shutdown};
use crate::support::{
    bounded, fast_config, index_of, indexed, unique_queue, BusFactory, Collector, LIMIT,
};

pub async fn full_queue_push_times_out(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.memory.capacity = 10;
    config.queue.push_timeout = Duration::from_millis(300);
    let bus = bus_with(factory, config).await;
    let q = unique_queue("full");
    for i in 0..10 {
        bounded("push into room", LIMIT, bus.push(&q, indexed(i)))
            .await
            .expect("push within capacity");
    }
    let start = Instant::now();
    let r = bounded("push into a full queue", LIMIT, bus.push(&q, indexed(10))).await;
    assert!(
        matches!(r, Err(Error::Timeout)),
        "push into a full queue: {r:?}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "gave up before push_timeout"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        bus.stats(&q).await.unwrap().ready,
        10,
        "a timed-out push must not be stored"
    );

    // Room again: pushes succeed.
    assert_eq!(bus.purge(&q).await.unwrap(), 10);
    let id = bus.push(&q, "room again").await.expect("push after purge");
    assert_eq!(bus.receive(&q, LIMIT).await.expect("receive").id(), &id);
    shutdown(bus).await;
}

pub async fn full_queue_push_waits_for_room(factory: &BusFactory) {
    const N: u32 = 100;
    let mut config = fast_config();
    config.queue.memory.capacity = 10;
    config.queue.push_timeout = Duration::from_secs(20);
    let bus = bus_with(factory, config).await;
    let q = unique_queue("backpressure");
    let seen: Collector<u32> = Collector::new();
    let s = seen.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            let s = s.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                s.push(index_of(&d));
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    let max_held = Arc::new(AtomicUsize::new(0));
    for i in 0..N {
        bounded("push waiting for room", LIMIT, bus.push(&q, indexed(i)))
            .await
            .unwrap_or_else(|e| panic!("push {i} failed: {e}"));
        let s = bus.stats(&q).await.unwrap();
        max_held.fetch_max(
            (s.ready + s.in_flight + s.delayed) as usize,
            Ordering::SeqCst,
        );
    }
    let got = seen.wait_for(N as usize, LIMIT).await;
    assert_eq!(
        got,
        (0..N).collect::<Vec<_>>(),
        "every message delivered once, in order"
    );
    let held = max_held.load(Ordering::SeqCst);
    assert!(
        held <= 10,
        "the queue held {held} messages with capacity 10"
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn room_freed_by_a_waiting_receive_admits_a_waiting_push(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.memory.capacity = 1;
    config.queue.push_timeout = Duration::from_secs(3);
    let bus = bus_with(factory, config).await;
    let q = unique_queue("room-by-receive");
    // A receive waits on the empty queue.
    let waiting = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, LIMIT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The one place is taken by a delayed message; the next push must wait.
    let opts = PushOptions::default().with_delay(Duration::from_millis(200));
    let first = bus
        .push_with(&q, "first", opts)
        .await
        .expect("push within capacity");
    let start = Instant::now();
    let second = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.push(&q, "second").await })
    };
    // At 200 ms the delayed message goes to the waiting receive, which frees
    // the place long before push_timeout (3 s).
    let d = bounded("the waiting receive", LIMIT, waiting)
        .await
        .unwrap()
        .expect("receive");
    assert_eq!(d.id(), &first);
    let r = bounded("the push waiting for room", LIMIT, second)
        .await
        .unwrap();
    assert!(
        r.is_ok(),
        "room was freed by a receive after {:?}, yet the waiting push failed after {:?}: {r:?}",
        Duration::from_millis(200),
        start.elapsed()
    );
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.as_str().unwrap(), "second");
    shutdown(bus).await;
}

pub async fn shutdown_fails_a_push_waiting_for_room(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.memory.capacity = 1;
    config.queue.push_timeout = Duration::from_secs(600);
    let bus = bus_with(factory, config).await;
    let q = unique_queue("parked-shutdown");
    bus.push(&q, "fills the queue").await.expect("push");
    let parked = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.push(&q, "waits for room").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    shutdown(bus).await;
    let r = bounded("a push waiting across shutdown", LIMIT, parked)
        .await
        .unwrap();
    assert!(
        matches!(r, Err(Error::Closed)),
        "a push waiting at shutdown ends with Closed: {r:?}"
    );
}

pub async fn batch_into_a_full_queue_says_what_was_stored(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.memory.capacity = 3;
    config.queue.push_timeout = Duration::from_millis(300);
    let bus = bus_with(factory, config).await;
    let q = unique_queue("full-batch");

    // Room for 3 of 5: those are stored, the 4th times out, the 5th is not tried.
    let r = bounded(
        "batch into a small queue",
        LIMIT,
        bus.push_batch(&q, (0..5).map(indexed)),
    )
    .await;
    let stored = match r {
        Err(Error::PartialBatch { stored, source }) => {
            assert!(matches!(*source, Error::Timeout), "why: {source:?}");
            stored
        }
        other => panic!("expected PartialBatch, got {other:?}"),
    };
    assert_eq!(stored.len(), 3, "the ids of what fit");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        bus.stats(&q).await.unwrap().ready,
        3,
        "exactly those are stored"
    );
    for (i, id) in stored.iter().enumerate() {
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!((d.id(), index_of(&d)), (id, i as u32));
    }

    // A full queue: nothing of the batch fits, and the error is the reason itself.
    bus.push_batch(&q, (0..3).map(indexed)).await.expect("fits");
    let r = bounded(
        "batch into a full queue",
        LIMIT,
        bus.push_batch(&q, ["x", "y"]),
    )
    .await;
    assert!(matches!(r, Err(Error::Timeout)), "nothing stored: {r:?}");
    assert_eq!(bus.stats(&q).await.unwrap().ready, 3);
    shutdown(bus).await;
}

pub async fn publish_into_a_full_group_times_out_after_the_others_stored(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.memory.capacity = 2;
    config.queue.push_timeout = Duration::from_millis(300);
    let bus = bus_with(factory, config).await;
    let topic = unique_queue("full-group");
    // Joined in this order: the full group is neither first nor last.
    let names = ["a", "full", "z"];
    for group in names {
        bus.add_subscriber(&topic, group, |_| async { Ok(()) })
            .await
            .expect("join")
            .remove()
            .await
            .expect("leave");
    }
    let queue = |group: &str| format!("{topic}.{group}");
    bus.push_batch(&queue("full"), ["x", "y"])
        .await
        .expect("fill");

    let r = bounded("publish into a full group", LIMIT, bus.publish(&topic, "p")).await;
    assert!(matches!(r, Err(Error::Timeout)), "publish: {r:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ready = |group| {
        let bus = bus.clone();
        let q = queue(group);
        async move { bus.stats(&q).await.expect("stats").ready }
    };
    assert_eq!(ready("full").await, 2, "no copy where there was no room");
    assert_eq!(ready("a").await, 1, "the group before it has its copy");
    assert_eq!(ready("z").await, 1, "the group after it has its copy too");

    // Room again: a publish reaches every group, behind the copies the
    // timed-out publish left in the others.
    assert_eq!(bus.purge(&queue("full")).await.unwrap(), 2);
    let id = bus.publish(&topic, "room again").await.expect("publish");
    for (group, before) in [("a", 1), ("full", 0), ("z", 1)] {
        for _ in 0..before {
            let d = bus.receive(&queue(group), LIMIT).await.expect("receive");
            assert_eq!(d.as_str().unwrap(), "p", "{group}: the earlier copy first");
        }
        let d = bus.receive(&queue(group), LIMIT).await.expect("receive");
        assert_eq!(d.id(), &id, "{group}: the new publish");
    }
    shutdown(bus).await;
}
