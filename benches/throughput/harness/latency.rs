//! Latency under a steady paced load: each message is timed from the start
//! of its send to the entry of its handler, on the bus (`memory latency`
//! rows) and on a bare actix actor (`raw actix latency`, the machine's
//! cross-thread wake-up floor that the bus's latency is compared with).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actorbus::{Bus, Delivery, HandlerResult};
use serde_json::json;

use crate::harness::row::{Kind, Row};
use crate::harness::sink::{settle_down, Sink};
use crate::harness::stats::percentile;
use crate::PAYLOAD_LEN;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// A pacer thread sleeps (nanosleep) to each message's due time and
    /// hands its index to the system thread, which starts the push: pushes
    /// come one by one, 100 µs apart at 10k/s.
    Thread,
    /// `tokio::time::sleep_until` on the system thread. Tokio's timer ticks
    /// in whole milliseconds, so at 10k/s pushes start in bursts of ~10.
    TokioTimer,
}

impl Pacing {
    fn note(self) -> &'static str {
        match self {
            Pacing::Thread => "pacer thread, deadline-based nanosleep: one push every 100 µs",
            Pacing::TokioTimer => {
                "tokio sleep_until on the system thread: 1 ms ticks, bursts of ~10"
            }
        }
    }
}

/// The message counts of a latency row: `warm` unrecorded, then `measured`.
pub(crate) struct Plan {
    warm: usize,
    measured: usize,
    pub(crate) total: usize,
    interval: Duration,
}

impl Plan {
    pub(crate) fn new(rate: u64, measured_for: Duration) -> Self {
        let warm = (rate / 4) as usize; // 250 ms, not recorded
        let measured = (rate as f64 * measured_for.as_secs_f64()).round() as usize;
        Plan {
            warm,
            measured,
            total: warm + measured,
            interval: Duration::from_nanos(1_000_000_000 / rate),
        }
    }
}

/// One latency slot per message, indexed by the message's number.
pub(crate) fn samples(total: usize) -> Arc<Vec<AtomicU64>> {
    Arc::new((0..total).map(|_| AtomicU64::new(u64::MAX)).collect())
}

/// Records one message's latency; call first thing in the handler. The
/// payload carries the send timestamp (nanos since `base`, an `Instant`
/// shared by producer and handler) and the message's index.
pub(crate) fn record(samples: &[AtomicU64], base: Instant, payload: &[u8]) {
    let entered = base.elapsed().as_nanos() as u64;
    let sent = u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes"));
    let index = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes")) as usize;
    samples[index].store(entered.saturating_sub(sent), Ordering::Relaxed);
}

/// Starts `plan.total` sends at their due times and waits for the sends
/// (not the handlers); returns when the measured part started and when the
/// schedule ended. Open loop: each send is its own task, so a slow send does
/// not hold back the schedule. The timestamp is taken when the send starts.
pub(crate) async fn drive<S, Fut>(
    plan: &Plan,
    pacing: Pacing,
    base: Instant,
    send: S,
) -> (Instant, Instant)
where
    S: FnOnce(Vec<u8>) -> Fut + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (total, interval) = (plan.total, plan.interval);
    let start = Instant::now() + Duration::from_millis(5);
    let measured_start = start + interval * plan.warm as u32;
    let spawn_send = |i: usize| {
        let send = send.clone();
        actix::spawn(async move {
            let mut body = vec![0u8; PAYLOAD_LEN];
            let sent = base.elapsed().as_nanos() as u64;
            body[0..8].copy_from_slice(&sent.to_le_bytes());
            body[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            send(body).await;
        })
    };
    let mut tasks = Vec::with_capacity(total);
    match pacing {
        Pacing::TokioTimer => {
            for i in 0..total {
                let due = start + interval * i as u32;
                if Instant::now() < due {
                    tokio::time::sleep_until(due.into()).await;
                }
                tasks.push(spawn_send(i));
            }
        }
        Pacing::Thread => {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
            let pacer = std::thread::Builder::new()
                .name("bench-pacer".into())
                .spawn(move || {
                    for i in 0..total {
                        let due = start + interval * i as u32;
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        if tx.send(i).is_err() {
                            break;
                        }
                    }
                })
                .expect("pacer thread");
            while let Some(i) = rx.recv().await {
                tasks.push(spawn_send(i));
            }
            pacer.join().expect("pacer");
        }
    }
    let schedule_end = Instant::now();
    for task in tasks {
        task.await.expect("send task");
    }
    (measured_start, schedule_end)
}

