//! Cluster benchmark: end-to-end throughput on a private Redis Cluster
//! next to a single Redis with the same 30 queues, and quorum against
//! classic queues on a private 3-node RabbitMQ cluster, each pair in one
//! run, with where the time went.
//!
//! ```text
//! cargo bench --bench cluster                 # full run: medians of 3
//! cargo bench --bench cluster -- --quick      # smoke run (small N, 1 run per row)
//! cargo bench --bench cluster -- redis        # only the rows whose name contains "redis"
//! cargo bench --bench cluster -- --json rows.jsonl
//! ```
//!
//! Knobs: `ACTORBUS_BENCH_N` (the redis rows run a tenth of it, at most
//! 100,000; 6,000 in `--quick`), `ACTORBUS_BENCH_AMQP_N` (default 50,000;
//! 3,000 in `--quick`), `ACTORBUS_BENCH_PRODUCERS` (pusher tasks, default
//! 64), `ACTORBUS_BENCH_REPS` (runs per row in a full run, default 3).
//!
//! The bench starts its clusters itself (the tests' code, `tests/support/`:
//! own ports, data directories and node names) and tears them down on
//! every exit: a normal end, a panic, SIGINT, SIGTERM or SIGHUP. It touches
//! the shared brokers only for the single-node Redis row, on the shared
//! Redis of 127.0.0.1:6379, with keys `bench-cluster-*` that it deletes.
//!
//! Layout: `harness` (the throughput bench's, by `#[path]`), `support`
//! (the tests' clusters, by `#[path]`), `teardown` (exits and cleanup),
//! `e2e` (one row, and a row interleaved with its baseline), `probe` (CPU,
//! connections, commands and disk writes of a row), `redis` and `amqp`
//! (the rows), `report` (what is printed under the table).

mod amqp;
mod e2e;
mod harness;
mod probe;
mod redis;
mod report;
mod support;
mod teardown;

use std::time::Instant;

use actix::System;

use harness::args::Opts;
use harness::machine::{loadavg, CpuSnap};
use harness::row::Row;

fn main() {
    let (opts, _) = harness::args::parse_args();
    let reps = if opts.quick { 1 } else { opts.reps };
    let started = Instant::now();
    let load_before = loadavg();
    let whole_run = CpuSnap::now();
    eprintln!(
        "actorbus cluster bench: producers={}, runs per row={reps}{}",
        opts.producers,
        if opts.quick { " [quick]" } else { "" },
    );
    let system = System::new();
    let rows = system.block_on(teardown::unless_interrupted(all_rows(opts.clone(), reps)));
    // Waits for a cluster start still running on a blocking thread, whose
    // cluster is then dropped (torn down) there.
    drop(system);
    let Some(rows) = rows else {
        eprintln!("interrupted: the private clusters are gone and the bench's keys deleted");
        std::process::exit(130);
    };

    println!();
    harness::table::print_table_headed(&rows, "ratio to baseline");
    println!();
    println!("  where the time goes:");
    for line in report::breakdown(&rows) {
        println!("    {line}");
    }
    let whole_run_other_cpu = whole_run.and_then(CpuSnap::foreign_since);
    for note in report::notes(
        reps,
        opts.producers,
        started,
        &load_before,
        whole_run_other_cpu,
    ) {
        println!("  {note}");
    }
    if let Some(path) = &opts.json {
        harness::table::write_json(path, &rows);
    }
}

/// The Redis rows (their cluster torn down before the next one starts),
/// then the RabbitMQ rows.
async fn all_rows(opts: Opts, reps: usize) -> Vec<Row> {
    let mut rows = redis::rows(&opts, reps).await;
    rows.extend(amqp::rows(&opts, reps).await);
    rows
}
