//! The redis driver's rows and their raw baselines, against the broker `scripts/test` starts.
//!
//! Every row runs on the same server (`ACTORBUS_BENCH_REDIS_URL`, default the
//! shared `redis://127.0.0.1:6379/0`) in the same run, each on a stream of
//! its own that it deletes afterwards. Raw baselines use the redis crate
//! directly: best practice (XADD pipelined in batches of 100; XREADGROUP
//! COUNT 100 + one XACK per batch), naive (one awaited XADD per message;
//! one XREADGROUP COUNT 1 + XACK per message), and XADD from 64 concurrent
//! tasks on one multiplexed connection (push only). The ratios and targets
//! of the issue are filled in here, so the rows are `Kind::Raw` and
//! `Kind::Latency` rows that `targets::apply` leaves alone.

use crate::harness::args::Opts;
use crate::harness::row::Row;

/// Every redis row the filter selects.
pub(crate) async fn rows(opts: &Opts) -> Vec<Row> {
    #[cfg(feature = "redis")]
    {
        imp::rows(opts).await
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = opts;
        Vec::new()
    }
}

#[cfg(feature = "redis")]
mod imp {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use actorbus::{Bus, Config, Delivery, DriverKind, HandlerResult, ListenerOptions};
    use redis::aio::MultiplexedConnection;
    use redis::streams::StreamReadReply;
    use redis::AsyncConnectionConfig;
    use serde_json::json;

    use crate::harness::args::Opts;
    use crate::harness::latency::{
        drive, latency_row, paced_bus_latency, record, samples, Pacing, Plan,
    };
    use crate::harness::machine::{with_foreign_cpu, CpuSnap};
    use crate::harness::row::{Kind, Row};
    use crate::harness::sink::{settle_down, Sink};
    use crate::harness::stats::{median_latency, median_of};
    use crate::payload;

    const BEST: &str = "raw redis best (XADD x100 pipelined, XREADGROUP COUNT 100 + XACK)";
    const NAIVE: &str = "raw redis naive (awaited XADD, XREADGROUP COUNT 1 + XACK)";
    const RAW_PUSH: &str = "raw redis XADD x64 tasks, 1 multiplexed conn";
    const E2E: &str = "redis e2e 1l c64";
    const PUSH: &str = "redis push-only x64";
    const RAW_LATENCY: &str = "raw redis latency @5k/s";
    const RAW_LATENCY_SAME: &str = "raw redis latency @5k/s same-thread";
    const LATENCY: &str = "redis latency @5k/s";
    /// Paced rate of the latency rows.
    const RATE: u64 = 5_000;
    const GROUP: &str = "actorbus";

