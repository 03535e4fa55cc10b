//! `Watchdog`: the deadline of a direct push awaited where there may be no timer — a coarse clock that an arbiter ticks only while such pushes wait.
//!
//! A push from outside actix (a plain tokio runtime, which may be built
//! without timers, or no runtime at all) cannot start a timer of its own:
//! tokio panics when asked for one in a runtime without them. Handing each
//! such push to an arbiter to time it costs a task and two thread hops per
//! push (measured: the `redis push-only x64 from #[tokio::main]` row). Here
//! the caller awaits its reply itself, and its deadline is a count of ticks
//! of a clock kept by one task on an arbiter, which has timers. That task
//! runs only while someone waits on the clock, so an idle bus wakes no
//! thread for it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::ArbiterHandle;
use tokio::sync::watch;

/// How often the clock ticks: a deadline is kept to within about two
/// ticks, a small part of any sensible `queue.push_timeout`.
const TICK: Duration = Duration::from_millis(50);

/// A coarse clock for deadlines of callers without a timer.
pub(crate) struct Watchdog {
    /// Ticks so far; every waiter is woken at each one.
    ticks: watch::Sender<u64>,
    /// Waiters registered (each [`Expiry`] until dropped).
    waiting: AtomicUsize,
    /// The ticking task runs (or is being started).
    ticking: AtomicBool,
}

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog {
            ticks: watch::Sender::new(0),
            waiting: AtomicUsize::new(0),
            ticking: AtomicBool::new(false),
        }
    }
}

/// Counts its waiter for as long as it lives.
struct Waiting(Arc<Watchdog>);

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Watchdog {
    /// Resolves no sooner than `limit` from now, and about two ticks after
    /// it at the latest (later only when `arbiter` is too busy to tick),
    /// without a timer in the caller's runtime. The ticks run on
    /// `arbiter`; `None` when it stopped (the bus is shutting down).
    pub(crate) fn expiry(
        self: &Arc<Self>,
        limit: Duration,
        arbiter: &ArbiterHandle,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(self.clone());
        if !self.ticking.swap(true, Ordering::SeqCst) {
            let clock = self.clone();
            if !arbiter.spawn(clock.tick()) {
                self.ticking.store(false, Ordering::SeqCst);
                return None;
            }
        }
        let mut ticks = self.ticks.subscribe();
        // The first tick may come at once: it does not count.
        let due = ticks
            .borrow_and_update()
            .saturating_add(ticks_in(limit))
            .saturating_add(1);
        Some(async move {
            let _waiting = waiting;
            // `Err` only when the sender is gone, which `_waiting` prevents.
            let _ = ticks.wait_for(|now| *now >= due).await;
        })
    }

    /// Ticks every [`TICK`] for as long as someone waits.
    async fn tick(self: Arc<Self>) {
        loop {
            tokio::time::sleep(TICK).await;
            self.ticks.send_modify(|now| *now += 1);
            if self.waiting.load(Ordering::SeqCst) == 0 {
                self.ticking.store(false, Ordering::SeqCst);
                // A waiter that came between the load and the store saw
                // `ticking` still set and started no task: go on for it,
                // unless another one took over meanwhile.
                if self.waiting.load(Ordering::SeqCst) == 0
                    || self.ticking.swap(true, Ordering::SeqCst)
                {
                    return;
                }
            }
        }
    }
}

/// Whole ticks in `limit`, rounded up.
fn ticks_in(limit: Duration) -> u64 {
    let tick = TICK.as_nanos();
    u64::try_from(limit.as_nanos().div_ceil(tick)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A bound for what a starved arbiter may take, far above a tick.
    const SLOW: Duration = Duration::from_secs(10);

    #[test]
    fn ticks_round_up() {
        assert_eq!(ticks_in(Duration::ZERO), 0);
        assert_eq!(ticks_in(Duration::from_millis(1)), 1);
        assert_eq!(ticks_in(TICK), 1);
        assert_eq!(ticks_in(TICK * 3 + Duration::from_nanos(1)), 4);
        assert_eq!(ticks_in(Duration::MAX), u64::MAX);
    }

    /// An expiry awaited on a thread without any runtime resolves after its
    /// limit, not much later, and the clock stops once nobody waits.
    #[test]
    fn expires_without_a_runtime_in_the_caller() {
        let system = actix::System::new();
        let arbiter = actix::Arbiter::new();
        let watchdog = Arc::new(Watchdog::default());
        let limit = Duration::from_millis(120);
        let start = Instant::now();
        let expiry = watchdog
            .expiry(limit, &arbiter.handle())
            .expect("arbiter runs");
        std::thread::spawn(move || block_on(expiry))
            .join()
            .expect("waiter");
        let waited = start.elapsed();
        assert!(waited >= limit, "expired early: {waited:?}");
        // Wide margins: a busy machine may starve the ticking arbiter for a
        // while; what must hold is that the expiry comes and the clock stops.
        assert!(waited < limit + SLOW, "expired late: {waited:?}");
        assert_eq!(watchdog.waiting.load(Ordering::SeqCst), 0);
        let stopping = Instant::now();
        while watchdog.ticking.load(Ordering::SeqCst) {
            assert!(stopping.elapsed() < SLOW, "still ticking after {SLOW:?}");
            std::thread::sleep(TICK);
        }
        arbiter.stop();
        drop(system);
    }

    /// Runs `fut` to completion on this thread, which has no runtime.
    fn block_on(fut: impl std::future::Future<Output = ()>) {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = std::task::Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        while fut.as_mut().poll(&mut cx).is_pending() {
            std::thread::park();
        }
    }
}
