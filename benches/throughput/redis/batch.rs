//! Redis pushes in batches and from outside actix, each next to its raw
//! baseline: `push_batch` of 100 from 64 tasks next to 64 tasks sending
//! pipelines of 100 `XADD`s, and push-only x64 from a `#[tokio::main]`
//! runtime (no actix system) next to raw `XADD` x64 from the same kind of
//! runtime. Push only: no listener; every row deletes its stream.

use std::sync::Arc;
use std::time::Instant;

use actorbus::Bus;
use serde_json::json;

use super::bus::bus;
use super::raw::{connect, drop_keys, fresh_stream, xadd};
use crate::harness::args::Opts;
use crate::harness::interleave::Interleaved;
use crate::harness::row::{self, Kind, Row};
use crate::payload;

const BATCH_BUS: &str = "redis push_batch 100 x64";
const BATCH_RAW: &str = "raw redis XADD x100 pipelined x64";
const TOKIO_BUS: &str = "redis push-only x64 from #[tokio::main]";
const TOKIO_RAW: &str = "raw redis XADD x64 from #[tokio::main]";
/// Messages per batch and per pipeline.
const BATCH: usize = 100;
/// Pushing tasks.
const TASKS: usize = 64;

/// Every row here the filter selects, with the targets applied.
pub(super) async fn rows(opts: &Opts, n: usize, reps: usize) -> Vec<Row> {
    let mut rows = Interleaved::new(opts)
        .row(BATCH_RAW, || raw_pipelined(n))
        .row(BATCH_BUS, || bus_batches(n))
        .run(reps)
        .await;
    let tokio = Interleaved::new(opts)
        .row(TOKIO_RAW, || on_tokio_main(move || raw_tokio(n)))
        .row(TOKIO_BUS, || on_tokio_main(move || bus_tokio(n)))
        .run(reps)
        .await;
    rows.extend(tokio);
    let targets = [
        (BATCH_BUS, BATCH_RAW, 0.9, "≥0.9x raw pipelined XADD x100"),
        (TOKIO_BUS, TOKIO_RAW, 0.8, "≥0.8x raw XADD x64 (tokio)"),
    ];
    for (bus, raw, want, text) in targets {
        if let Some(row) = row::rate_target(&mut rows, bus, raw, want, text) {
            let ratio = json!(row.ratio);
            row.extra.insert("ratio_vs_baseline".into(), ratio);
        }
    }
    rows
}

/// `TASKS` tasks, each pushing batches of `BATCH` until `n` are stored.
async fn bus_batches(n: usize) -> Row {
    let bus = bus().await;
    let queue: Arc<str> = fresh_stream("batch").into();
    let batches = n.div_ceil(BATCH);
    let body = payload();
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (bus, queue, body) = (bus.clone(), queue.clone(), body.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < batches {
                    let batch = std::iter::repeat_n(body.clone(), BATCH);
                    bus.push_batch(&queue, batch).await.expect("push_batch");
                    i += TASKS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
    let row = Row::rate(BATCH_BUS, Kind::Raw, batches * BATCH, start.elapsed());
    bus.shutdown().await.expect("shutdown");
    drop_keys(&queue).await;
    row.with("batch", json!(BATCH)).with("tasks", json!(TASKS))
}

/// `TASKS` tasks on one multiplexed connection, each sending pipelines of
/// `BATCH` `XADD`s and awaiting each pipeline's replies.
async fn raw_pipelined(n: usize) -> Row {
    let stream: Arc<str> = fresh_stream("raw-pipe").into();
    let conn = connect().await;
    let batches = n.div_ceil(BATCH);
    let body = payload();
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (mut conn, stream, body) = (conn.clone(), stream.clone(), body.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < batches {
                    let mut pipe = redis::pipe();
                    for _ in 0..BATCH {
                        pipe.add_command(xadd(&stream, &body[..]));
                    }
                    let _: Vec<String> = pipe.query_async(&mut conn).await.expect("XADD");
                    i += TASKS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
    let row = Row::rate(BATCH_RAW, Kind::Raw, batches * BATCH, start.elapsed());
    drop_keys(&stream).await;
    row.with("batch", json!(BATCH)).with("tasks", json!(TASKS))
}

/// Runs `work` on a thread of its own inside a 2-worker tokio runtime
/// (what `#[tokio::main]` builds, without an actix system) and awaits its
/// row from the actix system without blocking it.
async fn on_tokio_main<F, W>(work: W) -> Row
where
    W: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = Row> + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let _ = tx.send(runtime.block_on(work()));
    });
    let mut row = rx.await.expect("the tokio thread answers");
    row.runtime = "#[tokio::main]-style runtime (2 workers), no actix system";
    row
}

/// Bus push-only from `TASKS` tokio tasks.
async fn bus_tokio(n: usize) -> Row {
    let bus = bus().await;
    let queue: Arc<str> = fresh_stream("tokio-push").into();
    let (b, q) = (bus.clone(), queue.clone());
    let row = timed_tasks(TOKIO_BUS, n, move |i| push_one(b.clone(), q.clone(), i)).await;
    bus.shutdown().await.expect("shutdown");
    drop_keys(&queue).await;
    row
}

async fn push_one(bus: Bus, queue: Arc<str>, _i: usize) {
    bus.push(&queue, payload()).await.expect("push");
}

/// Raw `XADD` from `TASKS` tokio tasks on one multiplexed connection.
async fn raw_tokio(n: usize) -> Row {
    let stream: Arc<str> = fresh_stream("tokio-raw").into();
    let conn = connect().await;
    let s = stream.clone();
    let row = timed_tasks(TOKIO_RAW, n, move |_| {
        let (mut conn, stream) = (conn.clone(), s.clone());
        async move {
            let _: String = xadd(&stream, &payload()[..])
                .query_async(&mut conn)
                .await
                .expect("XADD");
        }
    })
    .await;
    drop_keys(&stream).await;
    row
}

/// Runs `one(i)` for `i` in `0..n` from `TASKS` tokio tasks, each awaiting
/// one at a time, and times the whole.
async fn timed_tasks<F>(
    name: &str,
    n: usize,
    one: impl Fn(usize) -> F + Clone + Send + 'static,
) -> Row
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut i = t;
                while i < n {
                    one(i).await;
                    i += TASKS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
    Row::rate(name, Kind::Raw, n, start.elapsed()).with("tasks", json!(TASKS))
}
