//! Shutdown: `Error::Closed` everywhere, `queue.shutdown_timeout`, waiting receives.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actorbus::{Delivery, Error, ListenerOptions, PushOptions};

use super::bus_with;
use crate::support::{bounded, fast_config, unique_queue, BusFactory, Collector, LIMIT};

pub async fn shutdown_refuses_new_work_on_every_clone(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let clone = bus.clone();
    let q = unique_queue("closed");
    bus.push(&q, "before").await.expect("push before shutdown");
    bounded("shutdown", LIMIT, bus.shutdown())
        .await
        .expect("shutdown");

    for b in [&bus, &clone] {
        let closed = |r: &Result<_, Error>| matches!(r, Err(Error::Closed));
        let r = b.push(&q, "after").await;
        assert!(closed(&r), "push after shutdown: {r:?}");
        let r = b.push_with(&q, "after", PushOptions::default()).await;
        assert!(closed(&r), "push_with after shutdown: {r:?}");
        let r = b.push_json(&q, &[1, 2, 3]).await;
        assert!(closed(&r), "push_json after shutdown: {r:?}");
        let r = b.push_default("after").await;
        assert!(closed(&r), "push_default after shutdown: {r:?}");
        let r = b.add_listener(&q, |_d: Delivery| async { Ok(()) }).await;
        assert!(
            matches!(r, Err(Error::Closed)),
            "add_listener after shutdown: {r:?}"
        );
        let r = b
            .add_listener_with(&q, ListenerOptions::default(), |_d: Delivery| async {
                Ok(())
            })
            .await;
        assert!(
            matches!(r, Err(Error::Closed)),
            "add_listener_with after shutdown: {r:?}"
        );
        let r = bounded(
            "receive after shutdown",
            LIMIT,
            b.receive(&q, Duration::from_millis(50)),
        )
        .await;
        assert!(
            matches!(r, Err(Error::Closed)),
            "receive after shutdown: {r:?}"
        );
        let r = b.stats(&q).await;
        assert!(
            matches!(r, Err(Error::Closed)),
            "stats after shutdown: {r:?}"
        );
        let r = b.purge(&q).await;
        assert!(
            matches!(r, Err(Error::Closed)),
            "purge after shutdown: {r:?}"
        );
        let r = b.remove(&q).await;
        assert!(
            matches!(r, Err(Error::Closed)),
            "remove after shutdown: {r:?}"
        );
    }
    assert_eq!(Error::Closed.to_string(), "bus is shut down");
}

pub async fn shutdown_twice_is_ok(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let clone = bus.clone();
    bounded("shutdown", LIMIT, bus.shutdown())
        .await
        .expect("first shutdown");
    bounded("shutdown", LIMIT, bus.shutdown())
        .await
        .expect("second shutdown");
    bounded("shutdown", LIMIT, clone.shutdown())
        .await
        .expect("shutdown of a clone");
    // Concurrent shutdowns of a fresh bus are fine too.
    let bus = bus_with(factory, fast_config()).await;
    let twin = bus.clone();
    let (a, b) = tokio::join!(bus.shutdown(), twin.shutdown());
    a.expect("concurrent shutdown");
    b.expect("concurrent shutdown");
}

pub async fn shutdown_waits_for_handler_in_flight(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("drain");
    let started: Collector<()> = Collector::new();
    let done = Arc::new(AtomicBool::new(false));
    let (s, dn) = (started.clone(), done.clone());
    let _listener = bus
        .add_listener(&q, move |_d: Delivery| {
            let (s, dn) = (s.clone(), dn.clone());
            async move {
                s.push(());
                tokio::time::sleep(Duration::from_millis(200)).await;
                dn.store(true, Ordering::SeqCst);
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    bus.push(&q, "slow").await.expect("push");
    started.wait_for(1, LIMIT).await;
    bounded("shutdown", LIMIT, bus.shutdown())
        .await
        .expect("shutdown");
    assert!(
        done.load(Ordering::SeqCst),
        "shutdown returned before the handler in flight finished"
    );
}

pub async fn shutdown_releases_a_waiting_receive(factory: &BusFactory) {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("receive-shutdown");
    let waiting = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, Duration::from_secs(600)).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    bounded("shutdown", LIMIT, bus.shutdown())
        .await
        .expect("shutdown");
    let r = bounded("a receive waiting across shutdown", LIMIT, waiting)
        .await
        .unwrap();
    assert!(
        matches!(r, Err(Error::Closed)),
        "a receive pending at shutdown ends with Closed: {r:?}"
    );
}

pub async fn shutdown_gives_up_on_a_stuck_handler_after_shutdown_timeout(factory: &BusFactory) {
    let mut config = fast_config();
    config.queue.shutdown_timeout = Duration::from_millis(300);
    let bus = bus_with(factory, config).await;
    let q = unique_queue("stuck");
    let started: Collector<()> = Collector::new();
    let s = started.clone();
    let _listener = bus
        .add_listener(&q, move |_d: Delivery| {
            s.push(());
            std::future::pending::<actorbus::HandlerResult>()
        })
        .await
        .expect("add_listener");
    bus.push(&q, "never finishes").await.expect("push");
    started.wait_for(1, LIMIT).await;
    let start = Instant::now();
    bounded("shutdown with a stuck handler", LIMIT, bus.shutdown())
        .await
        .expect("shutdown returns Ok after its timeout");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "shutdown did not wait for the handler in flight ({:?})",
        start.elapsed()
    );
    assert!(matches!(bus.push(&q, "x").await, Err(Error::Closed)));
}
