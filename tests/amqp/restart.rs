//! Broker restart (reconnection) on a PRIVATE RabbitMQ node (its
//! own name, ports and data directory; the shared node is never touched):
//! while 10 000 messages flow, RabbitMQ is restarted with `stop_app` /
//! `start_app`, then the whole node with a full stop and start. Every push
//! that returned `Ok` is handled, no push hangs past `queue.push_timeout`,
//! and the listeners resume on their old handles.

use std::future::ready;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{amqp, eventually, index_of, indexed, rabbit_node, unique_queue, Collector};
use actorbus::{Bus, Delivery, Error, ListenerOptions};
use rabbit_node::RabbitNode;

const N: u32 = 10_000;
const PUSHERS: u32 = 8;
const PUSH_TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_lose_no_confirmed_push() {
    crate::support::init_tracing();
    assert!(RabbitNode::available(), "rabbitmq-server is not installed");
    let node = tokio::task::spawn_blocking(|| RabbitNode::start("restart"))
        .await
        .unwrap();
    let mut config = amqp::config_at(&node.url());
    config.queue.push_timeout = PUSH_TIMEOUT;
    let bus = Bus::connect(config)
        .await
        .expect("connect to the private node");
    let q = unique_queue("restart");

    // Two listeners; what they handle is counted per message.
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..=N).map(|_| AtomicU32::new(0)).collect());
    let handled = Arc::new(AtomicUsize::new(0));
    let mut listeners = Vec::new();
    for _ in 0..2 {
        let (counts, handled) = (counts.clone(), handled.clone());
        let opts = ListenerOptions::default().with_concurrency(8);
        let listener = bus
            .add_listener_with(&q, opts, move |d: Delivery| {
                counts[index_of(&d) as usize].fetch_add(1, Ordering::SeqCst);
                handled.fetch_add(1, Ordering::SeqCst);
                async {
                    tokio::time::sleep(Duration::from_micros(300)).await;
                    Ok(())
                }
            })
            .await
            .expect("add_listener");
        listeners.push(listener);
    }

    // Pushers: each push either returns Ok (then it must be handled) or
    // fails, and never takes much longer than push_timeout.
    let confirmed: Collector<u32> = Collector::new();
    let failed = Arc::new(AtomicUsize::new(0));
    let pushed = Arc::new(AtomicUsize::new(0));
    let mut pushers = Vec::new();
    for p in 0..PUSHERS {
        let (bus, q, confirmed, failed, pushed) = (
            bus.clone(),
            q.clone(),
            confirmed.clone(),
            failed.clone(),
            pushed.clone(),
        );
        pushers.push(tokio::spawn(async move {
            for i in (p..N).step_by(PUSHERS as usize) {
                let start = Instant::now();
                let r = tokio::time::timeout(PUSH_TIMEOUT * 2, bus.push(&q, indexed(i)))
                    .await
                    .unwrap_or_else(|_| panic!("push {i} hung past twice push_timeout"));
                assert!(
                    start.elapsed() < PUSH_TIMEOUT + Duration::from_secs(5),
                    "push {i} took {:?}",
                    start.elapsed()
                );
                match r {
                    Ok(_) => confirmed.push(i),
                    Err(Error::Timeout) => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => panic!("push {i}: unexpected error {e}"),
                }
                pushed.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }));
    }

    let h = handled.clone();
    eventually("2000 handled", Duration::from_secs(60), || {
        ready(h.load(Ordering::SeqCst) >= 2000)
    })
    .await;
    tracing::info!("stop_app");
    let node = tokio::task::spawn_blocking(move || {
        node.stop_app();
        std::thread::sleep(Duration::from_secs(2));
        node.start_app();
        node
    })
    .await
    .unwrap();
    let mut node = node;

    let p = pushed.clone();
    // A pusher that ended early panicked: stop waiting and show why.
    eventually("6000 pushed", Duration::from_secs(120), || {
        ready(p.load(Ordering::SeqCst) >= 6000 || pushers.iter().any(|t| t.is_finished()))
    })
    .await;
    if p.load(Ordering::SeqCst) < 6000 {
        for pusher in pushers {
            pusher.await.expect("pusher");
        }
        unreachable!("a pusher ended before 6000 pushes without panicking");
    }
    tracing::info!("full stop");
    node = tokio::task::spawn_blocking(move || {
        node.stop();
        std::thread::sleep(Duration::from_secs(1));
        node.start_server();
        node
    })
    .await
    .unwrap();

    for pusher in pushers {
        pusher.await.expect("pusher");
    }
    let ok = confirmed.snapshot();
    let c = counts.clone();
    let ok2 = ok.clone();
    let all = tokio::time::timeout(
        Duration::from_secs(120),
        eventually(
            "every confirmed push handled",
            Duration::from_secs(120),
            move || {
                ready(
                    ok2.iter()
                        .all(|&i| c[i as usize].load(Ordering::SeqCst) > 0),
                )
            },
        ),
    )
    .await;
    let lost: Vec<u32> = ok
        .iter()
        .copied()
        .filter(|&i| counts[i as usize].load(Ordering::SeqCst) == 0)
        .collect();
    let duplicates: u32 = counts
        .iter()
        .map(|c| c.load(Ordering::SeqCst).saturating_sub(1))
        .sum();
    eprintln!(
        "broker restart: {} pushes confirmed, {} timed out, {} handled, lost {}, duplicates {duplicates}",
        ok.len(),
        failed.load(Ordering::SeqCst),
        handled.load(Ordering::SeqCst),
        lost.len()
    );
    assert!(
        all.is_ok() && lost.is_empty(),
        "lost {} confirmed pushes, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(
        ok.len() > N as usize / 2,
        "most pushes should have been confirmed"
    );

    // The listeners resumed on their old handles.
    for listener in &listeners {
        assert!(
            listener.is_running(),
            "a listener stopped across the restarts"
        );
    }
    assert_eq!(bus.stats(&q).await.expect("stats").listeners, 2);
    bus.push(&q, indexed(N))
        .await
        .expect("push after the restarts");
    let c = counts.clone();
    eventually(
        "the last message handled by the old listeners",
        Duration::from_secs(30),
        move || ready(c[N as usize].load(Ordering::SeqCst) > 0),
    )
    .await;
    for listener in listeners {
        listener.remove().await.expect("remove");
    }
    bus.shutdown().await.expect("shutdown");
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .unwrap();
}

