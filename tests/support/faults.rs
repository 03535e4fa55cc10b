//! The fault suite, shared by tests/amqp/faults.rs and tests/redis/faults.rs:
//! each case runs against a PRIVATE broker (never the shared ones) while a
//! producer keeps pushing and a consumer keeps handling, and keeps a ledger:
//! every push that returned `Ok`, every handled index. Lost must be 0,
//! duplicates are counted and bounded, a push may fail only with
//! `Error::Timeout` and never takes much longer than `queue.push_timeout`.
//! Each case prints one line (case, driver, pushed, handled, lost,
//! duplicates, slowest push): the README's "Faults we test" table.
//!
//! The cases run one at a time ([`serial`]): they hurt brokers and the
//! machine, and their timings would disturb each other.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actorbus::{Bus, Config, Delivery, Error, Listener, ListenerOptions, PushOptions};
use tokio::task::JoinHandle;

use crate::support::child::spawn_test;
use crate::support::firewall::Cut;
use crate::support::{index_of, indexed, unique_queue};

/// `queue.push_timeout` of every case.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// How much longer than `push_timeout` a push may take (a busy machine).
const MARGIN: Duration = Duration::from_secs(5);
/// `amqp.prefetch` of the cases: what one lost connection may redeliver.
pub const PREFETCH: u16 = 16;
/// `redis.claim_idle` of the cases: how soon a lost acknowledgement is redelivered.
const CLAIM_IDLE: Duration = Duration::from_secs(5);
/// Bound of every wait for the suite to catch up after a fault.
const SETTLE: Duration = Duration::from_secs(180);

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held for the whole of a case: one case at a time per test binary.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A private broker a case may cut, stop and flap.
pub trait Broker: Sync {
    /// `amqp` or `redis`.
    fn driver(&self) -> &'static str;
    /// The driver's test config on this broker.
    fn base_config(&self) -> Config;
    /// The `ACTORBUS_*` variables that point a process at this broker.
    fn env(&self) -> Vec<(&'static str, String)>;
    /// Its client port on 127.0.0.1.
    fn port(&self) -> u16;
    /// The OS process to SIGSTOP.
    fn pid(&self) -> u32;
    /// Drops every client connection from the server side.
    fn drop_clients(&self);
}

/// The config of every case on `broker`: its variables over the defaults,
/// `queue.push_timeout` = [`PUSH_TIMEOUT`], `amqp.heartbeat = 5s`,
/// `amqp.prefetch` = [`PREFETCH`], `redis.claim_idle` = [`CLAIM_IDLE`].
pub fn config(broker: &dyn Broker) -> Config {
    let mut config = broker.base_config();
    config.queue.push_timeout = PUSH_TIMEOUT;
    config.queue.shutdown_timeout = Duration::from_secs(10);
    config.amqp.heartbeat = Duration::from_secs(5);
    config.amqp.prefetch = PREFETCH;
    config.redis.claim_idle = CLAIM_IDLE;
    config
}

#[cfg(feature = "amqp")]
impl Broker for crate::support::rabbit_node::RabbitNode {
    fn driver(&self) -> &'static str {
        "amqp"
    }
    fn base_config(&self) -> Config {
        crate::support::amqp::config_at(&self.url())
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ACTORBUS_QUEUE__DRIVER", "amqp".into()),
            ("ACTORBUS_AMQP__URL", self.url()),
        ]
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn pid(&self) -> u32 {
        self.beam_pid()
    }
    fn drop_clients(&self) {
        self.close_all_connections();
    }
}

#[cfg(feature = "redis")]
impl Broker for crate::support::redis::PrivateRedis {
    fn driver(&self) -> &'static str {
        "redis"
    }
    fn base_config(&self) -> Config {
        crate::support::redis::config_on(&self.url())
    }
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ACTORBUS_QUEUE__DRIVER", "redis".into()),
            ("ACTORBUS_REDIS__URL", self.url()),
        ]
    }
    fn port(&self) -> u16 {
        self.port
    }
    fn pid(&self) -> u32 {
        self.pid().expect("the private redis runs")
    }
    fn drop_clients(&self) {
        crate::support::redis::cli_on(self.port, &["CLIENT", "KILL", "TYPE", "normal"]);
    }
}

/// What a case pushed and handled.
#[derive(Default)]
pub struct Ledger {
    confirmed: Mutex<Vec<u32>>,
    handled: Mutex<Vec<u32>>,
    timeouts: AtomicU32,
    errors: Mutex<Vec<String>>,
    slowest: Mutex<Duration>,
}

