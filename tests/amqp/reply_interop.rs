//! Request/reply on amqp is RabbitMQ's direct reply-to: a request carries
//! `reply_to = amq.rabbitmq.reply-to.<token>` and `correlation_id` as AMQP
//! properties, so a plain RPC client (Python's `pika`) can call a bus
//! listener and a plain server can answer a bus's request; a reply whose
//! requester is gone is dropped by the broker, and `reply` still succeeds.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{amqp, unique_queue, Collector, LIMIT};
use actorbus::{Bus, Delivery, Error};
use tokio::sync::Semaphore;

/// The prefix RabbitMQ gives the reply address of a direct reply-to request.
const DIRECT: &str = "amq.rabbitmq.reply-to.";

/// Runs `script` with `python3 -c` on a blocking thread, returning its stdout.
async fn python(script: &'static str, args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        amqp::python(script, &args)
    })
    .await
    .expect("python thread")
}

/// A plain RPC client: consumes `amq.rabbitmq.reply-to`, publishes a request
/// to the queue with `reply_to` and `correlation_id`, prints the reply's
/// body and correlation id.
const RPC_CLIENT: &str = r#"
import sys, time, pika
queue, body = sys.argv[1], sys.argv[2]
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1"))
ch = conn.channel()
got = []
ch.basic_consume(queue="amq.rabbitmq.reply-to", auto_ack=True,
                 on_message_callback=lambda c, m, p, b: got.append((b, p.correlation_id)))
ch.queue_declare(queue=queue, durable=True)
ch.basic_publish(exchange="", routing_key=queue, body=body.encode(),
                 properties=pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="corr-7"))
deadline = time.time() + 30
while not got and time.time() < deadline:
    conn.process_data_events(time_limit=0.2)
if not got:
    sys.exit("no reply")
print(got[0][0].decode(), got[0][1])
"#;

/// A plain RPC server: takes one request from the queue and answers it at
/// its `reply_to` with its `correlation_id`.
const RPC_SERVER: &str = r#"
import sys, time, pika
queue = sys.argv[1]
ch = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()
ch.queue_declare(queue=queue, durable=True)
for _ in range(1500):
    method, props, body = ch.basic_get(queue=queue, auto_ack=True)
    if method is not None:
        ch.basic_publish(exchange="", routing_key=props.reply_to, body=b"pong: " + body,
                         properties=pika.BasicProperties(correlation_id=props.correlation_id))
        print(props.reply_to)
        break
    time.sleep(0.02)
else:
    sys.exit("no request")
"#;

/// A listener on `queue` that answers `2 * n`, recording each request's
/// reply address and what `reply` returned.
async fn doubler(bus: &Bus, queue: &str, seen: Collector<(String, bool)>) -> actorbus::Listener {
    let replier = bus.clone();
    bus.add_listener(queue, move |request: Delivery| {
        let (bus, seen) = (replier.clone(), seen.clone());
        async move {
            let n: u64 = request.as_str()?.parse()?;
            let replied = bus.reply(&request, (2 * n).to_string()).await;
            let to = request.reply_to().unwrap_or_default().to_owned();
            seen.push((to, replied.is_ok()));
            Ok(())
        }
    })
    .await
    .expect("add_listener")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_request_uses_direct_reply_to() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("interop-direct");
    let seen = Collector::new();
    let listener = doubler(&bus, &q, seen.clone()).await;
    let reply = bus.request(&q, "21", LIMIT).await.expect("request");
    assert_eq!(reply.as_str().unwrap(), "42");
    let (reply_to, replied) = seen.snapshot()[0].clone();
    assert!(reply_to.starts_with(DIRECT), "reply address {reply_to:?}");
    assert!(replied);
    assert_eq!(reply.queue(), reply_to, "the reply came to that address");
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_rpc_client_calls_a_bus_listener() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("interop-rpc-in");
    let seen = Collector::new();
    let listener = doubler(&bus, &q, seen.clone()).await;
    let out = python(RPC_CLIENT, vec![q.clone(), "21".to_owned()]).await;
    assert_eq!(out.trim(), "42 corr-7", "the reply and its correlation id");
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_rpc_server_answers_a_bus_request() {
    let bus = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("interop-rpc-out");
    let server = tokio::spawn(python(RPC_SERVER, vec![q.clone()]));
    let reply = bus.request(&q, "ping", LIMIT).await.expect("request");
    assert_eq!(reply.as_str().unwrap(), "pong: ping");
    let address = server.await.expect("server");
    assert!(address.trim().starts_with(DIRECT), "{address:?}");
    assert_eq!(bus.late_replies(), 0);
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_requester_that_is_gone_is_dropped() {
    let requester = Bus::connect(amqp::config()).await.expect("connect");
    let responder = Bus::connect(amqp::config()).await.expect("connect");
    let q = unique_queue("interop-gone");
    let gate = Arc::new(Semaphore::new(0));
    let outcomes: Collector<Result<(), String>> = Collector::new();
    let (bus, g, o) = (responder.clone(), gate.clone(), outcomes.clone());
    let listener = responder
        .add_listener(&q, move |request: Delivery| {
            let (bus, g, o) = (bus.clone(), g.clone(), o.clone());
            async move {
                g.acquire().await?.forget();
                o.push(
                    bus.reply(&request, "too late")
                        .await
                        .map_err(|e| e.to_string()),
                );
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    match requester
        .request(&q, "anyone?", Duration::from_millis(300))
        .await
    {
        Err(Error::Timeout) => {}
        other => panic!("expected Error::Timeout, got {other:?}"),
    }
    requester.shutdown().await.expect("shutdown");
    gate.add_permits(1);
    let got = outcomes.wait_for(1, LIMIT).await;
    assert_eq!(got, [Ok(())], "the broker dropped the reply; reply is Ok");
    listener.remove().await.expect("remove");
    responder.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}
