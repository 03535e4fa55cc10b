//! Throughput, latency and memory benchmark of every driver, with raw
//! baselines (tokio, actix, lapin, redis) measured in the same run.
//!
//! ```text
//! cargo bench --bench throughput                      # full run (N = 1,000,000)
//! cargo bench --bench throughput -- --quick           # CI smoke run (N = 50,000, latency 0.5 s)
//! cargo bench --bench throughput -- --json rows.jsonl # also write the rows as JSON lines
//! ACTORBUS_BENCH_N=200000 cargo bench --bench throughput
//! cargo bench --bench throughput --features metrics,otel # adds "memory e2e 1q x 1l metrics+otel"
//! ```
//!
//! Environment knobs: `ACTORBUS_BENCH_N` (messages per throughput row;
//! sequential rows use N/20), `ACTORBUS_BENCH_PRODUCERS` (concurrent pusher
//! tasks, default 64), `ACTORBUS_BENCH_REPS` (runs per throughput and
//! latency row, the median is shown; default 3, latency rows 1 in `--quick`),
//! `ACTORBUS_BENCH_RSS_N` (messages of the RSS row, default 1,000,000 also
//! in `--quick`: it takes a second or two). A positional argument runs only
//! the rows whose name contains it (`cargo bench --bench throughput --
//! "memory e2e"`; `"fan-out|issue_async"` runs the rows that contain either).
//!
//! The table's `other CPU s` column is CPU time other processes took on the
//! machine during the row; on a shared 2-core machine anything above ~0.1 s
//! means the row measured the neighbours too. Cross-thread wake-ups on a
//! small VM are also bimodal (a halted vCPU is slow to wake), so sequential
//! and latency rows can differ several-fold between runs; throughput and
//! latency rows show the median of several runs for that reason. The `raw
//! actix latency` row measures that wake-up floor with a bare actor under
//! the same pacing, so the bus's latency can also be read as a ratio to it;
//! the latency rows' runs are interleaved (raw, bus, bursts, raw, ...) so
//! that each round sees the machine in about the same state.
//!
//! How it runs: every actix and bus row runs inside one actix system
//! (`actix::System::new().block_on(..)`, what `#[actix::main]` expands to),
//! so the bus places its actors on arbiters of that system, as it does for
//! a typical actix user. Producers are tasks on the system's thread. The raw
//! tokio row uses a multi-thread tokio runtime of its own (2 workers). The
//! RSS row runs in a child process (this binary re-executed with
//! `--rss-child`), so that memory freed by earlier rows cannot hide growth.
//!
//! Every queue, stream and key a row makes on a broker is deleted when
//! the row ends, and again (if the row never got there) when the run ends,
//! panics, or gets SIGINT/SIGTERM (`harness/cleanup.rs`).
//!
//! Layout: `harness/` (flags and env, deleting what rows made on the brokers, one result row, the printed table and
//! JSON lines, targets and ratios, paced latency, the child-process RSS row,
//! percentiles and medians, counting handled messages, /proc readings),
//! `memory/` (the memory driver's rows, the main row observed (metrics and
//! OpenTelemetry on, with `--features metrics,otel`), and the raw tokio and
//! actix baselines), `amqp/` and `redis/` (each broker driver's rows and raw
//! baselines). One target, so every ratio comes from one run.

mod amqp;
mod harness;
mod memory;
mod redis;

use std::time::Instant;

use actix::System;
use bytes::Bytes;

use harness::args::Opts;
use harness::interleave::Interleaved;
use harness::latency::{bus_latency, raw_actix_latency, Pacing};
use harness::machine::{loadavg, with_foreign_cpu, CpuSnap};
use harness::row::Row;
use harness::stats::median_latency;
use memory::bus_e2e;

/// Payload size of every row. Throughput rows (bus and raw alike) push clones
/// of one shared 64-byte `Bytes`, so every row pays the same (tiny) producer
/// cost; the `vec-payload` row pushes a fresh `Vec<u8>` per message instead,
/// as code that serializes each message does.
const PAYLOAD_LEN: usize = 64;

fn payload() -> Bytes {
    Bytes::from(vec![0xA5u8; PAYLOAD_LEN])
}

