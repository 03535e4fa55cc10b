//! Removal by stop message: `listener.remove()`, `bus.remove(queue)`, the delivery in hand.

use std::time::Duration;

use actorbus::{Bus, Delivery, Error, Listener};

use super::{bus_with, settle_time, shutdown};
use crate::support::{
    bounded, fast_config, index_of, indexed, unique_queue, BusFactory, Collector, LIMIT,
};

pub async fn listener_remove_stops_handler_and_keeps_messages(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("remove");
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    assert_eq!(listener.queue(), q);
    for i in 0..3 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    seen.wait_for(3, LIMIT).await;
    bounded("listener.remove()", LIMIT, listener.remove())
        .await
        .expect("remove");

    for i in 3..8 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    settle_time().await;
    assert_eq!(
        seen.len(),
        3,
        "a removed listener's handler was called again"
    );
    let stats = bus.stats(&q).await.unwrap();
    assert_eq!(stats.ready, 5, "messages stay in the queue: {stats:?}");
    assert_eq!(stats.listeners, 0, "{stats:?}");

    let next = Collector::new();
    let again = next.listen(&bus, &q).await;
    let got = next.wait_for(5, LIMIT).await;
    let mut indexes: Vec<u32> = got.iter().map(index_of).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [3, 4, 5, 6, 7]);
    assert_eq!(seen.len(), 3);
    again.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn bus_remove_stops_every_listener_and_keeps_messages(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("bus-remove");
    let other = unique_queue("bus-remove-other");
    let seen = Collector::new();
    let a = seen.listen(&bus, &q).await;
    let b = seen.listen(&bus, &q).await;
    let other_seen = Collector::new();
    let c = other_seen.listen(&bus, &other).await;
    assert_eq!(bus.stats(&q).await.unwrap().listeners, 2);
    for i in 0..4 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    seen.wait_for(4, LIMIT).await;

    bounded("bus.remove()", LIMIT, bus.remove(&q))
        .await
        .expect("bus.remove");
    for i in 4..7 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    settle_time().await;
    assert_eq!(
        seen.len(),
        4,
        "a listener of a removed queue was called again"
    );
    let stats = bus.stats(&q).await.unwrap();
    assert_eq!((stats.ready, stats.listeners), (3, 0), "{stats:?}");

    // Other queues keep their listeners.
    bus.push(&other, "still here").await.expect("push");
    other_seen.wait_for(1, LIMIT).await;
    assert_eq!(bus.stats(&other).await.unwrap().listeners, 1);

    // The queue itself still works: a new listener gets what waited.
    let next = Collector::new();
    let d = next.listen(&bus, &q).await;
    let got = next.wait_for(3, LIMIT).await;
    let mut indexes: Vec<u32> = got.iter().map(index_of).collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [4, 5, 6]);

    // Removing the handles of already-stopped listeners is fine.
    a.remove().await.expect("remove a stopped listener");
    b.remove().await.expect("remove a stopped listener");
    for l in [c, d] {
        l.remove().await.expect("remove");
    }
    shutdown(bus).await;
}

pub async fn remove_twice_and_remove_unknown_queue_are_ok(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("remove-twice");
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    listener.remove().await.expect("first remove");
    bounded("second remove", LIMIT, listener.remove())
        .await
        .expect("second remove");
    bus.remove(&q).await.expect("bus.remove");
    bus.remove(&q).await.expect("bus.remove twice");
    bus.remove(&unique_queue("never-used"))
        .await
        .expect("bus.remove of an unknown queue");
    bus.push(&q, "kept").await.expect("push");
    settle_time().await;
    assert!(seen.is_empty());
    assert_eq!(bus.stats(&q).await.unwrap().ready, 1);
    shutdown(bus).await;
}

/// Adds a listener to `q` whose handler takes 200 ms per delivery; returns it
/// with the indexes of the deliveries it started and those it finished.
async fn add_slow_listener(bus: &Bus, q: &str) -> (Listener, Collector<u32>, Collector<u32>) {
    let started: Collector<u32> = Collector::new();
    let finished: Collector<u32> = Collector::new();
    let (s, f) = (started.clone(), finished.clone());
    let listener = bus
        .add_listener(q, move |d: Delivery| {
            let (s, f) = (s.clone(), f.clone());
            async move {
                s.push(index_of(&d));
                tokio::time::sleep(Duration::from_millis(200)).await;
                f.push(index_of(&d));
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    (listener, started, finished)
}

pub async fn stopped_listener_finishes_delivery_in_hand(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("in-hand");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(bus.push(&q, indexed(i)).await.expect("push"));
    }
    let (listener, started, finished) = add_slow_listener(&bus, &q).await;
    let first = started.wait_for(1, LIMIT).await[0];
    assert_eq!(first, 0, "FIFO: the first message is handled first");
    bounded("remove while a handler runs", LIMIT, listener.remove())
        .await
        .expect("remove");

    assert_eq!(
        finished.snapshot(),
        [0],
        "remove returns after the delivery in hand finished"
    );
    assert_eq!(started.len(), 1, "nothing was started after the stop");
    let stats = bus.stats(&q).await.unwrap();
    assert_eq!(
        (stats.ready, stats.in_flight, stats.delayed),
        (4, 0, 0),
        "the finished one is acknowledged, the prefetched ones are back: {stats:?}"
    );

    let mut rest = Vec::new();
    for _ in 0..4 {
        rest.push(bus.receive(&q, LIMIT).await.expect("receive"));
    }
    let indexes: Vec<u32> = rest.iter().map(index_of).collect();
    assert_eq!(
        indexes,
        [1, 2, 3, 4],
        "handed-back messages keep their order"
    );
    assert!(
        rest.iter().all(|d| d.attempt() == 1),
        "handed-back messages were not attempted"
    );
    assert!(
        rest.iter().all(|d| d.id() != &ids[0]),
        "the finished delivery was redelivered"
    );
    assert!(matches!(
        bus.receive(&q, Duration::from_millis(200)).await,
        Err(Error::Timeout)
    ));
    settle_time().await;
    assert_eq!(started.len(), 1);
    shutdown(bus).await;
}

pub async fn bus_remove_finishes_delivery_in_hand(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("bus-remove-in-hand");
    for i in 0..4 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let (_listener, started, finished) = add_slow_listener(&bus, &q).await;
    started.wait_for(1, LIMIT).await;
    bounded("bus.remove while a handler runs", LIMIT, bus.remove(&q))
        .await
        .expect("remove");
    assert_eq!(
        finished.snapshot(),
        [0],
        "bus.remove returns after the delivery in hand finished"
    );
    let s = bus.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.in_flight, s.listeners), (3, 0, 0), "{s:?}");
    settle_time().await;
    assert_eq!(started.len(), 1);
    shutdown(bus).await;
}
