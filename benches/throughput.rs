//! Throughput, latency and memory benchmark of the memory driver, with raw
//! tokio/actix baselines measured in the same run.
//!
//! ```text
//! cargo bench --bench throughput                      # full run (N = 1,000,000)
//! cargo bench --bench throughput -- --quick           # CI smoke run (N = 50,000, latency 0.5 s)
//! cargo bench --bench throughput -- --json rows.jsonl # also write the rows as JSON lines
//! ACTORBUS_BENCH_N=200000 cargo bench --bench throughput
//! ```
//!
//! Environment knobs: `ACTORBUS_BENCH_N` (messages per throughput row;
//! sequential rows use N/20), `ACTORBUS_BENCH_PRODUCERS` (concurrent pusher
//! tasks, default 64), `ACTORBUS_BENCH_REPS` (runs per throughput row, the
//! median is shown; default 3), `ACTORBUS_BENCH_RSS_N` (messages of the RSS
//! row, default 1,000,000 also in `--quick`: it takes a second or two). A positional argument runs only the rows whose
//! name contains it (`cargo bench --bench throughput -- "memory e2e"`).
//!
//! The table's `other CPU s` column is CPU time other processes took on the
//! machine during the row; on a shared 2-core machine anything above ~0.1 s
//! means the row measured the neighbours too. Cross-thread wake-ups on a
//! small VM are also bimodal (a halted vCPU is slow to wake), so sequential
//! and latency rows can differ several-fold between runs; throughput rows
//! show the median of several runs for that reason.
//!
//! How it runs: every actix and bus row runs inside one actix system
//! (`actix::System::new().block_on(..)`, what `#[actix::main]` expands to),
//! so the bus places its actors on arbiters of that system, as it does for
//! a typical actix user. Producers are tasks on the system's thread. The raw
//! tokio row uses a multi-thread tokio runtime of its own (2 workers). The
//! RSS row runs in a child process (this binary re-executed with
//! `--rss-child`), so that memory freed by earlier rows cannot hide growth.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actorbus::{Bus, Config, Delivery, HandlerResult, ListenerOptions};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::Notify;

/// Payload size of every row. Throughput rows (bus and raw alike) push clones
/// of one shared 64-byte `Bytes`, so every row pays the same (tiny) producer
/// cost; the `vec-payload` row pushes a fresh `Vec<u8>` per message instead,
/// as code that serializes each message does.
const PAYLOAD_LEN: usize = 64;
/// Throughput target of the bus e2e rows.
const TARGET_MSGS_PER_S: f64 = 1_000_000.0;
/// ... and relative to the raw actix baseline.
const TARGET_RATIO: f64 = 0.5;
/// p99 target of the latency row.
const TARGET_P99_US: f64 = 100.0;
/// RSS target of the 1M-queued row.
const TARGET_RSS_MIB: f64 = 256.0;
/// How long any single wait may take before the bench gives up on a row.
const ROW_TIMEOUT: Duration = Duration::from_secs(120);
const RUNTIME_NOTE: &str = "actix System::new().block_on";

// ---------------------------------------------------------------------------
// options

#[derive(Clone)]
struct Opts {
    quick: bool,
    /// Messages per throughput row.
    n: usize,
    /// Messages of the sequential rows (one push/send awaited at a time).
    n_seq: usize,
    /// Concurrent pusher tasks of the pipelined rows.
    producers: usize,
    /// Runs per throughput row; the median is reported.
    reps: usize,
    /// Latency row: rate and measured duration.
    rate: u64,
    latency_for: Duration,
    /// RSS row: messages queued.
    rss_n: usize,
    json: Option<PathBuf>,
    /// Runs only the rows whose name contains this (cargo's positional filter).
    filter: Option<String>,
}

impl Opts {
    fn wants(&self, name: &str) -> bool {
        self.filter
            .as_ref()
            .is_none_or(|f| name.contains(f.as_str()))
    }
}

fn env_usize(key: &str) -> Option<usize> {
    let raw = std::env::var(key).ok()?;
    match raw.replace('_', "").parse() {
        Ok(v) if v > 0 => Some(v),
        _ => {
            eprintln!("warning: ignoring {key}={raw:?} (want a positive integer)");
            None
        }
    }
}