fn main() {
    let (opts, rss_child_mode) = harness::args::parse_args();
    if rss_child_mode {
        harness::rss::rss_child(opts.rss_n, opts.producers);
    }
    // Deletes what the rows made on the brokers, however the run ends.
    let _cleanup = harness::cleanup::guard();
    let started = Instant::now();
    let load_before = loadavg();
    let whole_run = CpuSnap::now();
    eprintln!(
        "actorbus throughput bench: n={} (seq rows {}), producers={}, latency {} msg/s for {:?} x{}, rss {} msgs{}",
        opts.n,
        opts.n_seq,
        opts.producers,
        opts.rate,
        opts.latency_for,
        opts.latency_reps,
        opts.rss_n,
        if opts.quick { " [quick]" } else { "" },
    );

    let mut rows = Vec::new();
    if opts.wants("raw tokio mpsc") {
        eprintln!("  raw tokio mpsc ...");
        let snap = CpuSnap::now();
        let row = memory::raw::raw_tokio_mpsc(opts.n, opts.reps);
        rows.push(with_foreign_cpu(row, snap));
    }
    let inner = opts.clone();
    rows.extend(System::new().block_on(actix_rows(inner)));
    if opts.wants("memory rss") {
        eprintln!("  memory rss ...");
        let snap = CpuSnap::now();
        let row = harness::rss::bus_rss(&opts);
        rows.push(with_foreign_cpu(row, snap));
    }
    if opts.wants(harness::rss::IDLE_ROW) {
        eprintln!("  {} ...", harness::rss::IDLE_ROW);
        let snap = CpuSnap::now();
        let row = harness::rss::idle_queues_rss(&opts);
        rows.push(with_foreign_cpu(row, snap));
    }

    harness::targets::apply(&mut rows, &opts);

    println!();
    harness::table::print_table(&rows);
    println!();
    let whole_run_other_cpu = whole_run.and_then(CpuSnap::foreign_since);
    for note in harness::table::notes(&opts, started, &load_before, whole_run_other_cpu) {
        println!("  {note}");
    }

    if let Some(path) = &opts.json {
        harness::table::write_json(path, &rows);
    }
}

/// Every row that runs inside the actix system: raw actix baselines, bus
/// throughput rows, then the latency rows.
async fn actix_rows(opts: Opts) -> Vec<Row> {
    let (n, n_seq, k, reps) = (opts.n, opts.n_seq, opts.producers, opts.reps);
    let send_pipelined = format!("raw actix send().await x{k}");
    let send_owned = format!("raw actix send().await x{k} vec-payload");
    let seq = "raw actix send().await seq";
    let mut group = Interleaved::new(&opts)
        .row("raw actix 2 actors", || memory::raw::raw_actix_do_send(n))
        .row(&send_pipelined, || {
            memory::raw::raw_actix_send(&send_pipelined, n, k, false)
        })
        .row(&send_owned, || {
            memory::raw::raw_actix_send(&send_owned, n, k, true)
        })
        .row(seq, || memory::raw::raw_actix_send(seq, n_seq, 1, false));
    let e2e = memory::e2e_specs(n, n_seq, k);
    let main = e2e[0];
    for spec in e2e {
        // Exact match for the main row, so that its filter does not pick its variants.
        let wanted = match &opts.filter {
            Some(f) if f == main.name => spec.name == f.as_str(),
            _ => opts.wants(spec.name),
        };
        group = group.row_if(wanted, spec.name, move || bus_e2e(spec));
    }
    let mut rows = group.run(reps).await;
    rows.extend(latency_rows(&opts).await);
    rows.extend(memory::batch::rows(&opts).await);
    rows.extend(memory::patterns::rows(&opts).await);
    rows.extend(amqp::rows(&opts).await);
    rows.extend(redis::rows(&opts).await);
    #[cfg(all(feature = "metrics", feature = "otel"))]
    observed_row(&opts, main, &mut rows).await;
    rows
}

/// The main e2e row with a metrics recorder and the OpenTelemetry layer on,
/// placed right after the plain row (it runs last: what it installs stays).
/// The plain row's own filter selects it too.
#[cfg(all(feature = "metrics", feature = "otel"))]
async fn observed_row(opts: &Opts, main: memory::E2e, rows: &mut Vec<Row>) {
    use memory::observed;
    if !(opts.wants(observed::NAME) || opts.filter.as_deref() == Some(main.name)) {
        return;
    }
    observed::install();
    let row =
        harness::stats::measured(observed::NAME, opts.reps, || bus_e2e(observed::spec(main))).await;
    let at = rows
        .iter()
        .position(|r| r.name == main.name)
        .map_or(rows.len(), |i| i + 1);
    rows.insert(at, row);
}

/// The latency rows, interleaved: each round runs every selected row once
/// (raw, bus, bus 1ms-bursts; then bus, bus 1ms-bursts, raw; ...), so the
/// raw baseline and the bus rows it is compared with see the machine in
/// about the same state.
/// Each row shows the median p50 and median p99 of its runs; its
/// `other CPU s` is the sum over its runs.
async fn latency_rows(opts: &Opts) -> Vec<Row> {
    let (rate, measured_for, reps) = (opts.rate, opts.latency_for, opts.latency_reps);
    let latency = opts.latency_row();
    let specs = [
        (opts.raw_latency_row(), None),
        (latency.clone(), Some(Pacing::Thread)),
        (format!("{latency} 1ms-bursts"), Some(Pacing::TokioTimer)),
    ];
    let mut group = Interleaved::new(opts);
    for (name, pacing) in specs {
        // Exact match for the target row, so that its filter does not pick the bursts row.
        let wanted = match &opts.filter {
            Some(f) if *f == latency => name == latency,
            _ => opts.wants(&name),
        };
        let row = name.clone();
        group = group.row_if(wanted, &row, move || {
            let name = name.clone();
            async move {
                match pacing {
                    None => raw_actix_latency(name, rate, measured_for).await,
                    Some(pacing) => bus_latency(name, rate, measured_for, pacing).await,
                }
            }
        });
    }
    group.run_with(reps, median_latency).await
}
