//! Metrics (feature `metrics`): each event counted once on every driver, labelled by queue and driver.

use actorbus::{Delivery, Error};

use super::{bus_with, settle_time, shutdown};
use crate::support::metrics::{current, driver_label, prometheus};
use crate::support::{eventually, fast_config, unique_queue, BusFactory, LIMIT};

pub async fn every_event_is_counted_once(factory: &BusFactory) {
    // Before the bus: its queues take their handles from this recorder.
    prometheus();
    let mut config = fast_config();
    config.queue.retry.max_attempts = 2;
    config.queue.max_payload = 1024;
    let bus = bus_with(factory, config).await;
    let driver = driver_label(&bus);
    let q = unique_queue("metrics");
    let count = |name: &str| current(name, &q, driver);

    // "ok" is handled at once, "flaky" on its second attempt, "poison" never.
    let listener = bus
        .add_listener(&q, |d: Delivery| {
            let verdict = match (d.as_str(), d.attempt()) {
                (Ok("ok"), _) => Ok(()),
                (Ok("flaky"), 1) => Err("flaky: first attempt fails".into()),
                (Ok("flaky"), _) => Ok(()),
                _ => Err("poison: never handled".into()),
            };
            async move { verdict }
        })
        .await
        .expect("add_listener");
    for payload in ["ok", "flaky", "poison"] {
        bus.push(&q, payload).await.expect("push");
    }
    let refused = bus.push(&q, vec![0u8; 1025]).await;
    assert!(
        matches!(refused, Err(Error::PayloadTooLarge { .. })),
        "{refused:?}"
    );

    eventually("two acks and a dead letter counted", LIMIT, || async {
        count("actorbus_acked_total") >= 2.0 && count("actorbus_dead_lettered_total") >= 1.0
    })
    .await;
    // A second count of anything would show by now.
    settle_time().await;
    assert_eq!(count("actorbus_pushed_total"), 3.0);
    assert_eq!(count("actorbus_push_errors_total"), 1.0);
    // ok: 1 attempt; flaky: 2; poison: 2 (max_attempts).
    assert_eq!(count("actorbus_delivered_total"), 5.0);
    assert_eq!(count("actorbus_acked_total"), 2.0);
    assert_eq!(count("actorbus_retried_total"), 2.0);
    assert_eq!(count("actorbus_dead_lettered_total"), 1.0);
    assert_eq!(count("actorbus_handler_seconds_count"), 5.0);
    assert_eq!(count("actorbus_delivery_latency_seconds_count"), 5.0);
    assert_eq!(count("actorbus_listeners"), 1.0);
    eventually("nothing held", LIMIT, || async {
        count("actorbus_in_flight") == 0.0
    })
    .await;
    // Sampled from `stats` once a second.
    eventually("the sampler sees the dead letter", LIMIT, || async {
        count("actorbus_dead") == 1.0 && count("actorbus_ready") == 0.0
    })
    .await;
    listener.remove().await.expect("remove");
    eventually("no listener", LIMIT, || async {
        count("actorbus_listeners") == 0.0
    })
    .await;

    // `receive` delivers and acknowledges in one.
    let r = unique_queue("metrics-receive");
    bus.push(&r, "taken").await.expect("push");
    bus.receive(&r, LIMIT).await.expect("receive");
    let counted = |name: &str| current(name, &r, driver);
    assert_eq!(counted("actorbus_pushed_total"), 1.0);
    assert_eq!(counted("actorbus_delivered_total"), 1.0);
    assert_eq!(counted("actorbus_acked_total"), 1.0);
    assert_eq!(counted("actorbus_delivery_latency_seconds_count"), 1.0);

    // Leave no dead letter on a broker.
    let dead = format!("{q}.dead");
    bus.receive(&dead, LIMIT).await.expect("the dead letter");
    shutdown(bus).await;
}
