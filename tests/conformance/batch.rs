//! Storage before success, in batches: push_batch and push_batch_with.

use std::collections::HashSet;
use std::time::Duration;

use actorbus::{Error, PushOptions};

use super::{bus_with, settle_time, shutdown};
use crate::support::{fast_config, index_of, indexed, unique_queue, BusFactory, Collector, LIMIT};

pub async fn push_batch_stores_every_message_with_its_id(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("batch");
    let ids = bus
        .push_batch(&q, (0..100).map(indexed))
        .await
        .expect("push_batch");
    assert_eq!(ids.len(), 100, "one id per message");
    let distinct: HashSet<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(distinct.len(), 100, "every message gets its own id");
    assert_eq!(
        bus.stats(&q).await.expect("stats").ready,
        100,
        "a batch that returned is stored"
    );
    assert!(
        bus.push_batch(&q, Vec::<Vec<u8>>::new())
            .await
            .expect("empty batch")
            .is_empty(),
        "an empty batch stores nothing"
    );

    // One listener with concurrency 1: in batch order, each with its id.
    for (i, id) in ids.iter().enumerate() {
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(index_of(&d), i as u32, "batch order kept");
        assert_eq!(d.id(), id, "the id push_batch returned");
        assert_eq!(d.attempt(), 1);
    }
    assert_eq!(bus.stats(&q).await.expect("stats").ready, 0);
    shutdown(bus).await;
}

pub async fn push_batch_with_keeps_each_messages_options(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("batch-with");
    let later = PushOptions::default().with_delay(Duration::from_millis(300));
    let tagged = PushOptions::default().with_header("tenant", "acme");
    let ids = bus
        .push_batch_with(
            &q,
            [
                ("later", later),
                ("tagged", tagged),
                ("plain", PushOptions::default()),
            ],
        )
        .await
        .expect("push_batch_with");
    assert_eq!(ids.len(), 3);

    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let got = seen.wait_for(3, LIMIT).await;
    let by_text = |text: &str| {
        got.iter()
            .find(|d| d.as_str().ok() == Some(text))
            .unwrap_or_else(|| panic!("no delivery {text:?}"))
            .clone()
    };
    assert_eq!(by_text("later").id(), &ids[0]);
    assert_eq!(by_text("tagged").id(), &ids[1]);
    assert_eq!(by_text("plain").id(), &ids[2]);
    assert_eq!(
        by_text("tagged")
            .headers()
            .get("tenant")
            .map(String::as_str),
        Some("acme")
    );
    assert!(
        !by_text("plain").headers().contains_key("tenant"),
        "headers stay with their message"
    );
    assert_eq!(
        got.last().expect("three").as_str().ok(),
        Some("later"),
        "the delayed message comes after the immediate ones"
    );
    settle_time().await;
    assert_eq!(seen.len(), 3, "delivered exactly once");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn push_batch_checks_the_whole_batch_before_any_io(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.max_payload = 1024;
    let bus = bus_with(factory, config).await;
    let q = unique_queue("batch-bad");

    let too_big = vec![b"ok".to_vec(), vec![7u8; 1025], b"ok too".to_vec()];
    match bus.push_batch(&q, too_big).await {
        Err(Error::PayloadTooLarge { size, max }) => assert_eq!((size, max), (1025, 1024)),
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
    let bad_header = PushOptions::default().with_header("x-mine", "reserved");
    let messages = [("ok", PushOptions::default()), ("bad", bad_header)];
    match bus.push_batch_with(&q, messages).await {
        Err(Error::InvalidHeader { name, .. }) => assert_eq!(name, "x-mine"),
        other => panic!("expected InvalidHeader, got {other:?}"),
    }
    match bus.push_batch("amq.nope", ["a", "b"]).await {
        Err(Error::InvalidQueueName { name, .. }) => assert_eq!(name, "amq.nope"),
        other => panic!("expected InvalidQueueName, got {other:?}"),
    }
    let stats = bus.stats(&q).await.expect("stats");
    assert_eq!(
        (stats.ready, stats.delayed),
        (0, 0),
        "a refused batch stores none of its messages"
    );
    shutdown(bus).await;
}
