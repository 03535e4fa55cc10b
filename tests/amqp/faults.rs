//! The fault suite on amqp (tests/support/faults.rs has the cases), each
//! case on a PRIVATE RabbitMQ node of its own (the shared node is never
//! touched), one case at a time. `amqp.heartbeat = 5s`.

use std::time::Duration;

use crate::support::faults;
use crate::support::rabbit_node::RabbitNode;

async fn node(tag: &'static str) -> RabbitNode {
    assert!(RabbitNode::available(), "rabbitmq-server is not installed");
    tokio::task::spawn_blocking(move || RabbitNode::start(tag))
        .await
        .expect("start the private node")
}

/// Stops the node off the async threads (rabbitmqctl takes a while).
async fn stop(node: RabbitNode) {
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .expect("stop the private node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_cut_60s() {
    let _serial = faults::serial().await;
    let node = node("fault-cut").await;
    faults::network_cut(&node, Duration::from_secs(60)).await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_broker_15s() {
    let _serial = faults::serial().await;
    let node = node("fault-hang").await;
    faults::hung_broker(&node, Duration::from_secs(15)).await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_flaps_30s() {
    let _serial = faults::serial().await;
    let node = node("fault-flaps").await;
    faults::connection_flaps(&node, Duration::from_secs(30)).await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of producer_killed_mid_run"]
async fn producer_child() {
    faults::producer_child().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_killed_mid_run() {
    let _serial = faults::serial().await;
    let node = node("fault-producer").await;
    faults::producer_killed(&node, "amqp::faults::producer_child").await;
    stop(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_edges_beside_a_stream() {
    let _serial = faults::serial().await;
    let node = node("fault-edges").await;
    faults::hard_edges(&node).await;
    stop(node).await;
}
