//! Idle queues: a queue's actor with nothing to do ends after
//! `queue.idle_timeout`, and the queue's next use starts a fresh one, with
//! nothing for the user to do. A supervised restart is counted in
//! `stats.restarts` by one actor only, so a count back at 0 shows a new actor.

use std::time::{Duration, Instant};

use crate::support::{bounded, fast_config, indexed, init_tracing, unique_queue, Collector, LIMIT};
use actorbus::{Bus, Config};

const IDLE: Duration = Duration::from_millis(100);

async fn idle_bus() -> Bus {
    let mut config: Config = fast_config();
    config.queue.idle_timeout = IDLE;
    Bus::connect(config).await.expect("memory bus")
}

/// Crashes `queue`'s actor once, so that `restarts` tells that actor from a new one.
async fn mark(bus: &Bus, queue: &str) {
    bounded("crash", LIMIT, actorbus::testing::crash_channel(bus, queue))
        .await
        .expect("crash hook");
    assert_eq!(bus.stats(queue).await.expect("stats").restarts, 1);
}

/// Waits, asking less often than the idle timeout (a question is a use),
/// until `queue`'s marked actor is gone; false if it never went.
async fn retired(bus: &Bus, queue: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        tokio::time::sleep(IDLE * 5).await;
        if bus.stats(queue).await.expect("stats").restarts == 0 {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_queue_retires_and_comes_back_on_next_use() {
    init_tracing();
    let bus = idle_bus().await;
    let queues: Vec<String> = (0..20).map(|_| unique_queue("idle")).collect();
    for q in &queues {
        bus.push(q, "once").await.expect("push");
        assert_eq!(
            bus.receive(q, LIMIT)
                .await
                .expect("receive")
                .as_str()
                .unwrap(),
            "once"
        );
        mark(&bus, q).await;
    }
    for q in &queues {
        assert!(retired(&bus, q).await, "{q}: an idle queue's actor ended");
    }

    // Every use works as before on the new actor: push, receive, listen.
    let q = &queues[0];
    let id = bus.push(q, "again").await.expect("push after retirement");
    let s = bus.stats(q).await.expect("stats");
    assert_eq!(
        (s.ready, s.restarts),
        (1, 0),
        "a fresh actor holds the new push"
    );
    assert_eq!(bus.receive(q, LIMIT).await.expect("receive").id(), &id);
    let seen = Collector::new();
    let listener = seen.listen(&bus, &queues[1]).await;
    let ids = bus
        .push_batch(&queues[1], (0..10).map(indexed))
        .await
        .expect("batch");
    let got = seen.wait_for(10, LIMIT).await;
    assert_eq!(got.iter().map(|d| d.id().clone()).collect::<Vec<_>>(), ids);
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_with_a_listener_or_a_message_stays() {
    init_tracing();
    let bus = idle_bus().await;
    let (listened, holding, delayed) = (
        unique_queue("kept-listener"),
        unique_queue("kept-msg"),
        unique_queue("kept-delay"),
    );
    let seen = Collector::new();
    let listener = seen.listen(&bus, &listened).await;
    mark(&bus, &listened).await;
    bus.push(&holding, "stay").await.expect("push");
    mark(&bus, &holding).await;
    let later = actorbus::PushOptions::default().with_delay(Duration::from_secs(3600));
    bus.push_with(&delayed, "later", later)
        .await
        .expect("push delayed");
    mark(&bus, &delayed).await;

    // Many idle periods, without a word to them.
    tokio::time::sleep(IDLE * 20).await;
    for q in [&listened, &holding, &delayed] {
        let s = bus.stats(q).await.expect("stats");
        assert_eq!(s.restarts, 1, "{q}: the same actor is still there: {s:?}");
    }
    assert_eq!(bus.stats(&holding).await.unwrap().ready, 1);
    assert_eq!(bus.stats(&delayed).await.unwrap().delayed, 1);
    let id = bus.push(&listened, "to the listener").await.expect("push");
    assert_eq!(seen.wait_for(1, LIMIT).await[0].id(), &id);

    // Once the listener is gone, that queue too retires.
    listener.remove().await.expect("remove");
    assert!(
        retired(&bus, &listened).await,
        "retires once its listener left"
    );
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_topic_group_still_gets_every_publish() {
    init_tracing();
    let bus = idle_bus().await;
    let topic = unique_queue("idle-topic");
    let (idle, busy) = (format!("{topic}.idle"), format!("{topic}.busy"));
    let seen = Collector::new();
    let member = bus
        .add_subscriber(&topic, "busy", seen.handler())
        .await
        .expect("join");
    // The idle group is joined once, then its member leaves: it stays
    // durable, and with nothing to hold its actor retires.
    bus.add_subscriber(&topic, "idle", |_| async { Ok(()) })
        .await
        .expect("join")
        .remove()
        .await
        .expect("leave");
    mark(&bus, &idle).await;
    assert!(
        retired(&bus, &idle).await,
        "the memberless group's actor ended"
    );

    // One publish reaches the group with a member (its channel known) and
    // the retired one (started again on the way).
    let id = bus.publish(&topic, "after").await.expect("publish");
    assert_eq!(seen.wait_for(1, LIMIT).await[0].id(), &id);
    let s = bus.stats(&idle).await.expect("stats");
    assert_eq!(
        (s.ready, s.restarts),
        (1, 0),
        "a fresh actor holds the copy"
    );
    assert_eq!(bus.receive(&idle, LIMIT).await.expect("receive").id(), &id);
    assert_eq!(bus.stats(&busy).await.expect("stats").ready, 0);
    member.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
}
