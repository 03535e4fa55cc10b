//! The bus's amqp rows, and the order all amqp rows run in.
//!
//! Every row has the same guarantees: durable queue, persistent messages,
//! publisher confirms, manual acks after handling. Bus rows:
//! `amqp e2e c64` (one listener, concurrency 64, 64 pushers), `amqp
//! push-only x64` (no listener), `amqp latency @2k/s` (p50/p99 from push to
//! handler). Raw lapin rows (in [`raw`]): best practice (1000 confirms in
//! flight, prefetch 1000, `multiple` acks), the same with the bus row's
//! depths (64 confirms in flight, as many as its pushers; prefetch 128, as
//! its listener's), naive (each confirm awaited,
//! prefetch 1 so each ack is a round trip), pipelined push-only (1000
//! confirms in flight, the target's baseline; and 64, as many as the bus
//! row's pushers, shown for what the in-flight depth alone costs), and the
//! latency at the same pace. Knobs: `ACTORBUS_BENCH_AMQP_N` (messages per
//! row; default 50,000, 5,000 in `--quick`; the naive row runs a tenth),
//! `ACTORBUS_BENCH_AMQP_URL`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actorbus::{Bus, Config, Delivery, DriverKind, HandlerResult, ListenerOptions};
use bytes::Bytes;
use serde_json::json;

use super::{patterns, raw};
use crate::harness::args::Opts;
use crate::harness::cleanup::{self, Made};
use crate::harness::interleave::Interleaved;
use crate::harness::row::{Kind, Row};
use crate::harness::sink::Sink;
use crate::harness::stats::{measured, median_latency, percentile};
use crate::PAYLOAD_LEN;

/// Default broker of the rows.
const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// Pusher tasks of the bus rows.
const PUSHERS: usize = 64;
/// Rate of the latency rows.
const RATE: u64 = 2_000;

/// Row names, shared with the targets.
pub(crate) const E2E: &str = "amqp e2e c64 x64 pushers";
pub(crate) const PUSH: &str = "amqp push-only x64";
pub(crate) const LATENCY: &str = "amqp latency @2k/s";
pub(crate) const RAW_BEST: &str = "amqp raw lapin e2e best (1000 confirms, prefetch 1000)";
pub(crate) const RAW_NAIVE: &str = "amqp raw lapin e2e naive (await each)";
/// The baseline of [`E2E`]: raw lapin e2e with its depths (64 confirms in
/// flight, as many as its pushers; its listener's prefetch).
pub(crate) const RAW_E2E_64: &str = "amqp raw lapin e2e (64 confirms, prefetch 128)";
pub(crate) const RAW_PUSH: &str = "amqp raw lapin push-only (1000 confirms)";
/// Not a target's baseline: raw lapin with as many confirms in flight as
/// the bus row has pushers, to show what the in-flight depth alone costs.
pub(crate) const RAW_PUSH_64: &str = "amqp raw lapin push-only (64 confirms)";
pub(crate) const RAW_LATENCY: &str = "amqp raw lapin latency @2k/s";
/// Not targets: the bus rows again with as many pushers as the best-practice
/// baseline has confirms in flight, so that the depth is the same on both sides.
pub(crate) const E2E_DEEP: &str = "amqp e2e c64 x1000 pushers";
pub(crate) const PUSH_DEEP: &str = "amqp push-only x1000";
/// One pusher, `push_batch` of 1000 at a time: next to raw lapin with 1000 confirms in flight.
pub(crate) const BATCH: &str = "amqp push_batch 1000";

