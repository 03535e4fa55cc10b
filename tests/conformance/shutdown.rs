//! Shutdown: `Error::Closed` everywhere, `queue.shutdown_timeout`, waiting receives.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actorbus::{Delivery, Error, ListenerOptions, PushOptions};

use tokio::sync::Semaphore;

use super::{bus_with, shutdown};
use crate::support::{bounded, fast_config, indexed, unique_queue, BusFactory, Collector, LIMIT};

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

/// actix-web stops its whole actix system on SIGTERM or Ctrl-C, before the
/// application calls `bus.shutdown()`: the bus lives in a system of its own,
/// so the shutdown still finishes the handler in hand and keeps the rest.
pub async fn shutdown_after_the_callers_system_stopped_still_drains(factory: &BusFactory) {
    let q = unique_queue("shutdown-system-gone");
    let gate = Arc::new(Semaphore::new(0));
    let (started, done) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let bus = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let system = actix::System::new();
                let bus = system.block_on(async {
                    let bus = bus_with(factory, fast_config()).await;
                    let (g, s, d) = (gate.clone(), started.clone(), done.clone());
                    bus.add_listener(&q, move |_d: Delivery| {
                        let (gate, started, done) = (g.clone(), s.clone(), d.clone());
                        async move {
                            started.fetch_add(1, Ordering::SeqCst);
                            gate.acquire().await.map_err(|e| e.to_string())?.forget();
                            done.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        }
                    })
                    .await
                    .expect("add_listener");
                    for i in 0..4 {
                        bus.push(&q, indexed(i)).await.expect("push");
                    }
                    crate::support::eventually("a handler in hand", LIMIT, || {
                        let started = started.clone();
                        async move { started.load(Ordering::SeqCst) == 1 }
                    })
                    .await;
                    bus
                });
                // What actix-web does on a signal: the application's system stops.
                actix::System::current().stop();
                system
                    .run()
                    .expect("the application's system stops cleanly");
                bus
            })
            .join()
            .expect("the application's thread")
    });
    let shutting = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.shutdown().await })
    };
    gate.add_permits(100);
    bounded("shutdown after the system stopped", LIMIT, shutting)
        .await
        .expect("the shutdown task")
        .expect("shutdown drains although the caller's system is gone");
    let (started, done) = (started.load(Ordering::SeqCst), done.load(Ordering::SeqCst));
    assert!(done >= 1, "the handler in hand finished");
    assert_eq!(started, done, "no handler was cut off");
    // On a broker the rest is still there for the next process, in order
    // (on memory it ended with the bus, as everything the bus holds does).
    let fresh = bus_with(factory, fast_config()).await;
    if fresh.config().queue.driver != actorbus::DriverKind::Memory {
        let mut left = Vec::new();
        while let Ok(d) = fresh.receive(&q, Duration::from_secs(2)).await {
            left.push(crate::support::index_of(&d));
        }
        left.sort_unstable();
        let expected: Vec<u32> = (done as u32..4).collect();
        assert_eq!(left, expected, "the rest were handed back, not lost");
    }
    shutdown(fresh).await;
}
