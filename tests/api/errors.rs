//! Every public error path (`Error`, and bad input).
//!
//! Bad input is refused before any I/O with the documented error, and no
//! input makes the library panic.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::{bounded, init_tracing, unique_queue, LIMIT};
use actix::{Actor, Context, Handler};
use actorbus::{Bus, Config, Delivery, Error, HandlerResult, ListenerOptions, PushOptions};

/// Queue names the bus refuses, with the rule each breaks.
fn invalid_names() -> Vec<(String, &'static str)> {
    vec![
        (String::new(), "empty"),
        ("x".repeat(201), "201 bytes"),
        (
            format!("{}x", "é".repeat(100)),
            "201 bytes of multi-byte UTF-8",
        ),
        ("a\nb".to_owned(), "newline"),
        ("tab\there".to_owned(), "tab"),
        ("nul\0byte".to_owned(), "NUL"),
        ("\u{7f}".to_owned(), "DEL"),
        ("esc\u{1b}[0m".to_owned(), "escape"),
        ("amq.x".to_owned(), "amq. prefix"),
        ("amq.gen-123".to_owned(), "amq. prefix"),
        ("jobs.delayed".to_owned(), "the redis delay set of `jobs`"),
        ("jobs.wait.5000".to_owned(), "an amqp wait queue of `jobs`"),
    ]
}

#[track_caller]
fn assert_invalid_name<T: std::fmt::Debug>(
    op: &str,
    name: &str,
    why: &str,
    result: actorbus::Result<T>,
) {
    match result {
        Err(Error::InvalidQueueName {
            name: rejected,
            reason,
        }) => {
            assert_eq!(rejected, name, "{op}: the error names the rejected queue");
            assert!(
                !reason.is_empty(),
                "{op}: the error says which rule was broken"
            );
        }
        other => panic!("{op}({name:?}) [{why}]: expected Err(InvalidQueueName), got {other:?}"),
    }
}

#[track_caller]
fn assert_config_key<T: std::fmt::Debug>(
    result: actorbus::Result<T>,
    expected_key: &str,
) -> String {
    match result {
        Err(Error::Config { key, message }) => {
            assert_eq!(
                key, expected_key,
                "Error::Config names the key (message: {message})"
            );
            message
        }
        other => panic!("expected Err(Config {{ key: {expected_key:?} }}), got {other:?}"),
    }
}