fn parse_args() -> (Opts, bool) {
    let mut quick = false;
    let mut json = None;
    let mut rss_child = false;
    let mut filter = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bench" => {}
            "--quick" => quick = true,
            "--rss-child" => rss_child = true,
            "--json" => match args.next() {
                Some(path) => json = Some(PathBuf::from(path)),
                None => {
                    eprintln!("error: --json needs a file name");
                    std::process::exit(2);
                }
            },
            other if other.starts_with("--json=") => {
                json = Some(PathBuf::from(&other["--json=".len()..]))
            }
            other if other.starts_with('-') => eprintln!("warning: ignoring argument {other:?}"),
            other => filter = Some(other.to_owned()),
        }
    }
    let n = env_usize("ACTORBUS_BENCH_N").unwrap_or(if quick { 50_000 } else { 1_000_000 });
    let opts = Opts {
        quick,
        n,
        n_seq: (n / 20).max(1_000),
        producers: env_usize("ACTORBUS_BENCH_PRODUCERS").unwrap_or(64),
        reps: env_usize("ACTORBUS_BENCH_REPS").unwrap_or(3),
        rate: 10_000,
        latency_for: if quick {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(2)
        },
        rss_n: env_usize("ACTORBUS_BENCH_RSS_N").unwrap_or(1_000_000),
        json,
        filter,
    };
    (opts, rss_child)
}

// ---------------------------------------------------------------------------
// rows

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Raw,
    /// A bus throughput row; `seq` rows are shown but not held to the target.
    E2e {
        seq: bool,
    },
    Latency,
    Rss,
}

struct Row {
    name: String,
    kind: Kind,
    n: usize,
    msgs_per_s: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    rss_mib: Option<f64>,
    /// Like with like: bus rate / raw actix `send().await` rate with the
    /// same pipelining (the sequential baseline for the sequential row).
    /// This is the ratio the target is held to.
    ratio: Option<f64>,
    /// Bus rate / raw actix 2 actors (`do_send` in batches, no replies).
    ratio_do_send: Option<f64>,
    target: Option<&'static str>,
    pass: Option<bool>,
    /// Where the row ran.
    runtime: &'static str,
    extra: serde_json::Map<String, Value>,
}

impl Row {
    fn new(name: impl Into<String>, kind: Kind, n: usize) -> Self {
        Row {
            name: name.into(),
            kind,
            n,
            msgs_per_s: None,
            p50_us: None,
            p99_us: None,
            rss_mib: None,
            ratio: None,
            ratio_do_send: None,
            target: None,
            pass: None,
            runtime: RUNTIME_NOTE,
            extra: serde_json::Map::new(),
        }
    }

    fn rate(name: impl Into<String>, kind: Kind, n: usize, elapsed: Duration) -> Self {
        let mut row = Row::new(name, kind, n);
        row.msgs_per_s = Some(n as f64 / elapsed.as_secs_f64());
        row.extra
            .insert("secs".into(), json!(elapsed.as_secs_f64()));
        row
    }

    fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// One JSON line: the spec's fields first, then the extras.
    fn to_json_line(&self) -> String {
        let mut fields: Vec<(String, Value)> = vec![
            ("name".into(), json!(self.name)),
            ("msgs_per_s".into(), json!(self.msgs_per_s.map(f64::round))),
            ("p50_us".into(), json!(self.p50_us)),
            ("p99_us".into(), json!(self.p99_us)),
            ("rss_mib".into(), json!(self.rss_mib)),
            ("ratio".into(), json!(self.ratio)),
            ("ratio_do_send".into(), json!(self.ratio_do_send)),
            ("n".into(), json!(self.n)),
            ("target".into(), json!(self.target)),
            ("pass".into(), json!(self.pass)),
            ("runtime".into(), json!(self.runtime)),
        ];
        fields.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".to_owned(),
    }
}

fn fmt_rate(v: Option<f64>) -> String {
    match v {
        Some(v) => {
            let digits = format!("{:.0}", v);
            let mut out = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(',');
                }
                out.push(c);
            }
            out
        }
        None => "-".to_owned(),
    }
}

fn print_table(rows: &[Row]) {
    let headers = [
        "name",
        "n",
        "msgs/s",
        "p50 µs",
        "p99 µs",
        "RSS MiB",
        "vs raw actix (send)",
        "vs actix do_send",
        "target",
        "result",
        "other CPU s",
    ];
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                fmt_rate(Some(r.n as f64)),
                fmt_rate(r.msgs_per_s),
                fmt_opt(r.p50_us, 1),
                fmt_opt(r.p99_us, 1),
                fmt_opt(r.rss_mib, 1),
                r.ratio.map_or("-".into(), |v| format!("{v:.2}x")),
                r.ratio_do_send.map_or("-".into(), |v| format!("{v:.2}x")),
                r.target.unwrap_or("-").to_owned(),
                match r.pass {
                    Some(true) => "PASS".into(),
                    Some(false) => "MISS".into(),
                    None => "-".into(),
                },
                fmt_opt(r.extra.get("other_cpu_s").and_then(Value::as_f64), 2),
            ]
        })
        .collect();
    let mut widths = headers.map(|h| h.chars().count());
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i > 0 {
                s.push_str("  ");
            }
            // Text columns left-aligned, numbers right-aligned.
            if i == 0 || i == 8 || i == 9 {
                let _ = write!(s, "{c}{}", " ".repeat(pad));
            } else {
                let _ = write!(s, "{}{c}", " ".repeat(pad));
            }
        }
        s.trim_end().to_owned()
    };
    let head: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    let header = line(&head);
    println!("{header}");
    println!("{}", "-".repeat(header.chars().count()));
    for row in &cells {
        println!("{}", line(row));
    }
}

