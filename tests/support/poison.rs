//! A poison message that kills its process, for the broker drivers' fault
//! tests: a child process consumes a queue of one poison and `OTHERS` other
//! messages with default `ListenerOptions`, and calls
//! `std::process::abort()` on the poison. The parent starts it again each
//! time it dies, until the poison is in `<queue>.dead`; then every other
//! message must have been handled, none dead-lettered, and the poison
//! delivered at most `MAX_ATTEMPTS` times.
//!
//! Each broker's test binary has a child test that calls [`child`] with its
//! config, and a test that calls [`run`] with that child's name.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, Instant};

use actorbus::{Bus, Config, Delivery, Error};
use futures_util::future::join_all;

use crate::support::child::{log_appender, logged, spawn_test};
use crate::support::ledger::{tally, Tally};
use crate::support::{index_of, indexed};

/// Messages besides the poison.
pub const OTHERS: u32 = 2_500;
/// `queue.retry.max_attempts` of the child.
pub const MAX_ATTEMPTS: u32 = 5;
/// The poison's payload (an indexed message is 4 bytes).
pub const POISON: &[u8] = b"poison";
/// Where the child finds its queue.
const QUEUE_VAR: &str = "ACTORBUS_POISON_QUEUE";
/// Where the child finds the topic whose group its queue is, if it is one
/// (`<topic>.<group>`): it then joins that group instead.
const TOPIC_VAR: &str = "ACTORBUS_POISON_TOPIC";
/// Where the child logs the index of each message it handled.
const LOG_VAR: &str = "ACTORBUS_POISON_LOG";
/// Where the child logs the attempt of each poison delivery, before it dies.
const POISON_LOG_VAR: &str = "ACTORBUS_POISON_DELIVERIES";
/// The longest one child may run before the poison kills it or everything
/// is done (a correctness bound, never a speed one: it includes a lease).
const PER_CHILD: Duration = Duration::from_secs(180);

/// The child's body: consumes the queue in its environment with
/// `config` (whose `max_attempts` it sets), logging what it handles, and
/// aborts the process on the poison. Returns at once when run as a test
/// of its own (no queue in the environment).
pub fn child(mut config: Config) {
    let (Ok(queue), Ok(log), Ok(poison_log)) = (
        std::env::var(QUEUE_VAR),
        std::env::var(LOG_VAR),
        std::env::var(POISON_LOG_VAR),
    ) else {
        return;
    };
    config.queue.retry.max_attempts = MAX_ATTEMPTS;
    let (handled, poisoned) = (log_appender(&log), log_appender(&poison_log));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let bus = Bus::connect(config).await.expect("the child connects");
        let handler = move |delivery: Delivery| {
            if &delivery.payload()[..] == POISON {
                poisoned(delivery.attempt());
                std::process::abort();
            }
            handled(index_of(&delivery));
            async { Ok(()) }
        };
        let listening = match std::env::var(TOPIC_VAR) {
            Ok(topic) => {
                let group = &queue[topic.len() + 1..];
                bus.add_subscriber(&topic, group, handler).await
            }
            Err(_) => bus.add_listener(&queue, handler).await,
        };
        listening.expect("the child listens");
        std::future::pending::<()>().await;
    });
}

/// What a run showed.
#[derive(Debug)]
pub struct Figures {
    /// Pushes that returned `Ok`: the poison and the others.
    pub pushed: u32,
    /// Other messages handled at least once.
    pub handled: usize,
    /// Other messages never handled.
    pub lost: usize,
    /// Handlings of other messages beyond the first.
    pub duplicates: u32,
    /// Child processes started (each but the last was killed by the poison).
    pub children: u32,
    /// The attempts the poison was handed to a handler as, in order.
    pub poison_attempts: Vec<u32>,
    /// The dead letters: the poison's headers, and any other message.
    pub dead: Vec<Delivery>,
}

/// Pushes `OTHERS` messages to `queue` with the poison amid them, runs the child
/// test `child_test` (with `vars` besides its own) until the poison is in
/// `<queue>.dead` and every other message was handled, and collects what
/// happened. At most `MAX_ATTEMPTS + 1` children are started.
pub async fn run(bus: &Bus, queue: &str, child_test: &str, vars: &[(&str, &OsStr)]) -> Figures {
    run_on(bus, queue, None, child_test, vars).await
}

/// [`run`] on the subscriber group `group` of `topic`: the group is joined
/// (and left idle) first, the messages are published to `topic`, and the
/// child joins the group; the poison must reach `<topic>.<group>.dead`.
pub async fn run_topic(
    bus: &Bus,
    topic: &str,
    group: &str,
    child_test: &str,
    vars: &[(&str, &OsStr)],
) -> Figures {
    let joined = bus
        .add_subscriber(topic, group, |_d: Delivery| async { Ok(()) })
        .await
        .expect("join the group");
    joined.remove().await.expect("leave the group idle");
    let queue = format!("{topic}.{group}");
    let mut all: Vec<(&str, &OsStr)> = vec![(TOPIC_VAR, topic.as_ref())];
    all.extend_from_slice(vars);
    run_on(bus, &queue, Some(topic), child_test, &all).await
}

