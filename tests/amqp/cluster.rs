//! A RabbitMQ cluster: failover between nodes and quorum queues, on a
//! PRIVATE three-node cluster (tests/support/rabbit_cluster.rs; the shared
//! node is never touched), plus the queue-type mismatch on the shared node
//! with a queue of its own.
//!
//! While 10 000 messages flow through a quorum queue, the node the bus is
//! connected to is SIGKILLed; after it is back, the node that leads another
//! quorum queue is. Every push that returned `Ok` is handled (lost = 0),
//! pushes fail only with `Timeout` and within `push_timeout`, and the
//! listeners resume on their old handles.

use std::time::{Duration, Instant};

use actorbus::{AmqpQueueType, Bus, Delivery, Error, PushOptions};
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};

use crate::support::flow::Flow;
use crate::support::rabbit_cluster::RabbitCluster;
use crate::support::rabbit_node::RabbitNode;
use crate::support::{amqp, index_of, indexed, unique_queue, Collector};

const N: u32 = 10_000;
const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

/// Which node a run kills.
#[derive(Debug, Clone, Copy)]
enum Victim {
    /// The node the bus's connections go to.
    Connected,
    /// The node that leads the queue (declared from another node first).
    Leader,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_moves_the_bus_and_loses_no_confirmed_push() {
    crate::support::init_tracing();
    // Not beside the fault cases' private brokers: a quorum queue's leader
    // election is slow on a starved 2-core machine.
    let _serial = crate::support::faults::serial().await;
    assert!(RabbitNode::available(), "rabbitmq-server is not installed");
    let cluster = tokio::task::spawn_blocking(|| RabbitCluster::start("failover", 3))
        .await
        .unwrap();
    eprintln!(
        "3-node cluster started and joined in {:?}",
        cluster.started_in
    );
    let mut config = cluster.quorum_config();
    config.queue.push_timeout = PUSH_TIMEOUT;
    let bus = Bus::connect(config).await.expect("connect to the cluster");

    let cluster = run(cluster, &bus, Victim::Connected).await;
    let cluster = run(cluster, &bus, Victim::Leader).await;
    bus.shutdown().await.expect("shutdown");
    drop(cluster);
}

/// One run: 10 000 pushes into a fresh quorum queue ([`Flow`]); the victim
/// is SIGKILLed after 2 000 were handled and started again after 6 000
/// were pushed (so that the next run has three nodes).
async fn run(mut cluster: RabbitCluster, bus: &Bus, victim: Victim) -> RabbitCluster {
    let q = unique_queue("cluster");
    if let Victim::Leader = victim {
        // Declared from a node the bus is not on, the queue is led there.
        let connected = cluster.connected_node().expect("the bus is connected");
        let other = (connected + 1) % cluster.nodes.len();
        declare_quorum(&cluster.nodes[other].url(), &q).await;
    }
    let mut flow = Flow::start(bus, &q, N, PUSH_TIMEOUT).await;
    flow.until_handled(2000, Duration::from_secs(120)).await;
    let doomed = match victim {
        Victim::Connected => cluster.connected_node(),
        Victim::Leader => cluster.leader_of(&q),
    }
    .unwrap_or_else(|| panic!("no {victim:?} node found"));
    let was_connected = cluster.connected_node();
    // A delayed message waits in a classic wait queue on the node the bus
    // is on: it must come back with that node.
    let delayed_q = format!("{q}-delayed");
    let delay = PushOptions::default().with_delay(Duration::from_secs(3));
    if let Victim::Connected = victim {
        bus.push_with(&delayed_q, "before", delay.clone())
            .await
            .expect("delayed push before the kill");
    }
    eprintln!(
        "{victim:?} run: killing node {doomed} (the bus is on node {was_connected:?}, the queue led by {:?})",
        cluster.leader_of(&q)
    );
    let killed_at = Instant::now();
    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.nodes[doomed].kill();
        cluster
    })
    .await
    .unwrap();

    flow.until_pushed(6000, Duration::from_secs(180)).await;
    let moved_to = cluster.connected_node();
    eprintln!(
        "{victim:?} run: 6000 pushed {:?} after the kill; the bus is now on node {moved_to:?}",
        killed_at.elapsed()
    );
    let mut during = None;
    if let Victim::Connected = victim {
        assert!(
            moved_to.is_some_and(|n| n != doomed),
            "the bus did not move off the killed node"
        );
        // Its wait queue's node is down: see what a push with that delay gets.
        let r = bus.push_with(&delayed_q, "during", delay.clone()).await;
        eprintln!("a push with the delay whose wait queue is on the dead node: {r:?}");
        during = Some(r.is_ok());
    }
    // Back with its data, so that the cluster has three nodes again.
    cluster = tokio::task::spawn_blocking(move || {
        cluster.nodes[doomed].start_server();
        cluster
    })
    .await
    .unwrap();
    flow.finish(bus, &format!("{victim:?} run"), Duration::from_secs(180))
        .await;

    if let Some(during) = during {
        let mut got = Vec::new();
        for _ in 0..1 + usize::from(during) {
            let d = bus
                .receive(&delayed_q, Duration::from_secs(60))
                .await
                .expect("the delayed messages come back with their node");
            got.push(d.as_str().unwrap().to_owned());
        }
        assert!(got.contains(&"before".to_owned()), "{got:?}");
    }
    cluster
}

