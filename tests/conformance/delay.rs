//! Delays: a delayed message is held back, then delivered like any other.

use std::time::{Duration, Instant};

use actorbus::{Delivery, Error, PushOptions};

use super::{bus_with, shutdown};
use crate::support::{fast_config, unique_queue, BusFactory, Collector, LIMIT};

pub async fn delayed_message_waits_then_is_delivered(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("delay");
    let start = Instant::now();
    let opts = PushOptions::default().with_delay(Duration::from_millis(300));
    let id = bus
        .push_with(&q, "later", opts)
        .await
        .expect("push_with delay");
    let stats = bus.stats(&q).await.unwrap();
    assert_eq!((stats.delayed, stats.ready), (1, 0), "held back: {stats:?}");

    let early = bus.receive(&q, Duration::from_millis(150)).await;
    if start.elapsed() < Duration::from_millis(300) {
        assert!(
            matches!(early, Err(Error::Timeout)),
            "delivered before its delay: {early:?}"
        );
        let d = bus
            .receive(&q, LIMIT)
            .await
            .expect("delivered after the delay");
        assert_eq!(d.id(), &id);
    } else {
        // A very slow machine: the 150 ms receive ended past the delay.
        // Then all that can be checked is that it was not early.
        let d = match early {
            Ok(d) => d,
            Err(_) => bus
                .receive(&q, LIMIT)
                .await
                .expect("delivered after the delay"),
        };
        assert_eq!(d.id(), &id);
    }
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "received after {:?}, before its 300 ms delay",
        start.elapsed()
    );
    let stats = bus.stats(&q).await.unwrap();
    assert_eq!((stats.delayed, stats.ready, stats.in_flight), (0, 0, 0));
    shutdown(bus).await;
}

pub async fn delayed_message_reaches_a_listener_after_its_delay(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("delay-listen");
    let arrived: Collector<Duration> = Collector::new();
    let start = Instant::now();
    let a = arrived.clone();
    let listener = bus
        .add_listener(&q, move |_d: Delivery| {
            a.push(start.elapsed());
            async { Ok(()) }
        })
        .await
        .expect("add_listener");
    let opts = PushOptions::default().with_delay(Duration::from_millis(300));
    bus.push_with(&q, "later", opts)
        .await
        .expect("push_with delay");
    let got = arrived.wait_for(1, LIMIT).await;
    assert!(
        got[0] >= Duration::from_millis(300),
        "delivered after {:?}, before its delay",
        got[0]
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn delayed_message_does_not_block_ready_ones(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("delay-mixed");
    let opts = PushOptions::default().with_delay(Duration::from_millis(500));
    let late = bus.push_with(&q, "late", opts).await.expect("push delayed");
    let now = bus.push(&q, "now").await.expect("push");
    let first = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(
        first.id(),
        &now,
        "a ready message is not held up by a delayed one"
    );
    let second = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(second.id(), &late);
    shutdown(bus).await;
}
