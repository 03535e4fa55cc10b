//! Supervision: a crashed queue actor is restarted with its state (counted in
//! `stats.restarts`): stored, in-flight and delayed messages, listeners, waiting
//! receives and pushes waiting for room all survive the restart.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{
    bounded, fast_config, index_of, indexed, init_tracing, stats_until, unique_queue, Collector,
    LIMIT,
};
use actorbus::{Bus, Config, Delivery, Error, PushOptions};
use tokio::sync::Semaphore;

async fn bus_with(config: Config) -> Bus {
    Bus::connect(config).await.expect("memory bus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_restarts_are_counted_and_lose_no_stored_message() {
    init_tracing();
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash");
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(bus.push(&q, indexed(i)).await.expect("push"));
    }
    assert_eq!(bus.stats(&q).await.unwrap().restarts, 0);

    for crash in 1..=3u64 {
        bounded("crash", LIMIT, actorbus::testing::crash_channel(&bus, &q))
            .await
            .expect("crash hook");
        let s = bus.stats(&q).await.expect("stats after a crash");
        assert_eq!(s.restarts, crash, "one restart per crash: {s:?}");
        assert_eq!(s.ready, 20, "stored messages survive a restart: {s:?}");
    }

    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let got = seen.wait_for(20, LIMIT).await;
    let indexes: Vec<u32> = got.iter().map(index_of).collect();
    assert_eq!(
        indexes,
        (0..20).collect::<Vec<_>>(),
        "all delivered, in order"
    );
    for (d, id) in got.iter().zip(&ids) {
        assert_eq!(d.id(), id);
        assert_eq!(d.attempt(), 1);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 20, "nothing delivered twice");
    assert_eq!(
        bus.stats(&q).await.unwrap().restarts,
        3,
        "delivery does not restart the actor"
    );
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_listeners_attached() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-listener");
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    for i in 0..3 {
        bus.push(&q, indexed(i)).await.unwrap();
    }
    seen.wait_for(3, LIMIT).await;

    actorbus::testing::crash_channel(&bus, &q)
        .await
        .expect("crash hook");
    let s = bus.stats(&q).await.unwrap();
    assert_eq!((s.restarts, s.listeners), (1, 1), "{s:?}");
    for i in 3..6 {
        bus.push(&q, indexed(i)).await.unwrap();
    }
    let got = seen.wait_for(6, LIMIT).await;
    let indexes: Vec<u32> = got.iter().map(index_of).collect();
    assert_eq!(
        indexes,
        [0, 1, 2, 3, 4, 5],
        "the listener attached before the crash still receives"
    );
    assert!(listener.is_running());
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_messages_in_flight_and_their_settlement() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-inflight");
    let gate = Arc::new(Semaphore::new(0));
    let seen: Collector<u32> = Collector::new();
    let (g, s) = (gate.clone(), seen.clone());
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                g.acquire().await.expect("gate").forget();
                s.push(index_of(&d));
                Ok(())
            }
        })
        .await
        .unwrap();
    for i in 0..5 {
        bus.push(&q, indexed(i)).await.unwrap();
    }
    stats_until(&bus, &q, "5 in flight", |s| s.in_flight == 5).await;
    actorbus::testing::crash_channel(&bus, &q)
        .await
        .expect("crash hook");
    let s = bus.stats(&q).await.unwrap();
    assert_eq!(
        (s.in_flight, s.restarts),
        (5, 1),
        "leases survive a restart: {s:?}"
    );

    gate.add_permits(5);
    let got = seen.wait_for(5, LIMIT).await;
    assert_eq!(got, [0, 1, 2, 3, 4]);
    let s = stats_until(&bus, &q, "all settled", |s| s.in_flight == 0).await;
    assert_eq!(
        (s.ready, s.delayed, s.dead),
        (0, 0, 0),
        "acknowledged across the restart: {s:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(seen.len(), 5, "nothing redelivered");
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_delayed_messages_and_their_timer() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-delay");
    // Long enough that a busy machine still reads `stats` before it is due.
    let opts = PushOptions::default().with_delay(Duration::from_secs(3));
    let id = bus.push_with(&q, "later", opts).await.unwrap();
    actorbus::testing::crash_channel(&bus, &q)
        .await
        .expect("crash hook");
    let s = bus.stats(&q).await.unwrap();
    assert_eq!((s.delayed, s.restarts), (1, 1), "{s:?}");
    // Nothing else touches the queue: only a re-armed timer can release it.
    let d = bounded(
        "delayed message after a crash",
        LIMIT,
        bus.receive(&q, LIMIT),
    )
    .await
    .expect("the delayed message is still delivered after a restart");
    assert_eq!(d.id(), &id);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_waiting_receives_and_their_timeouts() {
    let bus = bus_with(fast_config()).await;
    let q = unique_queue("crash-receive");
    let long = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, LIMIT).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    actorbus::testing::crash_channel(&bus, &q)
        .await
        .expect("crash hook");
    let id = bus.push(&q, "for the waiting receive").await.unwrap();
    let d = bounded("receive across a crash", LIMIT, long)
        .await
        .unwrap()
        .expect("receive");
    assert_eq!(d.id(), &id);

    // A short receive that waits across a crash still times out.
    let short = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.receive(&q, Duration::from_millis(300)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    actorbus::testing::crash_channel(&bus, &q)
        .await
        .expect("crash hook");
    let r = bounded("a receive timeout across a crash", LIMIT, short)
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert_eq!(bus.stats(&q).await.unwrap().restarts, 2);
    bus.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_keeps_pushes_waiting_for_room() {
    let mut config = fast_config();
    config.queue.memory.capacity = 1;
    config.queue.push_timeout = Duration::from_secs(20);
    let bus = bus_with(config).await;
    let q = unique_queue("crash-parked");
    let first = bus.push(&q, "first").await.unwrap();
    let parked = {
        let (bus, q) = (bus.clone(), q.clone());
        tokio::spawn(async move { bus.push(&q, "second").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    actorbus::testing::crash_channel(&bus, &q)
        .await
        .expect("crash hook");
    assert_eq!(bus.receive(&q, LIMIT).await.unwrap().id(), &first);
    let second = bounded("a parked push across a crash", LIMIT, parked)
        .await
        .unwrap()
        .expect("the parked push gets room");
    assert_eq!(bus.receive(&q, LIMIT).await.unwrap().id(), &second);
    bus.shutdown().await.unwrap();
}