// ---------------------------------------------------------------------------
// shared helpers

/// Counts handled messages; wakes the waiter when a target count is reached.
#[derive(Clone, Default)]
struct Sink {
    count: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Sink {
    fn hit(&self) {
        let count = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if count == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }

    /// Arms the sink for `more` messages beyond those already counted.
    /// Call before producing them.
    fn expect(&self, more: usize) -> usize {
        let target = self.count.load(Ordering::Acquire) + more;
        self.target.store(target, Ordering::Release);
        target
    }

    async fn wait(&self, target: usize) {
        let deadline = Instant::now() + ROW_TIMEOUT;
        while self.count.load(Ordering::Acquire) < target {
            assert!(
                Instant::now() < deadline,
                "timed out: {} of {target} handled",
                self.count.load(Ordering::Acquire)
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), self.done.notified()).await;
        }
    }
}

fn payload() -> Bytes {
    Bytes::from(vec![0xA5u8; PAYLOAD_LEN])
}

/// Resident set size of this process, in bytes (`VmRSS`, or `VmHWM` for the peak).
fn proc_status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

const MIB: f64 = 1024.0 * 1024.0;

/// CPU time of the whole machine and of this process (with its waited-for
/// children), to tell how much CPU other processes took during a row: on a
/// shared 2-core machine a concurrent build skews every number here.
#[derive(Clone, Copy)]
struct CpuSnap {
    machine_busy: u64,
    own: u64,
}

impl CpuSnap {
    /// Clock ticks per second of /proc (USER_HZ; 100 on Linux).
    const HZ: f64 = 100.0;

    fn now() -> Option<CpuSnap> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let busy = cpu
            .iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, v)| v)
            .sum();
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the parenthesised command name; utime is field 14.
        let after = own_stat.rsplit_once(')')?.1;
        let fields: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|v| v.parse().ok())
            .collect();
        Some(CpuSnap {
            machine_busy: busy,
            own: fields.iter().sum(),
        })
    }

    /// CPU seconds used by other processes since `self`.
    fn foreign_since(self) -> Option<f64> {
        let now = CpuSnap::now()?;
        let machine = now.machine_busy.saturating_sub(self.machine_busy) as f64;
        let own = now.own.saturating_sub(self.own) as f64;
        Some(((machine - own) / Self::HZ).max(0.0))
    }
}

