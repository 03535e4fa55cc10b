//! Topics and request/reply on the redis driver: fan-out to 4 groups (one
//! stream, a consumer group each; each delivery compared with the driver's
//! own queue e2e row), and the
//! `bus.request` round trip next to a raw redis RPC (the requester `XADD`s
//! to a request stream and blocks in `XREAD` on its reply stream; the
//! responder blocks in `XREAD` on the request stream and `XADD`s the
//! reply; no consumer groups, so no acknowledgements).

use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

use super::bus::{bus, E2E};
use super::raw::{connect, drop_keys, fresh_stream, xadd};
use crate::harness::args::Opts;
use crate::harness::fanout::{broker_fanout, group, per_delivery_target, BROKER_GROUPS};
use crate::harness::row::Row;
use crate::harness::rtt::{bus_rtt, compare_rtt, rtt_row};
use crate::harness::stats::measured;

pub(super) const FANOUT: &str = "redis fan-out 4 groups";
pub(super) const RTT: &str = "redis request/reply rtt";
pub(super) const RAW_RTT: &str = "raw redis rpc rtt (XADD + XREAD BLOCK)";

/// Every row here the filter selects (`n` messages per fan-out run), with
/// the fan-out target applied against `rows_so_far`'s e2e row.
pub(super) async fn rows(opts: &Opts, n: usize, reps: usize) -> Vec<Row> {
    let m = if opts.quick { 300 } else { 3_000 };
    let mut rows = Vec::new();
    if opts.wants(FANOUT) {
        rows.push(measured(FANOUT, reps, || fanout(n)).await);
    }
    // One run each: a round-trip row is already thousands of samples.
    if opts.wants(RAW_RTT) {
        rows.push(measured(RAW_RTT, 1, || raw_rtt(m)).await);
    }
    if opts.wants(RTT) {
        rows.push(measured(RTT, 1, || rtt(m)).await);
    }
    compare_rtt(&mut rows, RTT, RAW_RTT);
    rows
}

/// Fan-out's target: each delivery at ≥ 0.8× the e2e row of the same run.
pub(super) fn apply_targets(rows: &mut [Row]) {
    per_delivery_target(rows, FANOUT, E2E);
}

async fn fanout(n: usize) -> Row {
    let bus = bus().await;
    let topic = fresh_stream("fanout");
    let row = broker_fanout(&bus, FANOUT, &topic, n).await;
    bus.shutdown().await.expect("shutdown");
    // The topic's stream, and each group's own stream, delay set and dead letters.
    drop_keys(&topic).await;
    for i in 0..BROKER_GROUPS {
        drop_keys(&format!("{topic}.{}", group(i))).await;
    }
    row
}

async fn rtt(m: usize) -> Row {
    let bus = bus().await;
    let queue = fresh_stream("rtt");
    let row = bus_rtt(&bus, &queue, RTT, m).await;
    bus.shutdown().await.expect("shutdown");
    drop_keys(&queue).await;
    row
}

/// Blocks until `stream` has an entry after `after`; returns its id and payload.
async fn next_entry(
    conn: &mut MultiplexedConnection,
    stream: &str,
    after: &str,
) -> (String, Vec<u8>) {
    loop {
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(2000)
            .arg("STREAMS")
            .arg(stream)
            .arg(after)
            .query_async(conn)
            .await
            .expect("XREAD");
        let entry = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|k| k.ids)
            .next();
        if let Some(entry) = entry {
            let body = match entry.map.get("payload") {
                Some(redis::Value::BulkString(body)) => body.clone(),
                _ => Vec::new(),
            };
            return (entry.id, body);
        }
    }
}

async fn raw_rtt(m: usize) -> Row {
    let requests = fresh_stream("raw-rtt");
    let replies = format!("{requests}.replies");
    let (mut responder_read, mut responder_write) = (connect().await, connect().await);
    let serve = {
        let (requests, replies) = (requests.clone(), replies.clone());
        actix::spawn(async move {
            let mut after = "0-0".to_owned();
            loop {
                let (id, body) = next_entry(&mut responder_read, &requests, &after).await;
                if body.is_empty() {
                    return; // the stop entry
                }
                let _: String = xadd(&replies, &body)
                    .query_async(&mut responder_write)
                    .await
                    .expect("XADD reply");
                after = id;
            }
        })
    };
    let (mut write, mut read) = (connect().await, connect().await);
    let body = crate::payload();
    let mut after = "0-0".to_owned();
    let row = rtt_row(RAW_RTT, m, async || {
        let _: String = xadd(&requests, &body)
            .query_async(&mut write)
            .await
            .expect("XADD request");
        let (id, reply) = next_entry(&mut read, &replies, &after).await;
        std::hint::black_box(reply);
        after = id;
    })
    .await;
    let _: String = xadd(&requests, b"")
        .query_async(&mut write)
        .await
        .expect("XADD stop");
    let _ = serve.await;
    drop_keys(&requests).await;
    drop_keys(&replies).await;
    row
}