/// Declares `queue` as the bus would with `amqp.queue_type = quorum`, through
/// a plain connection to `url`.
async fn declare_quorum(url: &str, queue: &str) {
    let conn = amqp::raw(url).await;
    let ch = conn.create_channel().await.expect("channel");
    for name in [queue.to_owned(), format!("{queue}.dead")] {
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::durable(),
            quorum_args(),
        )
        .await
        .expect("declare a quorum queue");
    }
    let _ = conn.close(200, "declared".into()).await;
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args
}

/// A queue that exists as the other type is a config error naming
/// `amqp.queue_type`, on every path that declares it; nothing else breaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_of_the_other_type_is_a_config_error_naming_queue_type() {
    crate::support::init_tracing();
    let classic_q = unique_queue("qtype-classic");
    let quorum_q = unique_queue("qtype-quorum");
    let classic = Bus::connect(amqp::config()).await.expect("classic bus");
    classic.push(&classic_q, "c").await.expect("classic push");
    declare_quorum(amqp::URL, &quorum_q).await;

    let mut config = amqp::config();
    config.amqp.queue_type = AmqpQueueType::Quorum;
    let quorum = Bus::connect(config).await.expect("quorum bus");
    let refused = |r: Result<(), Error>, what: &str| match r {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, "amqp.queue_type", "{what}");
            assert!(message.contains(&classic_q), "{what}: {message}");
        }
        other => panic!("{what} on a classic queue from a quorum bus: {other:?}"),
    };
    refused(quorum.push(&classic_q, "q").await.map(drop), "push");
    refused(quorum.stats(&classic_q).await.map(drop), "stats");
    refused(quorum.purge(&classic_q).await.map(drop), "purge");
    refused(quorum.peek(&classic_q, 5).await.map(drop), "peek");
    refused(
        quorum
            .receive(&classic_q, Duration::from_millis(200))
            .await
            .map(drop),
        "receive",
    );
    // The other way round, and the bus keeps working for queues that fit.
    let err = classic
        .push(&quorum_q, "c")
        .await
        .expect_err("classic push to a quorum queue");
    assert!(
        matches!(&err, Error::Config { key, .. } if key == "amqp.queue_type"),
        "{err:?}"
    );
    quorum
        .push(&quorum_q, "fits")
        .await
        .expect("push to a quorum queue");
    let got = quorum
        .receive(&quorum_q, Duration::from_secs(10))
        .await
        .expect("receive from a quorum queue");
    assert_eq!(got.as_str().unwrap(), "fits");
    assert_eq!(
        classic
            .receive(&classic_q, Duration::from_secs(10))
            .await
            .unwrap()
            .as_str()
            .unwrap(),
        "c"
    );

    quorum.shutdown().await.expect("shutdown");
    classic.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&classic_q, &quorum_q]).await;
}

/// On a quorum queue (the shared node holds one as well as a cluster
/// does): what a peek hands back goes behind the rest (RabbitMQ 3.10), and
/// raises the broker's `x-delivery-count`, which the bus neither counts as
/// an attempt nor shows as a header; every message is still delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peek_on_a_quorum_queue_reorders_but_counts_no_attempt() {
    crate::support::init_tracing();
    let mut config = amqp::config();
    config.amqp.queue_type = AmqpQueueType::Quorum;
    let bus = Bus::connect(config).await.expect("quorum bus");
    let q = unique_queue("qpeek");
    for i in 0..5 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let order = |seen: Vec<Delivery>| seen.iter().map(index_of).collect::<Vec<_>>();
    assert_eq!(order(bus.peek(&q, 2).await.expect("peek 2")), [0, 1]);
    for _ in 0..3 {
        bus.peek(&q, 2).await.expect("peek again");
    }
    let all = bus.peek(&q, 10).await.expect("peek all");
    eprintln!(
        "quorum queue order after partial peeks: {:?}",
        order(all.clone())
    );
    assert_eq!(all.len(), 5);
    let got: Collector = Collector::new();
    let listener = got.listen(&bus, &q).await;
    let delivered = got.wait_for(5, Duration::from_secs(30)).await;
    let mut seen: Vec<u32> = delivered.iter().map(index_of).collect();
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2, 3, 4], "each message once");
    for d in &delivered {
        assert_eq!(d.attempt(), 1, "a peek is no attempt");
        assert!(
            !d.headers().contains_key("x-delivery-count"),
            "{:?}",
            d.headers()
        );
    }
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    amqp::delete_queues(amqp::URL, &[&q]).await;
}