/// While the broker is down, a push waits `queue.push_timeout` and fails
/// with `Error::Timeout` (nothing hangs, nothing is reported stored); once
/// the broker is back, the same bus pushes and consumes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_during_an_outage_time_out_then_work_again() {
    crate::support::init_tracing();
    assert!(RabbitNode::available(), "rabbitmq-server is not installed");
    let node = tokio::task::spawn_blocking(|| RabbitNode::start("outage"))
        .await
        .unwrap();
    let mut config = amqp::config_at(&node.url());
    config.queue.push_timeout = Duration::from_secs(1);
    let bus = Bus::connect(config)
        .await
        .expect("connect to the private node");
    let q = unique_queue("outage");
    bus.push(&q, "before")
        .await
        .expect("push before the outage");

    let mut node = tokio::task::spawn_blocking(move || {
        let mut node = node;
        node.stop();
        node
    })
    .await
    .unwrap();
    let start = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), bus.push(&q, "during"))
        .await
        .expect("a push during an outage hung");
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "gave up early: {:?}",
        start.elapsed()
    );

    node = tokio::task::spawn_blocking(move || {
        node.start_server();
        node
    })
    .await
    .unwrap();
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    // The driver reconnects with backoff; pushes succeed again once it did.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        match bus.push(&q, "after").await {
            Ok(id) => break id,
            Err(Error::Timeout) if Instant::now() < deadline => continue,
            Err(e) => panic!("push after the outage: {e}"),
        }
    };
    let got = seen.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(
        got[0].as_str().unwrap(),
        "before",
        "the durable message survived"
    );
    assert!(got.iter().any(|d| d.id() == &after));
    assert!(
        got.iter().all(|d| d.as_str().unwrap() != "during"),
        "the timed-out push was stored"
    );
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    tokio::task::spawn_blocking(move || drop(node))
        .await
        .unwrap();
}
