//! Codecs of typed queues beyond JSON: MessagePack (cargo feature `msgpack`).

#![cfg(feature = "msgpack")]

use actorbus::{Bus, MessagePack, Typed};
use serde::{Deserialize, Serialize};

use crate::support::{stats_until, unique_queue, Collector, LIMIT};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    item: String,
}

fn order(id: u32) -> Order {
    Order {
        id,
        item: format!("item-{id}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_codec_round_trips_and_dead_letters_what_does_not_decode() {
    let bus = Bus::memory();
    let q = unique_queue("typed-msgpack");
    let orders = bus.queue::<Order>(&q).with_codec(MessagePack);
    orders.push(&order(5)).await.expect("push");
    let raw = bus.receive(&q, LIMIT).await.expect("receive");
    let back: Order = rmp_serde::from_slice(raw.payload()).expect("plain MessagePack");
    assert_eq!(back, order(5));

    let seen = Collector::new();
    let s = seen.clone();
    let listener = orders
        .add_listener(move |o: Typed<Order>| {
            s.push(o.into_inner());
            async { Ok(()) }
        })
        .await
        .expect("add_listener");
    orders.push(&order(6)).await.expect("push");
    bus.push(&q, r#"{"id":1}"#).await.expect("push");
    assert_eq!(seen.wait_for(1, LIMIT).await, [order(6)]);
    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    let dead = bus
        .receive(&format!("{q}.dead"), LIMIT)
        .await
        .expect("dead");
    assert!(
        dead.headers()["x-error"].contains("Order"),
        "{:?}",
        dead.headers()
    );
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
}
