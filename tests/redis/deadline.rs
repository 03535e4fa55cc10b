//! The push deadline of a caller without timers: a push from a tokio
//! runtime built with I/O only takes the direct path (its `XADD` awaited in
//! the caller's task), whose deadline is kept by a clock on the bus's
//! arbiter. Against a hung Redis (a private server, SIGSTOPped; never the
//! shared one) such a push and such a batch must end with `Error::Timeout`
//! around `queue.push_timeout`, not hang and not panic.

use std::process::Command;
use std::time::{Duration, Instant};

use actorbus::{Bus, Error};

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
    init_tracing();
    let redis = PrivateRedis::start();
    let pid = redis.pid().expect("the private redis runs");
    let mut config = config_on(&redis.url());
    config.queue.push_timeout = PUSH_TIMEOUT;
    let q = unique_queue("deadline");
    let (report, outcome) = std::sync::mpsc::channel();
    let thaw = Thaw(pid);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let bus = Bus::connect(config).await.expect("connect");
            // The first push starts the queue's channel; later ones go direct.
            bus.push(&q, b"warm".to_vec())
                .await
                .expect("push before the hang");
            signal(pid, "-STOP");
            let started = Instant::now();
            let pushed = bus.push(&q, b"hung".to_vec()).await;
            let push_took = started.elapsed();
            let started = Instant::now();
            let batch = (0..10u8).map(|i| vec![i]);
            let batched = bus.push_batch(&q, batch).await;
            let batch_took = started.elapsed();
            signal(pid, "-CONT");
            let _ = bus.shutdown().await;
            let _ = report.send((pushed, push_took, batched, batch_took));
        });
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
