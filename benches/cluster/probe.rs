//! Where a row's time goes: CPU seconds of each broker process and of this
//! process over the row (from `/proc/<pid>/stat`), what the rest of the
//! machine took, this process's TCP connections to the brokers, the
//! commands Redis processed per message, and what RabbitMQ wrote to disk.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::harness::machine::{CpuSnap, MIB};
use crate::support::redis::cli_on;

/// Clock ticks per second of /proc (USER_HZ; 100 on Linux).
const HZ: f64 = 100.0;

/// One broker process a row watches.
pub(crate) struct Node {
    /// How the breakdown names it (`master 7001`, `node 2`, ...).
    pub(crate) label: String,
    /// Its OS pid.
    pub(crate) pid: u32,
    /// Its Redis port if its `total_commands_processed` counts: a master's
    /// (a replica's counts the replication stream again); `None` for the
    /// rest.
    pub(crate) redis_port: Option<u16>,
}

/// The broker a row runs on: its processes and its client ports.
pub(crate) struct Broker {
    pub(crate) nodes: Vec<Node>,
    /// The ports clients connect to, to count this process's connections.
    pub(crate) ports: Vec<u16>,
}

/// Readings at the start of a row.
pub(crate) struct Reading {
    at: Instant,
    machine: Option<CpuSnap>,
    own: Option<u64>,
    cpu: Vec<Option<u64>>,
    commands: Vec<Option<u64>>,
    written: Vec<Option<u64>>,
}

impl Broker {
    /// Reads every counter; call right before the row's first push.
    pub(crate) fn begin(&self) -> Reading {
        Reading {
            at: Instant::now(),
            machine: CpuSnap::now(),
            own: cpu_ticks("self"),
            cpu: self
                .nodes
                .iter()
                .map(|n| cpu_ticks(&n.pid.to_string()))
                .collect(),
            commands: self.nodes.iter().map(commands).collect(),
            written: self.nodes.iter().map(|n| write_bytes(n.pid)).collect(),
        }
    }

    /// What the row spent since `start`, as the row's JSON extras; call
    /// right after its last message was handled, while the bus still runs
    /// (its connections are counted then).
    pub(crate) fn end(&self, start: Reading, n: usize) -> Map<String, Value> {
        let secs = start.at.elapsed().as_secs_f64();
        let foreign = start.machine.and_then(CpuSnap::foreign_since);
        let own = delta(start.own, cpu_ticks("self")).map(|t| t as f64 / HZ);
        let mut per_node = Map::new();
        let mut broker = 0.0;
        for (node, before) in self.nodes.iter().zip(&start.cpu) {
            let spent = delta(*before, cpu_ticks(&node.pid.to_string())).map(|t| t as f64 / HZ);
            broker += spent.unwrap_or(0.0);
            per_node.insert(node.label.clone(), json!(spent.map(round2)));
        }
        let commands: Option<u64> = self
            .nodes
            .iter()
            .zip(&start.commands)
            .filter(|(node, _)| node.redis_port.is_some())
            .map(|(node, before)| delta(*before, commands(node)))
            .sum();
        let written: Option<u64> = self
            .nodes
            .iter()
            .zip(&start.written)
            .map(|(node, before)| delta(*before, write_bytes(node.pid)))
            .sum();
        let counts_commands = self.nodes.iter().any(|n| n.redis_port.is_some());
        let mut extras = Map::new();
        extras.insert("window_s".into(), json!(round2(secs)));
        extras.insert("bench_cpu_s".into(), json!(own.map(round2)));
        extras.insert("broker_cpu_s".into(), json!(round2(broker)));
        extras.insert("node_cpu_s".into(), Value::Object(per_node));
        // The machine's other CPU, less the brokers': the neighbours' share.
        let rest = foreign.map(|f| round2((f - broker).max(0.0)));
        extras.insert("neighbours_cpu_s".into(), json!(rest));
        extras.insert("connections".into(), json!(connections(&self.ports)));
        if counts_commands {
            let per_msg = commands.map(|c| round2(c as f64 / n as f64));
            extras.insert("commands_per_msg".into(), json!(per_msg));
        } else {
            let mib = written.map(|b| round2(b as f64 / MIB));
            extras.insert("disk_write_mib".into(), json!(mib));
        }
        extras
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// utime + stime of `/proc/<pid>/stat`, in ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime is field 14.
    let after = stat.rsplit_once(')')?.1;
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Bytes the process made the disk write (`/proc/<pid>/io`, own processes only).
fn write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("write_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `total_commands_processed` of a Redis node (the whole server's: on the
/// shared Redis it counts other clients too).
fn commands(node: &Node) -> Option<u64> {
    let info = cli_on(node.redis_port?, &["INFO", "stats"]);
    info.lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))?
        .trim()
        .parse()
        .ok()
}

/// The pid a Redis server on `port` reports (`INFO server`).
pub(crate) fn redis_pid(port: u16) -> u32 {
    let info = cli_on(port, &["INFO", "server"]);
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no process_id in INFO server of {port}"))
}

/// This process's established TCP connections to any of `ports`: its
/// sockets (`/proc/self/fd`) matched with `/proc/net/tcp{,6}` by inode.
fn connections(ports: &[u16]) -> usize {
    let own: HashSet<u64> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // remote address `HEX:PORT`, state 01 = established, inode.
            let remote = cols.get(2).and_then(|a| a.rsplit_once(':'));
            let port = remote.and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let inode = cols.get(9).and_then(|i| i.parse().ok());
            cols.get(3) == Some(&"01")
                && port.is_some_and(|p| ports.contains(&p))
                && inode.is_some_and(|i| own.contains(&i))
        })
        .count()
}
