//! Memory of queued messages: the RSS row, which re-executes this binary
//! with `--rss-child` so that memory freed by earlier rows cannot hide the
//! growth, and the child's side of it.

use std::io::Write as _;
use std::time::{Duration, Instant};

use actix::System;
use actorbus::{Bus, Config};
use bytes::Bytes;
use serde_json::{json, Value};

use crate::harness::args::Opts;
use crate::harness::machine::{proc_status_bytes, MIB};
use crate::harness::row::{Kind, Row};
use crate::harness::sink::settle_down;
use crate::PAYLOAD_LEN;

/// Runs in the child: queues `n` distinct 64-byte payloads with no listener
/// and prints one JSON line with the RSS growth.
pub(crate) fn rss_child(n: usize, producers: usize) {
    if std::env::var("ACTORBUS_BENCH_RSS_MODE").as_deref() == Ok("idle") {
        idle_child(n, producers);
    }
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
        let (before, elapsed) = spread(&bus, n, producers, move |bus, i| async move {
            // Each message its own allocation, and distinct.
            let mut body = vec![0u8; PAYLOAD_LEN];
            body[..8].copy_from_slice(&(i as u64).to_le_bytes());
            bus.push(queue, body).await.expect("push");
        })
        .await;
        let stats = bus.stats(queue).await.expect("stats");
        assert_eq!(stats.ready, n as u64, "every push is stored");
        let mut result = growth(before, n, elapsed).await;
        let rss = result["rss_mib"].as_f64().unwrap_or_default() * MIB;
        result.insert("bytes_per_msg".into(), json!(rss / n as f64));
        result
    });
    // The queued messages go with the process.
    answer(result)
}