/// [`run`] on `queue`, the messages published to `topic` when given.
async fn run_on(
    bus: &Bus,
    queue: &str,
    topic: Option<&str>,
    child_test: &str,
    vars: &[(&str, &OsStr)],
) -> Figures {
    let send = |payload: Vec<u8>| async move {
        match topic {
            Some(topic) => bus.publish(topic, payload).await,
            None => bus.push(queue, payload).await,
        }
    };
    let dir = std::env::temp_dir().join(format!("actorbus-{queue}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (log, poison_log) = (dir.join("handled"), dir.join("poison"));
    let mut pushed = 0;
    // Half before the poison (handled, some maybe unacknowledged when it
    // strikes), half after it (prefetched with it, again and again).
    for half in [0..OTHERS / 2, OTHERS / 2..OTHERS] {
        if half.start > 0 {
            send(POISON.to_vec()).await.expect("push the poison");
            pushed += 1;
        }
        for chunk in half.collect::<Vec<_>>().chunks(250) {
            let pushes = join_all(chunk.iter().map(|&i| send(indexed(i)))).await;
            for push in pushes {
                push.expect("push");
                pushed += 1;
            }
        }
    }
    let mut children = 0;
    loop {
        children += 1;
        assert!(
            children <= MAX_ATTEMPTS + 1,
            "the poison killed {} children and is still not dead-lettered; it was handed out as attempts {:?}",
            children - 1,
            logged(&poison_log)
        );
        let mut all: Vec<(&str, &OsStr)> = vec![
            (QUEUE_VAR, queue.as_ref()),
            (LOG_VAR, log.as_os_str()),
            (POISON_LOG_VAR, poison_log.as_os_str()),
        ];
        all.extend_from_slice(vars);
        let mut child = spawn_test(child_test, &all);
        let started = Instant::now();
        let done = loop {
            if child.try_wait().expect("child status").is_some() {
                break false; // The poison killed it: start another.
            }
            if finished(bus, queue, &log).await {
                break true;
            }
            if started.elapsed() > PER_CHILD {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "child {children} neither died nor finished within {PER_CHILD:?}; poison attempts {:?}, handled {}",
                    logged(&poison_log),
                    distinct(&log)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        if done {
            // Let its last acknowledgements go out, then stop it.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
    }
    let Tally { lost, duplicates } = tally(OTHERS, logged(&log));
    let figures = Figures {
        pushed,
        handled: distinct(&log),
        lost: lost.len(),
        duplicates,
        children,
        poison_attempts: logged(&poison_log),
        dead: dead_letters(bus, queue).await,
    };
    let _ = std::fs::remove_dir_all(&dir);
    figures
}

/// Whether the poison reached `<queue>.dead` and every other message was handled.
async fn finished(bus: &Bus, queue: &str, log: &Path) -> bool {
    let dead = bus.stats(queue).await.map_or(0, |s| s.dead);
    dead >= 1 && distinct(log) == OTHERS as usize
}

/// How many different messages `log` holds.
fn distinct(log: &Path) -> usize {
    let mut seen: Vec<u32> = logged(log);
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// Takes every dead letter of `queue`.
async fn dead_letters(bus: &Bus, queue: &str) -> Vec<Delivery> {
    let dead = format!("{queue}.dead");
    let mut out = Vec::new();
    loop {
        match bus.receive(&dead, Duration::from_secs(2)).await {
            Ok(delivery) => out.push(delivery),
            Err(Error::Timeout) => return out,
            Err(error) => panic!("receive from {dead}: {error}"),
        }
    }
}

/// Checks the figures of a run and prints them for the README's table.
pub fn check(driver: &str, figures: &Figures) {
    eprintln!(
        "poison ({driver}): pushed {}, handled {} of {OTHERS}, lost {}, duplicates {}, children {} (restarts after a crash {}), poison handed out as attempts {:?}, dead letters {}",
        figures.pushed,
        figures.handled,
        figures.lost,
        figures.duplicates,
        figures.children,
        figures.children - 1,
        figures.poison_attempts,
        figures.dead.len()
    );
    assert_eq!(figures.pushed, OTHERS + 1);
    assert_eq!(figures.lost, 0, "messages behind the poison were lost");
    let innocent: Vec<_> = figures
        .dead
        .iter()
        .filter(|d| &d.payload()[..] != POISON)
        .map(|d| (index_of(d), d.headers().clone()))
        .collect();
    assert!(
        innocent.is_empty(),
        "innocent messages dead-lettered: {innocent:?}"
    );
    assert_eq!(figures.dead.len(), 1, "the poison is dead-lettered once");
    let poison = &figures.dead[0];
    let error = &poison.headers()["x-error"];
    assert!(
        error.contains("delivery limit reached after"),
        "x-error {error:?}"
    );
    let attempts: u32 = poison.headers()["x-attempts"].parse().expect("x-attempts");
    let deliveries = figures.poison_attempts.len() as u32;
    assert!(
        (1..=MAX_ATTEMPTS).contains(&deliveries),
        "the poison was handed out {deliveries} times: {:?}",
        figures.poison_attempts
    );
    assert_eq!(
        attempts,
        MAX_ATTEMPTS,
        "x-attempts of the poison: {:?}",
        poison.headers()
    );
    // The first redelivery may follow a delivery that was only prefetched:
    // it shows the attempt before it (and is counted all the same); every
    // later one shows its count.
    let expected: Vec<u32> = (1..=deliveries)
        .map(|n| if n == 2 { 1 } else { n })
        .collect();
    assert_eq!(
        figures.poison_attempts, expected,
        "the attempts the poison was handed out as"
    );
    assert_eq!(
        figures.children,
        deliveries + 1,
        "one child per crash, and the last"
    );
}
