//! `actorbus stats`: counts as a table and as JSON, and `--watch`'s
//! samples with their rates.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;

use crate::support::cli::{bus, cleanup, dead_letters, on, BROKERS};
use crate::support::{unique_queue, LIMIT};

#[tokio::test]
async fn stats_json_counts_each_queue() {
    for driver in BROKERS {
        let busy = unique_queue("cli-stats");
        let other = unique_queue("cli-stats");
        dead_letters(driver, &busy, &["dies"]).await;
        let bus = bus(driver).await;
        for i in 0..3 {
            bus.push(&busy, format!("m{i}")).await.expect("push");
        }
        bus.push(&other, "one").await.expect("push");

        let ran = on(driver, &["stats", "--json", &busy, &other]).run().ok();
        assert!(
            ran.stdout.starts_with("[\n  {\n    \"queue\": "),
            "the queue's name first: {ran:?}"
        );
        let stats = ran.json();
        let rows = stats.as_array().expect("an array, one row per queue");
        assert_eq!(rows.len(), 2, "{stats}");
        assert_eq!(rows[0]["queue"], busy.as_str());
        assert_eq!(rows[0]["ready"], 3, "{driver}: {stats}");
        assert_eq!(rows[0]["dead"], 1, "{driver}: {stats}");
        assert_eq!(rows[0]["in_flight"], 0);
        assert_eq!(rows[0]["delayed"], 0);
        assert_eq!(rows[1]["queue"], other.as_str());
        assert_eq!(rows[1]["ready"], 1, "{driver}: {stats}");
        assert_eq!(rows[1]["dead"], 0);

        let table = on(driver, &["stats", &busy]).run().ok().stdout;
        let lines: Vec<Vec<&str>> = table
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            [
                "queue",
                "ready",
                "in",
                "flight",
                "delayed",
                "dead",
                "listeners"
            ]
        );
        assert_eq!(
            lines[1],
            [busy.as_str(), "3", "0", "0", "1", "0"],
            "{table}"
        );
        bus.shutdown().await.expect("shutdown");
        cleanup(driver, &[&busy, &other]).await;
    }
}

#[tokio::test]
async fn stats_watch_samples_with_rates() {
    let driver = "redis";
    let queue = unique_queue("cli-watch");
    let (mut child, _dir) = on(
        driver,
        &["stats", &queue, "--watch", "--interval", "100ms", "--json"],
    )
    .spawn();
    // One JSON line per sample, read on a thread so every wait is bounded.
    let (lines, samples) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let next = || -> serde_json::Value {
        let line = samples
            .recv_timeout(LIMIT)
            .expect("a sample within the limit");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let first = next();
    assert_eq!(first["queues"][0]["queue"], queue.as_str(), "{first}");
    assert!(
        first["queues"][0]["net_per_sec"].is_null(),
        "no rate yet: {first}"
    );
    assert!(first["at"].is_string(), "{first}");

    let bus = bus(driver).await;
    for i in 0..5 {
        bus.push(&queue, format!("m{i}")).await.expect("push");
    }
    // The first sample that sees all five follows one that saw fewer: the
    // net rate (pushes minus acks) is positive there.
    let seen = loop {
        let sample = next();
        if sample["queues"][0]["ready"] == 5 {
            break sample;
        }
    };
    let net = seen["queues"][0]["net_per_sec"].as_f64().expect("a rate");
    assert!(net > 0.0, "{seen}");
    assert_eq!(
        seen["queues"][0]["dead_per_sec"].as_f64(),
        Some(0.0),
        "{seen}"
    );

    child.kill().expect("stop the watch");
    let _ = child.wait();
    bus.shutdown().await.expect("shutdown");
    cleanup(driver, &[&queue]).await;
}

#[tokio::test]
async fn watch_interval_needs_watch() {
    let ran = on("redis", &["stats", "q", "--interval", "1s"]).run();
    assert_eq!(ran.code(), Some(2), "{ran:?}");
    let zero = on("redis", &["stats", "q", "--watch", "--interval", "0s"]).run();
    assert_eq!(zero.code(), Some(2), "{zero:?}");
    assert!(zero.stderr.contains("must be more than 0"), "{zero:?}");
}