impl Ledger {
    fn record_push(&self, i: u32, took: Duration, result: Option<actorbus::Result<()>>) {
        {
            let mut slowest = self.slowest.lock().unwrap();
            *slowest = (*slowest).max(took);
        }
        match result {
            Some(Ok(())) => self.confirmed.lock().unwrap().push(i),
            Some(Err(Error::Timeout)) => {
                self.timeouts.fetch_add(1, Ordering::SeqCst);
            }
            Some(Err(e)) => self.errors.lock().unwrap().push(format!("push {i}: {e}")),
            None => self
                .errors
                .lock()
                .unwrap()
                .push(format!("push {i} hung for {took:?}")),
        }
    }

    fn record_handled(&self, i: u32) {
        self.handled.lock().unwrap().push(i);
    }

    fn confirmed(&self) -> Vec<u32> {
        self.confirmed.lock().unwrap().clone()
    }

    fn handled(&self) -> Vec<u32> {
        self.handled.lock().unwrap().clone()
    }
}

/// Lost (confirmed, never handled) and duplicates (handlings beyond the first).
fn tally(confirmed: &[u32], handled: &[u32]) -> (Vec<u32>, u32) {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    for &i in handled {
        *counts.entry(i).or_default() += 1;
    }
    let lost = confirmed
        .iter()
        .copied()
        .filter(|i| !counts.contains_key(i))
        .collect();
    (lost, counts.values().map(|c| c - 1).sum())
}

