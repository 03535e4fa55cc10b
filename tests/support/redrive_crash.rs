//! A redrive killed halfway, for the broker drivers' tests: a child process
//! redrives `N` dead letters in small steps, logging its progress, and is
//! SIGKILLed part-way; then every id must be in `<queue>` or `<queue>.dead`.
//!
//! Each broker's test binary has a child test that calls [`child`] and a
//! test that calls [`kill_a_redrive_halfway`] with that child's name.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use actorbus::{Bus, Config};
use futures_util::future::join_all;

use crate::support::child::{log_appender, logged, spawn_test};
use crate::support::ledger::{tally, until_all_handled, Tally};
use crate::support::{eventually, index_of, indexed, unique_queue, Collector};

/// Dead letters per run.
pub const N: u32 = 2_000;
/// Where the child finds its queue.
const QUEUE_VAR: &str = "ACTORBUS_REDRIVE_CRASH_QUEUE";
/// Where the child finds its step size.
const STEP_VAR: &str = "ACTORBUS_REDRIVE_CRASH_STEP";
/// Where the child logs its progress (how many it moved in all).
const LOG_VAR: &str = "ACTORBUS_REDRIVE_CRASH_LOG";
/// The longest any phase may take (a correctness bound, never a speed one).
const BOUND: Duration = Duration::from_secs(120);

/// The child's body: redrives the queue in its environment in steps,
/// appending how many it moved in all to its log after each step, until
/// nothing is left. Returns at once when run as a test of its own (no
/// queue in the environment).
pub fn child(config: Config) {
    let (Ok(queue), Ok(step), Ok(log)) = (
        std::env::var(QUEUE_VAR),
        std::env::var(STEP_VAR),
        std::env::var(LOG_VAR),
    ) else {
        return;
    };
    let step: usize = step.parse().expect("step");
    let progress = log_appender(&log);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let bus = Bus::connect(config).await.expect("the child connects");
        let mut total = 0u32;
        loop {
            let moved = bus.redrive(&queue, step).await.expect("redrive");
            if moved == 0 {
                break;
            }
            total += u32::try_from(moved).expect("moved fits");
            progress(total);
        }
    });
}

/// What a killed redrive left.
#[derive(Debug)]
pub struct Outcome {
    /// Messages found in neither queue.
    pub lost: Vec<u32>,
    /// Copies beyond one per message.
    pub duplicates: u32,
    /// How many the child said it had moved when it was killed.
    pub moved_at_kill: u32,
    /// Messages found in the queue (the rest were still dead letters): how
    /// far the redrive got.
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
        fill(&bus, &dead).await;
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
        let (Tally { lost, duplicates }, in_queue) = collect(&bus, &q, &dead).await;
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

/// Pushes `N` numbered messages straight into `dead`.
async fn fill(bus: &Bus, dead: &str) {
    for chunk in (0..N).collect::<Vec<_>>().chunks(250) {
        let pushed = join_all(chunk.iter().map(|&i| bus.push(dead, indexed(i)))).await;
        for id in pushed {
            id.expect("push");
        }
    }
}

/// Runs the child on `queue` and SIGKILLs it once its log says it moved
/// `N / 4`; answers how many it had moved then, or `None` when it finished
/// (or died) first.
fn run_and_kill(child_test: &str, queue: &str, step: usize) -> Option<u32> {
    let log = std::env::temp_dir().join(format!("{queue}.progress"));
    let step = step.to_string();
    let vars = [
        (QUEUE_VAR, OsStr::new(queue)),
        (STEP_VAR, OsStr::new(&step)),
        (LOG_VAR, log.as_os_str()),
    ];
    let mut child = spawn_test(child_test, &vars);
    let deadline = Instant::now() + BOUND;
    let outcome = loop {
        if let Some(&moved) = logged(&log).last().filter(|&&m| m >= N / 4) {
            // A few ms more, varying from run to run, so that the kill
            // falls in different phases of the next step.
            std::thread::sleep(Duration::from_micros(jitter_us()));
            child.kill().expect("SIGKILL the child");
            break Some(moved);
        }
        if child.try_wait().expect("the child's status").is_some() {
            break None;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child made no progress within {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    child.wait().expect("reap the child");
    let _ = std::fs::remove_file(&log);
    outcome
}

/// Up to 60 ms, from the clock.
fn jitter_us() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    u64::from(nanos % 60_000)
}

/// Takes every message of `queue` and `dead` until each of `0..N` was
/// seen (lost ones fail the bound), then until both are drained; answers
/// what was lost and handled twice, and how many (once each) came from
/// `queue`.
async fn collect(bus: &Bus, queue: &str, dead: &str) -> (Tally, usize) {
    let got = Collector::new();
    let listeners = [got.listen(bus, queue).await, got.listen(bus, dead).await];
    let indices = || got.snapshot().iter().map(index_of).collect::<Vec<u32>>();
    until_all_handled(N, BOUND, indices).await;
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
    let mut in_queue: Vec<u32> = got
        .snapshot()
        .iter()
        .filter(|d| d.queue() == queue)
        .map(index_of)
        .collect();
    in_queue.sort_unstable();
    in_queue.dedup();
    (tally(N, indices()), in_queue.len())
}
