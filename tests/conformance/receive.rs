//! Receive: takes and acknowledges one message, waits, times out, competes with others.

use std::time::{Duration, Instant};

use actorbus::Error;

use super::{bus_with, settle_time, shutdown};
use crate::support::{
    bounded, fast_config, index_of, indexed, unique_queue, BusFactory, Collector, LIMIT,
};

pub async fn receive_takes_one_message_and_acknowledges_it(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("receive");
    let id = bus.push(&q, "one").await.expect("push");
    let two = bus.push(&q, "two").await.expect("push");
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &id);
    assert_eq!(d.as_str().unwrap(), "one");
    assert_eq!(d.attempt(), 1);
    assert_eq!(d.queue(), q);
    let stats = bus.stats(&q).await.unwrap();
    assert_eq!(
        (stats.ready, stats.in_flight),
        (1, 0),
        "a received message is gone: {stats:?}"
    );

    // A later listener gets only what was not received.
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let got = seen.wait_for(1, LIMIT).await;
    assert_eq!(got[0].id(), &two);
    settle_time().await;
    assert_eq!(seen.len(), 1, "the received message was delivered again");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn receive_waits_for_a_later_push(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("receive-wait");
    let waiting = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, LIMIT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = bus.push(&q, "arrives later").await.expect("push");
    let d = bounded("receive", LIMIT, waiting)
        .await
        .unwrap()
        .expect("receive");
    assert_eq!(d.id(), &id);
    let stats = bus.stats(&q).await.unwrap();
    assert_eq!((stats.ready, stats.in_flight), (0, 0));
    shutdown(bus).await;
}

pub async fn receive_times_out_on_empty_queue(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("receive-empty");
    let start = Instant::now();
    let got = bounded(
        "receive",
        LIMIT,
        bus.receive(&q, Duration::from_millis(100)),
    )
    .await;
    assert!(
        matches!(got, Err(Error::Timeout)),
        "expected Err(Timeout), got {got:?}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "timed out early"
    );
    // A timed-out receive took nothing: a message pushed afterwards waits for the next taker.
    let id = bus.push(&q, "after").await.expect("push");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        bus.stats(&q).await.unwrap().ready,
        1,
        "a timed-out receive swallowed a message"
    );
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &id);
    shutdown(bus).await;
}

pub async fn concurrent_receives_each_get_a_different_message(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("receivers");
    let mut waiting = Vec::new();
    for _ in 0..5 {
        let (bus, q) = (bus.clone(), q.clone());
        waiting.push(tokio::spawn(async move {
            bus.receive(&q, Duration::from_millis(1500)).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..3 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let mut got = Vec::new();
    let mut timeouts = 0;
    for w in waiting {
        match bounded("receive", LIMIT, w).await.unwrap() {
            Ok(d) => got.push(index_of(&d)),
            Err(Error::Timeout) => timeouts += 1,
            Err(e) => panic!("unexpected receive error: {e}"),
        }
    }
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2], "each message to exactly one receive");
    assert_eq!(timeouts, 2);
    let s = bus.stats(&q).await.unwrap();
    assert_eq!((s.ready, s.in_flight), (0, 0));
    shutdown(bus).await;
}

pub async fn abandoned_receive_does_not_swallow_a_message(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("abandoned-receive");
    // The caller gives up long before the receive's own timeout.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        bus.receive(&q, Duration::from_secs(600)),
    )
    .await;
    assert!(
        gave_up.is_err(),
        "nothing was pushed, yet receive returned {gave_up:?}"
    );
    let id = bus.push(&q, "for whoever asks next").await.expect("push");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        bus.stats(&q).await.unwrap().ready,
        1,
        "an abandoned receive took the message"
    );
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &id);
    shutdown(bus).await;
}
