//! Memory of queued messages: the RSS row, which re-executes this binary
//! with `--rss-child` so that memory freed by earlier rows cannot hide the
//! growth, and the child's side of it.

use std::io::Write as _;
use std::time::Instant;

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

/// The parent's side: runs the child and turns its JSON line into a row.
pub(crate) fn bus_rss(opts: &Opts) -> Row {
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
