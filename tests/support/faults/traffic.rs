//! A producer and a consumer that keep running on one queue while a case hurts the broker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actorbus::{Bus, Delivery, Listener, ListenerOptions};
use tokio::task::JoinHandle;

use super::ledger::{check, report, until_handled, Ledger, Report};
use super::{config, Broker, PUSH_TIMEOUT, SETTLE};
use crate::support::{index_of, indexed, unique_queue};

/// Adds a listener to `queue` that records each index before acknowledging.
pub async fn listen(bus: &Bus, queue: &str, ledger: Arc<Ledger>, work: Duration) -> Listener {
    let opts = ListenerOptions::default().with_concurrency(4);
    bus.add_listener_with(queue, opts, move |d: Delivery| {
        ledger.record_handled(index_of(&d));
        async move {
            tokio::time::sleep(work).await;
            Ok(())
        }
    })
    .await
    .expect("add_listener")
}

/// One push every 20 ms, each bounded from outside by four push timeouts.
pub async fn produce(bus: Bus, queue: String, ledger: Arc<Ledger>, stop: Arc<AtomicBool>) {
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let start = Instant::now();
        let result = tokio::time::timeout(PUSH_TIMEOUT * 4, bus.push(&queue, indexed(i)))
            .await
            .ok()
            .map(|r| r.map(drop));
        ledger.record_push(i, start.elapsed(), result);
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A producer and a consumer, each on a bus of its own, on one queue.
pub struct Traffic {
    /// The producer's bus (the hard-edge case makes its bad calls on it).
    pub bus: Bus,
    consumer: Bus,
    listener: Listener,
    producer: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    ledger: Arc<Ledger>,
    driver: &'static str,
}

impl Traffic {
    /// Connects both buses to `broker` and starts the flow.
    pub async fn start(broker: &dyn Broker, case: &str) -> Traffic {
        let queue = unique_queue(case);
        let consumer = Bus::connect(config(broker)).await.expect("consumer bus");
        let bus = Bus::connect(config(broker)).await.expect("producer bus");
        let ledger = Arc::new(Ledger::default());
        let listener = listen(&consumer, &queue, ledger.clone(), Duration::from_millis(1)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let producer = tokio::spawn(produce(bus.clone(), queue, ledger.clone(), stop.clone()));
        Traffic {
            bus,
            consumer,
            listener,
            producer,
            stop,
            ledger,
            driver: broker.driver(),
        }
    }

    /// Waits (bounded) until `n` more pushes were confirmed and `n` more
    /// messages handled than when called: the flow runs.
    pub async fn progress(&self, n: usize, what: &str) {
        let (pushed, handled) = (self.ledger.confirmed().len(), self.ledger.handled().len());
        let start = Instant::now();
        while self.ledger.confirmed().len() < pushed + n
            || self.ledger.handled().len() < handled + n
        {
            assert!(
                start.elapsed() < SETTLE,
                "the flow did not resume within {SETTLE:?} ({what}): {} pushed, {} handled",
                self.ledger.confirmed().len(),
                self.ledger.handled().len()
            );
            assert!(!self.producer.is_finished(), "the producer ended ({what})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the producer, waits until every confirmed push was handled,
    /// prints the case's line and checks it: no error but `Timeout`, no
    /// push past `push_timeout` + margin, lost 0, duplicates at most `max_duplicates`.
    pub async fn finish(self, case: &str, max_duplicates: u32) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        tokio::time::timeout(PUSH_TIMEOUT * 5, self.producer)
            .await
            .expect("the producer stops")
            .expect("the producer task");
        let confirmed = self.ledger.confirmed();
        until_handled(&self.ledger, &confirmed).await;
        let handled = self.ledger.handled();
        let report = report(
            case,
            self.driver,
            &confirmed,
            &handled,
            *self.ledger.slowest.lock().unwrap(),
            self.ledger.timeouts.load(Ordering::SeqCst),
        );
        let errors = self.ledger.errors.lock().unwrap().clone();
        assert!(
            errors.is_empty(),
            "{case}: pushes failed otherwise than Timeout: {errors:?}"
        );
        self.listener.remove().await.expect("remove the listener");
        for bus in [self.bus, self.consumer] {
            tokio::time::timeout(Duration::from_secs(60), bus.shutdown())
                .await
                .expect("shutdown returns")
                .expect("shutdown after the fault");
        }
        check(case, &report, max_duplicates);
        report
    }
}
