//! Competing consumers and concurrency, FIFO order for one listener.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actorbus::{Delivery, ListenerOptions};

use super::{bus_with, settle_time, shutdown};
use crate::support::{
    bounded, eventually, fast_config, index_of, indexed, stats_until, unique_queue, BusFactory,
    Collector, LIMIT,
};

pub async fn competing_consumers_each_message_exactly_once(factory: &BusFactory) {
    const N: u32 = 10_000;
    const LISTENERS: usize = 4;
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("compete");
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..N).map(|_| AtomicU32::new(0)).collect());
    let per_listener: Arc<Vec<AtomicUsize>> =
        Arc::new((0..LISTENERS).map(|_| AtomicUsize::new(0)).collect());
    let total = Arc::new(AtomicUsize::new(0));

    let mut listeners = Vec::new();
    for l in 0..LISTENERS {
        let (counts, per_listener, total) = (counts.clone(), per_listener.clone(), total.clone());
        let listener = bus
            .add_listener(&q, move |d: Delivery| {
                counts[index_of(&d) as usize].fetch_add(1, Ordering::SeqCst);
                per_listener[l].fetch_add(1, Ordering::SeqCst);
                total.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            })
            .await
            .expect("add_listener");
        listeners.push(listener);
    }
    assert_eq!(bus.stats(&q).await.unwrap().listeners, LISTENERS as u64);

    // Four producers at once, so pushes and deliveries interleave.
    let mut producers = Vec::new();
    for p in 0..4u32 {
        let (bus, q) = (bus.clone(), q.clone());
        producers.push(tokio::spawn(async move {
            for i in (p..N).step_by(4) {
                bus.push(&q, indexed(i)).await.expect("push");
            }
        }));
    }
    // 10 000 confirmed pushes: on a busy 2-core machine a broker can take
    // well over `LIMIT` for them, so the bound (against a hang) is wider.
    for producer in producers {
        bounded("producers", Duration::from_secs(300), producer)
            .await
            .expect("producer task");
    }
    eventually(
        "all 10 000 messages handled",
        Duration::from_secs(120),
        || {
            let total = total.clone();
            async move { total.load(Ordering::SeqCst) >= N as usize }
        },
    )
    .await;
    settle_time().await;

    let missing: Vec<u32> = (0..N)
        .filter(|&i| counts[i as usize].load(Ordering::SeqCst) == 0)
        .collect();
    let duplicated: Vec<(u32, u32)> = (0..N)
        .map(|i| (i, counts[i as usize].load(Ordering::SeqCst)))
        .filter(|&(_, c)| c > 1)
        .collect();
    assert!(
        missing.is_empty(),
        "{} messages never handled, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        duplicated.is_empty(),
        "{} messages handled more than once, e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(10)]
    );
    assert_eq!(total.load(Ordering::SeqCst), N as usize);
    let shares: Vec<usize> = per_listener
        .iter()
        .map(|c| c.load(Ordering::SeqCst))
        .collect();
    assert!(
        shares.iter().filter(|&&c| c > 0).count() > 1,
        "competing listeners should share the work, got {shares:?}"
    );
    let stats = stats_until(&bus, &q, "nothing left", |s| {
        s.ready == 0 && s.in_flight == 0
    })
    .await;
    assert_eq!(stats.dead, 0);
    for listener in listeners {
        listener.remove().await.expect("remove");
    }
    shutdown(bus).await;
}

pub async fn fifo_for_one_listener_with_concurrency_one(factory: &BusFactory) {
    const N: u32 = 1000;
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("fifo");
    // Half waits in the queue before the listener comes, half arrives while it runs.
    for i in 0..N / 2 {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let order: Collector<u32> = Collector::new();
    let o = order.clone();
    let opts = ListenerOptions::default().with_concurrency(1);
    let listener = bus
        .add_listener_with(&q, opts, move |d: Delivery| {
            o.push(index_of(&d));
            async { Ok(()) }
        })
        .await
        .expect("add_listener_with");
    for i in N / 2..N {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let got = order.wait_for(N as usize, LIMIT).await;
    let expected: Vec<u32> = (0..N).collect();
    if got != expected {
        let first_bad = got.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "not FIFO: first difference at position {first_bad:?} (len {})",
            got.len()
        );
    }
    listener.remove().await.expect("remove");
    shutdown(bus).await;
}

async fn max_running(factory: &BusFactory, opts: ListenerOptions, messages: u32) -> usize {
    let bus = bus_with(factory, fast_config()).await;
    let q = unique_queue("concurrency");
    let running = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let done: Collector<u32> = Collector::new();
    for i in 0..messages {
        bus.push(&q, indexed(i)).await.expect("push");
    }
    let (r, m, dn) = (running.clone(), max.clone(), done.clone());
    let listener = bus
        .add_listener_with(&q, opts, move |d: Delivery| {
            let (r, m, dn) = (r.clone(), m.clone(), dn.clone());
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                dn.push(index_of(&d));
                Ok(())
            }
        })
        .await
        .expect("add_listener_with");
    let got = done.wait_for(messages as usize, LIMIT).await;
    let distinct: HashSet<u32> = got.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        messages as usize,
        "every message handled once"
    );
    listener.remove().await.expect("remove");
    shutdown(bus).await;
    max.load(Ordering::SeqCst)
}

pub async fn concurrency_bounds_handlers_running_at_once(factory: &BusFactory) {
    let max = max_running(factory, ListenerOptions::default().with_concurrency(8), 64).await;
    assert!(max <= 8, "{max} handlers ran at once with concurrency 8");
    assert_eq!(
        max, 8,
        "with 64 slow messages waiting, concurrency 8 should run 8 at once"
    );
}

pub async fn default_concurrency_is_one(factory: &BusFactory) {
    let max = max_running(factory, ListenerOptions::default(), 6).await;
    assert_eq!(max, 1, "the default concurrency is 1");
}
