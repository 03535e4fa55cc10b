//! The push deadline of a direct push (its `XADD` awaited in the caller's
//! task): from a tokio runtime built with I/O only, whose deadline is kept
//! by a clock on the bus's arbiter, and from an actix thread, which sets
//! it as its connection's reply timeout. Against a hung Redis (a private
//! server, SIGSTOPped; never the shared one) such a push and such a batch
//! must end with `Error::Timeout` around `queue.push_timeout`, not hang
//! and not panic.

use std::future::Future;
use std::pin::Pin;
use std::process::Command;
use std::time::{Duration, Instant};

use actorbus::{Bus, Config, Error, MessageId};

use crate::support::redis::{config_on, PrivateRedis};
use crate::support::{init_tracing, unique_queue, LIMIT};

const PUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends `signal` to the process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Thaws the server however the test ends, so that its drop can stop it.
struct Thaw(u32);

impl Drop for Thaw {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

#[test]
fn pushes_without_timers_time_out_on_a_hung_redis() {
    hung_redis_case(false, |pushes| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        rt.block_on(pushes)
    });
}

/// The same from a thread of an actix system, whose pushes go over that
/// thread's own shared connection once it is made (over the pusher's
/// arbiter's until then): either must time out.
#[test]
fn pushes_from_actix_time_out_on_a_hung_redis() {
    hung_redis_case(true, |pushes| actix::System::new().block_on(pushes));
}

/// What a push and a batch to a hung Redis ended with, and how long each took.
type Outcome = (
    Result<MessageId, Error>,
    Duration,
    Result<Vec<MessageId>, Error>,
    Duration,
);

/// The pushes of [`hung_redis_case`], run by `run` on a thread of their own.
type Run = fn(Pin<Box<dyn Future<Output = Outcome>>>) -> Outcome;

/// Runs [`pushes_to_a_hung_redis`] on a thread of its own, on the runtime
/// `run` builds there, and checks that the push and the batch to the
/// SIGSTOPped server each ended with a timeout, not before
/// `queue.push_timeout`, and within the test's limit.
fn hung_redis_case(timers: bool, run: Run) {
    init_tracing();
    let redis = PrivateRedis::start();
    let pid = redis.pid().expect("the private redis runs");
    let mut config = config_on(&redis.url());
    config.queue.push_timeout = PUSH_TIMEOUT;
    let (report, outcome) = std::sync::mpsc::channel();
    let thaw = Thaw(pid);
    std::thread::spawn(move || {
        let pushes = pushes_to_a_hung_redis(config, pid, timers);
        let _ = report.send(run(Box::pin(pushes)));
    });
    let (pushed, push_took, batched, batch_took) = outcome
        .recv_timeout(LIMIT)
        .expect("the pushes to a hung redis ended within the test's limit");
    drop(thaw);
    assert!(
        matches!(pushed, Err(Error::Timeout)),
        "a push to a hung redis: {pushed:?}"
    );
    assert!(
        push_took >= PUSH_TIMEOUT,
        "the push gave up before its deadline: {push_took:?}"
    );
    assert!(
        matches!(batched, Err(Error::Timeout | Error::PartialBatch { .. })),
        "a batch to a hung redis: {batched:?}"
    );
    assert!(
        batch_took >= PUSH_TIMEOUT,
        "the batch gave up before its deadline: {batch_took:?}"
    );
}

/// Pushes to a fresh queue, stops the server, then pushes once and pushes
/// a batch of 10. With `timers`, pushes for half a second first, so that
/// this thread's own connection is made before the hang.
async fn pushes_to_a_hung_redis(config: Config, pid: u32, timers: bool) -> Outcome {
    let q = unique_queue("deadline");
    let bus = Bus::connect(config).await.expect("connect");
    // The first push starts the queue's channel; later ones go direct.
    for _ in 0..if timers { 20 } else { 1 } {
        bus.push(&q, b"warm".to_vec())
            .await
            .expect("push before the hang");
        if timers {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    signal(pid, "-STOP");
    let started = Instant::now();
    let pushed = bus.push(&q, b"hung".to_vec()).await;
    let push_took = started.elapsed();
    let started = Instant::now();
    let batched = bus.push_batch(&q, (0..10u8).map(|i| vec![i])).await;
    let batch_took = started.elapsed();
    signal(pid, "-CONT");
    let _ = bus.shutdown().await;
    (pushed, push_took, batched, batch_took)
}
