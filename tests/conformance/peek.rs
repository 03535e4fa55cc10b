//! Peek: copies of the ready messages, in order, without taking them; and the errors of peek and redrive.

use std::collections::BTreeSet;
use std::time::Duration;

use actorbus::{Delivery, Error, MessageId, PushOptions};

use super::{bus_with, shutdown};
use crate::support::{
    fast_config, index_of, indexed, stats_until, unique_queue, BusFactory, Collector, LIMIT,
};

fn indices(deliveries: &[Delivery]) -> Vec<u32> {
    deliveries.iter().map(index_of).collect()
}

pub async fn peek_shows_ready_messages_in_order_without_taking_them(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("peek");
    let never = unique_queue("peek-never-used");
    assert!(bus.peek(&never, 10).await.expect("peek unknown").is_empty());

    let mut ids: Vec<MessageId> = Vec::new();
    for i in 0..5 {
        let opts = PushOptions::default().with_header("tenant", format!("t{i}"));
        ids.push(bus.push_with(&q, indexed(i), opts).await.expect("push"));
    }
    let later = PushOptions::default().with_delay(Duration::from_secs(600));
    bus.push_with(&q, indexed(99), later)
        .await
        .expect("push delayed");

    let seen = bus.peek(&q, 10).await.expect("peek");
    assert_eq!(
        indices(&seen),
        [0, 1, 2, 3, 4],
        "ready ones, in order, no delayed one"
    );
    for (i, d) in seen.iter().enumerate() {
        assert_eq!(d.id(), &ids[i]);
        assert_eq!(d.queue(), q);
        assert_eq!(d.attempt(), 1);
        assert_eq!(d.headers()["tenant"], format!("t{i}"), "{:?}", d.headers());
    }
    assert_eq!(indices(&bus.peek(&q, 2).await.expect("peek 2")), [0, 1]);
    assert!(bus.peek(&q, 0).await.expect("peek 0").is_empty());
    let s = bus.stats(&q).await.expect("stats");
    assert_eq!(
        (s.ready, s.in_flight, s.delayed),
        (5, 0, 1),
        "nothing was taken: {s:?}"
    );
    assert_eq!(
        indices(&bus.peek(&q, 10).await.expect("peek again")),
        [0, 1, 2, 3, 4],
        "a second look sees the same"
    );

    // Every message still reaches a listener, once.
    let got = Collector::new();
    let listener = got.listen(&bus, &q).await;
    let delivered = got.wait_for(5, LIMIT).await;
    let delivered_ids: BTreeSet<&MessageId> = delivered.iter().map(Delivery::id).collect();
    assert_eq!(
        delivered_ids,
        ids.iter().collect(),
        "each message delivered"
    );
    stats_until(&bus, &q, "acknowledged", |s| s.ready + s.in_flight == 0).await;
    assert!(bus.peek(&q, 10).await.expect("peek drained").is_empty());
    assert_eq!(got.len(), 5, "no message delivered twice");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn peek_and_redrive_refuse_bad_names_and_a_closed_bus(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    for name in ["", "amq.peek", "a\nb"] {
        match bus.peek(name, 1).await {
            Err(Error::InvalidQueueName { name: n, .. }) => assert_eq!(n, name),
            other => panic!("peek({name:?}): {other:?}"),
        }
        match bus.redrive(name, 1).await {
            Err(Error::InvalidQueueName { name: n, .. }) => assert_eq!(n, name),
            other => panic!("redrive({name:?}): {other:?}"),
        }
    }
    let q = unique_queue("peek-closed");
    let clone = bus.clone();
    shutdown(bus).await;
    assert!(matches!(clone.peek(&q, 1).await, Err(Error::Closed)));
    assert!(matches!(clone.redrive(&q, 1).await, Err(Error::Closed)));
}
