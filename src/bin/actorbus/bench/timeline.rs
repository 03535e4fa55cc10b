//! `Timeline`: the bench over time — throughput per 100 ms and latency
//! percentiles per half second — and the `Sampler` task that records it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::recorder::{Percentiles, Recorder};

/// The width of one throughput bucket.
pub(crate) const THROUGHPUT_BUCKET: Duration = Duration::from_millis(100);
/// Throughput buckets per latency bucket (half a second: enough latencies
/// for a p99, enough points for a short run).
const BUCKETS_PER_LATENCY: u32 = 5;

/// One throughput bucket: its end, and messages per second within it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Throughput {
    /// Seconds since the start at the end of the bucket.
    pub(crate) at: f64,
    /// Pushes stored per second.
    pub(crate) pushed: f64,
    /// Deliveries handled per second.
    pub(crate) handled: f64,
}

/// What the sampler saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    /// Every 100 ms.
    pub(crate) throughput: Vec<Throughput>,
    /// Every half second: its end (seconds since the start) and the
    /// latencies of the messages handled in it.
    pub(crate) latency: Vec<(f64, Percentiles)>,
}

/// The task sampling a [`Recorder`] into a [`Timeline`].
#[derive(Debug)]
pub(crate) struct Sampler {
    /// Tells the task to stop and hand over its timeline.
    stop: oneshot::Sender<()>,
    /// The task.
    task: JoinHandle<Timeline>,
}

impl Sampler {
    /// Starts sampling `recorder`.
    pub(crate) fn start(recorder: Arc<Recorder>) -> Sampler {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut timeline = Timeline::default();
            let mut ticks = tokio::time::interval(THROUGHPUT_BUCKET);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            let mut last = (recorder.elapsed(), recorder.counts());
            let mut tick = 0u32;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                let now = (recorder.elapsed(), recorder.counts());
                timeline.throughput.push(bucket(last, now));
                last = now;
                tick += 1;
                if tick.is_multiple_of(BUCKETS_PER_LATENCY) {
                    timeline
                        .latency
                        .push((now.0.as_secs_f64(), recorder.take_window()));
                }
            }
            // The last, partial second.
            let rest = recorder.take_window();
            if rest.count > 0 {
                timeline
                    .latency
                    .push((recorder.elapsed().as_secs_f64(), rest));
            }
            timeline
        });
        Sampler { stop, task }
    }

    /// Stops sampling and gives the timeline.
    pub(crate) async fn stop(self) -> Timeline {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// The rates between two samples of (time, (pushed, handled)).
fn bucket(before: (Duration, (u64, u64)), now: (Duration, (u64, u64))) -> Throughput {
    let seconds = now.0.saturating_sub(before.0).as_secs_f64().max(1e-9);
    let per_second = |a: u64, b: u64| b.saturating_sub(a) as f64 / seconds;
    Throughput {
        at: now.0.as_secs_f64(),
        pushed: per_second(before.1 .0, now.1 .0),
        handled: per_second(before.1 .1, now.1 .1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_rates_over_their_own_width() {
        let before = (Duration::from_millis(100), (10, 5));
        let now = (Duration::from_millis(300), (30, 25));
        let bucket = bucket(before, now);
        assert!((bucket.at - 0.3).abs() < 1e-9);
        assert!((bucket.pushed - 100.0).abs() < 1e-6);
        assert!((bucket.handled - 100.0).abs() < 1e-6);
    }
}