/// Reads the RSS, then runs `one(bus, i)` for every `i` in `0..n` from
/// `producers` tasks (each awaiting one at a time); answers the RSS before
/// and the time taken.
async fn spread<F, Fut>(bus: &Bus, n: usize, producers: usize, one: F) -> (u64, Duration)
where
    F: Fn(Bus, usize) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let before = proc_status_bytes("VmRSS:").expect("VmRSS");
    let start = Instant::now();
    let tasks: Vec<_> = (0..producers)
        .map(|t| {
            let (bus, one) = (bus.clone(), one.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    one(bus.clone(), i).await;
                    i += producers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("pusher");
    }
    (before, start.elapsed())
}

/// After the work: settles, then the RSS growth since `before` (now and at
/// the peak) and the rate of `n` messages in `elapsed`.
async fn growth(before: u64, n: usize, elapsed: Duration) -> serde_json::Map<String, Value> {
    settle_down().await;
    let after = proc_status_bytes("VmRSS:").expect("VmRSS");
    let peak = proc_status_bytes("VmHWM:").expect("VmHWM");
    let mib = |bytes: u64| json!(bytes.saturating_sub(before) as f64 / MIB);
    let mut fields = serde_json::Map::new();
    fields.insert("rss_mib".into(), mib(after));
    fields.insert("peak_mib".into(), mib(peak));
    fields.insert("before_mib".into(), json!(before as f64 / MIB));
    let rate = n as f64 / elapsed.as_secs_f64();
    fields.insert("push_msgs_per_s".into(), json!(rate));
    fields
}

/// Prints the child's one JSON line for the parent, and ends the child.
fn answer(result: serde_json::Map<String, Value>) -> ! {
    println!("{}", Value::Object(result));
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

/// The parent's side: runs the child and turns its JSON line into a row.
pub(crate) fn bus_rss(opts: &Opts) -> Row {
    let output = run_child(&[
        ("ACTORBUS_BENCH_RSS_N", opts.rss_n.to_string()),
        ("ACTORBUS_BENCH_PRODUCERS", opts.producers.to_string()),
    ]);
    let name = if opts.rss_n == 1_000_000 {
        "memory rss 1M queued".to_owned()
    } else {
        format!("memory rss {} queued", opts.rss_n)
    };
    rss_row(name, opts.rss_n, &output)
}

/// Runs this binary as an RSS child with `env`.
fn run_child(env: &[(&str, String)]) -> std::process::Output {
    let exe = std::env::current_exe().expect("current_exe");
    let mut child = std::process::Command::new(exe);
    child.arg("--rss-child");
    for (key, value) in env {
        child.env(key, value);
    }
    child.output().expect("run the RSS child")
}

/// The row of a child's JSON line.
fn rss_row(name: String, n: usize, output: &std::process::Output) -> Row {
    let mut row = Row::new(name, Kind::Rss, n);
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

/// The idle-queues row: 100,000 queues each used once, then left alone.
pub(crate) const IDLE_ROW: &str = "memory rss 100k idle queues";
/// Queues of the idle-queues row.
const IDLE_QUEUES: usize = 100_000;
/// `queue.idle_timeout` in the idle-queues child: short, so that the row
/// does not wait the default 30 s.
const IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// Runs in the child: pushes one message to each of `n` fresh queues and
/// receives it, then waits for the idle queues' actors to retire, and prints
/// one JSON line with the RSS growth after retirement (and right after use).
fn idle_child(n: usize, producers: usize) -> ! {
    let result = System::new().block_on(async move {
        let mut config = Config::default();
        config.queue.idle_timeout = IDLE_TIMEOUT;
        let bus = Bus::connect(config).await.expect("connect");
        bus.push("bench-idle-warm", Bytes::from_static(b"x"))
            .await
            .expect("push");
        bus.receive("bench-idle-warm", Duration::from_secs(5))
            .await
            .expect("receive");
        settle_down().await;
        let (before, elapsed) =
            spread(&bus, n, producers, |bus, i| use_once(bus, "first", i)).await;
        let touched = proc_status_bytes("VmRSS:").expect("VmRSS");
        // Two idle periods and a margin: every actor has retired by then,
        // and the registry has returned their memory to the system (half a
        // second after the last retirement).
        tokio::time::sleep(IDLE_TIMEOUT * 5).await;
        let mut result = growth(before, n, elapsed).await;
        let touched = touched.saturating_sub(before) as f64 / MIB;
        result.insert("touched_mib".into(), json!(touched));
        // glibc's malloc keeps what the retired actors freed (it does not
        // shrink RSS): a second wave of as many new queues shows whether
        // that memory is reused rather than leaked.
        spread(&bus, n, producers, |bus, i| use_once(bus, "again", i)).await;
        let again = proc_status_bytes("VmRSS:").expect("VmRSS");
        let again = again.saturating_sub(before) as f64 / MIB;
        result.insert("second_wave_mib".into(), json!(again));
        result.insert(
            "idle_timeout_secs".into(),
            json!(IDLE_TIMEOUT.as_secs_f64()),
        );
        result
    });
    answer(result)
}

/// Uses the queue `bench-idle-<wave>-<i>` once: one push, one receive.
async fn use_once(bus: Bus, wave: &'static str, i: usize) {
    let queue = format!("bench-idle-{wave}-{i}");
    bus.push(&queue, Bytes::from_static(b"once"))
        .await
        .expect("push");
    let limit = Duration::from_secs(30);
    bus.receive(&queue, limit).await.expect("receive");
}

/// The parent's side of the idle-queues row.
pub(crate) fn idle_queues_rss(opts: &Opts) -> Row {
    let output = run_child(&[
        ("ACTORBUS_BENCH_RSS_N", IDLE_QUEUES.to_string()),
        ("ACTORBUS_BENCH_PRODUCERS", opts.producers.to_string()),
        ("ACTORBUS_BENCH_RSS_MODE", "idle".to_owned()),
    ]);
    rss_row(IDLE_ROW.to_owned(), IDLE_QUEUES, &output)
}
