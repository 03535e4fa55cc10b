//! A steady flow of indexed messages through one queue while a test breaks
//! the broker: 8 pushers, two listeners of concurrency 8, and the checks
//! every outage test makes (lost = 0 for every push that returned `Ok`,
//! pushes fail only with `Timeout` and within `push_timeout`, listeners
//! resume on their old handles).

#![allow(dead_code, unreachable_pub)]

use std::future::ready;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actorbus::{Bus, Delivery, Error, Listener, ListenerOptions};
use tokio::task::JoinHandle;

use crate::support::{eventually, index_of, indexed, ledger, Collector};

const PUSHERS: u32 = 8;

/// A running flow of `n` messages into `queue`.
pub struct Flow {
    /// The queue.
    pub queue: String,
    n: u32,
    push_timeout: Duration,
    /// Handlings per index (`n` itself is the last check's message).
    counts: Arc<Vec<AtomicU32>>,
    handled: Arc<AtomicUsize>,
    listeners: Vec<Listener>,
    confirmed: Collector<u32>,
    failed: Arc<AtomicUsize>,
    pushed: Arc<AtomicUsize>,
    slowest: Arc<Mutex<Duration>>,
    pushers: Vec<JoinHandle<()>>,
}

impl Flow {
    /// Attaches the listeners and starts the pushers.
    pub async fn start(bus: &Bus, queue: &str, n: u32, push_timeout: Duration) -> Flow {
        let counts: Arc<Vec<AtomicU32>> = Arc::new((0..=n).map(|_| AtomicU32::new(0)).collect());
        let handled = Arc::new(AtomicUsize::new(0));
        let mut listeners = Vec::new();
        for _ in 0..2 {
            let (counts, handled) = (counts.clone(), handled.clone());
            let opts = ListenerOptions::default().with_concurrency(8);
            let listener = bus
                .add_listener_with(queue, opts, move |d: Delivery| {
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
        let mut flow = Flow {
            queue: queue.to_owned(),
            n,
            push_timeout,
            counts,
            handled,
            listeners,
            confirmed: Collector::new(),
            failed: Arc::default(),
            pushed: Arc::default(),
            slowest: Arc::default(),
            pushers: Vec::new(),
        };
        for p in 0..PUSHERS {
            flow.pushers.push(flow.pusher(bus.clone(), p));
        }
        flow
    }

    /// Pushes every `PUSHERS`-th index from `first`: each push either
    /// returns `Ok` (then it must be handled) or fails with `Timeout`, and
    /// never takes much longer than `push_timeout`.
    fn pusher(&self, bus: Bus, first: u32) -> JoinHandle<()> {
        let (q, confirmed, failed, pushed, slowest, n, limit) = (
            self.queue.clone(),
            self.confirmed.clone(),
            self.failed.clone(),
            self.pushed.clone(),
            self.slowest.clone(),
            self.n,
            self.push_timeout,
        );
        tokio::spawn(async move {
            for i in (first..n).step_by(PUSHERS as usize) {
                let start = Instant::now();
                let r = tokio::time::timeout(limit * 2, bus.push(&q, indexed(i)))
                    .await
                    .unwrap_or_else(|_| panic!("push {i} hung past twice push_timeout"));
                let took = start.elapsed();
                assert!(
                    took < limit + Duration::from_secs(5),
                    "push {i} took {took:?}"
                );
                if let Ok(mut s) = slowest.lock() {
                    *s = (*s).max(took);
                }
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
        })
    }

    /// Waits until `k` deliveries were handled.
    pub async fn until_handled(&self, k: usize, limit: Duration) {
        let h = self.handled.clone();
        eventually(&format!("{k} handled"), limit, || {
            ready(h.load(Ordering::SeqCst) >= k)
        })
        .await;
    }

    /// Waits until `k` pushes returned; a pusher that ended early panicked,
    /// and its panic fails the test here.
    pub async fn until_pushed(&mut self, k: usize, limit: Duration) {
        let (p, pushers) = (self.pushed.clone(), &self.pushers);
        eventually(&format!("{k} pushed"), limit, || {
            ready(p.load(Ordering::SeqCst) >= k || pushers.iter().any(|t| t.is_finished()))
        })
        .await;
        if p.load(Ordering::SeqCst) < k {
            for pusher in self.pushers.drain(..) {
                pusher.await.expect("pusher");
            }
            unreachable!("a pusher ended before {k} pushes without panicking");
        }
    }

    /// Ends the flow: every pusher done, every confirmed push handled
    /// (within `limit`), the figures printed as `what`, the listeners still
    /// on their old handles and handling a last push; then removed.
    /// Returns the number of duplicates.
    pub async fn finish(self, bus: &Bus, what: &str, limit: Duration) -> u32 {
        for pusher in self.pushers {
            pusher.await.expect("pusher");
        }
        let ok = self.confirmed.snapshot();
        let (c, ok2) = (self.counts.clone(), ok.clone());
        let all = tokio::time::timeout(
            limit,
            eventually("every confirmed push handled", limit, move || {
                ready(
                    ok2.iter()
                        .all(|&i| c[i as usize].load(Ordering::SeqCst) > 0),
                )
            }),
        )
        .await;
        let counts = &self.counts;
        let handled_ids = (0..self.n).flat_map(|i| {
            std::iter::repeat_n(i, counts[i as usize].load(Ordering::SeqCst) as usize)
        });
        let tally = ledger::tally(self.n, handled_ids);
        let lost: Vec<u32> = ok
            .iter()
            .copied()
            .filter(|&i| counts[i as usize].load(Ordering::SeqCst) == 0)
            .collect();
        eprintln!(
            "{what}: {} pushes confirmed, {} timed out (slowest push {:?}), {} handled, lost {}, duplicates {}",
            ok.len(),
            self.failed.load(Ordering::SeqCst),
            *self.slowest.lock().unwrap(),
            self.handled.load(Ordering::SeqCst),
            lost.len(),
            tally.duplicates
        );
        assert!(
            all.is_ok() && lost.is_empty(),
            "lost {} confirmed pushes, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        );
        assert!(
            ok.len() > self.n as usize / 2,
            "most pushes should be confirmed"
        );

        for listener in &self.listeners {
            assert!(
                listener.is_running(),
                "a listener stopped across the outage"
            );
        }
        assert_eq!(bus.stats(&self.queue).await.expect("stats").listeners, 2);
        bus.push(&self.queue, indexed(self.n))
            .await
            .expect("push after the outage");
        let (c, n) = (self.counts.clone(), self.n as usize);
        eventually(
            "the last message handled by the old listeners",
            Duration::from_secs(60),
            move || ready(c[n].load(Ordering::SeqCst) > 0),
        )
        .await;
        for listener in self.listeners {
            listener.remove().await.expect("remove");
        }
        tally.duplicates
    }
}
