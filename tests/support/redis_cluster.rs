//! A private Redis Cluster for the tests: 3 masters and 3 replicas on free
//! ports, each `redis-server` in a directory of its own, torn down on drop.
//! Never the shared Redis of 6379.
//!
//! Reached as `support::redis_cluster` (declared in `tests/support/mod.rs`).

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actorbus::{Config, DriverKind};

use crate::support::redis::{cli_on, free_port, wait_for_pong};

/// How long a node may be silent before the cluster fails it over: short,
/// so a failover test is quick; long enough for a busy machine.
const NODE_TIMEOUT_MS: u32 = 2000;
/// Bound of every wait for the cluster to form or heal.
const FORM_LIMIT: Duration = Duration::from_secs(60);

/// One `redis-server` of the cluster.
struct Node {
    port: u16,
    /// The cluster bus port (given: `port + 10000` may not exist).
    bus_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// SIGKILLs it, if it runs.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A Redis Cluster of 3 masters, each with one replica.
pub struct RedisCluster {
    nodes: Vec<Node>,
}

impl RedisCluster {
    /// Starts 6 nodes, joins them with `redis-cli --cluster create …
    /// --cluster-replicas 1`, and waits until every node says
    /// `cluster_state:ok` and every master has its replica online.
    pub fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            let dir = std::env::temp_dir()
                .join(format!("actorbus-cluster-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            nodes.push(Node {
                port,
                bus_port: free_port(),
                dir,
                child: None,
            });
        }
        let mut cluster = RedisCluster { nodes };
        for i in 0..cluster.nodes.len() {
            cluster.launch(i);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {out:?}"
        );
        cluster.wait_healthy();
        cluster
    }

    /// The `redis.cluster` urls: every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// A redis config on this cluster.
    pub fn config(&self) -> Config {
        let mut config = crate::support::fast_config();
        config.queue.driver = DriverKind::Redis;
        config.redis.cluster = self.urls();
        config
    }

    /// The ports of the masters, as a live node sees them.
    pub fn masters(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .node_lines()
            .iter()
            .filter(|l| l.flags.contains("master") && !l.flags.contains("fail"))
            .map(|l| l.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    /// The port of the master that owns `key`'s hash slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let live = self.live_port();
        let slot: u16 = cli_on(live, &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number");
        self.node_lines()
            .into_iter()
            .find(|l| l.flags.contains("master") && !l.flags.contains("fail") && l.owns(slot))
            .unwrap_or_else(|| panic!("no live master owns slot {slot} of {key:?}"))
            .port
    }

    /// The port of the replica of the master on `port`.
    pub fn replica_of(&self, port: u16) -> u16 {
        let lines = self.node_lines();
        let master = lines.iter().find(|l| l.port == port).expect("a known node");
        lines
            .iter()
            .find(|l| l.master == master.id)
            .unwrap_or_else(|| panic!("no replica of {port}: {lines:?}"))
            .port
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the node on `port`: frozen,
    /// it takes nothing and acknowledges nothing, but stays connected.
    pub fn freeze(&self, port: u16, frozen: bool) {
        let child = self.nodes[self.index(port)]
            .child
            .as_ref()
            .expect("a running node");
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill must be installed");
        assert!(sent.success(), "kill {signal} {port}");
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&mut self, port: u16) {
        let i = self.index(port);
        self.nodes[i].stop();
    }

    /// Starts the node on `port` again, with its `nodes.conf`: it rejoins
    /// (a failed-over master comes back as a replica of its successor).
    pub fn restart(&mut self, port: u16) {
        let i = self.index(port);
        self.launch(i);
    }

    fn index(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .expect("a node of this cluster")
    }

    /// Waits until no live node marks a master as failed and `port`
    /// (killed) is no longer a master of any slot: a replica took over.
    pub fn wait_promoted(&self, port: u16) {
        let start = Instant::now();
        loop {
            let lines = self.node_lines();
            let dead_gone = !lines.iter().any(|l| {
                l.port == port
                    && l.flags.contains("master")
                    && !l.slots.is_empty()
                    && !l.flags.contains("fail")
            });
            let ok = cli_on(self.live_port(), &["CLUSTER", "INFO"]).contains("cluster_state:ok");
            if dead_gone && ok && self.masters().len() == 3 {
                return;
            }
            assert!(
                start.elapsed() < FORM_LIMIT,
                "no replica took over from {port}: {lines:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node says `cluster_state:ok` and every
    /// master has a replica online.
    pub fn wait_healthy(&self) {
        let start = Instant::now();
        loop {
            let running: Vec<u16> = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .map(|n| n.port)
                .collect();
            let all_ok = running
                .iter()
                .all(|p| cli_on(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok"));
            let masters = self.masters();
            let replicated = masters.len() == 3
                && masters.iter().all(|p| {
                    let info = cli_on(*p, &["INFO", "replication"]);
                    info.contains("connected_slaves:1") && info.contains("state=online")
                });
            if all_ok && replicated {
                return;
            }
            assert!(
                start.elapsed() < FORM_LIMIT,
                "the Redis Cluster did not become healthy within {FORM_LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn launch(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let child = Command::new("redis-server")
            .args(["--port", &node.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-port", &node.bus_port.to_string()])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&node.dir)
            .args(["--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        node.child = Some(child);
        wait_for_pong(node.port, FORM_LIMIT);
    }

    /// A running node's port.
    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a running node")
            .port
    }

    /// `CLUSTER NODES` as a live node sees it.
    fn node_lines(&self) -> Vec<NodeLine> {
        cli_on(self.live_port(), &["CLUSTER", "NODES"])
            .lines()
            .filter_map(NodeLine::parse)
            .collect()
    }
}

/// One line of `CLUSTER NODES`.
#[derive(Debug)]
struct NodeLine {
    id: String,
    port: u16,
    /// The id of its master, `-` for a master.
    master: String,
    flags: String,
    /// Slot ranges, inclusive.
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn parse(line: &str) -> Option<NodeLine> {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let address = parts.get(1)?;
        let port = address
            .split(['@', ','])
            .next()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()?;
        let slots = parts
            .iter()
            .skip(8)
            .filter(|s| !s.starts_with('['))
            .filter_map(|s| match s.split_once('-') {
                Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                None => s.parse().ok().map(|n| (n, n)),
            })
            .collect();
        Some(NodeLine {
            id: (*parts.first()?).to_owned(),
            master: (*parts.get(3)?).to_owned(),
            port,
            flags: (*parts.get(2)?).to_owned(),
            slots,
        })
    }

    fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
            let _ = std::fs::remove_dir_all(&node.dir);
        }
    }
}
