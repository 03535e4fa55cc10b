//! The raw redis baselines: the redis crate used directly, best practice and
//! naive, and the helpers the bus rows share (server url, fresh streams,
//! cleanup).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;
use redis::AsyncConnectionConfig;

use crate::harness::cleanup::{self, Made};
use crate::harness::latency::{drive, latency_row, record, samples, Pacing, Plan};
use crate::harness::row::{Kind, Row};
use crate::harness::sink::settle_down;
use crate::payload;

pub(super) const RAW_PUSH: &str = "raw redis XADD x64 tasks, 1 multiplexed conn";

/// Paced rate of the latency rows.
pub(super) const RATE: u64 = 5_000;
pub(super) const GROUP: &str = "actorbus";

pub(super) fn url() -> String {
    std::env::var("ACTORBUS_BENCH_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned())
}

/// A fresh stream name, deleted afterwards (by its row, or by the run's
/// [`cleanup`](crate::harness::cleanup) if the row does not get there).
pub(super) fn fresh_stream(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("bench-redis-{what}-{}-{n}", std::process::id());
    cleanup::record(Made::Redis(name.clone()));
    name
}

/// A connection of its own, without a response timeout (blocking reads).
pub(super) async fn connect() -> MultiplexedConnection {
    redis::Client::open(url())
        .expect("redis url")
        .get_multiplexed_async_connection_with_config(
            &AsyncConnectionConfig::new().set_response_timeout(None),
        )
        .await
        .expect("Redis must be reachable (scripts/test starts it)")
}

/// `XADD <stream> * payload <body> id <id> attempt 1`: what every raw row
/// sends, the fields the bus writes (a fixed id text as long as the bus's),
/// so that Redis does the same work per entry for both.
pub(super) fn xadd(stream: &str, body: &[u8]) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("*")
        .arg("payload")
        .arg(body)
        .arg("id")
        .arg(MESSAGE_ID)
        .arg("attempt")
        .arg("1");
    cmd
}

/// A message id as the bus writes it (a UUIDv7's text).
const MESSAGE_ID: &str = "0193a5f0-7c1e-7d2a-9b3c-4d5e6f708192";

pub(super) async fn drop_keys(stream: &str) {
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

/// Deletes every key that starts with one of `names`: one `SCAN` over the
/// keys of the bench (all named `bench-…`), one `DEL` of those that match.
pub(super) async fn sweep(names: &[String]) {
    let Ok(client) = redis::Client::open(url()) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        eprintln!("  cleanup: Redis is not reachable; bench keys may be left");
        return;
    };
    let mut doomed = Vec::new();
    let mut cursor = 0u64;
    loop {
        let scanned: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("bench-*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await;
        let Ok((next, keys)) = scanned else {
            break;
        };
        doomed.extend(
            keys.into_iter()
                .filter(|key| names.iter().any(|name| key.starts_with(name.as_str()))),
        );
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if !doomed.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(&doomed).query_async(&mut conn).await;
    }
}

pub(super) async fn create_group(conn: &mut MultiplexedConnection, stream: &str) {
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
pub(super) async fn consume(stream: String, n: usize, count: usize, on_entry: impl Fn(&[u8])) {
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
pub(super) async fn raw_e2e(name: &'static str, n: usize, batch: usize, count: usize) -> Row {
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
pub(super) async fn raw_push(n: usize, tasks: usize) -> Row {
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

/// The same schedule with the redis crate: XADD on a multiplexed
/// connection, a consumer blocked in XREADGROUP COUNT 100 + XACK. Like
/// the bus's listener, the consumer runs on an arbiter of its own unless
/// `same_thread` (then producer and consumer share the system thread,
/// which the pacing keeps awake: shown, not a target).
pub(super) async fn raw_latency(name: &str, measured_for: Duration, same_thread: bool) -> Row {
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
