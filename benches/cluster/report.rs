//! What is printed under the table: where each row's time went, what the
//! columns mean, and how busy the machine was.

use std::time::Instant;

use serde_json::Value;

use crate::e2e::CONCURRENCY;
use crate::harness::machine::loadavg;
use crate::harness::row::Row;
use crate::harness::table::fmt_opt;

/// One line per row: CPU seconds of this process, of each broker process
/// and of the rest of the machine over the row's window, the CPU a message
/// costs, connections, and Redis commands per message or RabbitMQ disk
/// writes.
pub(crate) fn breakdown(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .map(|row| {
            let num = |key: &str| row.extra.get(key).and_then(Value::as_f64);
            let nodes: Vec<String> = row
                .extra
                .get("node_cpu_s")
                .and_then(Value::as_object)
                .map(|nodes| {
                    nodes
                        .iter()
                        .map(|(label, cpu)| format!("{label} {}", fmt_opt(cpu.as_f64(), 2)))
                        .collect()
                })
                .unwrap_or_default();
            let last = match (num("commands_per_msg"), num("disk_write_mib")) {
                (Some(per_msg), _) => format!("{per_msg:.2} redis commands/msg"),
                (None, Some(mib)) => format!("{mib:.1} MiB written to disk"),
                (None, None) => "-".to_owned(),
            };
            // What one message costs the machine, wherever it is spent.
            let per_msg = num("bench_cpu_s")
                .zip(num("broker_cpu_s"))
                .map(|(bench, brokers)| (bench + brokers) / row.n as f64 * 1e6);
            format!(
                "{}: {} s; CPU-s: bench {}, brokers {} ({}), neighbours {}; bench + brokers {} µs CPU/msg; {} connections; {last}",
                row.name,
                fmt_opt(num("window_s"), 2),
                fmt_opt(num("bench_cpu_s"), 2),
                fmt_opt(num("broker_cpu_s"), 2),
                nodes.join(", "),
                fmt_opt(num("neighbours_cpu_s"), 2),
                fmt_opt(per_msg, 0),
                fmt_opt(num("connections"), 0),
            )
        })
        .collect()
}

/// The notes: what the rows do and what the columns mean.
pub(crate) fn notes(
    reps: usize,
    pushers: usize,
    started: Instant,
    load_before: &str,
    other_cpu: Option<f64>,
) -> Vec<String> {
    vec![
        format!("each row: N messages of 64 B spread over its queues by {pushers} pusher tasks, one listener per queue (concurrency {CONCURRENCY}), every message handled; timed from the first push to the last handler call"),
        format!("median of {reps} run{}; a row and its baseline run interleaved (baseline, row, baseline, ...); every run's rate is in the JSON 'runs'", if reps == 1 { "" } else { "s" }),
        "ratio = rate / the baseline's in the same run: the cluster row / the single-node row (same 30 queues), quorum / classic (same 3 queues, same cluster)".to_owned(),
        "single node: the shared Redis of 127.0.0.1:6379 (its commands and CPU include any other client's); cluster: 3 masters + 3 replicas, private, on this machine; amqp: 3 private RabbitMQ nodes on this machine".to_owned(),
        "where the time goes, over the median run's window: CPU seconds of this process (bench), of each broker process (/proc/<pid>/stat), and of the rest of the machine (neighbours); this process's TCP connections to the brokers; Redis commands per message (all masters') or bytes RabbitMQ wrote to disk".to_owned(),
        "other CPU s = CPU time every other process used during the row's runs, the brokers included (the neighbours' share is in the lines above; want ~0)".to_owned(),
        format!(
            "total {:.1} s; load average before {load_before}, after {}; other processes used {} CPU-s during the run",
            started.elapsed().as_secs_f64(),
            loadavg(),
            fmt_opt(other_cpu, 1),
        ),
    ]
}
