//! Waiting for handlers: a counter of handled messages that wakes the row
//! when its target count is reached, and the pause between rows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How long any single wait may take before the bench gives up on a row.
const ROW_TIMEOUT: Duration = Duration::from_secs(120);

/// Counts handled messages; wakes the waiter when a target count is reached.
#[derive(Clone, Default)]
pub(crate) struct Sink {
    count: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Sink {
    pub(crate) fn hit(&self) {
        let count = self.count.fetch_add(1, Ordering::AcqRel) + 1;
        if count == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }

    /// How many messages were handled so far.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Arms the sink for `more` messages beyond those already counted.
    /// Call before producing them.
    pub(crate) fn expect(&self, more: usize) -> usize {
        let target = self.count.load(Ordering::Acquire) + more;
        self.target.store(target, Ordering::Release);
        target
    }

    pub(crate) async fn wait(&self, target: usize) {
        let deadline = Instant::now() + ROW_TIMEOUT;
        while self.count.load(Ordering::Acquire) < target {
            assert!(
                Instant::now() < deadline,
                "timed out: {} of {target} handled",
                self.count.load(Ordering::Acquire)
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), self.done.notified()).await;
        }
    }
}

/// Lets stopped arbiters finish exiting before the next row starts.
pub(crate) async fn settle_down() {
    tokio::time::sleep(Duration::from_millis(100)).await;
}
