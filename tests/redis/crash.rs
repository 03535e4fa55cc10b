//! Consumer crash: a consumer process SIGKILLed mid-handling loses
//! nothing. Of 10,000 pushed, every one is handled — by the same consumer
//! restarted (it re-reads its own pending entries, id `0`), or by another
//! consumer that takes them over with `XAUTOCLAIM` after `redis.claim_idle`.
//!
//! The consumer runs in a child process: this test binary re-executed to
//! run only [`crash_child`], which listens until it is killed and appends
//! each handled message's number to a file.

use crate::support::redis as redis_support;

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::child::{logged, spawn_test};
use crate::support::{eventually, index_of, indexed, init_tracing, stats_until, unique_queue};
use actorbus::{Bus, Delivery, ListenerOptions};
use futures_util::future::join_all;
use redis_support::{cleanup, cli, config_on, SHARED_URL};

/// Messages per run.
const N: u32 = 10_000;
/// How long recovery may take at most (a correctness bound).
const RECOVERY: Duration = Duration::from_secs(120);

const ENV_QUEUE: &str = "ACTORBUS_CRASH_QUEUE";
const ENV_CONSUMER: &str = "ACTORBUS_CRASH_CONSUMER";
const ENV_FILE: &str = "ACTORBUS_CRASH_FILE";
const ENV_CLAIM_IDLE_S: &str = "ACTORBUS_CRASH_CLAIM_IDLE_S";

/// A handler that appends each message's number to `file` (one `write` per
/// message, so a SIGKILL loses none that were recorded), after a little work.
fn recorder(
    file: &Path,
) -> impl Fn(Delivery) -> crate::support::BoxFuture<actorbus::HandlerResult> + Send + Sync {
    let file = Arc::new(Mutex::new(
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .expect("record file"),
    ));
    move |delivery| {
        let file = file.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let line = format!("{}\n", index_of(&delivery));
            file.lock().unwrap().write_all(line.as_bytes())?;
            Ok(())
        })
    }
}

/// The numbers recorded in `file` so far, each once.
fn handled(file: &Path) -> HashSet<u32> {
    logged(file).into_iter().collect()
}

/// The child's body: listens on the queue until it is killed.
#[test]
fn crash_child() {
    let (Ok(queue), Ok(consumer), Ok(file)) = (
        std::env::var(ENV_QUEUE),
        std::env::var(ENV_CONSUMER),
        std::env::var(ENV_FILE),
    ) else {
        return; // Run as a test of its own: nothing to do.
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let mut config = config_on(SHARED_URL);
        config.redis.consumer = consumer;
        if let Some(secs) = std::env::var(ENV_CLAIM_IDLE_S)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            config.redis.claim_idle = Duration::from_secs(secs);
        }
        let bus = Bus::connect(config).await.expect("connect");
        let opts = ListenerOptions::default().with_concurrency(16);
        let _listener = bus
            .add_listener_with(&queue, opts, recorder(Path::new(&file)))
            .await
            .expect("add_listener");
        std::future::pending::<()>().await;
    });
}

/// Starts a child consumer of `queue` named `consumer`.
fn spawn_child(queue: &str, consumer: &str, file: &Path) -> Child {
    // An hour: no reaper of the child's can take anything over, so what a
    // restarted child recovers it recovers by re-reading its own entries.
    spawn_test(
        "redis::crash::crash_child",
        &[
            (ENV_CLAIM_IDLE_S, "3600".as_ref()),
            (ENV_QUEUE, queue.as_ref()),
            (ENV_CONSUMER, consumer.as_ref()),
            (ENV_FILE, file.as_os_str()),
        ],
    )
}

/// Pushes `N` numbered messages.
async fn push_all(bus: &Bus, queue: &str) {
    for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
        join_all(chunk.iter().map(|&i| bus.push(queue, indexed(i))))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .expect("push");
    }
}

/// Runs a child until it handled about a fifth, then SIGKILLs it; returns
/// how many entries its consumer still held at the kill.
async fn kill_mid_handling(queue: &str, consumer: &str, file: &Path) -> u64 {
    let mut child = spawn_child(queue, consumer, file);
    eventually("the child handled a fifth", RECOVERY, || async {
        handled(file).len() >= (N / 5) as usize
    })
    .await;
    child.kill().expect("SIGKILL");
    child.wait().expect("reap the child");
    let pending = cli(&["XPENDING", queue, "actorbus"]);
    pending
        .lines()
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

fn record_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{name}.handled"));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_consumer_takes_back_its_own_pending_entries() {
    init_tracing();
    let q = unique_queue("crash-restart");
    let consumer = unique_queue("crash-worker");
    let file = record_file(&q);
    let bus = Bus::connect(config_on(SHARED_URL)).await.expect("connect");
    push_all(&bus, &q).await;

    let held = kill_mid_handling(&q, &consumer, &file).await;
    assert!(
        held > 0,
        "the child was killed holding nothing: the test proves nothing"
    );
    let before = handled(&file).len();
    assert!(before < N as usize, "the child finished before the kill");

    // The same consumer name, restarted: its listener reads id 0 first.
    // Its claim_idle is an hour, so nothing else can recover them.
    let mut again = spawn_child(&q, &consumer, &file);
    eventually("every message handled", RECOVERY, || async {
        handled(&file).len() == N as usize
    })
    .await;
    let stats = stats_until(&bus, &q, "all acknowledged", |s| {
        (s.ready, s.in_flight) == (0, 0)
    })
    .await;
    again.kill().expect("SIGKILL");
    again.wait().expect("reap");
    let lost = N as usize - handled(&file).len();
    assert_eq!(
        lost, 0,
        "lost = {lost}; {held} were pending at the kill; {stats:?}"
    );
    eprintln!("restart: {held} pending at the kill, {before} handled before, lost = {lost}");
    bus.shutdown().await.unwrap();
    cleanup(&q);
    let _ = std::fs::remove_file(&file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_consumer_claims_a_dead_consumers_entries() {
    init_tracing();
    let q = unique_queue("crash-claim");
    let file = record_file(&q);
    let mut config = config_on(SHARED_URL);
    config.redis.claim_idle = Duration::from_secs(1);
    let bus = Bus::connect(config).await.expect("connect");
    push_all(&bus, &q).await;

    let held = kill_mid_handling(&q, &unique_queue("crash-dead"), &file).await;
    assert!(
        held > 0,
        "the child was killed holding nothing: the test proves nothing"
    );

    // A different consumer: the dead one's entries come through XAUTOCLAIM.
    let opts = ListenerOptions::default().with_concurrency(16);
    let listener = bus
        .add_listener_with(&q, opts, recorder(&file))
        .await
        .expect("add_listener");
    eventually("every message handled", RECOVERY, || async {
        handled(&file).len() == N as usize
    })
    .await;
    let stats = stats_until(&bus, &q, "all acknowledged", |s| {
        (s.ready, s.in_flight) == (0, 0)
    })
    .await;
    let lost = N as usize - handled(&file).len();
    assert_eq!(
        lost, 0,
        "lost = {lost}; {held} were pending at the kill; {stats:?}"
    );
    eprintln!("claim: {held} pending at the kill, lost = {lost}");
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
    cleanup(&q);
    let _ = std::fs::remove_file(&file);
}
