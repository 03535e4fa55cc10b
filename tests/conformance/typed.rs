//! Typed queues and `Reject`: values in and out through a codec; what cannot succeed goes to `.dead` at once.

use std::collections::BTreeMap;

use actix::prelude::*;
use actorbus::{Delivery, Error, HandlerResult, PushOptions, Reject, Typed};
use serde::{Deserialize, Serialize};

use super::{bus_with, settle_time, shutdown};
use crate::support::{
    fast_config, stats_until, unique_queue, ActorThread, BusFactory, Collector, LIMIT,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    item: String,
    cents: u64,
}

fn order(id: u32) -> Order {
    Order {
        id,
        item: format!("item-{id}"),
        cents: 100 * u64::from(id),
    }
}

/// A config whose retries would take five attempts: a dead letter after
/// one shows that nothing was retried.
fn five_attempts() -> actorbus::Config {
    let mut config = fast_config();
    config.queue.retry.max_attempts = 5;
    config
}

pub async fn typed_values_round_trip_as_plain_json(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("typed");
    let orders = bus.queue::<Order>(&q);
    assert_eq!(orders.name(), q);
    let seen: Collector<(Order, String, u32, Option<String>)> = Collector::new();
    let s = seen.clone();
    let listener = orders
        .add_listener(move |o: Typed<Order>| {
            let d = o.delivery();
            let tenant = d.headers().get("tenant").cloned();
            s.push((
                o.clone().into_inner(),
                d.id().to_string(),
                d.attempt(),
                tenant,
            ));
            async { Ok(()) }
        })
        .await
        .expect("add_listener");
    let id = orders.push(&order(1)).await.expect("typed push");
    let opts = PushOptions::default().with_header("tenant", "acme");
    orders.push_with(&order(2), opts).await.expect("push_with");
    // The wire format is plain JSON: an untyped push of JSON reaches it.
    bus.push(&q, r#"{"id":3,"item":"item-3","cents":300}"#)
        .await
        .expect("raw push");

    let mut got = seen.wait_for(3, LIMIT).await;
    got.sort_by_key(|(o, ..)| o.id);
    assert_eq!(
        got.iter().map(|(o, ..)| o.clone()).collect::<Vec<_>>(),
        [order(1), order(2), order(3)]
    );
    assert_eq!(got[0].1, id.to_string(), "the delivery keeps the pushed id");
    assert_eq!(got[0].2, 1);
    assert_eq!(got[1].3.as_deref(), Some("acme"), "headers travel");
    listener.remove().await.expect("remove");

    // And a typed push is plain JSON for an untyped reader.
    orders.push(&order(4)).await.expect("push");
    let raw = bus.receive(&q, LIMIT).await.expect("receive");
    let value: serde_json::Value = raw.json().expect("plain JSON on the wire");
    assert_eq!(value["item"], "item-4");
    shutdown(bus).await;
}

pub async fn undecodable_payload_is_dead_lettered_at_once(factory: &BusFactory) {
    let bus = bus_with(factory, five_attempts()).await;
    let q = unique_queue("typed-bad");
    let orders = bus.queue::<Order>(&q);
    let calls: Collector<u32> = Collector::new();
    let c = calls.clone();
    let listener = orders
        .add_listener(move |o: Typed<Order>| {
            c.push(o.id);
            async { Ok(()) }
        })
        .await
        .expect("add_listener");
    let bad = bus.push(&q, "not an order").await.expect("push");
    orders.push(&order(7)).await.expect("push");

    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    let d = bus
        .receive(&format!("{q}.dead"), LIMIT)
        .await
        .expect("dead letter");
    assert_eq!(d.id(), &bad);
    assert_eq!(d.as_str().unwrap(), "not an order", "payload unchanged");
    let h = d.headers();
    assert_eq!(h.get("x-attempts").map(String::as_str), Some("1"), "{h:?}");
    let error = h.get("x-error").expect("x-error");
    assert!(error.contains("Order"), "x-error names the type: {error}");
    assert!(
        error.contains("expected"),
        "x-error carries serde's error: {error}"
    );
    assert_eq!(
        calls.wait_for(1, LIMIT).await,
        [7],
        "the good one got through"
    );
    settle_time().await;
    assert_eq!(calls.len(), 1, "the handler never saw the bad payload");
    let stats = bus.stats(&q).await.expect("stats");
    assert_eq!(
        stats.ready + stats.delayed + stats.in_flight,
        0,
        "{stats:?}"
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn reject_dead_letters_at_once_without_retries(factory: &BusFactory) {
    let bus = bus_with(factory, five_attempts()).await;
    let q = unique_queue("reject");
    let attempts: Collector<u32> = Collector::new();
    let a = attempts.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            a.push(d.attempt());
            async { Err(Reject::new("order total is negative").into()) }
        })
        .await
        .expect("add_listener");
    let opts = PushOptions::default().with_header("tenant", "acme");
    let id = bus.push_with(&q, "-5", opts).await.expect("push");

    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    let d = bus
        .receive(&format!("{q}.dead"), LIMIT)
        .await
        .expect("dead letter");
    assert_eq!(d.id(), &id);
    let h = d.headers();
    assert_eq!(
        h.get("x-error").map(String::as_str),
        Some("order total is negative")
    );
    assert_eq!(h.get("x-attempts").map(String::as_str), Some("1"));
    assert!(h.contains_key("x-failed-at"), "{h:?}");
    assert_eq!(h.get("tenant").map(String::as_str), Some("acme"));
    settle_time().await;
    assert_eq!(
        attempts.snapshot(),
        [1],
        "a rejected message is not retried"
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

/// Keeps the ids of the orders it accepts; rejects orders of no value.
struct OrderDesk(Collector<u32>);

impl Actor for OrderDesk {
    type Context = Context<Self>;
}

impl Handler<Typed<Order>> for OrderDesk {
    type Result = HandlerResult;

    fn handle(&mut self, order: Typed<Order>, _ctx: &mut Context<Self>) -> HandlerResult {
        if order.cents == 0 {
            return Err(Reject::new(format!("order {} has no value", order.id)).into());
        }
        self.0.push(order.id);
        Ok(())
    }
}

pub async fn typed_actor_gets_values_and_can_reject(factory: &BusFactory) {
    let bus = bus_with(factory, five_attempts()).await;
    let q = unique_queue("typed-actor");
    let orders = bus.queue::<Order>(&q);
    let accepted = Collector::new();
    let desk_accepted = accepted.clone();
    let desk = ActorThread::start(move || OrderDesk(desk_accepted));
    let listener = orders
        .subscribe(desk.addr.clone().recipient())
        .await
        .expect("subscribe");
    let mut free = order(2);
    free.cents = 0;
    for o in [order(1), free, order(3)] {
        orders.push(&o).await.expect("push");
    }
    bus.push(&q, "[1, 2]").await.expect("push");

    let mut got = accepted.wait_for(2, LIMIT).await;
    got.sort_unstable();
    assert_eq!(got, [1, 3]);
    stats_until(&bus, &q, "dead == 2", |s| s.dead == 2).await;
    let mut errors = Vec::new();
    for _ in 0..2 {
        let d = bus
            .receive(&format!("{q}.dead"), LIMIT)
            .await
            .expect("dead");
        assert_eq!(d.headers().get("x-attempts").map(String::as_str), Some("1"));
        errors.push(d.headers()["x-error"].clone());
    }
    errors.sort();
    assert!(errors[0].contains("cannot decode"), "{errors:?}");
    assert_eq!(errors[1], "order 2 has no value");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn typed_push_of_an_unencodable_value_is_a_codec_error(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("typed-enc");
    // JSON object keys must be strings.
    let queue = bus.queue::<BTreeMap<Vec<u8>, u8>>(&q);
    let value = BTreeMap::from([(vec![1u8], 1u8)]);
    match queue.push(&value).await {
        Err(Error::Codec { .. }) => {}
        other => panic!("expected Error::Codec, got {other:?}"),
    }
    match bus.queue::<u8>("").push(&1).await {
        Err(Error::InvalidQueueName { .. }) => {}
        other => panic!("expected InvalidQueueName, got {other:?}"),
    }
    assert_eq!(
        bus.stats(&q).await.expect("stats").ready,
        0,
        "nothing stored"
    );
    shutdown(bus).await;
}
