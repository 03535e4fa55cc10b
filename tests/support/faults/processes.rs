//! Faults of client processes: a producer SIGKILLed mid-run, and slow handlers beside a second consumer process (redis).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actorbus::{Bus, Config, ListenerOptions};

#[cfg_attr(not(feature = "redis"), allow(unused_imports))]
use super::ledger::{check, report, tally, until_handled, Ledger};
use super::traffic::listen;
use super::{config, Broker, SETTLE};
use crate::support::child::spawn_test;
use crate::support::{index_of, indexed, unique_queue};

const QUEUE_VAR: &str = "ACTORBUS_FAULT_QUEUE";
const LOG_VAR: &str = "ACTORBUS_FAULT_LOG";
const WORK_VAR: &str = "ACTORBUS_FAULT_WORK_MS";
/// Pushing tasks of the producer child.
const CHILD_PUSHERS: u32 = 4;

/// Starts the test `child` of the caller's binary on `broker`'s variables,
/// with the queue, the log and `extra` variables.
fn spawn_child(
    broker: &dyn Broker,
    child: &str,
    queue: &str,
    log: &Path,
    extra: &[(&str, String)],
) -> Child {
    let mut vars: Vec<(&str, OsString)> = broker
        .env()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    vars.push((QUEUE_VAR, queue.into()));
    vars.push((LOG_VAR, log.into()));
    vars.extend(extra.iter().map(|(k, v)| (*k, v.into())));
    let refs: Vec<(&str, &OsStr)> = vars.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    spawn_test(child, &refs)
}

/// The producer child (run by name from [`producer_killed`]): pushes with
/// four tasks and appends `<index> <microseconds>` to its log after each
/// push that returned `Ok`, until it is killed.
pub async fn producer_child() {
    let (Ok(queue), Ok(log)) = (std::env::var(QUEUE_VAR), std::env::var(LOG_VAR)) else {
        return;
    };
    let bus = Bus::connect(Config::from_env().expect("child config"))
        .await
        .expect("child connects");
    let log = Arc::new(Mutex::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("child log"),
    ));
    let mut tasks = Vec::new();
    for t in 0..CHILD_PUSHERS {
        let (bus, queue, log) = (bus.clone(), queue.clone(), log.clone());
        tasks.push(tokio::spawn(async move {
            for i in (t..).step_by(CHILD_PUSHERS as usize) {
                let start = Instant::now();
                bus.push(&queue, indexed(i)).await.expect("child push");
                let line = format!("{i} {}\n", start.elapsed().as_micros());
                log.lock().unwrap().write_all(line.as_bytes()).expect("log");
            }
        }));
    }
    for task in tasks {
        task.await.expect("child pusher");
    }
}

/// What the producer child logged: confirmed indexes and the slowest push.
fn child_log(log: &Path) -> (Vec<u32>, Duration) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut confirmed = Vec::new();
    let mut slowest = Duration::ZERO;
    for line in text.lines() {
        let mut parts = line.split(' ');
        if let (Some(Ok(i)), Some(Ok(us))) = (
            parts.next().map(str::parse::<u32>),
            parts.next().map(str::parse::<u64>),
        ) {
            confirmed.push(i);
            slowest = slowest.max(Duration::from_micros(us));
        }
    }
    (confirmed, slowest)
}

