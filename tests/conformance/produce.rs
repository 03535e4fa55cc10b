//! Storage before success, producing: push, ids, payloads, JSON, default queue, headers.

use std::collections::{BTreeMap, HashSet};

use actorbus::{Delivery, PushOptions};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{bus_with, settle_time, shutdown};
use crate::support::{fast_config, index_of, indexed, unique_queue, BusFactory, Collector, LIMIT};

pub async fn push_before_listener_is_delivered_later(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("early");
    let id = bus.push(&q, "hello").await.expect("push");
    assert_eq!(
        bus.stats(&q).await.expect("stats").ready,
        1,
        "a pushed message is stored"
    );

    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let got = seen.wait_for(1, LIMIT).await;
    assert_eq!(
        got[0].id(),
        &id,
        "the delivery's id is the one push returned"
    );
    assert_eq!(got[0].queue(), q);
    assert_eq!(got[0].payload(), &Bytes::from_static(b"hello"));
    assert_eq!(got[0].as_str().expect("utf-8"), "hello");
    assert_eq!(got[0].attempt(), 1);

    settle_time().await;
    assert_eq!(seen.len(), 1, "delivered exactly once");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn push_returns_distinct_ids(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("ids");
    let mut ids = Vec::new();
    for i in 0..50 {
        ids.push(bus.push(&q, indexed(i)).await.expect("push"));
    }
    let distinct: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(distinct.len(), 50, "every push gets its own id");

    for (i, id) in ids.iter().enumerate() {
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(index_of(&d), i as u32);
        assert_eq!(d.id(), id);
    }
    shutdown(bus).await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    item: String,
    tags: Vec<String>,
    price: Option<f64>,
}

pub async fn payloads_and_json_round_trip(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("payloads");
    let order = Order {
        id: 42,
        item: "tea ☕".into(),
        tags: vec!["hot".into(), "green".into()],
        price: Some(3.5),
    };
    let binary: Vec<u8> = vec![0, 159, 146, 150, 255, 254, 0, 1, 0xC0, 0x80];
    let big: Vec<u8> = (0..(1 << 20)).map(|i: u32| (i % 251) as u8).collect();
    let payloads: Vec<Bytes> = vec![
        Bytes::new(),
        Bytes::from(binary.clone()),
        Bytes::from_static("héllo wörld\n".as_bytes()),
        Bytes::from(big.clone()),
    ];

    let json_id = bus.push_json(&q, &order).await.expect("push_json");
    let mut ids = Vec::new();
    for p in &payloads {
        ids.push(bus.push(&q, p.clone()).await.expect("push"));
    }

    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let got = seen.wait_for(1 + payloads.len(), LIMIT).await;
    let by_id = |id: &actorbus::MessageId| -> Delivery {
        got.iter()
            .find(|d| d.id() == id)
            .cloned()
            .unwrap_or_else(|| panic!("no delivery with id {id}"))
    };

    let json = by_id(&json_id);
    assert_eq!(json.json::<Order>().expect("json"), order);
    assert_eq!(
        json.payload(),
        &Bytes::from(serde_json::to_vec(&order).unwrap())
    );
    for (p, id) in payloads.iter().zip(&ids) {
        let d = by_id(id);
        assert_eq!(d.payload().len(), p.len());
        assert!(
            d.payload() == p,
            "payload of {} bytes changed on the way",
            p.len()
        );
        assert_eq!(d.attempt(), 1);
        assert_eq!(d.queue(), q);
    }
    assert!(by_id(&ids[0]).payload().is_empty());
    assert_eq!(by_id(&ids[1]).payload().as_ref(), &binary[..]);
    assert_eq!(by_id(&ids[2]).as_str().expect("utf-8"), "héllo wörld\n");
    assert_eq!(by_id(&ids[3]).payload().as_ref(), &big[..]);

    settle_time().await;
    assert_eq!(seen.len(), 1 + payloads.len(), "nothing delivered twice");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn push_default_uses_configured_default_queue(factory: &BusFactory) {
    let mut config = fast_config();
    let q = unique_queue("default");
    config.queue.default = q.clone();
    let bus = bus_with(factory, config).await;
    let id = bus
        .push_default("to the default")
        .await
        .expect("push_default");
    assert_eq!(bus.stats(&q).await.expect("stats").ready, 1);
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &id);
    assert_eq!(d.queue(), q);
    assert_eq!(d.as_str().unwrap(), "to the default");
    shutdown(bus).await;
}

pub async fn headers_arrive_with_the_delivery(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("headers");
    let headers = BTreeMap::from([
        ("tenant".to_owned(), "acme".to_owned()),
        ("trace-id".to_owned(), "abc 123 / é".to_owned()),
        ("empty".to_owned(), String::new()),
    ]);
    let opts = PushOptions {
        headers: headers.clone(),
        ..Default::default()
    };
    let id = bus
        .push_with(&q, "with headers", opts)
        .await
        .expect("push_with");
    let plain = bus.push(&q, "without").await.expect("push");

    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let got = seen.wait_for(2, LIMIT).await;
    let with = got
        .iter()
        .find(|d| d.id() == &id)
        .expect("message with headers");
    for (k, v) in &headers {
        assert_eq!(
            with.headers().get(k),
            Some(v),
            "header {k:?} lost or changed"
        );
    }
    assert!(
        !with.headers().contains_key("x-error"),
        "a first delivery carries no dead-letter headers: {:?}",
        with.headers()
    );
    assert_eq!(with.attempt(), 1);
    let without = got
        .iter()
        .find(|d| d.id() == &plain)
        .expect("plain message");
    assert!(
        without.headers().keys().all(|k| !headers.contains_key(k)),
        "headers leaked into another message: {:?}",
        without.headers()
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}
