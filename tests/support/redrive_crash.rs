//! A redrive killed halfway, for the broker drivers' tests: a child process
//! redrives `N` dead letters in small steps, printing its progress, and is
//! SIGKILLed part-way; then every id must be in `<queue>` or `<queue>.dead`.
//!
//! Each broker's test binary has a child test that calls [`child`] and a
//! test that calls [`kill_a_redrive_halfway`] with that child's name.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actorbus::{Bus, Config, MessageId};
use futures_util::future::join_all;

use crate::support::{eventually, indexed, unique_queue, Collector};

/// Dead letters per run.
pub const N: u32 = 2_000;
/// Where the child finds its queue.
const QUEUE_VAR: &str = "ACTORBUS_REDRIVE_CRASH_QUEUE";
/// Where the child finds its step size.
const STEP_VAR: &str = "ACTORBUS_REDRIVE_CRASH_STEP";
/// The longest any phase may take (a correctness bound, never a speed one).
const BOUND: Duration = Duration::from_secs(120);

/// The child's body: redrives the queue in its environment in steps,
/// printing `moved <total>` after each, until nothing is left. Returns at
/// once when run as a test of its own (no queue in the environment).
pub fn child(config: Config) {
    let (Ok(queue), Ok(step)) = (std::env::var(QUEUE_VAR), std::env::var(STEP_VAR)) else {
        return;
    };
    let step: usize = step.parse().expect("step");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let bus = Bus::connect(config).await.expect("the child connects");
        let mut total = 0;
        loop {
            let moved = bus.redrive(&queue, step).await.expect("redrive");
            if moved == 0 {
                break;
            }
            total += moved;
            let mut out = std::io::stdout().lock();
            writeln!(out, "moved {total}").expect("stdout");
            out.flush().expect("stdout");
        }
        println!("done");
    });
}

/// What a killed redrive left.
#[derive(Debug)]
pub struct Outcome {
    /// Ids found in neither queue.
    pub lost: usize,
    /// Copies beyond one per id.
    pub duplicates: usize,
    /// How many the child said it had moved when it was killed.
    pub moved_at_kill: u64,
    /// Ids found in the queue (the rest were still dead letters): how far
    /// the redrive got.
    pub in_queue: usize,
    /// The queues the runs used, for the caller to clean up.
    pub queues: Vec<String>,
}

/// Fills `<queue>.dead` with `N` dead letters, runs `child_test` (the name of
/// the child test in this binary) to redrive them `step` at a time, kills it
/// once it moved a quarter, then collects every message of both queues.
/// A child that finished before the kill proves nothing: that run is
/// repeated on a fresh queue, up to three times.
pub async fn kill_a_redrive_halfway(config: Config, child_test: &str, step: usize) -> Outcome {
    let bus = Bus::connect(config).await.expect("connect");
    let mut queues = Vec::new();
    for _ in 0..3 {
        let q = unique_queue("redrive-crash");
        queues.push(q.clone());
        let dead = format!("{q}.dead");
        let ids = fill(&bus, &dead).await;
        let killed = tokio::task::spawn_blocking({
            let (test, q) = (child_test.to_owned(), q.clone());
            move || run_and_kill(&test, &q, step)
        })
        .await
        .expect("the child runner");
        let Some(moved_at_kill) = killed else {
            eprintln!("the child finished before the kill; again on a fresh queue");
            bus.purge(&q).await.expect("purge");
            continue;
        };
        let (lost, duplicates, in_queue) = collect(&bus, &q, &dead, &ids).await;
        bus.shutdown().await.expect("shutdown");
        return Outcome {
            lost,
            duplicates,
            moved_at_kill,
            in_queue,
            queues,
        };
    }
    panic!("the child finished before the kill three times: the test proves nothing");
}

/// Pushes `N` numbered messages straight into `dead`; returns their ids.
async fn fill(bus: &Bus, dead: &str) -> Vec<MessageId> {
    let mut ids = Vec::with_capacity(N as usize);
    for chunk in (0..N).collect::<Vec<_>>().chunks(250) {
        let pushed = join_all(chunk.iter().map(|&i| bus.push(dead, indexed(i)))).await;
        ids.extend(pushed.into_iter().map(|id| id.expect("push")));
    }
    ids
}

/// Runs the child on `queue` and SIGKILLs it once it said it moved `N / 4`;
/// answers how many it had moved then, or `None` when it finished first.
fn run_and_kill(child_test: &str, queue: &str, step: usize) -> Option<u64> {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([child_test, "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads=1"])
        .env(QUEUE_VAR, queue)
        .env(STEP_VAR, step.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("the child's stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + BOUND;
    let outcome = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line == "done" => break None,
            Ok(line) => {
                let moved = line.strip_prefix("moved ").and_then(|n| n.parse().ok());
                if let Some(moved) = moved.filter(|&m: &u64| m >= u64::from(N / 4)) {
                    // A few ms more, varying from run to run, so that the
                    // kill falls in different phases of the next step.
                    std::thread::sleep(Duration::from_micros(jitter_us()));
                    child.kill().expect("SIGKILL the child");
                    break Some(moved);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the child made no progress within {BOUND:?}");
            }
        }
    };
    let _ = child.kill();
    child.wait().expect("reap the child");
    outcome
}

/// Up to 60 ms, from the clock.
fn jitter_us() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos % 60_000)
}

/// Takes every message of `queue` and `dead` until each of `ids` was seen
/// (lost ones fail the bound), then a little longer for late duplicates;
/// answers how many were lost, how many came twice, and how many (once
/// each) came from `queue`.
async fn collect(bus: &Bus, queue: &str, dead: &str, ids: &[MessageId]) -> (usize, usize, usize) {
    let got = Collector::new();
    let listeners = [got.listen(bus, queue).await, got.listen(bus, dead).await];
    let all_seen = || {
        let seen: HashMap<MessageId, usize> = counts(&got);
        ids.iter().all(|id| seen.contains_key(id))
    };
    let found = tokio::time::timeout(BOUND, async {
        while !all_seen() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Copies still on their way (amqp: requeued by the broker as it saw the
    // child's connection close) come now; none may stay behind.
    eventually("both queues drained", BOUND, || async {
        let (q, d) = (bus.stats(queue).await, bus.stats(dead).await);
        let (q, d) = (q.expect("stats"), d.expect("stats"));
        q.ready + q.in_flight + q.dead + d.ready + d.in_flight == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for listener in listeners {
        listener.remove().await.expect("remove");
    }
    let seen = counts(&got);
    let lost = ids.iter().filter(|id| !seen.contains_key(id)).count();
    assert!(
        found.is_ok() || lost > 0,
        "the bound passed with nothing lost"
    );
    let duplicates = seen.values().map(|n| n - 1).sum();
    let mut in_queue: Vec<MessageId> = got
        .snapshot()
        .into_iter()
        .filter(|d| d.queue() == queue)
        .map(|d| d.id().clone())
        .collect();
    in_queue.sort_unstable();
    in_queue.dedup();
    (lost, duplicates, in_queue.len())
}

/// How often each id was delivered.
fn counts(got: &Collector) -> HashMap<MessageId, usize> {
    let mut seen = HashMap::new();
    for delivery in got.snapshot() {
        *seen.entry(delivery.id().clone()).or_default() += 1;
    }
    seen
}
