//! `Summary`: a bench run's figures, as a short text report or JSON.

use std::time::Duration;

use actorbus::Config;
use serde::Serialize;

use crate::args::BenchArgs;
use crate::connect::driver_key;
use crate::output::count;

use super::recorder::{Percentiles, Recorder};
use super::Run;

/// What one run measured, with the setup it ran.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    /// `queue.driver`.
    pub(crate) driver: &'static str,
    /// The queues the bench used (purged, but not deleted: the bus has no
    /// call for that).
    pub(crate) names: Vec<String>,
    /// `--queues`, `--listeners`, `--concurrency`, `--producers`.
    pub(crate) queues: u32,
    pub(crate) listeners: u32,
    pub(crate) concurrency: u32,
    pub(crate) producers: u32,
    /// `--rate` (0: unlimited).
    pub(crate) rate: u64,
    /// `--payload`, in bytes.
    pub(crate) payload: usize,
    /// How long the producers pushed (`--duration`, or less on an error).
    pub(crate) pushing: Duration,
    /// Pushes stored.
    pub(crate) pushed: u64,
    /// Deliveries handled, in all.
    pub(crate) handled: u64,
    /// Deliveries handled while the producers pushed.
    pub(crate) handled_while_pushing: u64,
    /// How long the backlog took to drain after pushing; `None` if it did not.
    pub(crate) drained: Option<Duration>,
    /// Push-to-handler latencies of every handled message.
    pub(crate) latency: Percentiles,
}

impl Summary {
    /// The summary of a finished run.
    pub(crate) fn new(
        config: &Config,
        args: &BenchArgs,
        names: &[String],
        recorder: &Recorder,
        run: &Run,
    ) -> Self {
        let (pushed, handled) = recorder.counts();
        Summary {
            driver: driver_key(config.queue.driver),
            names: names.to_vec(),
            queues: args.queues,
            listeners: args.listeners,
            concurrency: args.concurrency,
            producers: args.producers,
            rate: args.rate,
            payload: args.payload,
            pushing: run.pushing,
            pushed,
            handled,
            handled_while_pushing: run.handled_while_pushing,
            drained: run.drained,
            latency: recorder.overall(),
        }
    }

    /// Pushes stored per second while pushing.
    pub(crate) fn pushed_per_sec(&self) -> f64 {
        per_second(self.pushed, self.pushing)
    }

    /// Deliveries handled per second while pushing.
    pub(crate) fn handled_per_sec(&self) -> f64 {
        per_second(self.handled_while_pushing, self.pushing)
    }

    /// The setup in one line: `redis, 1 queue × 1 listener × 16 handlers,
    /// 8 producers, 64 B payloads, 10.0 s`.
    pub(crate) fn setup(&self) -> String {
        let rate = match self.rate {
            0 => String::new(),
            rate => format!(" at {rate} msgs/s"),
        };
        format!(
            "{}, {} × {} × {}, {}{rate}, {} B payloads, {:.1} s",
            self.driver,
            count(self.queues.into(), "queue"),
            count(self.listeners.into(), "listener"),
            count(self.concurrency.into(), "handler"),
            count(self.producers.into(), "producer"),
            self.payload,
            self.pushing.as_secs_f64(),
        )
    }

    /// The report as text.
    pub(crate) fn text(&self) -> String {
        let drained = match self.drained {
            Some(after) => format!(
                "all handled {:.2} s after pushing stopped",
                after.as_secs_f64()
            ),
            None => format!(
                "{} not handled when the bench stopped waiting",
                self.pushed.saturating_sub(self.handled)
            ),
        };
        let l = &self.latency;
        format!(
            "actorbus bench: {}\n\
             pushed   {:>10} msgs  {:>10.0} msgs/s\n\
             handled  {:>10} msgs  {:>10.0} msgs/s while pushing; {drained}\n\
             latency  p50 {}  p90 {}  p99 {}  max {}  (push to handler, {} msgs)\n",
            self.setup(),
            self.pushed,
            self.pushed_per_sec(),
            self.handled,
            self.handled_per_sec(),
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max),
            l.count,
        )
    }

    /// The report as JSON; durations in seconds, latencies in milliseconds.
    pub(crate) fn json(&self) -> Report<'_> {
        let l = &self.latency;
        let millis = |d: Duration| d.as_secs_f64() * 1000.0;
        Report {
            driver: self.driver,
            queue_names: &self.names,
            queues: self.queues,
            listeners: self.listeners,
            concurrency: self.concurrency,
            producers: self.producers,
            rate: (self.rate > 0).then_some(self.rate),
            payload_bytes: self.payload,
            pushing_secs: self.pushing.as_secs_f64(),
            pushed: self.pushed,
            handled: self.handled,
            pushed_per_sec: self.pushed_per_sec(),
            handled_per_sec: self.handled_per_sec(),
            drained_secs: self.drained.map(|d| d.as_secs_f64()),
            latency_ms: LatencyMs {
                count: l.count,
                p50: millis(l.p50),
                p90: millis(l.p90),
                p99: millis(l.p99),
                max: millis(l.max),
            },
        }
    }
}

/// `bench --json`: [`Summary`] with durations in seconds and latencies in
/// milliseconds; `rate` is `null` when unlimited, and `drained_secs` when the
/// backlog did not drain.
#[derive(Debug, Serialize)]
pub(crate) struct Report<'a> {
    driver: &'a str,
    queue_names: &'a [String],
    queues: u32,
    listeners: u32,
    concurrency: u32,
    producers: u32,
    rate: Option<u64>,
    payload_bytes: usize,
    pushing_secs: f64,
    pushed: u64,
    handled: u64,
    pushed_per_sec: f64,
    handled_per_sec: f64,
    drained_secs: Option<f64>,
    latency_ms: LatencyMs,
}

/// Push-to-handler latencies in milliseconds, and how many there were.
#[derive(Debug, Serialize)]
struct LatencyMs {
    count: u64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn per_second(count: u64, over: Duration) -> f64 {
    match over.as_secs_f64() {
        seconds if seconds > 0.0 => count as f64 / seconds,
        _ => 0.0,
    }
}

/// A latency in milliseconds with three significant figures or so.
pub(crate) fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    match millis {
        m if m >= 100.0 => format!("{m:.0} ms"),
        m if m >= 10.0 => format!("{m:.1} ms"),
        m => format!("{m:.2} ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_latencies_read_well() {
        assert_eq!(per_second(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
        assert_eq!(ms(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(ms(Duration::from_micros(12345)), "12.3 ms");
        assert_eq!(ms(Duration::from_micros(123_456)), "123 ms");
    }
}