fn with_foreign_cpu(row: Row, snap: Option<CpuSnap>) -> Row {
    match snap.and_then(CpuSnap::foreign_since) {
        Some(cpu) => row.with("other_cpu_s", json!((cpu * 100.0).round() / 100.0)),
        None => row,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Lets stopped arbiters finish exiting before the next row starts.
async fn settle_down() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------
// raw baselines

/// (a) two tokio tasks and a bounded mpsc channel, on a 2-worker runtime.
fn raw_tokio_mpsc(n: usize, reps: usize) -> Row {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let capacity = 1024;
    let run = |n: usize| {
        rt.block_on(async {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(capacity);
            let bytes = payload();
            let start = Instant::now();
            let consumer = tokio::spawn(async move {
                let mut count = 0usize;
                while let Some(msg) = rx.recv().await {
                    std::hint::black_box(&msg);
                    count += 1;
                    if count == n {
                        break;
                    }
                }
                Instant::now()
            });
            let producer = tokio::spawn(async move {
                for _ in 0..n {
                    tx.send(bytes.clone()).await.expect("consumer alive");
                }
            });
            producer.await.expect("producer");
            consumer.await.expect("consumer") - start
        })
    };
    run((n / 10).max(1_000)); // warm-up
    let rows = (0..reps.max(1))
        .map(|_| {
            let mut row = Row::rate("raw tokio mpsc", Kind::Raw, n, run(n))
                .with("channel_capacity", json!(capacity));
            row.runtime = "tokio multi-thread runtime (2 workers)";
            row
        })
        .collect();
    median_row(rows)
}

#[derive(Message)]
#[rtype(result = "()")]
struct RawMsg(#[allow(dead_code)] Bytes);

/// The consumer of the raw actix rows: counts what it handles.
struct Counter {
    sink: Sink,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl Handler<RawMsg> for Counter {
    type Result = ();

    fn handle(&mut self, msg: RawMsg, _: &mut Context<Self>) {
        std::hint::black_box(&msg);
        self.sink.hit();
    }
}

/// The producer of the raw `do_send` row: sends `batch` messages per turn,
/// then yields to its mailbox with `ctx.notify`.
struct Producer {
    to: Addr<Counter>,
    payload: Bytes,
    remaining: usize,
    batch: usize,
}

impl Actor for Producer {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Produce(usize);

impl Handler<Produce> for Producer {
    type Result = ();

    fn handle(&mut self, msg: Produce, ctx: &mut Context<Self>) {
        if msg.0 > 0 {
            self.remaining += msg.0;
        }
        let now = self.batch.min(self.remaining);
        for _ in 0..now {
            self.to.do_send(RawMsg(self.payload.clone()));
        }
        self.remaining -= now;
        if self.remaining > 0 {
            ctx.notify(Produce(0));
        }
    }
}

/// (b) two bare actors on two arbiters; the producer `do_send`s in batches.
async fn raw_actix_do_send(n: usize) -> Row {
    let batch = 1024;
    let (a, b) = (Arbiter::new(), Arbiter::new());
    let sink = Sink::default();
    let counter_sink = sink.clone();
    let counter = Counter::start_in_arbiter(&b.handle(), move |_| Counter { sink: counter_sink });
    let to = counter.clone();
    let producer = Producer::start_in_arbiter(&a.handle(), move |_| Producer {
        to,
        payload: payload(),
        remaining: 0,
        batch,
    });
    // warm-up
    let target = sink.expect((n / 10).max(1_000));
    producer.do_send(Produce((n / 10).max(1_000)));
    sink.wait(target).await;

    let target = sink.expect(n);
    let start = Instant::now();
    producer.do_send(Produce(n));
    sink.wait(target).await;
    let elapsed = start.elapsed();
    a.stop();
    b.stop();
    let _ = (a.join(), b.join());
    Row::rate("raw actix 2 actors", Kind::Raw, n, elapsed).with("batch", json!(batch))
}

/// (c) `addr.send(msg).await` from `producers` tasks on the system thread to
/// one actor on an arbiter: the request/reply shape of `bus.push`.
async fn raw_actix_send(name: &str, n: usize, producers: usize) -> Row {
    let arbiter = Arbiter::new();
    let sink = Sink::default();
    let counter_sink = sink.clone();
    let counter =
        Counter::start_in_arbiter(&arbiter.handle(), move |_| Counter { sink: counter_sink });
    let bytes = payload();
    let run = |n: usize| {
        let counter = counter.clone();
        let bytes = bytes.clone();
        let sink = sink.clone();
        async move {
            let target = sink.expect(n);
            let start = Instant::now();
            let tasks: Vec<_> = (0..producers)
                .map(|t| {
                    let counter = counter.clone();
                    let bytes = bytes.clone();
                    actix::spawn(async move {
                        let mut i = t;
                        while i < n {
                            counter
                                .send(RawMsg(bytes.clone()))
                                .await
                                .expect("counter alive");
                            i += producers;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("producer task");
            }
            sink.wait(target).await;
            start.elapsed()
        }
    };
    run((n / 10).max(1_000)).await; // warm-up
    let elapsed = run(n).await;
    arbiter.stop();
    let _ = arbiter.join();
    Row::rate(name, Kind::Raw, n, elapsed).with("producers", json!(producers))
}

// ---------------------------------------------------------------------------
// bus rows

#[derive(Clone, Copy)]
struct E2e {
    name: &'static str,
    n: usize,
    queues: usize,
    listeners_per_queue: usize,
    concurrency: usize,
    /// Concurrent pusher tasks; 0 means one sequential pusher in the main task.
    producers: usize,
    /// Push a fresh `Vec<u8>` per message (what `push(q, serde_json::to_vec(..)?)`
    /// does) instead of a clone of one shared `Bytes`.
    owned_payload: bool,
}

async fn push_one(bus: &Bus, queue: &str, owned: bool, shared: &Bytes) {
    let body = if owned {
        Bytes::from(vec![0xA5u8; PAYLOAD_LEN])
    } else {
        shared.clone()
    };
    bus.push(queue, body).await.expect("push");
}

/// Pushes `n` messages spread round-robin over `queues`.
async fn push_all(bus: &Bus, queues: &Arc<[String]>, n: usize, producers: usize, owned: bool) {
    let shared = payload();
    if producers == 0 {
        for i in 0..n {
            push_one(bus, &queues[i % queues.len()], owned, &shared).await;
        }
        return;
    }
    let tasks: Vec<_> = (0..producers)
        .map(|t| {
            let (bus, queues, shared) = (bus.clone(), queues.clone(), shared.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    push_one(&bus, &queues[i % queues.len()], owned, &shared).await;
                    i += producers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher task");
    }
}

/// End to end: push → queue actor → listener → handler (counts) → ack.
/// The clock runs from the first push until the handlers have seen all `n`.
async fn bus_e2e(spec: E2e) -> Row {
    let bus = Bus::memory();
    let queues: Arc<[String]> = (0..spec.queues).map(|i| format!("bench-e2e-{i}")).collect();
    let sink = Sink::default();
    let opts = ListenerOptions::default().with_concurrency(spec.concurrency);
    for queue in queues.iter() {
        for _ in 0..spec.listeners_per_queue {
            let sink = sink.clone();
            bus.add_listener_with(queue, opts.clone(), move |delivery: Delivery| {
                std::hint::black_box(delivery.payload());
                sink.hit();
                std::future::ready(HandlerResult::Ok(()))
            })
            .await
            .expect("add_listener");
        }
    }
    // warm-up: starts the queue actors, grows the buffers
    let warm = (spec.n / 10).clamp(1_000, 50_000);
    let target = sink.expect(warm);
    push_all(&bus, &queues, warm, spec.producers, spec.owned_payload).await;
    sink.wait(target).await;

    let target = sink.expect(spec.n);
    let start = Instant::now();
    push_all(&bus, &queues, spec.n, spec.producers, spec.owned_payload).await;
    let pushed = start.elapsed();
    sink.wait(target).await;
    let elapsed = start.elapsed();
    bus.shutdown().await.expect("shutdown");
    drop(bus);
    settle_down().await;
    Row::rate(
        spec.name,
        Kind::E2e {
            seq: spec.producers == 0,
        },
        spec.n,
        elapsed,
    )
    .with("producers", json!(spec.producers.max(1)))
    .with("queues", json!(spec.queues))
    .with("listeners_per_queue", json!(spec.listeners_per_queue))
    .with("concurrency", json!(spec.concurrency))
    .with("owned_payload", json!(spec.owned_payload))
    .with("push_phase_secs", json!(pushed.as_secs_f64()))
}

/// Runs a throughput row `reps` times and keeps the median run (by rate);
/// every run's rate goes to the JSON field `runs`. Each run builds its own
/// bus (and so its own arbiter threads), so the runs also sample how the OS
/// places the threads, which moves results a lot on a small VM.
async fn median_of<F, Fut>(reps: usize, mut run: F) -> Row
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Row>,
{
    let mut rows = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        rows.push(run().await);
        settle_down().await;
    }
    median_row(rows)
}

fn median_row(mut rows: Vec<Row>) -> Row {
    let rate = |r: &Row| r.msgs_per_s.unwrap_or(0.0);
    let runs: Vec<f64> = rows.iter().map(|r| rate(r).round()).collect();
    rows.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
    let mid = rows.len() / 2;
    let mut row = rows.swap_remove(mid);
    row.extra.insert("runs".into(), json!(runs));
    row
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pacing {
    /// A pacer thread sleeps (nanosleep) to each message's due time and
    /// hands its index to the system thread, which starts the push: pushes
    /// come one by one, 100 µs apart at 10k/s.
    Thread,
    /// `tokio::time::sleep_until` on the system thread. Tokio's timer ticks
    /// in whole milliseconds, so at 10k/s pushes start in bursts of ~10.
    TokioTimer,
}

/// Paced pushes at `rate`/s; latency from the start of each push to the
/// entry of its handler, read from a timestamp inside the payload (nanos
/// since a base `Instant` shared by producer and handler).
async fn bus_latency(name: String, rate: u64, measured_for: Duration, pacing: Pacing) -> Row {
    const QUEUE: &str = "bench-latency";
    let bus = Bus::memory();
    let base = Instant::now();
    let warm = (rate / 4) as usize; // 250 ms, not recorded
    let measured = (rate as f64 * measured_for.as_secs_f64()).round() as usize;
    let total = warm + measured;
    let samples: Arc<Vec<AtomicU64>> =
        Arc::new((0..total).map(|_| AtomicU64::new(u64::MAX)).collect());
    let sink = Sink::default();
    {
        let samples = samples.clone();
        let sink = sink.clone();
        bus.add_listener(QUEUE, move |delivery: Delivery| {
            let entered = base.elapsed().as_nanos() as u64;
            let p = delivery.payload();
            let sent = u64::from_le_bytes(p[0..8].try_into().expect("8 bytes"));
            let index = u64::from_le_bytes(p[8..16].try_into().expect("8 bytes")) as usize;
            samples[index].store(entered.saturating_sub(sent), Ordering::Relaxed);
            sink.hit();
            std::future::ready(HandlerResult::Ok(()))
        })
        .await
        .expect("add_listener");
    }
    let target = sink.expect(total);
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now() + Duration::from_millis(5);
    let measured_start = start + interval * warm as u32;
    // Open loop: each push is its own task, so a slow push does not hold
    // back the schedule. The timestamp is taken when the push starts.
    let spawn_push = |i: usize| {
        let bus = bus.clone();
        actix::spawn(async move {
            let mut body = vec![0u8; PAYLOAD_LEN];
            let sent = base.elapsed().as_nanos() as u64;
            body[0..8].copy_from_slice(&sent.to_le_bytes());
            body[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            bus.push(QUEUE, body).await.expect("push");
        })
    };
    let mut tasks = Vec::with_capacity(total);
    match pacing {
        Pacing::TokioTimer => {
            for i in 0..total {
                let due = start + interval * i as u32;
                if Instant::now() < due {
                    tokio::time::sleep_until(due.into()).await;
                }
                tasks.push(spawn_push(i));
            }
        }
        Pacing::Thread => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
            let pacer = std::thread::Builder::new()
                .name("bench-pacer".into())
                .spawn(move || {
                    for i in 0..total {
                        let due = start + interval * i as u32;
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        if tx.send(i).is_err() {
                            break;
                        }
                    }
                })
                .expect("pacer thread");
            while let Some(i) = rx.recv().await {
                tasks.push(spawn_push(i));
            }
            pacer.join().expect("pacer");
        }
    }
    let schedule_end = Instant::now();
    for task in tasks {
        task.await.expect("push task");
    }
    sink.wait(target).await;
    bus.shutdown().await.expect("shutdown");
    drop(bus);
    settle_down().await;

    let mut lat: Vec<u64> = samples[warm..]
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    lat.sort_unstable();
    let us = |ns: u64| ns as f64 / 1_000.0;
    let achieved = measured as f64 / (schedule_end - measured_start).as_secs_f64();
    let mut row = Row::new(name, Kind::Latency, measured);
    row.msgs_per_s = Some(achieved);
    row.p50_us = Some(us(percentile(&lat, 0.50)));
    row.p99_us = Some(us(percentile(&lat, 0.99)));
    let pacing_note = match pacing {
        Pacing::Thread => "pacer thread, deadline-based nanosleep: one push every 100 µs",
        Pacing::TokioTimer => "tokio sleep_until on the system thread: 1 ms ticks, bursts of ~10",
    };
    row.with("p90_us", json!(us(percentile(&lat, 0.90))))
        .with("p999_us", json!(us(percentile(&lat, 0.999))))
        .with("max_us", json!(us(*lat.last().unwrap_or(&0))))
        .with("pacing", json!(pacing_note))
}

// ---------------------------------------------------------------------------
// RSS row (child process)

/// Runs in the child: queues `n` distinct 64-byte payloads with no listener
/// and prints one JSON line with the RSS growth.
fn rss_child(n: usize, producers: usize) {
    let result = System::new().block_on(async move {
        let mut config = Config::default();
        config.queue.memory.capacity = 2_000_000.max(n);
        let bus = Bus::connect(config).await.expect("connect");
        let queue = "bench-rss";
        // Start the queue actor with an empty queue so that it is not counted.
        bus.push(queue, Bytes::from_static(b"x"))
            .await
            .expect("push");
        assert_eq!(bus.purge(queue).await.expect("purge"), 1);
        settle_down().await;
        let before = proc_status_bytes("VmRSS:").expect("VmRSS");
        let start = Instant::now();
        let tasks: Vec<_> = (0..producers)
            .map(|t| {
                let bus = bus.clone();
                actix::spawn(async move {
                    let mut i = t;
                    while i < n {
                        // Each message its own allocation, and distinct.
                        let mut body = vec![0u8; PAYLOAD_LEN];
                        body[..8].copy_from_slice(&(i as u64).to_le_bytes());
                        bus.push(queue, body).await.expect("push");
                        i += producers;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("pusher");
        }
        let elapsed = start.elapsed();
        let stats = bus.stats(queue).await.expect("stats");
        assert_eq!(stats.ready, n as u64, "every push is stored");
        settle_down().await;
        let after = proc_status_bytes("VmRSS:").expect("VmRSS");
        let peak = proc_status_bytes("VmHWM:").expect("VmHWM");
        json!({
            "rss_mib": (after.saturating_sub(before)) as f64 / MIB,
            "peak_mib": (peak.saturating_sub(before)) as f64 / MIB,
            "before_mib": before as f64 / MIB,
            "bytes_per_msg": (after.saturating_sub(before)) as f64 / n as f64,
            "push_msgs_per_s": n as f64 / elapsed.as_secs_f64(),
        })
    });
    println!("{result}");
    let _ = std::io::stdout().flush();
    // The queued messages go with the process.
    std::process::exit(0);
}

fn bus_rss(opts: &Opts) -> Row {
    let exe = std::env::current_exe().expect("current_exe");
    let output = std::process::Command::new(exe)
        .arg("--rss-child")
        .env("ACTORBUS_BENCH_RSS_N", opts.rss_n.to_string())
        .env("ACTORBUS_BENCH_PRODUCERS", opts.producers.to_string())
        .output()
        .expect("run the RSS child");
    let name = if opts.rss_n == 1_000_000 {
        "memory rss 1M queued".to_owned()
    } else {
        format!("memory rss {} queued", opts.rss_n)
    };
    let mut row = Row::new(name, Kind::Rss, opts.rss_n);
    row.runtime = "actix System::new().block_on, child process";
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed: Option<Value> = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok());
    match parsed {
        Some(Value::Object(fields)) if output.status.success() => {
            row.rss_mib = fields.get("rss_mib").and_then(Value::as_f64);
            // The row's rate is the push-only rate (no listener).
            row.msgs_per_s = fields.get("push_msgs_per_s").and_then(Value::as_f64);
            for (k, v) in fields {
                if k != "rss_mib" {
                    row.extra.insert(k, v);
                }
            }
        }
        _ => {
            eprintln!(
                "RSS child failed ({}): {}\n{}",
                output.status,
                stdout,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    row
}

// ---------------------------------------------------------------------------

fn main() {
    let (opts, rss_child_mode) = parse_args();
    if rss_child_mode {
        rss_child(opts.rss_n, opts.producers);
    }
    let started = Instant::now();
    let load_before = loadavg();
    let whole_run = CpuSnap::now();
    eprintln!(
        "actorbus throughput bench: n={} (seq rows {}), producers={}, latency {} msg/s for {:?}, rss {} msgs{}",
        opts.n,
        opts.n_seq,
        opts.producers,
        opts.rate,
        opts.latency_for,
        opts.rss_n,
        if opts.quick { " [quick]" } else { "" },
    );

    let mut rows = Vec::new();
    if opts.wants("raw tokio mpsc") {
        eprintln!("  raw tokio mpsc ...");
        let snap = CpuSnap::now();
        let row = raw_tokio_mpsc(opts.n, opts.reps);
        rows.push(with_foreign_cpu(row, snap));
    }

    let (n, n_seq, k, reps) = (opts.n, opts.n_seq, opts.producers, opts.reps);
    let inner = opts.clone();
    let actix_rows = System::new().block_on(async move {
        let opts = inner;
        let mut rows = Vec::new();
        let send_pipelined = format!("raw actix send().await x{k}");
        if opts.wants("raw actix 2 actors") {
            eprintln!("  raw actix 2 actors ...");
            let snap = CpuSnap::now();
            let row = median_of(reps, || raw_actix_do_send(n)).await;
            rows.push(with_foreign_cpu(row, snap));
        }
        if opts.wants(&send_pipelined) {
            eprintln!("  {send_pipelined} ...");
            let snap = CpuSnap::now();
            let row = median_of(reps, || raw_actix_send(&send_pipelined, n, k)).await;
            rows.push(with_foreign_cpu(row, snap));
        }
        if opts.wants("raw actix send().await seq") {
            eprintln!("  raw actix send().await seq ...");
            let snap = CpuSnap::now();
            let row = median_of(reps, || {
                raw_actix_send("raw actix send().await seq", n_seq, 1)
            })
            .await;
            rows.push(with_foreign_cpu(row, snap));
        }
        let main = E2e {
            name: "memory e2e 1q x 1l",
            n,
            queues: 1,
            listeners_per_queue: 1,
            concurrency: 1,
            producers: k,
            owned_payload: false,
        };
        let e2e = [
            main,
            E2e {
                name: "memory e2e 1q x 1l seq-push",
                n: n_seq,
                producers: 0,
                ..main
            },
            E2e {
                name: "memory e2e 1q x 1l c64",
                concurrency: 64,
                ..main
            },
            E2e {
                name: "memory e2e 1q x 1l vec-payload",
                owned_payload: true,
                ..main
            },
            E2e {
                name: "memory e2e 1q x 4l",
                listeners_per_queue: 4,
                ..main
            },
            E2e {
                name: "memory e2e 100q x 1l",
                queues: 100,
                ..main
            },
        ];
        for spec in e2e {
            // Exact match for the main row, so that its filter does not pick its variants.
            let wanted = match &opts.filter {
                Some(f) if f == main.name => spec.name == f.as_str(),
                _ => opts.wants(spec.name),
            };
            if wanted {
                eprintln!("  {} ...", spec.name);
                let snap = CpuSnap::now();
                let row = median_of(reps, || bus_e2e(spec)).await;
                rows.push(with_foreign_cpu(row, snap));
            }
        }
        let latency = format!("memory latency @{}k/s", opts.rate / 1000);
        let bursty = format!("{latency} 1ms-bursts");
        let latency_rows = [
            (latency.clone(), Pacing::Thread),
            (bursty.clone(), Pacing::TokioTimer),
        ];
        for (name, pacing) in latency_rows {
            let wanted = match &opts.filter {
                Some(f) if *f == latency => name == latency,
                _ => opts.wants(&name),
            };
            if wanted {
                eprintln!("  {name} ...");
                let snap = CpuSnap::now();
                let row = bus_latency(name, opts.rate, opts.latency_for, pacing).await;
                rows.push(with_foreign_cpu(row, snap));
            }
        }
        rows
    });
    rows.extend(actix_rows);
    if opts.wants("memory rss") {
        eprintln!("  memory rss ...");
        let snap = CpuSnap::now();
        let row = bus_rss(&opts);
        rows.push(with_foreign_cpu(row, snap));
    }

    // ratios and targets
    let rate_of = |prefix: &str| {
        rows.iter()
            .find(|r| r.name.starts_with(prefix))
            .and_then(|r| r.msgs_per_s)
    };
    let actix_do_send = rate_of("raw actix 2 actors");
    let actix_send_pipelined = rate_of("raw actix send().await x");
    let actix_send_seq = rate_of("raw actix send().await seq");
    let latency_target_row = format!("memory latency @{}k/s", opts.rate / 1000);
    for row in &mut rows {
        match row.kind {
            Kind::E2e { seq } => {
                let rate = row.msgs_per_s.unwrap_or(0.0);
                let like = if seq {
                    actix_send_seq
                } else {
                    actix_send_pipelined
                };
                row.ratio = like.map(|b| rate / b);
                row.ratio_do_send = actix_do_send.map(|b| rate / b);
                if !seq {
                    row.target = Some("≥1M/s & ≥0.5x actix send");
                    row.pass = Some(
                        rate >= TARGET_MSGS_PER_S && row.ratio.is_some_and(|r| r >= TARGET_RATIO),
                    );
                }
            }
            Kind::Latency if row.name == latency_target_row => {
                row.target = Some("p99 ≤ 100 µs");
                row.pass = row.p99_us.map(|p| p <= TARGET_P99_US);
            }
            Kind::Rss => {
                row.target = Some("≤ 256 MiB");
                row.pass = Some(row.rss_mib.is_some_and(|m| m <= TARGET_RSS_MIB));
            }
            Kind::Latency | Kind::Raw => {}
        }
    }

    println!();
    print_table(&rows);
    println!();
    let notes = [
        format!("bus and actix rows run inside {RUNTIME_NOTE}: bus actors on the bus's 2 arbiters, producers are tasks on the system thread"),
        format!("throughput rows: median of {reps} runs (every run's rate is in the JSON 'runs'); pipelined rows: {k} pusher tasks; seq rows: one push awaited at a time"),
        "vs raw actix (send) = rate / raw actix send().await with the same pipelining (x{k} or seq): like with like, the ratio the target uses".replace("{k}", &k.to_string()),
        "vs actix do_send = rate / raw actix 2 actors (do_send in batches, no reply per message)".to_owned(),
        "latency: push start -> handler entry; the target row is paced by a thread (one push per 100 µs), the 1ms-bursts row by tokio's 1 ms timer".to_owned(),
        "rss: growth of VmRSS in a fresh child process after queueing the messages with no listener; its msgs/s is the push-only rate".to_owned(),
        "other CPU s = CPU time other processes used on this machine during the row (a concurrent build skews results; want ~0)".to_owned(),
        format!(
            "total {:.1} s; load average before {load_before}, after {}; other processes used {} CPU-s during the run",
            started.elapsed().as_secs_f64(),
            loadavg(),
            fmt_opt(whole_run.and_then(CpuSnap::foreign_since), 1),
        ),
    ];
    for note in notes {
        println!("  {note}");
    }

    if let Some(path) = &opts.json {
        let mut out = String::new();
        for row in &rows {
            out.push_str(&row.to_json_line());
            out.push('\n');
        }
        if let Err(e) = std::fs::write(path, out) {
            eprintln!("error: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
