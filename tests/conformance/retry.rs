//! At-least-once and retries: errors, panics, the doubling backoff, dead letters.

use std::future::Future;
use std::time::{Duration, Instant};

use actorbus::{Config, Delivery, HandlerResult, PushOptions};

use super::{bus_with, settle_time, shutdown};
use crate::support::{
    fast_config, index_of, indexed, stats_until, unique_queue, BusFactory, Collector, LIMIT,
};

pub async fn handler_error_is_retried_with_rising_attempt(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("retry");
    let seen: Collector<(String, u32)> = Collector::new();
    let s = seen.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            s.push((d.id().to_string(), d.attempt()));
            let attempt = d.attempt();
            async move {
                if attempt < 3 {
                    Err(format!("failing attempt {attempt}").into())
                } else {
                    Ok(())
                }
            }
        })
        .await
        .expect("add_listener");
    let id = bus.push(&q, "flaky").await.expect("push");

    let got = seen.wait_for(3, LIMIT).await;
    let attempts: Vec<u32> = got.iter().map(|(_, a)| *a).collect();
    assert_eq!(attempts, [1, 2, 3], "attempt rises by one per retry");
    assert!(
        got.iter().all(|(i, _)| *i == id.to_string()),
        "the id stays the same across retries"
    );
    settle_time().await;
    assert_eq!(
        seen.len(),
        3,
        "Ok on the third attempt acknowledges: no fourth call"
    );
    let stats = stats_until(&bus, &q, "acknowledged", |s| {
        s.ready + s.in_flight + s.delayed == 0
    })
    .await;
    assert_eq!(
        stats.dead, 0,
        "a message that succeeded is not dead-lettered"
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn panic_before_future_is_retried(factory: &BusFactory) {
    panic_is_retried_once(factory, "panic-sync", |attempt| {
        if attempt == 1 {
            panic!("handler panicked before returning its future");
        }
        async { Ok(()) }
    })
    .await;
}

pub async fn panic_inside_future_is_retried(factory: &BusFactory) {
    panic_is_retried_once(factory, "panic-async", |attempt| async move {
        tokio::task::yield_now().await;
        if attempt == 1 {
            panic!("handler panicked inside its future");
        }
        Ok(())
    })
    .await;
}

/// Pushes five messages to a listener that records each delivery, then runs
/// `handler` with its attempt (which panics on the first attempt, before or
/// inside its future): each message is retried once, then acknowledged, and
/// the listener survives the panics.
async fn panic_is_retried_once<F, Fut>(factory: &BusFactory, prefix: &str, handler: F)
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue(prefix);
    let seen: Collector<(u32, u32)> = Collector::new();
    let s = seen.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            s.push((index_of(&d), d.attempt()));
            handler(d.attempt())
        })
        .await
        .expect("add_listener");
    for i in 0..5 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let got = seen.wait_for(10, LIMIT).await;
    for i in 0..5 {
        let mut attempts: Vec<u32> = got
            .iter()
            .filter(|(n, _)| *n == i)
            .map(|(_, a)| *a)
            .collect();
        attempts.sort_unstable();
        assert_eq!(
            attempts,
            [1, 2],
            "message {i}: a panic is retried once, then acknowledged"
        );
    }
    settle_time().await;
    assert_eq!(seen.len(), 10);
    let stats = stats_until(&bus, &q, "all acknowledged", |s| {
        s.ready + s.in_flight + s.delayed == 0
    })
    .await;
    assert_eq!(stats.dead, 0);
    assert_eq!(
        stats.listeners, 1,
        "a panicking handler does not kill its listener"
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

fn poison_config() -> Config {
    let mut config = fast_config();
    config.queue.retry.max_attempts = 3;
    config.queue.retry.backoff = Duration::from_millis(5);
    config.queue.retry.max_backoff = Duration::from_millis(20);
    config
}

pub async fn poison_message_is_dead_lettered_with_headers(factory: &BusFactory) {
    let bus = bus_with(factory, poison_config()).await;
    let q = unique_queue("poison");
    let dead = format!("{q}.dead");
    let attempts: Collector<u32> = Collector::new();
    let a = attempts.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            a.push(d.attempt());
            async { Err("poisoned: cannot parse order".into()) }
        })
        .await
        .expect("add_listener");
    let before = std::time::SystemTime::now();
    let opts = PushOptions::default().with_header("tenant", "acme");
    let id = bus.push_with(&q, "bad data", opts).await.expect("push");

    let stats = stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    assert_eq!(
        stats.ready + stats.in_flight + stats.delayed,
        0,
        "the message left {q}: {stats:?}"
    );
    assert_eq!(
        attempts.snapshot(),
        [1, 2, 3],
        "handled max_attempts times, then dead-lettered"
    );
    settle_time().await;
    assert_eq!(attempts.len(), 3, "no attempt after the last one");

    let d = bus
        .receive(&dead, LIMIT)
        .await
        .expect("receive from the dead-letter queue");
    assert_eq!(d.id(), &id, "a dead letter keeps its id");
    assert_eq!(d.queue(), dead);
    assert_eq!(d.as_str().unwrap(), "bad data");
    let h = d.headers();
    assert!(
        h.get("x-error")
            .is_some_and(|e| e.contains("poisoned: cannot parse order")),
        "x-error names the handler's error: {h:?}"
    );
    assert_eq!(h.get("x-attempts").map(String::as_str), Some("3"), "{h:?}");
    let failed_at = h
        .get("x-failed-at")
        .unwrap_or_else(|| panic!("no x-failed-at: {h:?}"));
    let failed_at = humantime::parse_rfc3339(failed_at)
        .unwrap_or_else(|e| panic!("x-failed-at {failed_at:?} is not RFC 3339: {e}"));
    assert!(
        failed_at + Duration::from_secs(1) >= before,
        "x-failed-at {failed_at:?} is before the push"
    );
    assert_eq!(
        h.get("tenant").map(String::as_str),
        Some("acme"),
        "user headers are kept"
    );

    assert_eq!(
        bus.stats(&q).await.unwrap().dead,
        0,
        "receive took the dead letter"
    );
    listener.remove().await.expect("remove");
    // The dead-letter headers belong to that message only: a fresh message
    // without headers still arrives without any.
    let plain = bus.push(&q, "clean").await.expect("push");
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &plain);
    assert!(
        d.headers().is_empty(),
        "headers leaked into a fresh message: {:?}",
        d.headers()
    );
    shutdown(bus).await;
}