/// Every amqp row the filter selects.
pub(crate) async fn rows(opts: &Opts) -> Vec<Row> {
    let names = [
        E2E,
        PUSH,
        LATENCY,
        RAW_BEST,
        RAW_NAIVE,
        RAW_E2E_64,
        RAW_PUSH,
        RAW_PUSH_64,
        RAW_LATENCY,
        E2E_DEEP,
        PUSH_DEEP,
        BATCH,
        patterns::FANOUT,
        patterns::RTT,
        patterns::RAW_RTT,
    ];
    if !names.iter().any(|n| opts.wants(n)) {
        return Vec::new();
    }
    let url = url();
    // Loud, never a silent skip: a missing broker would hide the rows.
    if let Err(e) = raw::connect(&url).await {
        panic!(
            "RabbitMQ is not reachable at {url}: {e}; start it (scripts/test does) \
             or run only other rows (`cargo bench --bench throughput -- memory`)"
        );
    }
    let n = std::env::var("ACTORBUS_BENCH_AMQP_N")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(if opts.quick { 5_000 } else { 50_000 });
    let reps = opts.amqp_reps();
    let measured_for = if opts.quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    let mut rows = Vec::new();
    let url = url.as_str();
    if opts.wants(RAW_NAIVE) {
        rows.push(measured(RAW_NAIVE, reps, || raw::e2e_naive(url, (n / 10).max(500))).await);
    }
    let e2e = Interleaved::new(opts)
        .row(RAW_BEST, || raw::e2e_best(url, n))
        .row(RAW_E2E_64, || raw::e2e_64(url, n))
        .row(E2E, || bus_e2e(url, n, E2E, PUSHERS))
        .row(E2E_DEEP, || bus_e2e(url, n, E2E_DEEP, raw::IN_FLIGHT))
        .run(reps)
        .await;
    let push = Interleaved::new(opts)
        .row(RAW_PUSH, || raw::push_only(url, n, raw::IN_FLIGHT))
        .row(RAW_PUSH_64, || raw::push_only(url, n, PUSHERS))
        .row(PUSH, || bus_push_only(url, n, PUSH, PUSHERS))
        .row(PUSH_DEEP, || {
            bus_push_only(url, n, PUSH_DEEP, raw::IN_FLIGHT)
        })
        .row(BATCH, || bus_batches(url, n))
        .run(reps)
        .await;
    rows.extend(e2e.into_iter().chain(push));
    // Latency rows interleaved, median p50/p99 of the runs.
    let latency = Interleaved::new(opts)
        .row(RAW_LATENCY, || raw::latency(url, RATE, measured_for))
        .row(LATENCY, || bus_latency(url, measured_for))
        .run_with(reps, median_latency)
        .await;
    rows.extend(latency);
    rows.extend(patterns::rows(opts, url, n, reps).await);
    patterns::apply_targets(&mut rows);
    rows
}

pub(crate) fn config(url: &str) -> Config {
    let mut config = Config::default();
    config.queue.driver = DriverKind::Amqp;
    config.amqp.url = url.to_owned();
    config
}

/// The broker of every amqp row: `ACTORBUS_BENCH_AMQP_URL`, else the shared one.
pub(crate) fn url() -> String {
    std::env::var("ACTORBUS_BENCH_AMQP_URL").unwrap_or_else(|_| URL.to_owned())
}

/// A fresh queue name per run, deleted afterwards (by its row, or by the
/// run's [`cleanup`](crate::harness::cleanup) if the row does not get there).
pub(crate) fn queue_name(row: &str) -> String {
    static RUN: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "bench-{row}-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    );
    cleanup::record(Made::Amqp(name.clone()));
    name
}

