//! The RabbitMQ rows: classic and quorum queues on a private 3-node
//! cluster, runs interleaved; the quorum row's ratio is to the classic row.

use actorbus::AmqpQueueType;

use crate::e2e::{self, interleaved, Load};
use crate::harness::args::Opts;
use crate::harness::row::Row;
use crate::probe::{Broker, Node};
use crate::support::rabbit_cluster::RabbitCluster;
use crate::support::rabbit_node::RabbitNode;
use crate::teardown::blocking;

pub(crate) const CLASSIC: &str = "amqp e2e classic 3-node cluster";
pub(crate) const QUORUM: &str = "amqp e2e quorum 3-node cluster";
/// Queues of both rows: one per node, so that quorum leaders can spread.
pub(crate) const QUEUES: usize = 3;

/// Messages per row: `ACTORBUS_BENCH_AMQP_N` as in the throughput bench
/// (default 50,000), 3,000 in `--quick`.
fn n(opts: &Opts) -> usize {
    std::env::var("ACTORBUS_BENCH_AMQP_N")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(if opts.quick { 3_000 } else { 50_000 })
}

/// Both rows, or those the filter selects.
pub(crate) async fn rows(opts: &Opts, reps: usize) -> Vec<Row> {
    let names = [CLASSIC, QUORUM].map(|name| opts.wants(name).then_some(name));
    if names == [None, None] {
        return Vec::new();
    }
    // Loud, never a silent skip.
    assert!(
        RabbitNode::available(),
        "the amqp cluster rows need a local RabbitMQ installation (scripts/test installs it)"
    );
    eprintln!("  starting a private 3-node RabbitMQ cluster (20-35 s) ...");
    let cluster = blocking(|| RabbitCluster::start("bench", 3)).await;
    eprintln!(
        "  cluster formed in {:.1} s",
        cluster.started_in.as_secs_f64()
    );
    let broker = Broker {
        nodes: cluster
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| Node {
                label: format!("node {i}"),
                pid: node.beam_pid(),
                redis_port: None,
            })
            .collect(),
        ports: cluster.nodes.iter().map(|node| node.port).collect(),
    };
    let load = Load {
        n: n(opts),
        pushers: opts.producers,
    };
    let (cluster, broker) = (&cluster, &broker);
    interleaved(reps, names, |quorum, rep| {
        let kind = if quorum { "quorum" } else { "classic" };
        let queues = e2e::queue_names(kind, rep, QUEUES);
        let mut config = cluster.quorum_config();
        if !quorum {
            config.amqp.queue_type = AmqpQueueType::Classic;
        }
        let name = if quorum { QUORUM } else { CLASSIC };
        async move {
            // The queues stay on the private cluster, which goes at the end.
            e2e::run(name, config, &queues, load, broker).await
        }
    })
    .await
}
