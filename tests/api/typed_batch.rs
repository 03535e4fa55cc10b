//! `Queue<T>::push_batch`: every value encoded before any push, one batch.

use std::collections::BTreeMap;

use actorbus::{Bus, Error};

use crate::support::{unique_queue, LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_batch_encodes_all_first_and_keeps_order() {
    let bus = Bus::memory();
    let q = unique_queue("typed-batch");
    let numbers = bus.queue::<u32>(&q);
    let ids = numbers.push_batch(&[7, 8, 9]).await.expect("push_batch");
    for (id, want) in ids.iter().zip([7u32, 8, 9]) {
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!((d.id(), d.json::<u32>().expect("json")), (id, want));
    }

    // JSON has no map with tuple keys: the second value cannot be encoded.
    let maps = bus.queue::<BTreeMap<(u8, u8), u8>>(&q);
    let good = BTreeMap::new();
    let bad = BTreeMap::from([((1, 2), 3)]);
    match maps.push_batch([&good, &bad]).await {
        Err(Error::Codec { .. }) => {}
        other => panic!("expected Error::Codec, got {other:?}"),
    }
    assert_eq!(
        bus.stats(&q).await.expect("stats").ready,
        0,
        "a batch with a value that does not encode pushes nothing"
    );
    bus.shutdown().await.expect("shutdown");
}
