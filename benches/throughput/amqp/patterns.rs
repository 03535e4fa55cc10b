//! Topics and request/reply on the amqp driver: fan-out to 4 groups (each
//! delivery compared with the driver's own queue e2e row), and the
//! `bus.request` round trip next to the RabbitMQ tutorial's RPC with lapin
//! (a request queue, an exclusive server-named reply queue, `reply_to` and
//! `correlation_id`; no publisher confirms, since the reply itself proves
//! the request arrived).

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::BasicProperties;

use actorbus::Bus;

use super::bus::{config, queue_name, E2E};
use super::raw::{connect, delete};
use crate::harness::args::Opts;
use crate::harness::cleanup::{record, Made};
use crate::harness::fanout::{broker_fanout, group, per_delivery_target, BROKER_GROUPS};
use crate::harness::row::Row;
use crate::harness::rtt::{bus_rtt, compare_rtt, rtt_row};
use crate::harness::stats::measured;

pub(crate) const FANOUT: &str = "amqp fan-out 4 groups";
pub(crate) const RTT: &str = "amqp request/reply rtt";
pub(crate) const RAW_RTT: &str = "amqp raw lapin rpc rtt (tutorial, no confirms)";

/// Every row here the filter selects (`n` messages per fan-out run).
pub(crate) async fn rows(opts: &Opts, url: &str, n: usize, reps: usize) -> Vec<Row> {
    let m = if opts.quick { 200 } else { 2_000 };
    let mut rows = Vec::new();
    if opts.wants(FANOUT) {
        rows.push(measured(FANOUT, reps, || fanout(url, n)).await);
    }
    // One run each: a round-trip row is already thousands of samples.
    if opts.wants(RAW_RTT) {
        rows.push(measured(RAW_RTT, 1, || raw_rtt(url, m)).await);
    }
    if opts.wants(RTT) {
        rows.push(measured(RTT, 1, || rtt(url, m)).await);
    }
    compare_rtt(&mut rows, RTT, RAW_RTT);
    rows
}

async fn fanout(url: &str, n: usize) -> Row {
    let bus = Bus::connect(config(url)).await.expect("connect");
    let topic = queue_name("fanout");
    for i in 0..BROKER_GROUPS {
        record(Made::Amqp(format!("{topic}.{}", group(i))));
    }
    let row = broker_fanout(&bus, FANOUT, &topic, n).await;
    bus.shutdown().await.expect("shutdown");
    for i in 0..BROKER_GROUPS {
        delete(url, &format!("{topic}.{}", group(i))).await;
    }
    delete_exchange(url, &topic).await;
    row
}

async fn rtt(url: &str, m: usize) -> Row {
    let bus = Bus::connect(config(url)).await.expect("connect");
    let queue = queue_name("rtt");
    let row = bus_rtt(&bus, &queue, RTT, m).await;
    bus.shutdown().await.expect("shutdown");
    delete(url, &queue).await;
    row
}

async fn delete_exchange(url: &str, exchange: &str) {
    let conn = connect(url).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.exchange_delete(exchange.into(), ExchangeDeleteOptions::default())
        .await
        .expect("exchange.delete");
    let _ = conn.close(200, "bench".into()).await;
}

/// The tutorial's RPC: a responder consuming the request queue (manual
/// acks) and answering to `reply_to`; the requester consuming its reply
/// queue without acks. One connection each, as two processes would have.
async fn raw_rtt(url: &str, m: usize) -> Row {
    let queue = queue_name("raw-rtt");
    let responder = connect(url).await.expect("connect");
    let rch = responder.create_channel().await.expect("channel");
    rch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .expect("declare");
    let mut requests = rch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let serve = actix::spawn(async move {
        while let Some(Ok(request)) = requests.next().await {
            let props = &request.properties;
            let (Some(reply_to), Some(id)) = (props.reply_to(), props.correlation_id()) else {
                continue;
            };
            let reply = BasicProperties::default().with_correlation_id(id.clone());
            rch.basic_publish(
                "".into(),
                reply_to.as_str().into(),
                BasicPublishOptions::default(),
                &request.data,
                reply,
            )
            .await
            .expect("publish reply");
            rch.basic_ack(request.delivery_tag, BasicAckOptions::default())
                .await
                .expect("ack");
        }
    });
    let requester = connect(url).await.expect("connect");
    let ch = requester.create_channel().await.expect("channel");
    let reply_queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare reply queue");
    let mut replies = ch
        .basic_consume(
            reply_queue.name().as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("consume replies");
    let body = crate::payload();
    let mut next_id = 0u64;
    let row = rtt_row(RAW_RTT, m, async || {
        next_id += 1;
        let id = next_id.to_string();
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_reply_to(reply_queue.name().clone())
            .with_correlation_id(id.as_str().into());
        ch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            &body,
            props,
        )
        .await
        .expect("publish request");
        let reply = replies.next().await.expect("reply stream").expect("reply");
        assert_eq!(
            reply
                .properties
                .correlation_id()
                .as_ref()
                .map(|c| c.as_str()),
            Some(id.as_str())
        );
    })
    .await;
    let _ = requester.close(200, "bench".into()).await;
    let _ = responder.close(200, "bench".into()).await;
    let _ = serve.await;
    delete(url, &queue).await;
    row
}

/// Fan-out's target: each delivery at ≥ 0.8× the rate of the driver's own
/// queue e2e row in the same run.
pub(crate) fn apply_targets(rows: &mut [Row]) {
    per_delivery_target(rows, FANOUT, E2E);
}
