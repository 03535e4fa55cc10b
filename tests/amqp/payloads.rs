//! Payload sizes on amqp (issue 3 test 4): 0 bytes, the frame size ± 1 and
//! several MiB come back byte-identical, through a listener and through
//! `receive`; one byte over `queue.max_payload` is refused before any I/O.

use std::time::Duration;

use crate::support::{amqp, unique_queue, Collector, LIMIT};
use actorbus::{Bus, Error};
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;

/// RabbitMQ's default `frame_max`, which lapin accepts: bodies larger than a
/// frame are split over several body frames.
const FRAME: usize = 131_072;
/// A frame's payload: `frame_max` minus the 8 bytes of frame header and end.
const FRAME_BODY: usize = FRAME - 8;

/// Bytes that differ at every position, so a shifted or dropped chunk shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

fn sizes() -> Vec<usize> {
    vec![
        0,
        1,
        FRAME_BODY - 1,
        FRAME_BODY,
        FRAME_BODY + 1,
        FRAME - 1,
        FRAME,
        FRAME + 1,
        5 * 1024 * 1024 + 3,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_come_back_byte_identical() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("payloads");
    let sizes = sizes();

    // Through receive.
    for (n, &size) in sizes.iter().enumerate() {
        let payload = pattern(size, n as u8);
        let id = bus.push(&q, payload.clone()).await.expect("push");
        let d = bus.receive(&q, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &id);
        assert_eq!(d.payload().len(), size, "size {size}");
        assert!(
            d.payload()[..] == payload[..],
            "payload of {size} bytes changed"
        );
    }

    // Through a listener.
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    for (n, &size) in sizes.iter().enumerate() {
        bus.push(&q, pattern(size, 100 + n as u8))
            .await
            .expect("push");
    }
    let got = seen.wait_for(sizes.len(), LIMIT).await;
    for (n, &size) in sizes.iter().enumerate() {
        let expected = pattern(size, 100 + n as u8);
        assert!(
            got.iter().any(|d| d.payload()[..] == expected[..]),
            "the {size}-byte payload did not come back identical"
        );
    }
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_over_max_payload_is_refused_before_any_io() {
    let mut config = amqp::config();
    config.queue.max_payload = 1024;
    let bus = Bus::connect(config).await.expect("connect");
    let q = unique_queue("too-large");
    let r = bus.push(&q, vec![7u8; 1025]).await;
    assert!(
        matches!(
            r,
            Err(Error::PayloadTooLarge {
                size: 1025,
                max: 1024
            })
        ),
        "{r:?}"
    );
    // No I/O: the queue was never even declared on the broker.
    let raw = amqp::raw(amqp::URL).await;
    let channel = raw.create_channel().await.unwrap();
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(q.as_str().into(), passive, FieldTable::default())
        .await;
    assert!(declared.is_err(), "the refused push reached the broker");
    // The limit is inclusive.
    bus.push(&q, vec![7u8; 1024])
        .await
        .expect("push at the limit");
    let d = bus
        .receive(&q, Duration::from_secs(10))
        .await
        .expect("receive");
    assert_eq!(d.payload().len(), 1024);
    bus.shutdown().await.expect("shutdown");
    let _ = raw.close(200, "done".into()).await;
    amqp::delete_queues(amqp::URL, &[&q]).await;
}
