//! `actorbus bench`: pushes to fresh queues for `--duration` while their
//! listeners handle, and reports throughput and push-to-handler latency of
//! the configured driver; `--plot` draws them over time.
//!
//! The queues are `actorbus-bench-<pid>-<millis>-<n>`; whatever happens
//! (error, Ctrl-C) their listeners are removed and they and their dead
//! letters are purged before the command ends. They are not deleted (the
//! bus has no call for that): RabbitMQ keeps them as empty durable queues,
//! Redis as empty streams; `--json` names them (`queue_names`).

mod load;
mod plot;
mod recorder;
mod report;
mod timeline;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actorbus::{Bus, ListenerOptions};

use crate::args::BenchArgs;
use crate::failure::Failure;
use crate::output;
use recorder::{Recorder, STAMP_LEN};
use report::Summary;

/// How long the bench waits, after pushing stopped, for the listeners to
/// handle what was pushed: at least this, or the push time if longer.
const DRAIN_AT_LEAST: Duration = Duration::from_secs(30);

/// Checks what the bus is not needed for: the payload carries the stamp.
pub(crate) fn check(args: &BenchArgs) -> Result<(), Failure> {
    if args.payload < STAMP_LEN {
        return Err(Failure::Usage(format!(
            "--payload must be at least {STAMP_LEN} bytes: they carry the push time"
        )));
    }
    Ok(())
}

/// Runs the bench on `bus` and prints its summary (and draws `--plot`).
pub(crate) async fn run(bus: &Bus, args: BenchArgs, json: bool) -> Result<(), Failure> {
    let max_payload = bus.config().queue.max_payload;
    if args.payload > max_payload {
        return Err(Failure::Usage(format!(
            "--payload of {} bytes is over queue.max_payload ({max_payload} bytes)",
            args.payload
        )));
    }
    let queues = queue_names(args.queues);
    let recorder = Arc::new(Recorder::new());
    let outcome = measure(bus, &args, &queues, &recorder).await;
    let cleaned = cleanup(bus, &queues).await;
    let run = outcome?;
    cleaned?;
    let summary = Summary::new(bus.config(), &args, &queues, &recorder, &run);
    if let Some(path) = &args.plot {
        plot::draw(path, &summary, &run.timeline)?;
    }
    if json {
        output::print_json(&summary.json())
    } else {
        output::print(&summary.text())
    }
}

/// `actorbus-bench-<pid>-<millis>-<n>`: unique on a broker shared with
/// other runs of the bench, and easy to find and delete by hand.
fn queue_names(count: u32) -> Vec<String> {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis())
        .unwrap_or_default();
    let pid = std::process::id();
    (0..count)
        .map(|n| format!("actorbus-bench-{pid}-{millis}-{n}"))
        .collect()
}

/// What [`measure`] saw, beyond the recorder's counts.
#[derive(Debug)]
pub(crate) struct Run {
    /// Throughput and latency over time.
    pub(crate) timeline: timeline::Timeline,
    /// How long the producers pushed.
    pub(crate) pushing: Duration,
    /// Deliveries handled by the time pushing stopped.
    pub(crate) handled_while_pushing: u64,
    /// How long the backlog took to drain after pushing; `None` if it did
    /// not within the limit.
    pub(crate) drained: Option<Duration>,
}

/// Starts the listeners and the sampler, pushes for `--duration`, and
/// waits for the backlog to drain. Ctrl-C ends it with
/// [`Failure::Interrupted`].
async fn measure(
    bus: &Bus,
    args: &BenchArgs,
    queues: &[String],
    recorder: &Arc<Recorder>,
) -> Result<Run, Failure> {
    let options = ListenerOptions::default().with_concurrency(args.concurrency as usize);
    for queue in queues {
        for _ in 0..args.listeners {
            let recorder = recorder.clone();
            let handler = move |delivery: actorbus::Delivery| {
                recorder.handled(delivery.payload());
                std::future::ready(Ok(()))
            };
            bus.add_listener_with(queue, options.clone(), handler)
                .await
                .map_err(Failure::doing(format!("cannot listen to `{queue}`")))?;
        }
    }
    let sampler = timeline::Sampler::start(recorder.clone());
    let started = recorder.elapsed();
    let pushing = load::push(bus, args, queues, recorder);
    let interrupted = tokio::signal::ctrl_c();
    tokio::select! {
        pushed = pushing => pushed?,
        _ = interrupted => return Err(Failure::Interrupted),
    }
    let stopped = recorder.elapsed();
    let pushing = stopped.saturating_sub(started);
    let (_, handled_while_pushing) = recorder.counts();
    let limit = DRAIN_AT_LEAST.max(args.duration);
    let drained = tokio::select! {
        drained = drain(recorder, limit) => drained,
        _ = tokio::signal::ctrl_c() => return Err(Failure::Interrupted),
    };
    let drained = drained.then(|| recorder.elapsed().saturating_sub(stopped));
    Ok(Run {
        timeline: sampler.stop().await,
        pushing,
        handled_while_pushing,
        drained,
    })
}

/// Waits until every push was handled, up to `limit`; whether it was.
async fn drain(recorder: &Recorder, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let (pushed, handled) = recorder.counts();
        if handled >= pushed {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Removes the listeners of the bench's queues and purges them and their
/// dead letters; every queue is tried, the first error is returned.
async fn cleanup(bus: &Bus, queues: &[String]) -> Result<(), Failure> {
    let mut first = Ok(());
    for queue in queues {
        let removed = bus.remove(queue).await;
        let purged = bus.purge(queue).await;
        let dead = bus.purge(&format!("{queue}.dead")).await;
        if let Err(error) = removed.and(purged).and(dead) {
            let doing = format!("cannot clean up the bench queue `{queue}`");
            first = first.and(Err(Failure::doing(doing)(error)));
        }
    }
    first
}
