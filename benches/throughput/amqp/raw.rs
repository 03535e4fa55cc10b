//! Raw lapin baselines with the bus's guarantees: durable queue, persistent
//! messages, publisher confirms, manual acks after "handling".

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer};

use super::bus::{
    latency_row, paced, queue_name, record, stamped, RAW_BEST, RAW_E2E_64, RAW_LATENCY, RAW_NAIVE,
    RAW_PUSH, RAW_PUSH_64,
};
use crate::harness::row::{Kind, Row};

/// Confirms kept in flight by the best-practice publisher, and its prefetch.
pub(crate) const IN_FLIGHT: usize = 1000;
/// The best-practice consumer acks `multiple` every this many deliveries
/// (every half prefetch where that is fewer, so the broker never waits for an ack).
const ACK_EVERY: usize = 100;
/// The prefetch of the bus row `amqp e2e c64 x64`'s consumer: a listener's
/// window, concurrency 64 plus its default read-ahead of as many, under
/// `amqp.prefetch` (256 by default).
pub(crate) const BUS_PREFETCH: u16 = 128;

pub(crate) async fn connect(url: &str) -> lapin::Result<Connection> {
    Connection::connect(url, ConnectionProperties::default()).await
}

/// Deletes a bench queue and its dead letters (the bus declares
/// `<queue>.dead` beside every queue it uses): a [`sweep`] of its name.
pub(crate) async fn delete(url: &str, queue: &str) {
    sweep(url, &[queue.to_owned()]).await;
}

/// Deletes the queues `<name>` and `<name>.dead` and the exchange
/// `<name>` of every name, on one connection; a channel per delete, since
/// a refused one closes its channel.
pub(crate) async fn sweep(url: &str, names: &[String]) {
    let Ok(conn) = connect(url).await else {
        eprintln!("  cleanup: RabbitMQ is not reachable at {url}; bench queues may be left");
        return;
    };
    for name in names {
        for queue in [name.clone(), format!("{name}.dead")] {
            if let Ok(ch) = conn.create_channel().await {
                let _ = ch
                    .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                    .await;
                let _ = ch.close(200, "bench".into()).await;
            }
        }
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .exchange_delete(name.as_str().into(), ExchangeDeleteOptions::default())
                .await;
            let _ = ch.close(200, "bench".into()).await;
        }
    }
    let _ = conn.close(200, "bench".into()).await;
}

/// A persistent message with the properties the bus puts on each of its
/// messages (a message id, a timestamp and the attempt header): RabbitMQ
/// spends more per message on them, so bare messages would measure the
/// broker doing less than for the bus. One fixed id and timestamp: making
/// them per message would cost this publisher more, not the broker.
fn persistent() -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("x-attempt".into(), lapin::types::AMQPValue::LongUInt(1));
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_message_id("0193a5f0-7c1e-7d2a-9b3c-4d5e6f708192".into())
        .with_timestamp(1_764_700_000)
        .with_headers(headers)
}

fn mandatory() -> BasicPublishOptions {
    BasicPublishOptions {
        mandatory: true,
        immediate: false,
    }
}

/// A confirm-mode publishing channel with `queue` declared, on a connection of its own.
async fn publisher(url: &str, queue: &str) -> (Connection, Channel) {
    let conn = connect(url).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm_select");
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .expect("declare");
    (conn, ch)
}

/// A consumer with `prefetch`, on a connection of its own.
async fn consumer(url: &str, queue: &str, prefetch: u16) -> (Connection, Channel, Consumer) {
    let conn = connect(url).await.expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .expect("qos");
    let consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    (conn, ch, consumer)
}

/// Publishes one message and waits for its confirm: the naive way.
async fn publish_confirmed(ch: &Channel, queue: &str, body: &[u8]) {
    let confirm = ch
        .basic_publish("".into(), queue.into(), mandatory(), body, persistent())
        .await
        .expect("publish");
    assert!(confirm.await.expect("confirm").is_ack());
}

/// Publishes `n` messages keeping up to `in_flight` of them going at once,
/// each its write and then its confirm: as the bus's concurrent pushers do
/// (awaiting each write before starting the next publish would make a
/// baseline that a bus with 64 pushers beats without being faster).
async fn publish_pipelined(ch: &Channel, queue: &str, n: usize, in_flight: usize) {
    let body = crate::payload();
    let publish = || async {
        let confirm = ch
            .basic_publish("".into(), queue.into(), mandatory(), &body, persistent())
            .await
            .expect("publish");
        assert!(confirm.await.expect("confirm").is_ack());
    };
    let mut pending = FuturesUnordered::new();
    for _ in 0..n {
        if pending.len() >= in_flight {
            pending.next().await;
        }
        pending.push(publish());
    }
    while pending.next().await.is_some() {}
}

/// Consumes `n` deliveries, acking `multiple` every `ack_every` and at the end.
async fn consume_batched(ch: &Channel, consumer: &mut Consumer, n: usize, ack_every: usize) {
    let mut got = 0;
    while got < n {
        let delivery = consumer.next().await.expect("stream").expect("delivery");
        std::hint::black_box(&delivery.data);
        got += 1;
        if got % ack_every == 0 || got == n {
            ch.basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true })
                .await
                .expect("ack");
        }
    }
}

async fn close(conns: &[&Connection]) {
    for conn in conns {
        let _ = conn.close(200, "bench".into()).await;
    }
}

