//! The Prometheus exporter (feature `metrics`): a scrape over HTTP shows the
//! bus's counters moving as messages flow. Counting itself is checked on
//! every driver by the conformance suite (`metrics.rs` there).

use actorbus::Bus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::metrics::{prometheus, value};
use crate::support::{bounded, eventually, unique_queue, Collector, LIMIT};

/// `GET /metrics` from the exporter's HTTP listener, as Prometheus does.
async fn scrape() -> String {
    let mut stream = TcpStream::connect(prometheus().addr)
        .await
        .expect("the exporter listens");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_the_counters_move() {
    prometheus();
    let bus = Bus::memory();
    let q = unique_queue("scrape");
    let handled = Collector::new();
    handled.listen(&bus, &q).await;
    let count = |text: &str, name: &str| value(text, name, &q, "memory");

    bus.push(&q, "one").await.expect("push");
    handled.wait_for(1, LIMIT).await;
    eventually("the first ack scraped", LIMIT, || async {
        count(&scrape().await, "actorbus_acked_total") == Some(1.0)
    })
    .await;

    bus.push(&q, "two").await.expect("push");
    bus.push(&q, "three").await.expect("push");
    handled.wait_for(3, LIMIT).await;
    eventually("three acks scraped", LIMIT, || async {
        count(&scrape().await, "actorbus_acked_total") == Some(3.0)
    })
    .await;
    let text = scrape().await;
    assert_eq!(count(&text, "actorbus_pushed_total"), Some(3.0), "{text}");
    assert_eq!(
        count(&text, "actorbus_delivered_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        count(&text, "actorbus_handler_seconds_count"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(count(&text, "actorbus_listeners"), Some(1.0), "{text}");
    assert!(
        text.contains("# TYPE actorbus_acked_total counter"),
        "the exporter knows the kinds: {text}"
    );
    bounded("shutdown", LIMIT, bus.shutdown())
        .await
        .expect("shutdown");
}
