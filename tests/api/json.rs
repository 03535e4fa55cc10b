//! `QueueStats`, `MessageId` and `Delivery` as JSON, as a service would return them.

use std::time::Duration;

use actorbus::{Bus, PushOptions, Reject};
use serde_json::json;

use crate::support::{init_tracing, stats_until, unique_queue, LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_ids_and_deliveries_serialize_to_the_documented_shape() {
    init_tracing();
    let bus = Bus::memory();
    let q = unique_queue("json");
    let opts = PushOptions::default().with_header("tenant", "acme");
    let id = bus.push_with(&q, "hello", opts).await.expect("push");
    assert_eq!(serde_json::to_value(&id).unwrap(), json!(id.to_string()));

    let text = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(
        serde_json::to_value(&text).unwrap(),
        json!({
            "id": id.to_string(),
            "queue": q,
            "attempt": 1,
            "headers": {"tenant": "acme"},
            "payload": "hello",
            "encoding": "utf8",
        })
    );

    // Not UTF-8: base64, and a dead letter shows why it died.
    let binary = bus.push(&q, vec![0xff, 0x00, 0xfe]).await.expect("push");
    bus.add_listener(&q, |_| async { Err(Reject::new("bad bytes").into()) })
        .await
        .expect("add_listener");
    stats_until(&bus, &q, "dead", |s| s.dead == 1).await;
    bus.remove(&q).await.expect("remove");
    let dead = bus
        .receive(&format!("{q}.dead"), LIMIT)
        .await
        .expect("dead letter");
    let value = serde_json::to_value(&dead).unwrap();
    assert_eq!(value["id"], json!(binary.to_string()));
    assert_eq!(value["queue"], json!(format!("{q}.dead")));
    assert_eq!(
        (&value["payload"], &value["encoding"]),
        (&json!("/wD+"), &json!("base64"))
    );
    assert_eq!(value["headers"]["x-error"], json!("bad bytes"));
    assert_eq!(value["headers"]["x-attempts"], json!("1"));

    let delayed = PushOptions::default().with_delay(Duration::from_secs(600));
    bus.push_with(&q, "later", delayed).await.expect("push");
    let stats = bus.stats(&q).await.expect("stats");
    assert_eq!(
        serde_json::to_value(&stats).unwrap(),
        json!({
            "ready": 0,
            "in_flight": 0,
            "delayed": 1,
            "dead": 0,
            "listeners": 0,
            "restarts": 0,
            "durable": false,
        })
    );
    bus.shutdown().await.expect("shutdown");
}