async fn bus() -> Bus {
    Bus::connect(Config::default()).await.expect("memory bus")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_queue_names_are_refused_by_every_call() {
    init_tracing();
    let bus = bus().await;
    for (name, why) in invalid_names() {
        let n = name.as_str();
        assert_invalid_name("push", n, why, bus.push(n, "x").await);
        assert_invalid_name(
            "push_with",
            n,
            why,
            bus.push_with(
                n,
                "x",
                PushOptions::default().with_delay(Duration::from_millis(1)),
            )
            .await,
        );
        assert_invalid_name("push_json", n, why, bus.push_json(n, &[1, 2]).await);
        assert_invalid_name(
            "add_listener",
            n,
            why,
            bus.add_listener(n, |_d: Delivery| async { Ok(()) }).await,
        );
        assert_invalid_name(
            "add_listener_with",
            n,
            why,
            bus.add_listener_with(n, ListenerOptions::default(), |_d: Delivery| async {
                Ok(())
            })
            .await,
        );
        assert_invalid_name(
            "receive",
            n,
            why,
            bounded("receive", LIMIT, bus.receive(n, Duration::from_secs(5))).await,
        );
        assert_invalid_name("remove", n, why, bus.remove(n).await);
        assert_invalid_name("stats", n, why, bus.stats(n).await);
        assert_invalid_name("purge", n, why, bus.purge(n).await);
        assert_invalid_name("peek", n, why, bus.peek(n, 1).await);
        assert_invalid_name("redrive", n, why, bus.redrive(n, 1).await);
    }
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_at_the_limits_are_accepted() {
    let bus = bus().await;
    let names = [
        "x".repeat(200),
        "é".repeat(100),
        "a".to_owned(),
        "amq".to_owned(),
        "xamq.y".to_owned(),
        "orders.dead".to_owned(),
        "with space and ✓".to_owned(),
    ];
    for name in &names {
        let id = bus
            .push(name, "ok")
            .await
            .unwrap_or_else(|e| panic!("{name:?} is valid: {e}"));
        let d = bus.receive(name, LIMIT).await.expect("receive");
        assert_eq!(d.id(), &id);
        assert_eq!(d.queue(), name);
        bus.stats(name).await.expect("stats");
        bus.purge(name).await.expect("purge");
        bus.remove(name).await.expect("remove");
    }
    bus.shutdown().await.expect("shutdown");
}

/// An actor that acknowledges everything, for `subscribe`.
struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<Delivery> for Sink {
    type Result = HandlerResult;

    fn handle(&mut self, _msg: Delivery, _ctx: &mut Context<Self>) -> HandlerResult {
        Ok(())
    }
}

#[actix::test]
async fn subscribe_refuses_invalid_queue_names() {
    let bus = bus().await;
    let sink = Sink.start();
    for (name, why) in invalid_names() {
        assert_invalid_name(
            "subscribe",
            &name,
            why,
            bus.subscribe(&name, sink.clone().recipient()).await,
        );
    }
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_default_queue_is_a_config_error() {
    for (name, why) in invalid_names() {
        let mut config = Config::default();
        config.queue.default = name.clone();
        let message = assert_config_key(Bus::connect(config).await, "queue.default");
        assert!(
            !message.is_empty(),
            "[{why}] the message says what is wrong"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_over_max_payload_is_refused() {
    let mut config = Config::default();
    config.queue.max_payload = 1024;
    config.queue.default = unique_queue("payload-default");
    let default_queue = config.queue.default.clone();
    let bus = Bus::connect(config).await.expect("connect");
    let q = unique_queue("payload");

    let too_large = |r: actorbus::Result<_>, op: &str| match r {
        Err(Error::PayloadTooLarge { size, max }) => {
            assert_eq!(max, 1024, "{op}: the limit is reported");
            size
        }
        other => panic!("{op}: expected Err(PayloadTooLarge), got {other:?}"),
    };
    assert_eq!(too_large(bus.push(&q, vec![7u8; 1025]).await, "push"), 1025);
    assert_eq!(
        too_large(
            bus.push_with(&q, vec![7u8; 1025], PushOptions::default())
                .await,
            "push_with"
        ),
        1025
    );
    assert_eq!(
        too_large(bus.push_default(vec![7u8; 1025]).await, "push_default"),
        1025
    );
    let long = "y".repeat(2000);
    assert!(too_large(bus.push_json(&q, &long).await, "push_json") > 1024);
    // Refused before any I/O: nothing was stored.
    assert_eq!(bus.stats(&q).await.unwrap().ready, 0);
    assert_eq!(bus.stats(&default_queue).await.unwrap().ready, 0);

    // The limit is inclusive.
    let id = bus
        .push(&q, vec![7u8; 1024])
        .await
        .expect("1024 bytes is within the limit");
    let d = bus.receive(&q, LIMIT).await.expect("receive");
    assert_eq!(d.id(), &id);
    assert_eq!(d.payload().len(), 1024);

    let err = bus.push(&q, vec![0u8; 2048]).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "payload of 2048 bytes exceeds queue.max_payload of 1024 bytes"
    );
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_decoding_errors_are_codec() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Order {
        id: u64,
        item: String,
    }

    let bus = bus().await;
    let q = unique_queue("codec");
    bus.push(&q, vec![0x66, 0x6f, 0xff, 0xfe]).await.unwrap();
    bus.push(&q, "{not json").await.unwrap();
    bus.push(&q, r#"{"id": "not a number", "item": 5}"#)
        .await
        .unwrap();
    bus.push(&q, r#"{"id": 1, "item": "tea"}"#).await.unwrap();

    let bad_utf8 = bus.receive(&q, LIMIT).await.unwrap();
    let err = bad_utf8.as_str().unwrap_err();
    assert!(matches!(err, Error::Codec { .. }), "invalid UTF-8: {err:?}");
    let text = err.to_string();
    assert!(text.starts_with("codec error: invalid utf-8"), "{text}");
    assert_eq!(
        crate::support::error_chain(&err),
        [text],
        "one line says it all; the chain does not say it again"
    );
    assert!(matches!(bad_utf8.json::<Order>(), Err(Error::Codec { .. })));

    let bad_json = bus.receive(&q, LIMIT).await.unwrap();
    assert_eq!(bad_json.as_str().unwrap(), "{not json");
    assert!(matches!(bad_json.json::<Order>(), Err(Error::Codec { .. })));
    assert!(matches!(
        bad_json.json::<serde_json::Value>(),
        Err(Error::Codec { .. })
    ));

    let wrong_shape = bus.receive(&q, LIMIT).await.unwrap();
    assert!(matches!(
        wrong_shape.json::<Order>(),
        Err(Error::Codec { .. })
    ));
    assert!(
        wrong_shape.json::<serde_json::Value>().is_ok(),
        "it is valid JSON, only the shape is wrong"
    );

    let good = bus.receive(&q, LIMIT).await.unwrap();
    let order = good.json::<Order>().expect("well-formed");
    assert_eq!((order.id, order.item.as_str()), (1, "tea"));
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_json_of_unserializable_value_is_codec() {
    let bus = bus().await;
    let q = unique_queue("codec-push");
    // JSON object keys must be strings: a tuple key cannot be encoded.
    let value: BTreeMap<(u8, u8), u8> = BTreeMap::from([((1, 2), 3)]);
    let r = bus.push_json(&q, &value).await;
    assert!(
        matches!(r, Err(Error::Codec { .. })),
        "expected Err(Codec), got {r:?}"
    );
    assert_eq!(bus.stats(&q).await.unwrap().ready, 0, "nothing was stored");
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_config_values_are_config_errors_naming_the_key() {
    let mut config = Config::default();
    config.queue.memory.capacity = 0;
    assert_config_key(Bus::connect(config).await, "queue.memory.capacity");

    let mut config = Config::default();
    config.queue.retry.max_attempts = 0;
    assert_config_key(Bus::connect(config).await, "queue.retry.max_attempts");

    let mut config = Config::default();
    config.queue.max_payload = 0;
    assert_config_key(Bus::connect(config).await, "queue.max_payload");

    let mut config = Config::default();
    config.queue.default = "amq.default".to_owned();
    let err = Bus::connect(config).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("invalid config `queue.default`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_messages_are_lowercase() {
    assert_eq!(Error::Timeout.to_string(), "operation timed out");
    assert_eq!(Error::Closed.to_string(), "bus is shut down");

    let bus = bus().await;
    let q = unique_queue("display");
    let mut errors: Vec<Error> = vec![
        bus.receive(&q, Duration::from_millis(20))
            .await
            .unwrap_err(),
        bus.push("", "x").await.unwrap_err(),
        bus.push("amq.q", "x").await.unwrap_err(),
        bus.push_json(&q, &BTreeMap::from([((1u8, 1u8), 1u8)]))
            .await
            .unwrap_err(),
    ];
    let mut config = Config::default();
    config.queue.max_payload = 1;
    errors.push(
        Bus::connect(config)
            .await
            .unwrap()
            .push(&q, "xx")
            .await
            .unwrap_err(),
    );
    let mut config = Config::default();
    config.queue.memory.capacity = 0;
    errors.push(Bus::connect(config).await.unwrap_err());
    bus.shutdown().await.unwrap();
    errors.push(bus.push(&q, "x").await.unwrap_err());

    for err in &errors {
        let text = err.to_string();
        let first = text.chars().next().expect("a message");
        assert!(
            first.is_lowercase(),
            "error messages start lowercase: {text:?}"
        );
        assert!(
            !text.ends_with('.'),
            "error messages have no trailing period: {text:?}"
        );
    }
    let invalid = errors[1].to_string();
    assert!(invalid.starts_with("invalid queue name"), "{invalid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_inputs_do_not_panic() {
    let bus = bus().await;
    let q = unique_queue("extreme");

    // A delay far beyond any timer.
    let opts = PushOptions::default().with_delay(Duration::MAX);
    bus.push_with(&q, "never", opts)
        .await
        .expect("push with Duration::MAX delay");
    assert_eq!(bus.stats(&q).await.unwrap().delayed, 1);
    // A zero delay is no delay.
    let opts = PushOptions::default().with_delay(Duration::ZERO);
    let now = bus
        .push_with(&q, "now", opts)
        .await
        .expect("push with zero delay");
    // A receive with an endless timeout returns as soon as there is a message.
    let d = bounded(
        "receive with Duration::MAX",
        LIMIT,
        bus.receive(&q, Duration::MAX),
    )
    .await
    .expect("receive");
    assert_eq!(d.id(), &now);
    // A zero timeout on an empty queue is a timeout, not a hang.
    let r = bounded(
        "receive with zero timeout",
        LIMIT,
        bus.receive(&q, Duration::ZERO),
    )
    .await;
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    // Concurrency 0 is treated as 1; prefetch 0 is allowed.
    let empty = unique_queue("extreme-listener");
    let listener = bus
        .add_listener_with(
            &empty,
            ListenerOptions {
                concurrency: 0,
                prefetch: Some(0),
            },
            |_d: Delivery| async { Ok(()) },
        )
        .await
        .expect("concurrency 0");
    bus.push(&empty, "handled").await.unwrap();
    crate::support::stats_until(&bus, &empty, "handled with concurrency 0", |s| {
        s.ready + s.in_flight == 0
    })
    .await;
    listener.remove().await.unwrap();
    // An empty header name is refused (no driver can carry it); odd values
    // travel as they are.
    let empty_name = PushOptions::default().with_header("", "empty key");
    assert!(matches!(
        bus.push_with(&q, "empty header name", empty_name).await,
        Err(Error::InvalidHeader { .. })
    ));
    let opts = PushOptions::default().with_header("newline", "a\nb");
    bus.push_with(&q, "odd headers", opts)
        .await
        .expect("odd header values");
    let d = bus.receive(&q, LIMIT).await.unwrap();
    assert_eq!(d.headers().get("newline").map(String::as_str), Some("a\nb"));
    bus.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_error_is_distinct_from_closed() {
    let bus = bus().await;
    let q = unique_queue("timeout");
    let r = bus.receive(&q, Duration::from_millis(30)).await;
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    bus.shutdown().await.unwrap();
    let r = bus.receive(&q, Duration::from_millis(30)).await;
    assert!(matches!(r, Err(Error::Closed)), "{r:?}");
}
