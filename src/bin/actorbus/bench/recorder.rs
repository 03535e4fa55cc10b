//! `Recorder`: what the bench counts while it runs — pushes, handled
//! messages and their latencies — shared by producers, handlers and the
//! sampler.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The bytes at the start of every bench payload: the push time, in
/// nanoseconds since the bench started, big-endian.
pub(crate) const STAMP_LEN: usize = 8;

/// The longest latency told apart from longer ones.
const LONGEST: Duration = Duration::from_secs(3600);

/// Counters and latency histograms of one bench run.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// When the bench started: the zero of every stamp.
    start: Instant,
    /// Pushes stored (their `push` returned `Ok`).
    pushed: AtomicU64,
    /// Deliveries handed to a handler.
    handled: AtomicU64,
    /// Push-to-handler latencies, in nanoseconds.
    latency: Mutex<Latencies>,
}

#[derive(Debug)]
struct Latencies {
    /// Every latency of the run.
    all: Histogram<u64>,
    /// The latencies since the sampler last took them.
    window: Histogram<u64>,
}

/// Percentiles of a set of latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Percentiles {
    /// How many latencies there were.
    pub(crate) count: u64,
    /// 50th percentile.
    pub(crate) p50: Duration,
    /// 90th percentile.
    pub(crate) p90: Duration,
    /// 99th percentile.
    pub(crate) p99: Duration,
    /// The largest.
    pub(crate) max: Duration,
}

impl Percentiles {
    /// The names of [`values`](Self::values), in order.
    pub(crate) const NAMES: [&'static str; 4] = ["p50", "p90", "p99", "max"];

    /// p50, p90, p99 and max.
    pub(crate) fn values(&self) -> [Duration; 4] {
        [self.p50, self.p90, self.p99, self.max]
    }
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub(crate) fn new() -> Recorder {
        // 1 ns to an hour with three significant digits (0.1 % precision);
        // a longer latency counts as an hour.
        let histogram = || {
            Histogram::new_with_bounds(1, LONGEST.as_nanos() as u64, 3)
                .expect("1 ns to an hour at 3 significant digits is a valid histogram")
        };
        Recorder {
            start: Instant::now(),
            pushed: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            latency: Mutex::new(Latencies {
                all: histogram(),
                window: histogram(),
            }),
        }
    }

    /// Time since the bench started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// A payload of `len` bytes (at least [`STAMP_LEN`]) stamped with now.
    pub(crate) fn payload(&self, len: usize) -> Vec<u8> {
        let mut payload = vec![b'.'; len.max(STAMP_LEN)];
        let now = self.nanos();
        payload[..STAMP_LEN].copy_from_slice(&now.to_be_bytes());
        payload
    }

    /// Counts one stored push.
    pub(crate) fn pushed(&self) {
        self.pushed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one delivery and its latency from the stamp in `payload` (a
    /// payload without one, pushed by someone else, is counted only).
    pub(crate) fn handled(&self, payload: &[u8]) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        let Some(stamp) = payload.first_chunk::<STAMP_LEN>() else {
            return;
        };
        let latency = self.nanos().saturating_sub(u64::from_be_bytes(*stamp));
        let mut latencies = self.lock();
        latencies.all.saturating_record(latency);
        latencies.window.saturating_record(latency);
    }

    /// (pushed, handled) so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.pushed.load(Ordering::Relaxed),
            self.handled.load(Ordering::Relaxed),
        )
    }

    /// The percentiles of the latencies since the last call, forgetting them.
    pub(crate) fn take_window(&self) -> Percentiles {
        let mut latencies = self.lock();
        let window = percentiles(&latencies.window);
        latencies.window.reset();
        window
    }

    /// The percentiles of every latency of the run.
    pub(crate) fn overall(&self) -> Percentiles {
        percentiles(&self.lock().all)
    }

    fn nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Latencies> {
        // Recording cannot panic half-way; a poisoned lock holds whole data.
        self.latency.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn percentiles(histogram: &Histogram<u64>) -> Percentiles {
    if histogram.is_empty() {
        return Percentiles::default();
    }
    let at = |q: f64| Duration::from_nanos(histogram.value_at_quantile(q));
    Percentiles {
        count: histogram.len(),
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        max: Duration::from_nanos(histogram.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_measured_from_the_payload_stamp() {
        let recorder = Recorder::new();
        let payload = recorder.payload(64);
        assert_eq!(payload.len(), 64);
        std::thread::sleep(Duration::from_millis(20));
        recorder.pushed();
        recorder.handled(&payload);
        recorder.handled(b"short");
        recorder.handled(&[0; STAMP_LEN]);
        assert_eq!(recorder.counts(), (1, 3));
        let window = recorder.take_window();
        assert_eq!(window.count, 2, "the unstamped payload has no latency");
        assert!(window.p50 >= Duration::from_millis(20), "{window:?}");
        assert!(window.max < LONGEST, "{window:?}");
        assert!(window.max >= window.p99 && window.p99 >= window.p90);
        assert_eq!(recorder.take_window().count, 0, "a window is taken once");
        assert_eq!(recorder.overall().count, 2, "the run keeps every latency");
    }

    #[test]
    fn short_payloads_still_carry_the_stamp() {
        assert_eq!(Recorder::new().payload(1).len(), STAMP_LEN);
    }
}
