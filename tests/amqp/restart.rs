//! Broker restart (reconnection) on a PRIVATE RabbitMQ node (its
//! own name, ports and data directory; the shared node is never touched):
//! while 10 000 messages flow, RabbitMQ is restarted with `stop_app` /
//! `start_app`, then the whole node with a full stop and start. Every push
//! that returned `Ok` is handled, no push hangs past `queue.push_timeout`,
//! and the listeners resume on their old handles.

use std::time::{Duration, Instant};

use crate::support::flow::Flow;
use crate::support::{amqp, rabbit_node, unique_queue, Collector};
use actorbus::{Bus, Error};
use rabbit_node::RabbitNode;

const N: u32 = 10_000;
const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_lose_no_confirmed_push() {
    restarts_under_flow("restart").await;
}

/// The same with the pushers inside an actix system, where each push
/// publishes from its own task rather than through the driver actor.
#[actix::test]
async fn broker_restarts_lose_no_confirmed_push_from_actix() {
    restarts_under_flow("restart-actix").await;
}

async fn restarts_under_flow(node_name: &'static str) {
    crate::support::init_tracing();
    assert!(RabbitNode::available(), "rabbitmq-server is not installed");
    let node = tokio::task::spawn_blocking(move || RabbitNode::start(node_name))
        .await
        .unwrap();
    let mut config = amqp::config_at(&node.url());
    config.queue.push_timeout = PUSH_TIMEOUT;
    let bus = Bus::connect(config)
        .await
        .expect("connect to the private node");
    let q = unique_queue("restart");
    let mut flow = Flow::start(&bus, &q, N, PUSH_TIMEOUT).await;
    flow.until_handled(2000, Duration::from_secs(60)).await;
    tracing::info!("stop_app");
    let node = tokio::task::spawn_blocking(move || {
        node.stop_app();
        std::thread::sleep(Duration::from_secs(2));
        node.start_app();
        node
    })
    .await
    .unwrap();
    let mut node = node;

    flow.until_pushed(6000, Duration::from_secs(120)).await;
    tracing::info!("full stop");
    node = tokio::task::spawn_blocking(move || {
        node.stop();
        std::thread::sleep(Duration::from_secs(1));
        node.start_server();
        node
    })
    .await
    .unwrap();
    flow.finish(&bus, "broker restart", Duration::from_secs(120))
        .await;
    bus.shutdown().await.expect("shutdown");
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .unwrap();
}

/// While the broker is down, a push waits `queue.push_timeout` and fails
/// with `Error::Timeout` (nothing hangs, nothing is reported stored); once
/// the broker is back, the same bus pushes and consumes again. Pushes from
/// a plain tokio runtime go through the driver actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_during_an_outage_time_out_then_work_again() {
    outage_then_recovery("outage").await;
}

/// The same, pushing from inside an actix system, where a push publishes
/// from the caller's own task rather than through the driver actor.
#[actix::test]
async fn pushes_from_actix_during_an_outage_time_out_then_work_again() {
    outage_then_recovery("outage-actix").await;
}

async fn outage_then_recovery(node_name: &'static str) {
    crate::support::init_tracing();
    assert!(RabbitNode::available(), "rabbitmq-server is not installed");
    let node = tokio::task::spawn_blocking(move || RabbitNode::start(node_name))
        .await
        .unwrap();
    let mut config = amqp::config_at(&node.url());
    config.queue.push_timeout = Duration::from_secs(1);
    let bus = Bus::connect(config)
        .await
        .expect("connect to the private node");
    let q = unique_queue("outage");
    bus.push(&q, "before")
        .await
        .expect("push before the outage");

    let mut node = tokio::task::spawn_blocking(move || {
        let mut node = node;
        node.stop();
        node
    })
    .await
    .unwrap();
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), bus.push(&q, "during"))
        .await
        .expect("a push during an outage hung");
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "gave up early: {:?}",
        start.elapsed()
    );

    node = tokio::task::spawn_blocking(move || {
        node.start_server();
        node
    })
    .await
    .unwrap();
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    // The driver reconnects with backoff; pushes succeed again once it did.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        match bus.push(&q, "after").await {
            Ok(id) => break id,
            Err(Error::Timeout) if Instant::now() < deadline => continue,
            Err(e) => panic!("push after the outage: {e}"),
        }
    };
    let got = seen.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(
        got[0].as_str().unwrap(),
        "before",
        "the durable message survived"
    );
    assert!(got.iter().any(|d| d.id() == &after));
    assert!(
        got.iter().all(|d| d.as_str().unwrap() != "during"),
        "the timed-out push was stored"
    );
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .unwrap();
}
