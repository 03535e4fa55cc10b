//! Stats and purge, as stored, delayed and in-flight messages count: `purge` drops only ready messages.

use std::sync::Arc;
use std::time::Duration;

use actorbus::{Delivery, Error, PushOptions};
use tokio::sync::Semaphore;

use super::{bus_with, shutdown};
use crate::support::{fast_config, indexed, stats_until, unique_queue, BusFactory, LIMIT};

pub async fn stats_count_ready_delayed_in_flight_and_listeners(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("stats");
    let fresh = bus
        .stats(&unique_queue("never-used"))
        .await
        .expect("stats of an unknown queue");
    assert_eq!(
        (
            fresh.ready,
            fresh.in_flight,
            fresh.delayed,
            fresh.dead,
            fresh.listeners
        ),
        (0, 0, 0, 0, 0)
    );

    for i in 0..3 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    for i in 3..5 {
        let opts = PushOptions::default().with_delay(Duration::from_secs(600));
        bus.push_with(&q, indexed(i), opts)
            .await
            .expect("push delayed");
    }
    let s = bus.stats(&q).await.unwrap();
    assert_eq!(
        (s.ready, s.in_flight, s.delayed, s.dead, s.listeners),
        (3, 0, 2, 0, 0),
        "{s:?}"
    );

    // A listener that holds its deliveries until the gate opens.
    let gate = Arc::new(Semaphore::new(0));
    let g = gate.clone();
    let listener = bus
        .add_listener(&q, move |_d: Delivery| {
            let g = g.clone();
            async move {
                g.acquire().await.expect("gate").forget();
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    let s = stats_until(&bus, &q, "3 in flight", |s| s.in_flight == 3).await;
    assert_eq!(
        (s.ready, s.in_flight, s.delayed, s.listeners),
        (0, 3, 2, 1),
        "{s:?}"
    );

    gate.add_permits(3);
    let s = stats_until(&bus, &q, "in flight drained", |s| s.in_flight == 0).await;
    assert_eq!(
        (s.ready, s.in_flight, s.delayed, s.listeners),
        (0, 0, 2, 1),
        "{s:?}"
    );
    listener.remove().await.expect("remove");
    let s = bus.stats(&q).await.unwrap();
    assert_eq!(
        (s.ready, s.in_flight, s.delayed, s.listeners),
        (0, 0, 2, 0),
        "{s:?}"
    );
    shutdown(bus).await;
}

pub async fn purge_drops_ready_messages_only(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("purge");
    assert_eq!(
        bus.purge(&unique_queue("never-used"))
            .await
            .expect("purge unknown"),
        0
    );
    for i in 0..7 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let opts = PushOptions::default().with_delay(Duration::from_millis(400));
    let delayed = bus
        .push_with(&q, "delayed", opts)
        .await
        .expect("push delayed");
    assert_eq!(bus.purge(&q).await.expect("purge"), 7);
    let s = bus.stats(&q).await.unwrap();
    assert_eq!(
        (s.ready, s.delayed),
        (0, 1),
        "purge keeps delayed messages: {s:?}"
    );
    assert_eq!(bus.purge(&q).await.expect("purge again"), 0);

    // The purged ones are gone for good; the delayed one still comes.
    let d = bus.receive(&q, LIMIT).await.expect("the delayed message");
    assert_eq!(d.id(), &delayed);
    assert!(matches!(
        bus.receive(&q, Duration::from_millis(200)).await,
        Err(Error::Timeout)
    ));
    // The queue works after a purge.
    let id = bus.push(&q, "after purge").await.expect("push");
    assert_eq!(bus.receive(&q, LIMIT).await.expect("receive").id(), &id);
    shutdown(bus).await;
}
