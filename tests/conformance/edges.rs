//! Hard edges: the largest durations a caller can pass, and headers the bus
//! cannot carry. Nothing panics, bad input is a typed error before any I/O,
//! and one bad call never disturbs the others.

use std::time::Duration;

use actorbus::{Error, PushOptions};

use super::{bus_with, shutdown};
use crate::support::{bounded, fast_config, stats_until, unique_queue, BusFactory, LIMIT};

pub async fn longest_delay_is_held_as_long_as_possible(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("edge-delay");
    let forever = PushOptions::default().with_delay(Duration::MAX);
    bounded(
        "push with Duration::MAX",
        LIMIT,
        bus.push_with(&q, "later", forever),
    )
    .await
    .expect("a delay of Duration::MAX is as long as possible, not an error");
    let id = bus
        .push(&q, "now")
        .await
        .expect("the next push is unaffected");
    let d = bounded("receive", LIMIT, bus.receive(&q, LIMIT))
        .await
        .expect("the ready message arrives");
    assert_eq!(d.id(), &id, "the held message stays held");
    let s = stats_until(&bus, &q, "one delayed", |s| s.delayed == 1).await;
    assert_eq!((s.ready, s.in_flight), (0, 0), "{s:?}");
    bus.purge(&q).await.expect("purge");
    shutdown(bus).await;
}

pub async fn receive_waits_as_long_as_asked(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("edge-receive");
    let waiting = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, Duration::MAX).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = bus.push(&q, "for the patient").await.expect("push");
    let d = bounded("receive(Duration::MAX)", LIMIT, waiting)
        .await
        .expect("the receive task does not panic")
        .expect("receive gets the message");
    assert_eq!(d.id(), &id);
    shutdown(bus).await;
}

pub async fn headers_the_bus_cannot_carry_are_refused(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("edge-headers");
    for name in ["", "x-attempt", "X-Error", "line\nbreak"] {
        let opts = PushOptions::default().with_header(name, "v");
        let pushed = bus.push_with(&q, "m", opts).await;
        assert!(
            matches!(pushed, Err(Error::InvalidHeader { .. })),
            "header {name:?}: {pushed:?}"
        );
    }
    let long = PushOptions::default().with_header("h".repeat(256), "v");
    assert!(matches!(
        bus.push_with(&q, "m", long).await,
        Err(Error::InvalidHeader { .. })
    ));
    let s = bus.stats(&q).await.expect("stats");
    assert_eq!((s.ready, s.delayed), (0, 0), "nothing was stored: {s:?}");
    let fine = PushOptions::default().with_header("tenant", "acme");
    bus.push_with(&q, "m", fine)
        .await
        .expect("an ordinary header");
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.headers()["tenant"], "acme");
    shutdown(bus).await;
}