/// A producer process is SIGKILLed mid-run; a fresh consumer then handles
/// every push the producer saw confirmed. `child` is the test that runs
/// [`producer_child`] in the caller's binary.
pub async fn producer_killed(broker: &dyn Broker, child: &str) {
    let queue = unique_queue("producer-kill");
    let log = std::env::temp_dir().join(format!("actorbus-{queue}.log"));
    let mut producer = spawn_child(broker, child, &queue, &log, &[]);
    let start = Instant::now();
    while child_log(&log).0.len() < 1000 {
        assert!(
            start.elapsed() < SETTLE,
            "the producer child confirmed < 1000 pushes"
        );
        assert!(
            producer.try_wait().unwrap().is_none(),
            "the producer child exited"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    producer.kill().expect("SIGKILL the producer");
    producer.wait().unwrap();
    let (confirmed, slowest) = child_log(&log);

    let consumer = Bus::connect(config(broker)).await.expect("consumer bus");
    let ledger = Arc::new(Ledger::default());
    let listener = listen(&consumer, &queue, ledger.clone(), Duration::ZERO).await;
    until_handled(&ledger, &confirmed).await;
    // Whatever else the queue held (pushes the kill cut short) comes too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = report(
        "producer SIGKILL mid-run",
        broker.driver(),
        &confirmed,
        &ledger.handled(),
        slowest,
        0,
    );
    listener.remove().await.expect("remove");
    consumer.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_file(&log);
    check("producer SIGKILL", &report, 0);
}

/// The consumer child of [`slow_handler_with_a_second_process`]: handles
/// the queue with a slow handler, appending each index to its log first.
pub async fn consumer_child() {
    let (Ok(queue), Ok(log), Ok(work)) = (
        std::env::var(QUEUE_VAR),
        std::env::var(LOG_VAR),
        std::env::var(WORK_VAR),
    ) else {
        return;
    };
    let bus = Bus::connect(Config::from_env().expect("child config"))
        .await
        .expect("child connects");
    let append = crate::support::child::log_appender(&log);
    let work = Duration::from_millis(work.parse().expect("work ms"));
    bus.add_listener_with(
        &queue,
        ListenerOptions::default().with_concurrency(2),
        move |d| {
            append(index_of(&d));
            async move {
                tokio::time::sleep(work).await;
                Ok(())
            }
        },
    )
    .await
    .expect("child listens");
    std::future::pending::<()>().await;
}

/// Handlers take longer than `redis.claim_idle` while a second consumer
/// process is alive and idle: the listener keeps what it holds (it
/// refreshes its claim), so nothing is handled twice and nothing lost.
#[cfg(feature = "redis")]
pub async fn slow_handler_with_a_second_process(broker: &dyn Broker, child: &str) {
    const N: u32 = 12;
    let claim_idle = Duration::from_secs(1);
    let work = claim_idle * 3;
    let queue = unique_queue("slow-handler");
    let log = std::env::temp_dir().join(format!("actorbus-{queue}.log"));

    let mut config = config(broker);
    config.redis.claim_idle = claim_idle;
    let bus = Bus::connect(config).await.expect("bus");
    let ledger = Arc::new(Ledger::default());
    let listener = listen(&bus, &queue, ledger.clone(), work).await;
    let extra = [
        ("ACTORBUS_REDIS__CLAIM_IDLE", "1s".to_owned()),
        (WORK_VAR, work.as_millis().to_string()),
    ];
    let mut second = spawn_child(broker, child, &queue, &log, &extra);
    let mut slowest = Duration::ZERO;
    let mut confirmed = Vec::new();
    for i in 0..N {
        let start = Instant::now();
        bus.push(&queue, indexed(i)).await.expect("push");
        slowest = slowest.max(start.elapsed());
        confirmed.push(i);
    }
    let all = || {
        let mut all = ledger.handled();
        all.extend(crate::support::child::logged(&log));
        all
    };
    let start = Instant::now();
    while !tally(&confirmed, &all()).0.is_empty() && start.elapsed() < SETTLE {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Long enough for any claim of a held delivery to show as a duplicate.
    tokio::time::sleep(work * 2).await;
    let _ = second.kill();
    let _ = second.wait();
    let report = report(
        "slow handler 3 s > claim_idle 1 s, second process alive",
        broker.driver(),
        &confirmed,
        &all(),
        slowest,
        0,
    );
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    let _ = std::fs::remove_file(&log);
    check("slow handler", &report, 0);
}