async fn push_all(
    bus: &Bus,
    queue: &str,
    n: usize,
    pushers: usize,
    make: impl Fn(usize) -> Bytes + Clone + 'static,
) {
    let tasks: Vec<_> = (0..pushers)
        .map(|t| {
            let (bus, queue, make) = (bus.clone(), queue.to_owned(), make.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    bus.push(&queue, make(i)).await.expect("push");
                    i += pushers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
}

async fn bus_e2e(url: &str, n: usize, name: &'static str, pushers: usize) -> Row {
    let bus = Bus::connect(config(url)).await.expect("connect");
    let q = queue_name("e2e");
    let sink = Sink::default();
    let s = sink.clone();
    let opts = ListenerOptions::default().with_concurrency(64);
    let listener = bus
        .add_listener_with(&q, opts, move |d: Delivery| {
            std::hint::black_box(d.payload());
            s.hit();
            std::future::ready(HandlerResult::Ok(()))
        })
        .await
        .expect("add_listener");
    let body = crate::payload();
    let warm = (n / 10).max(500);
    let target = sink.expect(warm);
    let b = body.clone();
    push_all(&bus, &q, warm, pushers, move |_| b.clone()).await;
    sink.wait(target).await;
    let target = sink.expect(n);
    let start = Instant::now();
    push_all(&bus, &q, n, pushers, move |_| body.clone()).await;
    sink.wait(target).await;
    let elapsed = start.elapsed();
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    raw::delete(url, &q).await;
    Row::rate(name, Kind::E2e { seq: false }, n, elapsed)
        .with("listener_concurrency", json!(64))
        .with("pushers", json!(pushers))
}

async fn bus_push_only(url: &str, n: usize, name: &'static str, pushers: usize) -> Row {
    let bus = Bus::connect(config(url)).await.expect("connect");
    let q = queue_name("push");
    let body = crate::payload();
    let b = body.clone();
    push_all(&bus, &q, (n / 10).max(500), pushers, move |_| b.clone()).await;
    let start = Instant::now();
    push_all(&bus, &q, n, pushers, move |_| body.clone()).await;
    let elapsed = start.elapsed();
    bus.shutdown().await.expect("shutdown");
    raw::delete(url, &q).await;
    Row::rate(name, Kind::E2e { seq: false }, n, elapsed).with("pushers", json!(pushers))
}

/// One pusher storing `n` messages in batches of `raw::IN_FLIGHT`.
async fn bus_batches(url: &str, n: usize) -> Row {
    let bus = Bus::connect(config(url)).await.expect("connect");
    let q = queue_name("batch");
    let body = crate::payload();
    let batches = n.div_ceil(raw::IN_FLIGHT);
    let batch = || std::iter::repeat_n(body.clone(), raw::IN_FLIGHT);
    bus.push_batch(&q, batch()).await.expect("warm-up batch");
    let start = Instant::now();
    for _ in 0..batches {
        bus.push_batch(&q, batch()).await.expect("push_batch");
    }
    let elapsed = start.elapsed();
    bus.shutdown().await.expect("shutdown");
    raw::delete(url, &q).await;
    Row::rate(
        BATCH,
        Kind::E2e { seq: false },
        batches * raw::IN_FLIGHT,
        elapsed,
    )
    .with("batch", json!(raw::IN_FLIGHT))
}

/// A payload carrying its send time (nanos since `base`) and index.
pub(crate) fn stamped(base: Instant, index: usize) -> Bytes {
    let mut body = vec![0xA5u8; PAYLOAD_LEN];
    body[0..8].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
    body[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    Bytes::from(body)
}

/// Records the latency of a stamped payload in its slot.
pub(crate) fn record(samples: &[AtomicU64], base: Instant, payload: &[u8]) {
    let now = base.elapsed().as_nanos() as u64;
    let sent = u64::from_le_bytes(payload[0..8].try_into().expect("stamp"));
    let index = u64::from_le_bytes(payload[8..16].try_into().expect("index")) as usize;
    if let Some(slot) = samples.get(index) {
        slot.store(now.saturating_sub(sent), Ordering::Relaxed);
    }
}

/// The latency row from the recorded samples after the first `warm`.
pub(crate) fn latency_row(name: &str, samples: &[AtomicU64], warm: usize) -> Row {
    let mut measured: Vec<u64> = samples[warm..]
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .filter(|&s| s != u64::MAX)
        .collect();
    measured.sort_unstable();
    let mut row = Row::new(name, Kind::Latency, measured.len());
    row.p50_us = Some(percentile(&measured, 0.50) as f64 / 1000.0);
    row.p99_us = Some(percentile(&measured, 0.99) as f64 / 1000.0);
    row.with("rate", json!(RATE)).with(
        "pacing",
        json!("tokio sleep_until on the system thread (1 ms ticks: bursts of ~2)"),
    )
}

/// Sends `total` messages at `RATE` with `send(index)`, each its own task,
/// and waits for the sends.
pub(crate) async fn paced<F, Fut>(total: usize, send: F)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let interval = Duration::from_nanos(1_000_000_000 / RATE);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        tasks.push(actix::spawn(send(i)));
    }
    for task in tasks {
        task.await.expect("paced send");
    }
}

async fn bus_latency(url: &str, measured_for: Duration) -> Row {
    let bus = Bus::connect(config(url)).await.expect("connect");
    let q = queue_name("latency");
    let warm = (RATE / 4) as usize;
    let total = warm + (RATE as f64 * measured_for.as_secs_f64()) as usize;
    let samples: Arc<Vec<AtomicU64>> =
        Arc::new((0..total).map(|_| AtomicU64::new(u64::MAX)).collect());
    let base = Instant::now();
    let sink = Sink::default();
    let target = sink.expect(total);
    let (s, sm) = (sink.clone(), samples.clone());
    let opts = ListenerOptions::default().with_concurrency(64);
    let listener = bus
        .add_listener_with(&q, opts, move |d: Delivery| {
            record(&sm, base, d.payload());
            s.hit();
            std::future::ready(HandlerResult::Ok(()))
        })
        .await
        .expect("add_listener");
    paced(total, |i| {
        let (bus, q) = (bus.clone(), q.clone());
        async move {
            bus.push(&q, stamped(base, i)).await.expect("push");
        }
    })
    .await;
    sink.wait(target).await;
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    raw::delete(url, &q).await;
    latency_row(LATENCY, &samples, warm)
}