/// Best practice: [`IN_FLIGHT`] confirms in flight, prefetch as many.
pub(crate) async fn e2e_best(url: &str, n: usize) -> Row {
    e2e_pipelined(url, n, RAW_BEST, IN_FLIGHT, IN_FLIGHT as u16).await
}

/// Like the bus row `amqp e2e c64 x64`: at most 64 confirms in flight (as
/// many as its pushers), prefetch [`BUS_PREFETCH`] (as its listener's).
pub(crate) async fn e2e_64(url: &str, n: usize) -> Row {
    e2e_pipelined(url, n, RAW_E2E_64, 64, BUS_PREFETCH).await
}

/// One publisher keeping up to `in_flight` confirms outstanding, one
/// consumer with `prefetch` acking `multiple`; a warm-up of a tenth (at
/// least 500) first, as the bus rows do.
async fn e2e_pipelined(
    url: &str,
    n: usize,
    name: &'static str,
    in_flight: usize,
    prefetch: u16,
) -> Row {
    let q = queue_name("raw-e2e");
    let (pconn, pch) = publisher(url, &q).await;
    let (cconn, cch, mut cons) = consumer(url, &q, prefetch).await;
    let ack_every = ACK_EVERY.min(usize::from(prefetch / 2)).max(1);
    let warm = (n / 10).max(500);
    tokio::join!(
        publish_pipelined(&pch, &q, warm, in_flight),
        consume_batched(&cch, &mut cons, warm, ack_every)
    );
    let start = Instant::now();
    tokio::join!(
        publish_pipelined(&pch, &q, n, in_flight),
        consume_batched(&cch, &mut cons, n, ack_every)
    );
    let elapsed = start.elapsed();
    close(&[&pconn, &cconn]).await;
    delete(url, &q).await;
    Row::rate(name, Kind::Raw, n, elapsed)
        .with("confirms_in_flight", serde_json::json!(in_flight))
        .with("prefetch", serde_json::json!(prefetch))
        .with("ack_every", serde_json::json!(ack_every))
}

pub(crate) async fn e2e_naive(url: &str, n: usize) -> Row {
    let q = queue_name("raw-naive");
    let (pconn, pch) = publisher(url, &q).await;
    let (cconn, cch, mut cons) = consumer(url, &q, 1).await;
    let body = crate::payload();
    let publish = async {
        for _ in 0..n {
            publish_confirmed(&pch, &q, &body).await;
        }
    };
    let consume = async {
        for _ in 0..n {
            let delivery = cons.next().await.expect("stream").expect("delivery");
            cch.basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                .await
                .expect("ack");
        }
    };
    let start = Instant::now();
    tokio::join!(publish, consume);
    let elapsed = start.elapsed();
    close(&[&pconn, &cconn]).await;
    delete(url, &q).await;
    Row::rate(RAW_NAIVE, Kind::Raw, n, elapsed)
}

/// Push-only with `in_flight` confirms outstanding: [`IN_FLIGHT`] for the
/// target's baseline ([`RAW_PUSH`]), or the bus row's 64 pushers for a like-with-like view.
pub(crate) async fn push_only(url: &str, n: usize, in_flight: usize) -> Row {
    let q = queue_name("raw-push");
    let (pconn, pch) = publisher(url, &q).await;
    publish_pipelined(&pch, &q, (n / 10).max(500), in_flight).await;
    let start = Instant::now();
    publish_pipelined(&pch, &q, n, in_flight).await;
    let elapsed = start.elapsed();
    close(&[&pconn]).await;
    delete(url, &q).await;
    let name = if in_flight == IN_FLIGHT {
        RAW_PUSH
    } else {
        RAW_PUSH_64
    };
    Row::rate(name, Kind::Raw, n, elapsed).with("confirms_in_flight", serde_json::json!(in_flight))
}

pub(crate) async fn latency(url: &str, rate: u64, measured_for: Duration) -> Row {
    let q = queue_name("raw-latency");
    let (pconn, pch) = publisher(url, &q).await;
    let (cconn, cch, mut cons) = consumer(url, &q, IN_FLIGHT as u16).await;
    let warm = (rate / 4) as usize;
    let total = warm + (rate as f64 * measured_for.as_secs_f64()) as usize;
    let samples: Arc<Vec<AtomicU64>> =
        Arc::new((0..total).map(|_| AtomicU64::new(u64::MAX)).collect());
    let base = Instant::now();
    let sm = samples.clone();
    let consume = actix::spawn(async move {
        for _ in 0..total {
            let delivery = cons.next().await.expect("stream").expect("delivery");
            record(&sm, base, &delivery.data);
            cch.basic_ack(delivery.delivery_tag, BasicAckOptions::default())
                .await
                .expect("ack");
        }
    });
    let q2 = q.clone();
    paced(total, |i| {
        let (ch, q) = (pch.clone(), q2.clone());
        async move {
            let body = stamped(base, i);
            publish_confirmed(&ch, &q, &body).await;
        }
    })
    .await;
    tokio::time::timeout(Duration::from_secs(60), consume)
        .await
        .expect("raw latency consumer finished")
        .expect("consumer task");
    close(&[&pconn, &cconn]).await;
    delete(url, &q).await;
    latency_row(RAW_LATENCY, &samples, warm)
}