/// The row: achieved rate of the measured part and its latency percentiles.
pub(crate) fn latency_row(
    name: String,
    plan: &Plan,
    samples: &[AtomicU64],
    (measured_start, schedule_end): (Instant, Instant),
    pacing: Pacing,
) -> Row {
    let mut lat: Vec<u64> = samples[plan.warm..]
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    lat.sort_unstable();
    let us = |ns: u64| ns as f64 / 1_000.0;
    let achieved = plan.measured as f64 / (schedule_end - measured_start).as_secs_f64();
    let mut row = Row::new(name, Kind::Latency, plan.measured);
    row.msgs_per_s = Some(achieved);
    row.p50_us = Some(us(percentile(&lat, 0.50)));
    row.p99_us = Some(us(percentile(&lat, 0.99)));
    row.with("p90_us", json!(us(percentile(&lat, 0.90))))
        .with("p999_us", json!(us(percentile(&lat, 0.999))))
        .with("max_us", json!(us(*lat.last().unwrap_or(&0))))
        .with("pacing", json!(pacing.note()))
}

/// Paced pushes at `rate`/s; latency from the start of each push to the
/// entry of its bus handler, on the memory driver.
pub(crate) async fn bus_latency(
    name: String,
    rate: u64,
    measured_for: Duration,
    pacing: Pacing,
) -> Row {
    let bus = Bus::memory();
    let row = paced_bus_latency(&bus, "bench-latency", name, rate, measured_for, pacing).await;
    bus.shutdown().await.expect("shutdown");
    drop(bus);
    settle_down().await;
    row
}

/// The latency row of any bus: a listener on `queue` records each
/// message's handler entry while `drive` pushes at `rate`/s. The caller
/// owns the bus (and what the driver leaves behind).
pub(crate) async fn paced_bus_latency(
    bus: &Bus,
    queue: &str,
    name: String,
    rate: u64,
    measured_for: Duration,
    pacing: Pacing,
) -> Row {
    let base = Instant::now();
    let plan = Plan::new(rate, measured_for);
    let samples = samples(plan.total);
    let sink = Sink::default();
    {
        let samples = samples.clone();
        let sink = sink.clone();
        bus.add_listener(queue, move |delivery: Delivery| {
            record(&samples, base, delivery.payload());
            sink.hit();
            std::future::ready(HandlerResult::Ok(()))
        })
        .await
        .expect("add_listener");
    }
    let target = sink.expect(plan.total);
    let push = {
        let (bus, queue) = (bus.clone(), queue.to_owned());
        move |body: Vec<u8>| async move {
            bus.push(&queue, body).await.expect("push");
        }
    };
    let window = drive(&plan, pacing, base, push).await;
    sink.wait(target).await;
    latency_row(name, &plan, &samples, window, pacing)
}

/// A stamped payload for the raw actix latency row.
#[derive(Message)]
#[rtype(result = "()")]
struct Stamped(Vec<u8>);

/// The bare actor of the raw latency row: records at handler entry.
struct Recorder {
    samples: Arc<Vec<AtomicU64>>,
    base: Instant,
    sink: Sink,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<Stamped> for Recorder {
    type Result = ();

    fn handle(&mut self, msg: Stamped, _: &mut Context<Self>) {
        record(&self.samples, self.base, &msg.0);
        self.sink.hit();
    }
}

/// The same schedule and pacer thread as the bus's target latency row, but
/// each message is a `do_send` to a bare actor on its own arbiter: what a
/// cross-thread hand-off costs on this machine, with no bus in between.
pub(crate) async fn raw_actix_latency(name: String, rate: u64, measured_for: Duration) -> Row {
    let pacing = Pacing::Thread;
    let arbiter = Arbiter::new();
    let base = Instant::now();
    let plan = Plan::new(rate, measured_for);
    let samples = samples(plan.total);
    let sink = Sink::default();
    let recorder = {
        let (samples, sink) = (samples.clone(), sink.clone());
        Recorder::start_in_arbiter(&arbiter.handle(), move |_| Recorder {
            samples,
            base,
            sink,
        })
    };
    let target = sink.expect(plan.total);
    let send = move |body: Vec<u8>| {
        recorder.do_send(Stamped(body));
        std::future::ready(())
    };
    let window = drive(&plan, pacing, base, send).await;
    sink.wait(target).await;
    arbiter.stop();
    let _ = arbiter.join();
    settle_down().await;
    latency_row(name, &plan, &samples, window, pacing)
}
