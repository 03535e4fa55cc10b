//! The Redis rows: 30 queues on the shared single Redis, and the same 30
//! queues on a private Redis Cluster of 3 masters and 3 replicas, runs
//! interleaved; the cluster row's ratio is to the single-node row.

use crate::e2e::{self, interleaved, Load};
use crate::harness::args::Opts;
use crate::harness::row::Row;
use crate::probe::{redis_pid, Broker, Node};
use crate::support::redis::{config_on, SHARED_URL};
use crate::support::redis_cluster::RedisCluster;
use crate::teardown::{blocking, SharedKeys};

pub(crate) const SINGLE: &str = "redis e2e 30q single node";
pub(crate) const CLUSTER: &str = "redis e2e 30q cluster 3 masters";
/// Queues of both rows: enough that their slots land on every master.
const QUEUES: usize = 30;
/// Port of the shared Redis (`SHARED_URL`).
const SHARED_PORT: u16 = 6379;

/// Messages per row: `ACTORBUS_BENCH_N` / 10 as in the throughput bench's
/// redis rows (100,000 by default), 6,000 in `--quick`.
fn n(opts: &Opts) -> usize {
    if opts.quick {
        6_000
    } else {
        (opts.n / 10).clamp(1_000, 100_000)
    }
}

/// Both rows, or those the filter selects.
pub(crate) async fn rows(opts: &Opts, reps: usize) -> Vec<Row> {
    let names = [SINGLE, CLUSTER].map(|name| opts.wants(name).then_some(name));
    if names == [None, None] {
        return Vec::new();
    }
    let cluster = match names[1] {
        Some(_) => {
            eprintln!("  starting a private Redis Cluster (3 masters, 3 replicas) ...");
            Some(blocking(RedisCluster::start).await)
        }
        None => None,
    };
    let cluster_broker = cluster.as_ref().map(broker_of);
    let single_broker = Broker {
        nodes: vec![Node {
            label: format!("shared {SHARED_PORT}"),
            pid: redis_pid(SHARED_PORT),
            redis_port: Some(SHARED_PORT),
        }],
        ports: vec![SHARED_PORT],
    };
    let load = Load {
        n: n(opts),
        pushers: opts.producers,
    };
    interleaved(reps, names, |on_cluster, rep| {
        let side = if on_cluster { "cluster" } else { "single" };
        let queues = e2e::queue_names(side, rep, QUEUES);
        let (cluster, cluster_broker, single_broker) = (&cluster, &cluster_broker, &single_broker);
        async move {
            // The single node's keys go when the run ends, however it ends.
            let _keys = (!on_cluster).then(|| SharedKeys {
                port: SHARED_PORT,
                queues: queues.clone(),
            });
            let (name, config, broker) = if on_cluster {
                let cluster = cluster.as_ref().expect("the cluster runs");
                let broker = cluster_broker.as_ref().expect("the cluster runs");
                (CLUSTER, cluster.config(), broker)
            } else {
                (SINGLE, config_on(SHARED_URL), single_broker)
            };
            e2e::run(name, config, &queues, load, broker).await
        }
    })
    .await
}

/// The cluster's six processes, masters first, as the breakdown names them.
fn broker_of(cluster: &RedisCluster) -> Broker {
    let masters = cluster.masters();
    let ports: Vec<u16> = cluster
        .urls()
        .iter()
        .filter_map(|url| url.rsplit(':').next()?.parse().ok())
        .collect();
    let mut nodes: Vec<Node> = ports
        .iter()
        .map(|&port| {
            let master = masters.contains(&port);
            let role = if master { "master" } else { "replica" };
            Node {
                label: format!("{role} {port}"),
                pid: redis_pid(port),
                redis_port: master.then_some(port),
            }
        })
        .collect();
    nodes.sort_by_key(|n| !n.label.starts_with("master"));
    Broker { nodes, ports }
}