    fn url() -> String {
        std::env::var("ACTORBUS_BENCH_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
    }

    /// Messages of the redis throughput rows: a broker round trip is ~100x
    /// an in-process hand-off, so fewer than the memory rows.
    fn n(opts: &Opts) -> usize {
        if opts.quick {
            20_000
        } else {
            (opts.n / 10).clamp(1_000, 100_000)
        }
    }

    fn fresh_stream(what: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        format!("bench-redis-{what}-{}-{n}", std::process::id())
    }

    /// A connection of its own, without a response timeout (blocking reads).
    async fn connect() -> MultiplexedConnection {
        redis::Client::open(url())
            .expect("redis url")
            .get_multiplexed_async_connection_with_config(
                &AsyncConnectionConfig::new().set_response_timeout(None),
            )
            .await
            .expect("Redis must be reachable (scripts/test starts it)")
    }

    /// `XADD <stream> * payload <body>`: what every raw row sends.
    fn xadd(stream: &str, body: &[u8]) -> redis::Cmd {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(stream).arg("*").arg("payload").arg(body);
        cmd
    }

    async fn drop_keys(stream: &str) {
        let mut conn = connect().await;
        let keys = [
            stream.to_owned(),
            format!("{stream}.delayed"),
            format!("{stream}.dead"),
        ];
        let _: () = redis::cmd("DEL")
            .arg(&keys[..])
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }

    async fn create_group(conn: &mut MultiplexedConnection, stream: &str) {
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await
            .expect("XGROUP CREATE");
    }

    /// Reads `n` entries as consumer `c`, `count` at a time, acknowledging
    /// each batch with one XACK; `on_entry` sees each payload.
    async fn consume(stream: String, n: usize, count: usize, on_entry: impl Fn(&[u8])) {
        let mut conn = connect().await;
        let mut seen = 0;
        while seen < n {
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg("c")
                .arg("COUNT")
                .arg(count)
                .arg("BLOCK")
                .arg(2000)
                .arg("STREAMS")
                .arg(&stream)
                .arg(">")
                .query_async(&mut conn)
                .await
                .expect("XREADGROUP");
            let ids: Vec<_> = reply
                .into_iter()
                .flat_map(|r| r.keys)
                .flat_map(|k| k.ids)
                .collect();
            if ids.is_empty() {
                continue;
            }
            for id in &ids {
                if let Some(redis::Value::BulkString(body)) = id.map.get("payload") {
                    on_entry(body);
                }
            }
            seen += ids.len();
            let _: i64 = redis::cmd("XACK")
                .arg(&stream)
                .arg(GROUP)
                .arg(ids.iter().map(|i| i.id.as_str()).collect::<Vec<_>>())
                .query_async(&mut conn)
                .await
                .expect("XACK");
        }
    }

    /// Raw end to end: one producer (XADD batches of `batch`, or one by one)
    /// and one consumer (`count` per read).
    async fn raw_e2e(name: &'static str, n: usize, batch: usize, count: usize) -> Row {
        let stream = fresh_stream("raw");
        let mut conn = connect().await;
        create_group(&mut conn, &stream).await;
        let body = payload();
        let start = Instant::now();
        let consumer = actix::spawn(consume(stream.clone(), n, count, |_| {}));
        let mut sent = 0;
        while sent < n {
            let take = batch.min(n - sent);
            if take == 1 {
                let _: String = xadd(&stream, &body[..])
                    .query_async(&mut conn)
                    .await
                    .expect("XADD");
            } else {
                let mut pipe = redis::pipe();
                for _ in 0..take {
                    pipe.add_command(xadd(&stream, &body[..])).ignore();
                }
                let _: () = pipe.query_async(&mut conn).await.expect("XADD pipeline");
            }
            sent += take;
        }
        consumer.await.expect("consumer");
        let row = Row::rate(name, Kind::Raw, n, start.elapsed());
        drop_keys(&stream).await;
        row
    }

    /// Raw push only: `tasks` tasks, each awaiting one XADD at a time, all
    /// on clones of one multiplexed connection.
    async fn raw_push(n: usize, tasks: usize) -> Row {
        let stream: Arc<str> = fresh_stream("raw-push").into();
        let conn = connect().await;
        let body = payload();
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let (mut conn, stream, body) = (conn.clone(), stream.clone(), body.clone());
                actix::spawn(async move {
                    let mut i = t;
                    while i < n {
                        let _: String = xadd(&stream, &body[..])
                            .query_async(&mut conn)
                            .await
                            .expect("XADD");
                        i += tasks;
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.expect("pusher");
        }
        let row = Row::rate(RAW_PUSH, Kind::Raw, n, start.elapsed());
        drop_keys(&stream).await;
        row
    }

    async fn bus() -> Bus {
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

    /// The same schedule with the redis crate: XADD on a multiplexed
    /// connection, a consumer blocked in XREADGROUP COUNT 100 + XACK. Like
    /// the bus's listener, the consumer runs on an arbiter of its own unless
    /// `same_thread` (then producer and consumer share the system thread,
    /// which the pacing keeps awake: shown, not a target).
    async fn raw_latency(name: &str, measured_for: Duration, same_thread: bool) -> Row {
        let stream = fresh_stream("raw-latency");
        let mut conn = connect().await;
        create_group(&mut conn, &stream).await;
        let base = Instant::now();
        let plan = Plan::new(RATE, measured_for);
        let samples = samples(plan.total);
        let arbiter = (!same_thread).then(actix::Arbiter::new);
        let consumer = {
            let samples = samples.clone();
            let run = consume(stream.clone(), plan.total, 100, move |body| {
                record(&samples, base, body);
            });
            let (done, finished) = tokio::sync::oneshot::channel();
            let run = async move {
                run.await;
                let _ = done.send(());
            };
            match &arbiter {
                Some(arbiter) => {
                    arbiter.spawn(run);
                }
                None => {
                    actix::spawn(run);
                }
            }
            finished
        };
        let send = {
            let (conn, stream) = (conn.clone(), stream.clone());
            move |body: Vec<u8>| {
                let (mut conn, stream) = (conn.clone(), stream.clone());
                async move {
                    let _: String = xadd(&stream, &body)
                        .query_async(&mut conn)
                        .await
                        .expect("XADD");
                }
            }
        };
        let window = drive(&plan, Pacing::Thread, base, send).await;
        consumer.await.expect("consumer");
        if let Some(arbiter) = arbiter {
            arbiter.stop();
            let _ = arbiter.join();
        }
        drop_keys(&stream).await;
        settle_down().await;
        latency_row(name.to_owned(), &plan, &samples, window, Pacing::Thread)
    }

    async fn measured<Fut: std::future::Future<Output = Row>>(
        name: &str,
        reps: usize,
        run: impl FnMut() -> Fut,
    ) -> Row {
        eprintln!("  {name} ...");
        let snap = CpuSnap::now();
        with_foreign_cpu(median_of(reps, run).await, snap)
    }

    pub(super) async fn rows(opts: &Opts) -> Vec<Row> {
        let (n, reps, k) = (n(opts), opts.reps, opts.producers);
        let n_naive = (n / 10).max(500);
        let mut rows = Vec::new();
        if opts.wants(BEST) {
            rows.push(measured(BEST, reps, || raw_e2e(BEST, n, 100, 100)).await);
        }
        if opts.wants(NAIVE) {
            rows.push(measured(NAIVE, reps, || raw_e2e(NAIVE, n_naive, 1, 1)).await);
        }
        if opts.wants(RAW_PUSH) {
            rows.push(measured(RAW_PUSH, reps, || raw_push(n, 64)).await);
        }
        if opts.wants(E2E) {
            rows.push(measured(E2E, reps, || bus_e2e(n, k)).await);
        }
        if opts.wants(PUSH) {
            rows.push(measured(PUSH, reps, || bus_push(n, 64)).await);
        }
        // Interleaved, as the memory latency rows are.
        let (mut raw, mut same, mut bus) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 1..=opts.latency_reps {
            if opts.wants(RAW_LATENCY) {
                eprintln!("  {RAW_LATENCY} (run {rep}/{}) ...", opts.latency_reps);
                raw.push(raw_latency(RAW_LATENCY, opts.latency_for, false).await);
            }
            if opts.wants(RAW_LATENCY_SAME) {
                eprintln!("  {RAW_LATENCY_SAME} (run {rep}/{}) ...", opts.latency_reps);
                same.push(raw_latency(RAW_LATENCY_SAME, opts.latency_for, true).await);
            }
            if opts.wants(LATENCY) {
                eprintln!("  {LATENCY} (run {rep}/{}) ...", opts.latency_reps);
                bus.push(bus_latency(opts.latency_for).await);
            }
        }
        for runs in [raw, same, bus] {
            if !runs.is_empty() {
                rows.push(median_latency(runs));
            }
        }
        apply_targets(&mut rows);
        rows
    }

    /// The targets: e2e ≥ 0.5x raw best and ≥ 5x raw naive; push
    /// only ≥ 0.8x raw XADD x64; p50 at 5k/s ≤ 1.5x raw.
    fn apply_targets(rows: &mut [Row]) {
        let rate = |rows: &[Row], name: &str| {
            rows.iter()
                .find(|r| r.name == name)
                .and_then(|r| r.msgs_per_s)
        };
        let p50 =
            |rows: &[Row], name: &str| rows.iter().find(|r| r.name == name).and_then(|r| r.p50_us);
        let (best, naive, raw_push) = (rate(rows, BEST), rate(rows, NAIVE), rate(rows, RAW_PUSH));
        let raw_p50 = p50(rows, RAW_LATENCY);
        for row in rows.iter_mut() {
            match row.name.as_str() {
                E2E => {
                    let rate = row.msgs_per_s.unwrap_or(0.0);
                    let vs_best = best.map(|b| rate / b);
                    let vs_naive = naive.map(|b| rate / b);
                    row.ratio = vs_best;
                    row.target = Some("≥0.5x raw best & ≥5x raw naive");
                    row.pass = Some(
                        vs_best.is_some_and(|r| r >= 0.5) && vs_naive.is_some_and(|r| r >= 5.0),
                    );
                    row.extra.insert("ratio_vs_raw_best".into(), json!(vs_best));
                    row.extra
                        .insert("ratio_vs_raw_naive".into(), json!(vs_naive));
                }
                PUSH => {
                    let ratio = raw_push.map(|b| row.msgs_per_s.unwrap_or(0.0) / b);
                    row.ratio = ratio;
                    row.target = Some("≥0.8x raw XADD x64");
                    row.pass = Some(ratio.is_some_and(|r| r >= 0.8));
                    row.extra.insert("ratio_vs_raw_push".into(), json!(ratio));
                }
                LATENCY => {
                    let ratio = raw_p50.zip(row.p50_us).map(|(raw, bus)| bus / raw);
                    row.target = Some("p50 ≤ 1.5x raw redis");
                    row.pass = Some(ratio.is_some_and(|r| r <= 1.5));
                    row.extra.insert("p50_ratio_vs_raw".into(), json!(ratio));
                }
                _ => {}
            }
        }
    }
}