pub async fn panicking_poison_message_names_the_panic(factory: &BusFactory) {
    let mut config = poison_config();
    config.queue.retry.max_attempts = 2;
    let bus = bus_with(factory, config).await;
    let q = unique_queue("poison-panic");
    let listener = bus
        .add_listener(&q, |d: Delivery| async move {
            if d.attempt() > 0 {
                panic!("kaboom in handler");
            }
            Ok(())
        })
        .await
        .expect("add_listener");
    let id = bus.push(&q, "explodes").await.expect("push");
    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    let d = bus
        .receive(&format!("{q}.dead"), LIMIT)
        .await
        .expect("dead letter");
    assert_eq!(d.id(), &id);
    assert!(
        d.headers()
            .get("x-error")
            .is_some_and(|e| e.contains("kaboom in handler")),
        "x-error names the panic: {:?}",
        d.headers()
    );
    assert_eq!(d.headers().get("x-attempts").map(String::as_str), Some("2"));
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn dead_letter_queue_is_an_ordinary_queue(factory: &BusFactory) {
    let mut config = poison_config();
    config.queue.retry.max_attempts = 1;
    let bus = bus_with(factory, config).await;
    let q = unique_queue("dlq");
    let dead = format!("{q}.dead");
    let failing = bus
        .add_listener(&q, |_d: Delivery| async { Err("always fails".into()) })
        .await
        .expect("add_listener");

    // Counted and purged.
    for i in 0..3 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    stats_until(&bus, &q, "dead == 3", |s| s.dead == 3).await;
    assert_eq!(
        bus.stats(&dead).await.unwrap().ready,
        3,
        "<q>.dead counts its own ready messages"
    );
    assert_eq!(bus.purge(&dead).await.expect("purge dead"), 3);
    assert_eq!(bus.stats(&q).await.unwrap().dead, 0);

    // Listened to.
    let seen = Collector::new();
    let dead_listener = bus
        .add_listener(&dead, seen.handler())
        .await
        .expect("listen to <q>.dead");
    let id = bus.push(&q, indexed(7)).await.expect("push");
    let got = seen.wait_for(1, LIMIT).await;
    assert_eq!(got[0].id(), &id);
    assert_eq!(index_of(&got[0]), 7);
    assert_eq!(got[0].queue(), dead);
    stats_until(&bus, &q, "the dead letter acknowledged", |s| s.dead == 0).await;
    dead_listener.remove().await.expect("remove");

    // Pushed to directly and received from, like any queue.
    let direct = bus
        .push(&dead, "pushed by hand")
        .await
        .expect("push to <q>.dead");
    assert_eq!(bus.stats(&q).await.unwrap().dead, 1);
    let d = bus.receive(&dead, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &direct);
    failing.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn retries_wait_for_the_doubling_backoff(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.retry.backoff = Duration::from_millis(100);
    config.queue.retry.max_backoff = Duration::from_secs(10);
    config.queue.retry.max_attempts = 3;
    let bus = bus_with(factory, config).await;
    let q = unique_queue("backoff");
    let times: Collector<(u32, Instant)> = Collector::new();
    let t = times.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            t.push((d.attempt(), Instant::now()));
            async { Err("again".into()) }
        })
        .await
        .expect("add_listener");
    bus.push(&q, "slowly").await.expect("push");
    let got = times.wait_for(3, LIMIT).await;
    let attempts: Vec<u32> = got.iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let first_gap = got[1].1 - got[0].1;
    let second_gap = got[2].1 - got[1].1;
    assert!(
        first_gap >= Duration::from_millis(100),
        "retried after {first_gap:?}, before the 100 ms backoff"
    );
    assert!(
        second_gap >= Duration::from_millis(200),
        "second retry after {second_gap:?}, before the doubled 200 ms backoff"
    );
    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn dead_letter_queue_of_a_200_byte_queue_is_reachable(factory: &BusFactory) {
    let mut config = poison_config();
    config.queue.retry.max_attempts = 1;
    let bus = bus_with(factory, config).await;
    // The longest valid name: 200 bytes.
    let prefix = unique_queue("long");
    let q = format!("{prefix}{}", "x".repeat(200 - prefix.len()));
    assert_eq!(q.len(), 200);
    let dead = format!("{q}.dead");
    let listener = bus
        .add_listener(&q, |_d: Delivery| async { Err("fails".into()) })
        .await
        .expect("a 200-byte queue name is valid");
    let id = bus.push(&q, "to the dead letters").await.expect("push");
    stats_until(&bus, &q, "dead == 1", |s| s.dead == 1).await;
    listener.remove().await.expect("remove");
    // `<queue>.dead` is an ordinary queue: it can be received from,
    // counted and purged -- also when `<queue>` has the longest valid name.
    let d = bus.receive(&dead, LIMIT).await.unwrap_or_else(|e| {
        panic!("cannot receive from the dead-letter queue of a 200-byte queue: {e}")
    });
    assert_eq!(d.id(), &id);
    assert_eq!(bus.stats(&dead).await.expect("stats of <q>.dead").ready, 0);
    assert_eq!(bus.purge(&dead).await.expect("purge of <q>.dead"), 0);
    shutdown(bus).await;
}
