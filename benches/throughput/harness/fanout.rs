//! The fan-out row of any bus: one topic, `groups` subscriber groups of one
//! member each, `pushers` tasks publishing; the rate counts deliveries
//! (messages × groups), every one of them acknowledged.

use std::time::Instant;

use actorbus::{Bus, Delivery, HandlerResult, ListenerOptions};
use serde_json::json;

use crate::harness::row::{Kind, Row};
use crate::harness::sink::Sink;
use crate::payload;

/// How one fan-out row runs.
#[derive(Clone, Copy)]
pub(crate) struct Fanout<'a> {
    pub(crate) name: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) groups: usize,
    /// Messages published (each reaches every group).
    pub(crate) n: usize,
    pub(crate) pushers: usize,
    /// Concurrency of each group's one member.
    pub(crate) concurrency: usize,
}

/// The name of group `i` of a fan-out row (the caller deletes
/// `<topic>.<group>` and its dead letters on broker drivers).
pub(crate) fn group(i: usize) -> String {
    format!("g{i}")
}

/// Runs the row on `bus`; the caller owns the bus and what it leaves
/// behind on a broker. The clock runs from the first publish until every
/// group's member has handled every message.
pub(crate) async fn bus_fanout(bus: &Bus, spec: Fanout<'_>) -> Row {
    let sink = Sink::default();
    let opts = ListenerOptions::default().with_concurrency(spec.concurrency);
    for i in 0..spec.groups {
        let sink = sink.clone();
        bus.add_subscriber_with(spec.topic, &group(i), opts.clone(), move |d: Delivery| {
            std::hint::black_box(d.payload());
            sink.hit();
            std::future::ready(HandlerResult::Ok(()))
        })
        .await
        .expect("add_subscriber");
    }
    // Warm-up: starts every group's actors and connections.
    let target = sink.expect(spec.groups * 100);
    publish_all(bus, spec.topic, 100, spec.pushers.min(100)).await;
    sink.wait(target).await;

    let deliveries = spec.n * spec.groups;
    let target = sink.expect(deliveries);
    let start = Instant::now();
    publish_all(bus, spec.topic, spec.n, spec.pushers).await;
    sink.wait(target).await;
    Row::rate(spec.name, Kind::Raw, deliveries, start.elapsed())
        .with("groups", json!(spec.groups))
        .with("published", json!(spec.n))
        .with("pushers", json!(spec.pushers))
        .with("concurrency", json!(spec.concurrency))
}

/// Groups of the broker drivers' fan-out rows.
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) const BROKER_GROUPS: usize = 4;

/// The broker drivers' fan-out row: [`BROKER_GROUPS`] groups of one member
/// each (concurrency 64, as their queue e2e rows' listener), 64
/// publishers. The caller deletes `<topic>.<group>` for each [`group`].
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) async fn broker_fanout(bus: &Bus, name: &str, topic: &str, n: usize) -> Row {
    let spec = Fanout {
        name,
        topic,
        groups: BROKER_GROUPS,
        n,
        pushers: 64,
        concurrency: 64,
    };
    bus_fanout(bus, spec).await
}

async fn publish_all(bus: &Bus, topic: &str, n: usize, pushers: usize) {
    let body = payload();
    let tasks: Vec<_> = (0..pushers)
        .map(|t| {
            let (bus, topic, body) = (bus.clone(), topic.to_owned(), body.clone());
            actix::spawn(async move {
                let mut i = t;
                while i < n {
                    bus.publish(&topic, body.clone()).await.expect("publish");
                    i += pushers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("publisher task");
    }
}

/// `fanout`'s deliveries per second against `queue_row`'s messages per
/// second in the same run (a broker driver's own queue e2e row): the ratio
/// column and a ≥ 0.8× target.
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn per_delivery_target(rows: &mut [Row], fanout: &str, queue_row: &str) {
    let target = "≥0.8x the queue e2e row per delivery";
    if let Some(row) = crate::harness::row::rate_target(rows, fanout, queue_row, 0.8, target) {
        row.extra.insert("baseline".into(), json!(queue_row));
    }
}
