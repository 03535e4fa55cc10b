//! Redis restart: a private `redis-server` (appendonly, its own
//! directory and port; never the shared one) is SIGKILLed and restarted while
//! 10,000 messages flow. Every push that returned `Ok` is handled, and no
//! push hangs past `queue.push_timeout`.

use crate::support::redis as redis_support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{bounded, eventually, index_of, indexed, init_tracing, unique_queue, LIMIT};
use actorbus::{Delivery, Error, ListenerOptions};
use redis_support::{bus_on, config_on, PrivateRedis};

const N: u32 = 10_000;
const PUSHERS: u32 = 16;
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_push_is_handled_across_a_redis_restart() {
    restarts_under_flow().await;
}

/// The same with the pushers on an actix system's thread, where each push
/// goes over that thread's own shared connection: it breaks with the
/// server and must be re-made, as the arbiters' are.
#[actix::test]
async fn every_confirmed_push_from_actix_is_handled_across_a_redis_restart() {
    restarts_under_flow().await;
}

/// Runs `control` on the server from a blocking thread, so that the
/// pushers, which may share the test's thread, keep running meanwhile.
async fn control(
    mut redis: PrivateRedis,
    control: impl FnOnce(&mut PrivateRedis) + Send + 'static,
) -> PrivateRedis {
    tokio::task::spawn_blocking(move || {
        control(&mut redis);
        redis
    })
    .await
    .expect("server control")
}

async fn restarts_under_flow() {
    init_tracing();
    let redis = PrivateRedis::start();
    let mut config = config_on(&redis.url());
    config.queue.push_timeout = PUSH_TIMEOUT;
    let bus = bus_on(&redis.url(), Some(config)).await;
    assert!(
        bus.stats("probe").await.unwrap().durable,
        "appendonly yes is durable"
    );
    let q = unique_queue("restart");

    let handled: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let seen = handled.clone();
    let opts = ListenerOptions::default().with_concurrency(16);
    let listener = bus
        .add_listener_with(&q, opts, move |d: Delivery| {
            seen.lock().unwrap().insert(index_of(&d));
            async { Ok(()) }
        })
        .await
        .expect("add_listener");

    // Pushers, each pushing its share one by one and noting what was confirmed.
    let confirmed: Arc<Mutex<HashSet<u32>>> = Arc::default();
    let slowest: Arc<Mutex<Duration>> = Arc::default();
    let mut pushers = Vec::new();
    for p in 0..PUSHERS {
        let (bus, q, confirmed, slowest) =
            (bus.clone(), q.clone(), confirmed.clone(), slowest.clone());
        pushers.push(tokio::spawn(async move {
            let mut failed = 0;
            for i in (p..N).step_by(PUSHERS as usize) {
                let start = Instant::now();
                let pushed = bounded(
                    "a push during the outage",
                    PUSH_TIMEOUT + LIMIT,
                    bus.push(&q, indexed(i)),
                )
                .await;
                let took = start.elapsed();
                {
                    let mut worst = slowest.lock().unwrap();
                    *worst = (*worst).max(took);
                }
                match pushed {
                    Ok(_) => {
                        confirmed.lock().unwrap().insert(i);
                    }
                    Err(Error::Timeout) => failed += 1,
                    Err(e) => panic!("push failed with {e:?}, not Timeout"),
                }
                // Spread the pushes so the outage falls in the middle.
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            failed
        }));
    }

    eventually("a third handled", LIMIT, || async {
        handled.lock().unwrap().len() >= (N / 3) as usize
    })
    .await;
    let at_kill = handled.lock().unwrap().len();
    let redis = control(redis, |redis| {
        redis.kill();
        std::thread::sleep(Duration::from_millis(1500));
        redis.restart();
    })
    .await;

    let mut timeouts = 0;
    for pusher in pushers {
        timeouts += pusher.await.expect("pusher");
    }
    let confirmed = confirmed.lock().unwrap().clone();
    eventually(
        "every confirmed push handled",
        Duration::from_secs(120),
        || async {
            let handled = handled.lock().unwrap();
            confirmed.iter().all(|i| handled.contains(i))
        },
    )
    .await;
    let slowest = *slowest.lock().unwrap();
    let missing = confirmed
        .iter()
        .filter(|i| !handled.lock().unwrap().contains(i))
        .count();
    eprintln!(
        "restart: {} confirmed, {timeouts} timed out, {at_kill} handled at the kill, slowest push {slowest:?}, missing {missing}",
        confirmed.len()
    );
    assert_eq!(missing, 0);
    assert_eq!(confirmed.len() + timeouts, N as usize);
    assert!(
        slowest <= PUSH_TIMEOUT + Duration::from_secs(2),
        "a push took {slowest:?}, past push_timeout {PUSH_TIMEOUT:?}"
    );

    // A longer outage: a push gives up at push_timeout with Error::Timeout,
    // and the bus works again once Redis is back.
    let redis = control(redis, PrivateRedis::kill).await;
    let start = Instant::now();
    let pushed = bounded(
        "a push with Redis down",
        PUSH_TIMEOUT + LIMIT,
        bus.push(&q, indexed(N)),
    )
    .await;
    let took = start.elapsed();
    assert!(matches!(pushed, Err(Error::Timeout)), "{pushed:?}");
    assert!(
        took >= PUSH_TIMEOUT && took <= PUSH_TIMEOUT + Duration::from_secs(2),
        "gave up after {took:?}"
    );
    let redis = control(redis, PrivateRedis::restart).await;
    bus.push(&q, indexed(N + 1))
        .await
        .expect("push after the restart");
    eventually("the listener resumed", LIMIT, || async {
        handled.lock().unwrap().contains(&(N + 1))
    })
    .await;
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    // The server stops only now, after the bus shut down against it.
    drop(redis);
}
