//! One end-to-end row over several queues: N messages spread over the
//! queues by the pusher tasks (message `i` to queue `i % queues`), one
//! listener per queue, timed from the first push until every message was
//! handled; and the interleaved runs of a row and its baseline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use actorbus::{Bus, Config, Delivery, HandlerResult, ListenerOptions};
use bytes::Bytes;
use serde_json::json;

use crate::harness::machine::{with_other_cpu, CpuSnap};
use crate::harness::row::{Kind, Row};
use crate::harness::sink::{settle_down, Sink};
use crate::harness::stats::median_row;
use crate::probe::Broker;

/// Payload of every message, as in the throughput bench.
const PAYLOAD_LEN: usize = 64;
/// Deliveries each listener handles at once, as in the throughput bench's
/// e2e rows (`c64`).
pub(crate) const CONCURRENCY: usize = 64;

/// How much one row pushes, and from how many tasks.
#[derive(Clone, Copy)]
pub(crate) struct Load {
    /// Messages of the row.
    pub(crate) n: usize,
    /// Pusher tasks.
    pub(crate) pushers: usize,
}

/// The names of a run's `count` queues: `bench-cluster-<kind>-<pid>-<run>-<i>`.
pub(crate) fn queue_names(kind: &str, run: usize, count: usize) -> Vec<String> {
    let pid = std::process::id();
    (0..count)
        .map(|i| format!("bench-cluster-{kind}-{pid}-{run}-{i}"))
        .collect()
}

/// Runs the row `name` once on `queues`: connects with `config`, attaches
/// the listeners, then times the pushes and the handling while watching
/// `broker`'s processes; shuts the bus down afterwards (not timed).
pub(crate) async fn run(
    name: &'static str,
    config: Config,
    queues: &[String],
    load: Load,
    broker: &Broker,
) -> Row {
    let Load { n, pushers } = load;
    let bus = Bus::connect(config).await.expect("connect the bus");
    let sink = Sink::default();
    let handled: Arc<Vec<AtomicUsize>> =
        Arc::new(queues.iter().map(|_| AtomicUsize::new(0)).collect());
    let target = sink.expect(n);
    for (i, queue) in queues.iter().enumerate() {
        let (sink, handled) = (sink.clone(), handled.clone());
        let opts = ListenerOptions::default().with_concurrency(CONCURRENCY);
        bus.add_listener_with(queue, opts, move |d: Delivery| {
            std::hint::black_box(d.payload());
            handled[i].fetch_add(1, Ordering::Relaxed);
            sink.hit();
            std::future::ready(HandlerResult::Ok(()))
        })
        .await
        .expect("add_listener");
    }
    let reading = broker.begin();
    let start = Instant::now();
    push_all(&bus, queues, n, pushers).await;
    sink.wait(target).await;
    let elapsed = start.elapsed();
    let spent = broker.end(reading, n);
    bus.shutdown().await.expect("shutdown");
    for (i, count) in handled.iter().enumerate() {
        let expected = (n + queues.len() - 1 - i) / queues.len();
        let count = count.load(Ordering::Relaxed);
        assert!(
            count >= expected,
            "{}: queue {} handled {count} of its {expected} messages",
            name,
            queues[i]
        );
    }
    let mut row = Row::rate(name, Kind::E2e { seq: false }, n, elapsed)
        .with("queues", json!(queues.len()))
        .with("pushers", json!(pushers))
        .with("listener_concurrency", json!(CONCURRENCY))
        .with("duplicates", json!(sink.count() - n));
    row.extra.extend(spent);
    row
}

/// `pushers` tasks push `n` messages, message `i` to queue `i % queues`.
async fn push_all(bus: &Bus, queues: &[String], n: usize, pushers: usize) {
    let body = Bytes::from(vec![0xA5u8; PAYLOAD_LEN]);
    let queues: Arc<[String]> = queues.into();
    let tasks: Vec<_> = (0..pushers)
        .map(|t| {
            let (bus, queues, body) = (bus.clone(), queues.clone(), body.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    let queue = &queues[i % queues.len()];
                    bus.push(queue, body.clone()).await.expect("push");
                    i += pushers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
}

/// A row and its baseline, their runs interleaved (baseline, row,
/// baseline, ...) so that each pair sees the machine in about the same
/// state. `run(false, rep)` is a baseline run, `run(true, rep)` the row's;
/// either may be left out (its name `None`). Each gets the median run by rate, with
/// `other CPU s` summed over its runs, and the row its ratio to the
/// baseline.
pub(crate) async fn interleaved<F, Fut>(
    reps: usize,
    names: [Option<&str>; 2],
    mut run: F,
) -> Vec<Row>
where
    F: FnMut(bool, usize) -> Fut,
    Fut: std::future::Future<Output = Row>,
{
    let mut runs: [Vec<Row>; 2] = [Vec::new(), Vec::new()];
    let mut other_cpu = [Some(0.0); 2];
    for rep in 1..=reps.max(1) {
        for side in [0, 1] {
            let Some(name) = names[side] else { continue };
            eprintln!("  {name} (run {rep}/{reps}) ...");
            let snap = CpuSnap::now();
            let row = run(side == 1, rep).await;
            let cpu = snap.and_then(CpuSnap::foreign_since);
            other_cpu[side] = other_cpu[side].zip(cpu).map(|(sum, cpu)| sum + cpu);
            runs[side].push(row);
            settle_down().await;
        }
    }
    let [base, row] = runs;
    let [base_cpu, row_cpu] = other_cpu;
    let base = (!base.is_empty()).then(|| with_other_cpu(median_row(base), base_cpu));
    let mut row = (!row.is_empty()).then(|| with_other_cpu(median_row(row), row_cpu));
    if let (Some(base), Some(row)) = (&base, &mut row) {
        row.ratio = base.msgs_per_s.zip(row.msgs_per_s).map(|(b, r)| r / b);
        row.extra.insert("ratio_vs".into(), json!(base.name));
    }
    base.into_iter().chain(row).collect()
}