/// Waits (bounded by [`SETTLE`]) until every confirmed index was handled.
async fn until_handled(ledger: &Ledger, confirmed: &[u32]) {
    let start = Instant::now();
    while start.elapsed() < SETTLE && !tally(confirmed, &ledger.handled()).0.is_empty() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds a listener to `queue` that records each index before acknowledging.
async fn listen(bus: &Bus, queue: &str, ledger: Arc<Ledger>, work: Duration) -> Listener {
    let opts = ListenerOptions::default().with_concurrency(4);
    bus.add_listener_with(queue, opts, move |d: Delivery| {
        ledger.record_handled(index_of(&d));
        async move {
            tokio::time::sleep(work).await;
            Ok(())
        }
    })
    .await
    .expect("add_listener")
}

/// One push every 20 ms, each bounded from outside by four push timeouts.
async fn produce(bus: Bus, queue: String, ledger: Arc<Ledger>, stop: Arc<AtomicBool>) {
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let start = Instant::now();
        let result = tokio::time::timeout(PUSH_TIMEOUT * 4, bus.push(&queue, indexed(i)))
            .await
            .ok()
            .map(|r| r.map(drop));
        ledger.record_push(i, start.elapsed(), result);
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A producer and a consumer, each on a bus of its own, on one queue.
pub struct Traffic {
    /// The producer's bus (the hard-edge case makes its bad calls on it).
    pub bus: Bus,
    consumer: Bus,
    listener: Listener,
    producer: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    ledger: Arc<Ledger>,
    driver: &'static str,
}

/// One case's figures.
pub struct Report {
    pub pushed: usize,
    pub timeouts: u32,
    pub handled: usize,
    pub lost: usize,
    pub duplicates: u32,
    pub slowest: Duration,
}

impl Traffic {
    /// Connects both buses to `broker` and starts the flow.
    pub async fn start(broker: &dyn Broker, case: &str) -> Traffic {
        let queue = unique_queue(case);
        let consumer = Bus::connect(config(broker)).await.expect("consumer bus");
        let bus = Bus::connect(config(broker)).await.expect("producer bus");
        let ledger = Arc::new(Ledger::default());
        let listener = listen(&consumer, &queue, ledger.clone(), Duration::from_millis(1)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let producer = tokio::spawn(produce(bus.clone(), queue, ledger.clone(), stop.clone()));
        Traffic {
            bus,
            consumer,
            listener,
            producer,
            stop,
            ledger,
            driver: broker.driver(),
        }
    }

    /// Waits (bounded) until `n` more pushes were confirmed and `n` more
    /// messages handled than when called: the flow runs.
    pub async fn progress(&self, n: usize, what: &str) {
        let (pushed, handled) = (self.ledger.confirmed().len(), self.ledger.handled().len());
        let start = Instant::now();
        while self.ledger.confirmed().len() < pushed + n
            || self.ledger.handled().len() < handled + n
        {
            assert!(
                start.elapsed() < SETTLE,
                "the flow did not resume within {SETTLE:?} ({what}): {} pushed, {} handled",
                self.ledger.confirmed().len(),
                self.ledger.handled().len()
            );
            assert!(!self.producer.is_finished(), "the producer ended ({what})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the producer, waits until every confirmed push was handled,
    /// prints the case's line and checks it: no error but `Timeout`, no
    /// push past `push_timeout` + margin, lost 0, duplicates at most `max_duplicates`.
    pub async fn finish(self, case: &str, max_duplicates: u32) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(PUSH_TIMEOUT * 5, self.producer)
            .await
            .expect("the producer stops")
            .expect("the producer task");
        let confirmed = self.ledger.confirmed();
        until_handled(&self.ledger, &confirmed).await;
        let handled = self.ledger.handled();
        let report = report(
            case,
            self.driver,
            &confirmed,
            &handled,
            *self.ledger.slowest.lock().unwrap(),
            self.ledger.timeouts.load(Ordering::SeqCst),
        );
        let errors = self.ledger.errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "{case}: pushes failed otherwise than Timeout: {errors:?}"
        );
        self.listener.remove().await.expect("remove the listener");
        for bus in [self.bus, self.consumer] {
            tokio::time::timeout(Duration::from_secs(60), bus.shutdown())
                .await
                .expect("shutdown returns")
                .expect("shutdown after the fault");
        }
        check(case, &report, max_duplicates);
        report
    }
}

fn report(
    case: &str,
    driver: &str,
    confirmed: &[u32],
    handled: &[u32],
    slowest: Duration,
    timeouts: u32,
) -> Report {
    let (lost, duplicates) = tally(confirmed, handled);
    let report = Report {
        pushed: confirmed.len(),
        timeouts,
        handled: handled.len(),
        lost: lost.len(),
        duplicates,
        slowest,
    };
    eprintln!(
        "fault | {case} | {driver} | pushed {} (timed out {}) | handled {} | lost {} | duplicates {} | slowest push {:.1} s",
        report.pushed,
        report.timeouts,
        report.handled,
        report.lost,
        report.duplicates,
        report.slowest.as_secs_f64()
    );
    assert!(
        lost.is_empty(),
        "{case}: lost {} confirmed pushes, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    report
}

fn check(case: &str, report: &Report, max_duplicates: u32) {
    assert!(
        report.slowest <= PUSH_TIMEOUT + MARGIN,
        "{case}: a push took {:?}, past push_timeout {PUSH_TIMEOUT:?} + {MARGIN:?}",
        report.slowest
    );
    assert!(
        report.duplicates <= max_duplicates,
        "{case}: {} duplicates, more than {max_duplicates}",
        report.duplicates
    );
}

/// SIGCONTs the process again on drop, whatever happens to the case.
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

/// A silent network cut of `length`: iptables drops every packet of the
/// broker's port, both ways. Pushes meanwhile time out; after it, the flow resumes.
pub async fn network_cut(broker: &dyn Broker, length: Duration) {
    let traffic = Traffic::start(broker, "cut").await;
    traffic.progress(50, "before the cut").await;
    let cut = Cut::start(broker.port());
    tokio::time::sleep(length).await;
    cut.end();
    traffic.progress(50, "after the cut").await;
    let case = format!("network cut {} s", length.as_secs());
    let report = traffic.finish(&case, 4 * u32::from(PREFETCH)).await;
    assert!(
        report.timeouts > 0,
        "{case}: no push timed out: was the link cut?"
    );
}

/// The broker hangs: SIGSTOP for `length`, then SIGCONT.
pub async fn hung_broker(broker: &dyn Broker, length: Duration) {
    let traffic = Traffic::start(broker, "hang").await;
    traffic.progress(50, "before the hang").await;
    let pid = broker.pid();
    signal(pid, "-STOP");
    let resume = Resume(pid);
    tokio::time::sleep(length).await;
    drop(resume);
    traffic.progress(50, "after the hang").await;
    let case = format!("hung broker {} s", length.as_secs());
    let report = traffic.finish(&case, 4 * u32::from(PREFETCH)).await;
    assert!(
        report.timeouts > 0,
        "{case}: no push timed out: did the broker hang?"
    );
}

/// The server drops every client connection every 2 s for `length`.
pub async fn connection_flaps(broker: &dyn Broker, length: Duration) {
    let traffic = Traffic::start(broker, "flaps").await;
    traffic.progress(50, "before the flaps").await;
    let start = Instant::now();
    let mut flaps = 0;
    // Every 2 s from start to start: rabbitmqctl itself takes a second or so.
    let mut every = tokio::time::interval(Duration::from_secs(2));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while start.elapsed() < length {
        every.tick().await;
        tokio::task::block_in_place(|| broker.drop_clients());
        flaps += 1;
    }
    traffic.progress(50, "after the flaps").await;
    let case = format!(
        "connection flaps every 2 s for {} s ({flaps})",
        length.as_secs()
    );
    traffic
        .finish(&case, (flaps + 1) * u32::from(PREFETCH))
        .await;
}

const QUEUE_VAR: &str = "ACTORBUS_FAULT_QUEUE";
const LOG_VAR: &str = "ACTORBUS_FAULT_LOG";
const WORK_VAR: &str = "ACTORBUS_FAULT_WORK_MS";
/// Pushing tasks of the producer child.
const CHILD_PUSHERS: u32 = 4;

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
    let mut vars: Vec<(&str, std::ffi::OsString)> = broker
        .env()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    vars.push((QUEUE_VAR, queue.clone().into()));
    vars.push((LOG_VAR, log.clone().into()));
    let refs: Vec<(&str, &std::ffi::OsStr)> =
        vars.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let mut producer = spawn_test(child, &refs);
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
pub async fn slow_handler_with_a_second_process(broker: &dyn Broker, child: &str) {
    const N: u32 = 12;
    let claim_idle = Duration::from_secs(1);
    let work = claim_idle * 3;
    let queue = unique_queue("slow-handler");
    let log = std::env::temp_dir().join(format!("actorbus-{queue}.log"));
    let mut vars: Vec<(&str, std::ffi::OsString)> = broker
        .env()
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
    vars.push(("ACTORBUS_REDIS__CLAIM_IDLE", "1s".into()));
    vars.push((QUEUE_VAR, queue.clone().into()));
    vars.push((LOG_VAR, log.clone().into()));
    vars.push((WORK_VAR, work.as_millis().to_string().into()));
    let refs: Vec<(&str, &std::ffi::OsStr)> =
        vars.iter().map(|(k, v)| (*k, v.as_os_str())).collect();

    let mut config = config(broker);
    config.redis.claim_idle = claim_idle;
    let bus = Bus::connect(config).await.expect("bus");
    let ledger = Arc::new(Ledger::default());
    let listener = listen(&bus, &queue, ledger.clone(), work).await;
    let mut second = spawn_test(child, &refs);
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

/// Inputs at the hard edges, each refused with its typed error (or, for the
/// longest delay, held as long as possible) while an unrelated stream of
/// pushes on the same bus sees no error and no duplicate.
pub async fn hard_edges(broker: &dyn Broker) {
    let traffic = Traffic::start(broker, "edges-stream").await;
    traffic.progress(20, "before the edges").await;
    let bus = traffic.bus.clone();
    let q = unique_queue("edges");

    let forever = PushOptions::default().with_delay(Duration::from_secs(u64::MAX));
    bus.push_with(&q, "later", forever)
        .await
        .expect("the longest delay is held, not refused");
    assert!(
        matches!(
            bus.receive(&q, Duration::from_secs(1)).await,
            Err(Error::Timeout)
        ),
        "a message delayed by u64::MAX seconds was delivered"
    );

    let waiting =
        tokio::time::timeout(Duration::from_secs(2), bus.receive(&q, Duration::MAX)).await;
    assert!(
        waiting.is_err(),
        "receive(Duration::MAX) returned: {waiting:?}"
    );
    let id = bus
        .push(&q, "after")
        .await
        .expect("push after the cancelled receive");
    let got = bus
        .receive(&q, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(got.id(), &id, "the cancelled receive took nothing");

    if broker.driver() == "amqp" {
        let huge = PushOptions::default().with_header("blob", "b".repeat(1024 * 1024));
        let pushed = bus.push_with(&q, "m", huge).await;
        assert!(
            matches!(pushed, Err(Error::InvalidHeader { ref name, .. }) if name == "blob"),
            "1 MiB header: {pushed:?}"
        );
    }
    let attempt = PushOptions::default().with_header("x-attempt", "1");
    let pushed = bus.push_with(&q, "m", attempt).await;
    assert!(
        matches!(pushed, Err(Error::InvalidHeader { .. })),
        "x-attempt: {pushed:?}"
    );
    let pushed = bus.push("X.delayed", "m").await;
    assert!(
        matches!(pushed, Err(Error::InvalidQueueName { .. })),
        "X.delayed: {pushed:?}"
    );

    traffic.progress(20, "after the edges").await;
    let report = traffic.finish("hard-edge inputs beside a stream", 0).await;
    assert_eq!(
        report.timeouts, 0,
        "the stream beside the edges saw a timeout"
    );
}
