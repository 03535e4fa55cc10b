//! Round-trip rows: `m` sequential request/reply round trips, timed one by
//! one; the row shows p50/p99 and the achieved round trips per second. The
//! bus's own round trip (`bus.request` answered by `bus.reply`) runs on any
//! driver here; each driver module times its raw broker's round trip with
//! [`rtt_row`].

use std::time::{Duration, Instant};

use actorbus::{Bus, Delivery};
use serde_json::json;

use crate::harness::row::{Kind, Row};
use crate::harness::stats::percentile;
use crate::payload;

/// Round trips before the timed ones (connections, actors, caches).
const WARM: usize = 50;
/// Per request: far above any round trip; a lost reply fails the row.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Times `m` calls of `round_trip` (after [`WARM`] untimed ones).
pub(crate) async fn rtt_row(name: &str, m: usize, mut round_trip: impl AsyncFnMut()) -> Row {
    for _ in 0..WARM {
        round_trip().await;
    }
    let mut samples = Vec::with_capacity(m);
    let start = Instant::now();
    for _ in 0..m {
        let t0 = Instant::now();
        round_trip().await;
        samples.push(t0.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    samples.sort_unstable();
    let us = |ns: u64| ns as f64 / 1_000.0;
    let mut row = Row::new(name, Kind::Latency, m);
    row.msgs_per_s = Some(m as f64 / elapsed.as_secs_f64());
    row.p50_us = Some(us(percentile(&samples, 0.50)));
    row.p99_us = Some(us(percentile(&samples, 0.99)));
    row.with("p90_us", json!(us(percentile(&samples, 0.90))))
        .with("max_us", json!(us(*samples.last().unwrap_or(&0))))
}

/// `bus.request(queue)` answered by a listener calling `bus.reply` with the
/// same payload; the caller owns the bus and deletes `queue` afterwards.
pub(crate) async fn bus_rtt(bus: &Bus, queue: &str, name: &str, m: usize) -> Row {
    let responder = bus.clone();
    let listener = bus
        .add_listener(queue, move |d: Delivery| {
            let bus = responder.clone();
            async move {
                bus.reply(&d, d.payload().clone()).await?;
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    let body = payload();
    let row = rtt_row(name, m, async || {
        let reply = bus
            .request(queue, body.clone(), REQUEST_TIMEOUT)
            .await
            .expect("request");
        std::hint::black_box(reply.payload());
    })
    .await;
    listener.remove().await.expect("remove listener");
    row
}

/// bus p50 / raw p50 and p99 likewise, as the row's ratio and extras.
pub(crate) fn compare_rtt(rows: &mut [Row], bus: &str, raw: &str) {
    let find = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| (r.p50_us, r.p99_us))
    };
    let Some((raw_p50, raw_p99)) = find(raw) else {
        return;
    };
    let ratio = |bus: Option<f64>, raw: Option<f64>| match (bus, raw) {
        (Some(bus), Some(raw)) if raw > 0.0 => Some(bus / raw),
        _ => None,
    };
    if let Some(row) = rows.iter_mut().find(|r| r.name == bus) {
        row.ratio = ratio(row.p50_us, raw_p50);
        let p99 = ratio(row.p99_us, raw_p99);
        row.extra
            .insert("p50_ratio_vs_raw".into(), json!(row.ratio));
        row.extra.insert("p99_ratio_vs_raw".into(), json!(p99));
        row.extra.insert("baseline".into(), json!(raw));
    }
}
