//! Interop (the wire format): a client this project did not write — Python's
//! `pika`, installed by `scripts/test` — talks to the bus through RabbitMQ.
//! A body it publishes to `<q>` reaches the listeners; a push consumed by it
//! arrives as the exact payload bytes, with the message id and persistence.

use crate::support::amqp::{self, python};
use crate::support::{unique_queue, Collector, LIMIT};
use actorbus::{Bus, PushOptions};

/// Publishes hex-decoded bodies to the queue like any plain client would:
/// declare the durable queue, publish on the default exchange.
const PUBLISH: &str = r#"
import sys, pika
queue, bodies = sys.argv[1], sys.argv[2:]
channel = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()
channel.queue_declare(queue=queue, durable=True)
for i, body in enumerate(bodies):
    props = None
    if i == 1:
        props = pika.BasicProperties(message_id="order-17", headers={"tenant": "acme", "n": 7})
    channel.basic_publish(exchange="", routing_key=queue, body=bytes.fromhex(body), properties=props)
"#;

/// Takes one message with basic_get and prints its body (hex), message id
/// and delivery mode.
const GET: &str = r#"
import sys, time, pika
queue = sys.argv[1]
channel = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()
for _ in range(500):
    method, props, body = channel.basic_get(queue=queue, auto_ack=True)
    if method is not None:
        print(body.hex(), props.message_id, props.delivery_mode, (props.headers or {}).get("color"))
        break
    time.sleep(0.02)
else:
    sys.exit("no message")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_publishes_to_the_listeners() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("interop-in");
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let bodies: [&[u8]; 3] = [b"hello from pika", &[0, 159, 146, 150, 255], b""];
    let hex: Vec<String> = bodies
        .iter()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
        .collect();
    let mut args = vec![q.clone()];
    args.extend(hex);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        python(PUBLISH, &args)
    })
    .await
    .unwrap();
    let got = seen.wait_for(3, LIMIT).await;
    for (d, body) in got.iter().zip(bodies) {
        assert_eq!(&d.payload()[..], body, "bytes changed on the way in");
        assert_eq!(d.attempt(), 1);
        assert_eq!(d.queue(), q);
    }
    assert!(got[0].headers().is_empty(), "{:?}", got[0].headers());
    assert_eq!(
        got[1].id().to_string(),
        "order-17",
        "the client's message_id is kept"
    );
    assert_eq!(
        got[1].headers().get("tenant").map(String::as_str),
        Some("acme")
    );
    assert_eq!(got[1].headers().get("n").map(String::as_str), Some("7"));
    assert_ne!(
        got[0].id(),
        got[2].id(),
        "messages without an id get distinct ones"
    );
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_consumes_the_exact_bytes_of_a_push() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("interop-out");
    let payload: Vec<u8> = (0..=255u8).rev().collect();
    let opts = PushOptions::default().with_header("color", "blue");
    let id = bus
        .push_with(&q, payload.clone(), opts)
        .await
        .expect("push");
    let queue = q.clone();
    let out = tokio::task::spawn_blocking(move || python(GET, &[&queue]))
        .await
        .unwrap();
    let fields: Vec<&str> = out.split_whitespace().collect();
    let expected: String = payload.iter().map(|x| format!("{x:02x}")).collect();
    assert_eq!(fields[0], expected, "the body is the payload, unchanged");
    assert_eq!(fields[1], id.to_string(), "message_id carries the id");
    assert_eq!(fields[2], "2", "persistent");
    assert_eq!(fields[3], "blue", "headers carry the push's headers");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}
