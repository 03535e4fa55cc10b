//! Supervision, the same on every driver: a panic in the channel actor of a
//! queue restarts it (counted in `stats.restarts`), and nothing it holds is
//! lost — stored messages, listeners, deliveries in flight.
//!
//! The faults come from `actorbus::testing`: `crash_channel` panics now,
//! `panic_next` makes one named handler panic the next time it runs (after
//! its work, so what is checked is that the restart keeps and resumes
//! everything).

use std::collections::BTreeSet;

use actorbus::testing::{crash_channel, panic_next};
use actorbus::{Bus, Error, ListenerOptions};

use super::{bus_with, shutdown};
use crate::support::{
    bounded, fast_config, index_of, indexed, stats_until, unique_queue, BusFactory, Collector,
    LIMIT,
};

/// Waits until the channel of `q` has restarted `n` times.
async fn restarted(bus: &Bus, q: &str, n: u64) {
    stats_until(bus, q, &format!("{n} restarts"), |s| s.restarts >= n).await;
}

/// The distinct indexes seen, failing the test unless they are exactly `0..n`.
fn all_of(seen: &Collector, n: u32) -> BTreeSet<u32> {
    let got: BTreeSet<u32> = seen.snapshot().iter().map(index_of).collect();
    assert_eq!(got, (0..n).collect(), "every message arrives, none lost");
    got
}

pub async fn crash_keeps_stored_messages_and_listeners(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("sup-crash");
    for i in 0..10 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    for crash in 1..=2u64 {
        bounded("crash", LIMIT, crash_channel(&bus, &q))
            .await
            .expect("crash hook");
        restarted(&bus, &q, crash).await;
        let s = stats_until(&bus, &q, "10 ready", |s| s.ready == 10).await;
        assert_eq!(s.restarts, crash, "one restart per crash: {s:?}");
    }

    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    seen.wait_for(10, LIMIT).await;
    bounded("crash", LIMIT, crash_channel(&bus, &q))
        .await
        .expect("crash hook");
    restarted(&bus, &q, 3).await;
    for i in 10..20 {
        bus.push(&q, indexed(i)).await.expect("push after a crash");
    }
    seen.wait_for(20, LIMIT).await;
    all_of(&seen, 20);
    let s = stats_until(&bus, &q, "all settled", |s| {
        s.ready == 0 && s.in_flight == 0
    })
    .await;
    assert_eq!((s.listeners, s.dead), (1, 0), "{s:?}");
    assert!(listener.is_running(), "the listener survives the restarts");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn panic_in_any_handler_restarts_the_channel_and_loses_nothing(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("sup-handlers");
    let fault = |handler: &'static str| {
        let (bus, q) = (bus.clone(), q.clone());
        async move {
            bounded("panic_next", LIMIT, panic_next(&bus, &q, handler))
                .await
                .expect("fault hook");
        }
    };
    let seen = Collector::new();

    // A panic while a listener joins: it stays joined.
    fault("subscribe").await;
    let first = seen.listen(&bus, &q).await;
    restarted(&bus, &q, 1).await;
    for i in 0..10 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    seen.wait_for(10, LIMIT).await;

    // A panic while verdicts come back: later messages still flow.
    fault("settle").await;
    for i in 10..20 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    seen.wait_for(20, LIMIT).await;
    restarted(&bus, &q, 2).await;

    // A panic while counting: the call may lose its answer to the restart,
    // never its queue.
    fault("stats").await;
    let counted = bounded("stats", LIMIT, bus.stats(&q)).await;
    assert!(
        matches!(counted, Ok(_) | Err(Error::Closed)),
        "stats answers or reports the restart: {counted:?}"
    );
    restarted(&bus, &q, 3).await;

    // Panics while listeners leave: the next listener gets what was pushed.
    fault("unsubscribe").await;
    first.remove().await.expect("remove");
    restarted(&bus, &q, 4).await;
    let second = seen.listen(&bus, &q).await;
    fault("detached").await;
    second.remove().await.expect("remove");
    restarted(&bus, &q, 5).await;

    for i in 20..30 {
        bus.push(&q, indexed(i))
            .await
            .expect("push while nobody listens");
    }
    let third = seen.listen(&bus, &q).await;
    let got = seen.wait_for(30, LIMIT).await;
    all_of(&seen, 30);
    // At-least-once: a restart may redeliver, never lose.
    assert!(got.len() >= 30);
    let s = stats_until(&bus, &q, "all settled", |s| {
        s.ready == 0 && s.in_flight == 0
    })
    .await;
    assert_eq!((s.restarts, s.dead, s.listeners), (5, 0, 1), "{s:?}");
    third.remove().await.expect("remove");
    shutdown(bus).await;
}

pub async fn crash_while_a_listener_works_loses_nothing(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("sup-busy");
    let seen = Collector::new();
    let opts = ListenerOptions::default().with_concurrency(4);
    let listener = bus
        .add_listener_with(&q, opts, seen.handler())
        .await
        .expect("add_listener");
    let mut crashes = 0;
    for i in 0..40 {
        bus.push(&q, indexed(i)).await.expect("push");
        if i % 7 == 0 {
            bounded("crash", LIMIT, crash_channel(&bus, &q))
                .await
                .expect("crash hook");
            crashes += 1;
        }
    }
    crate::support::eventually("every message handled", LIMIT, || {
        let seen = seen.clone();
        async move {
            seen.snapshot()
                .iter()
                .map(index_of)
                .collect::<BTreeSet<_>>()
                .len()
                == 40
        }
    })
    .await;
    all_of(&seen, 40);
    let s = stats_until(&bus, &q, "all settled", |s| {
        s.ready == 0 && s.in_flight == 0
    })
    .await;
    assert_eq!((s.restarts, s.listeners, s.dead), (crashes, 1, 0), "{s:?}");
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}
