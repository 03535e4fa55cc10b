//! A private three-node RabbitMQ cluster for the failover tests.
//!
//! Its nodes are [`RabbitNode`]s (own names, ports, data directories) with
//! one `HOME` holding the cluster's Erlang cookie, so they (and their
//! `rabbitmqctl`) can talk to each other and to nothing else. The first
//! node starts the cluster, the others `join_cluster` it. Dropping it
//! stops every node and removes the directories.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::rabbit_node::RabbitNode;

/// A running private cluster.
pub struct RabbitCluster {
    /// Its nodes; the first is the one the others joined.
    pub nodes: Vec<RabbitNode>,
    /// How long starting and joining took.
    pub started_in: Duration,
    /// The shared `HOME` with the Erlang cookie.
    home: PathBuf,
}

impl RabbitCluster {
    /// Starts `size` nodes (in parallel), joins them into one cluster and
    /// waits until every node runs. Bounded: each node start and each
    /// `rabbitmqctl` fails the test when it does not finish.
    pub fn start(tag: &str, size: usize) -> RabbitCluster {
        let begun = Instant::now();
        let home =
            std::env::temp_dir().join(format!("actorbus-cluster-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        std::fs::create_dir_all(&home).expect("cluster home");
        let cookie = home.join(".erlang.cookie");
        std::fs::write(&cookie, format!("ACTORBUSTEST{}{tag}", std::process::id())).unwrap();
        set_owner_only(&cookie);
        let starts: Vec<_> = (0..size)
            .map(|i| {
                let (tag, home) = (format!("{tag}{i}"), home.clone());
                std::thread::spawn(move || RabbitNode::start_in(&tag, Some(home)))
            })
            .collect();
        let nodes: Vec<RabbitNode> = starts
            .into_iter()
            .map(|s| s.join().expect("a node start panicked"))
            .collect();
        let first = nodes[0].name.clone();
        for node in &nodes[1..] {
            node.stop_app();
            node.ctl(&["join_cluster", &first]);
            node.start_app();
        }
        let cluster = RabbitCluster {
            nodes,
            started_in: begun.elapsed(),
            home,
        };
        let running = cluster.nodes[0].ctl(&["cluster_status", "--formatter", "json"]);
        for node in &cluster.nodes {
            assert!(
                running.contains(&node.name),
                "{} is not in the cluster: {running}",
                node.name
            );
        }
        cluster
    }

    /// `amqp.urls` of the cluster.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RabbitNode::url).collect()
    }

    /// A fast-retry amqp config on every node of the cluster
    /// (`amqp.urls`), with quorum queues.
    pub fn quorum_config(&self) -> actorbus::Config {
        let mut config = crate::support::amqp::config();
        config.amqp.urls = self.urls();
        config.amqp.queue_type = actorbus::AmqpQueueType::Quorum;
        config.amqp.heartbeat = Duration::from_secs(5);
        config
    }

    /// A node that runs, to ask `rabbitmqctl` things.
    fn alive(&self) -> &RabbitNode {
        self.nodes
            .iter()
            .find(|n| n.running())
            .expect("a running node")
    }

    /// The index of the node that runs the connection named
    /// `actorbus-publish` (the bus's publishing connection), if one does.
    /// `list_connections` lists the whole cluster's connections on any
    /// node, so the node is read from each connection's process id,
    /// `<rabbit@host.N.N.N>` (RabbitMQ 3.10 has no `node` column there).
    pub fn connected_node(&self) -> Option<usize> {
        let out = self.alive().ctl(&[
            "list_connections",
            "pid",
            "client_properties",
            "--quiet",
            "--no-table-headers",
        ]);
        let node = out
            .lines()
            .filter(|line| line.contains("actorbus-publish"))
            .find_map(|line| node_of_pid(line.split('\t').next()?))?;
        self.nodes
            .iter()
            .position(|n| n.name == node && n.running())
    }

    /// The index of the node that leads the quorum queue `queue`, if any
    /// node does now.
    pub fn leader_of(&self, queue: &str) -> Option<usize> {
        let out = self.alive().ctl(&[
            "list_queues",
            "name",
            "leader",
            "--quiet",
            "--no-table-headers",
        ]);
        let leader = out.lines().find_map(|line| {
            let mut cols = line.split('\t');
            (cols.next()? == queue).then(|| cols.next().unwrap_or_default().trim().to_owned())
        })?;
        self.nodes.iter().position(|n| n.name == leader)
    }
}

/// The node of an Erlang process id as `rabbitmqctl` prints it,
/// `<rabbit@host.1796223858.785.0>`: all but the last three dotted parts
/// (a host name may hold dots itself).
fn node_of_pid(pid: &str) -> Option<String> {
    let inner = pid.trim().strip_prefix('<')?.strip_suffix('>')?;
    let mut parts = inner.rsplitn(4, '.');
    let numbers = [parts.next()?, parts.next()?, parts.next()?];
    if !numbers.iter().all(|n| n.parse::<u64>().is_ok()) {
        return None;
    }
    parts.next().map(str::to_owned)
}

#[cfg(unix)]
fn set_owner_only(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400)).unwrap();
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        // Each node stops on its own drop; the cookie's home goes last.
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}
