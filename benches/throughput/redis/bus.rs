//! The redis driver's bus rows (end to end, push-only, paced latency) and
//! the table of every redis row with its ratios and targets.

use std::time::{Duration, Instant};

use actorbus::{Bus, Config, Delivery, DriverKind, HandlerResult, ListenerOptions};
use serde_json::json;

use crate::harness::args::Opts;
use crate::harness::interleave::Interleaved;
use crate::harness::latency::{paced_bus_latency, Pacing};
use crate::harness::row::{self, Kind, Row};
use crate::harness::sink::{settle_down, Sink};
use crate::harness::stats::{measured, median_latency};
use crate::payload;

use super::patterns;
use super::raw::{drop_keys, fresh_stream, raw_e2e, raw_latency, raw_push, url, RATE, RAW_PUSH};

const BEST: &str = "raw redis best (XADD x100 pipelined, XREADGROUP COUNT 100 + XACK)";
const NAIVE: &str = "raw redis naive (awaited XADD, XREADGROUP COUNT 1 + XACK)";
pub(super) const E2E: &str = "redis e2e 1l c64";
const PUSH: &str = "redis push-only x64";
const RAW_LATENCY: &str = "raw redis latency @5k/s";
const RAW_LATENCY_SAME: &str = "raw redis latency @5k/s same-thread";
const LATENCY: &str = "redis latency @5k/s";

/// Messages of the redis throughput rows: a broker round trip is ~100x
/// an in-process hand-off, so fewer than the memory rows.
fn n(opts: &Opts) -> usize {
    if opts.quick {
        20_000
    } else {
        (opts.n / 10).clamp(1_000, 100_000)
    }
}

pub(super) async fn bus() -> Bus {
    let mut config = Config::default();
    config.queue.driver = DriverKind::Redis;
    config.redis.url = url();
    Bus::connect(config).await.expect("redis bus")
}

async fn push_all(bus: &Bus, queue: &str, n: usize, producers: usize) {
    let body = payload();
    let tasks: Vec<_> = (0..producers)
        .map(|t| {
            let (bus, queue, body) = (bus.clone(), queue.to_owned(), body.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    bus.push(&queue, body.clone()).await.expect("push");
                    i += producers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
}

/// Bus end to end: `producers` pushers, one listener with concurrency 64.
async fn bus_e2e(n: usize, producers: usize) -> Row {
    let bus = bus().await;
    let queue = fresh_stream("e2e");
    let sink = Sink::default();
    let target = sink.expect(n);
    {
        let sink = sink.clone();
        let opts = ListenerOptions::default().with_concurrency(64);
        bus.add_listener_with(&queue, opts, move |d: Delivery| {
            std::hint::black_box(d.payload());
            sink.hit();
            std::future::ready(HandlerResult::Ok(()))
        })
        .await
        .expect("add_listener");
    }
    let start = Instant::now();
    push_all(&bus, &queue, n, producers).await;
    sink.wait(target).await;
    let row = Row::rate(E2E, Kind::Raw, n, start.elapsed());
    bus.shutdown().await.expect("shutdown");
    drop_keys(&queue).await;
    row
}

/// Bus push only: `producers` pushers, no listener.
async fn bus_push(n: usize, producers: usize) -> Row {
    let bus = bus().await;
    let queue = fresh_stream("push");
    let start = Instant::now();
    push_all(&bus, &queue, n, producers).await;
    let row = Row::rate(PUSH, Kind::Raw, n, start.elapsed());
    bus.shutdown().await.expect("shutdown");
    drop_keys(&queue).await;
    row
}

/// Paced pushes at 5k/s through the bus; latency from push start to handler entry.
async fn bus_latency(measured_for: Duration) -> Row {
    let bus = bus().await;
    let queue = fresh_stream("latency");
    let name = LATENCY.to_owned();
    let row = paced_bus_latency(&bus, &queue, name, RATE, measured_for, Pacing::Thread).await;
    bus.shutdown().await.expect("shutdown");
    drop_keys(&queue).await;
    settle_down().await;
    row
}

pub(super) async fn rows(opts: &Opts) -> Vec<Row> {
    let (n, reps, k) = (n(opts), opts.reps, opts.producers);
    let n_naive = (n / 10).max(500);
    let mut rows = Vec::new();
    if opts.wants(NAIVE) {
        rows.push(measured(NAIVE, reps, || raw_e2e(NAIVE, n_naive, 1, 1)).await);
    }
    let e2e = Interleaved::new(opts)
        .row(BEST, || raw_e2e(BEST, n, 100, 100))
        .row(E2E, || bus_e2e(n, k))
        .run(reps)
        .await;
    let push = Interleaved::new(opts)
        .row(RAW_PUSH, || raw_push(n, 64))
        .row(PUSH, || bus_push(n, 64))
        .run(reps)
        .await;
    rows.extend(e2e.into_iter().chain(push));
    // Interleaved, as the memory latency rows are.
    let latency = Interleaved::new(opts)
        .row(RAW_LATENCY, || {
            raw_latency(RAW_LATENCY, opts.latency_for, false)
        })
        .row(RAW_LATENCY_SAME, || {
            raw_latency(RAW_LATENCY_SAME, opts.latency_for, true)
        })
        .row(LATENCY, || bus_latency(opts.latency_for))
        .run_with(opts.latency_reps, median_latency)
        .await;
    rows.extend(latency);
    rows.extend(patterns::rows(opts, n, reps).await);
    rows.extend(super::batch::rows(opts, n, reps).await);
    apply_targets(&mut rows);
    patterns::apply_targets(&mut rows);
    rows
}

/// The targets: e2e ≥ 0.5x raw best and ≥ 5x raw naive; push
/// only ≥ 0.8x raw XADD x64; p50 at 5k/s ≤ 1.5x raw.
fn apply_targets(rows: &mut [Row]) {
    let rate = row::rate_of;
    let p50 =
        |rows: &[Row], name: &str| rows.iter().find(|r| r.name == name).and_then(|r| r.p50_us);
    let (best, naive) = (rate(rows, BEST), rate(rows, NAIVE));
    let raw_p50 = p50(rows, RAW_LATENCY);
    for row in rows.iter_mut() {
        match row.name.as_str() {
            E2E => {
                let rate = row.msgs_per_s.unwrap_or(0.0);
                let vs_best = best.map(|b| rate / b);
                let vs_naive = naive.map(|b| rate / b);
                row.ratio = vs_best;
                row.target = Some("≥0.5x raw best & ≥5x raw naive");
                row.pass = row::both(row::at_least(vs_best, 0.5), row::at_least(vs_naive, 5.0));
                row.extra.insert("ratio_vs_raw_best".into(), json!(vs_best));
                row.extra
                    .insert("ratio_vs_raw_naive".into(), json!(vs_naive));
            }
            LATENCY => {
                let ratio = raw_p50.zip(row.p50_us).map(|(raw, bus)| bus / raw);
                row.target = Some("p50 ≤ 1.5x raw redis");
                row.pass = row::at_most(ratio, 1.5);
                row.extra.insert("p50_ratio_vs_raw".into(), json!(ratio));
            }
            _ => {}
        }
    }
    if let Some(row) = row::rate_target(rows, PUSH, RAW_PUSH, 0.8, "≥0.8x raw XADD x64") {
        let ratio = json!(row.ratio);
        row.extra.insert("ratio_vs_raw_push".into(), ratio);
    }
}
