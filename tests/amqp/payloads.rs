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

/// Headers larger than a frame would make RabbitMQ drop the connection (and
/// with it every push in flight): they are refused before any I/O, and a
/// stream of ordinary pushes beside them sees no error and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_larger_than_a_frame_are_refused_without_disturbing_others() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let (q, other) = (unique_queue("big-header"), unique_queue("bystander"));
    let pushes = {
        let (bus, other) = (bus.clone(), other.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..300u32 {
                ids.push(bus.push(&other, i.to_be_bytes().to_vec()).await);
            }
            ids
        })
    };
    for size in [FRAME, 1024 * 1024] {
        let opts = actorbus::PushOptions::default().with_header("blob", "b".repeat(size));
        let pushed = bus.push_with(&q, "m", opts).await;
        assert!(
            matches!(pushed, Err(Error::InvalidHeader { ref name, .. }) if name == "blob"),
            "{size}-byte header: {pushed:?}"
        );
    }
    let ok = actorbus::PushOptions::default().with_header("blob", "b".repeat(FRAME / 2));
    bus.push_with(&q, "m", ok)
        .await
        .expect("headers that fit in a frame go through");
    let ids = tokio::time::timeout(LIMIT, pushes)
        .await
        .expect("the bystander pushes finish")
        .expect("the bystander task");
    assert!(ids.iter().all(Result::is_ok), "no bystander push failed");
    let s = bus.stats(&other).await.expect("stats");
    assert_eq!(s.ready, 300, "each bystander push stored once: {s:?}");
    assert_eq!(bus.stats(&q).await.expect("stats").ready, 1);
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q, &other]).await;
}
