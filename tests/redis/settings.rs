//! Bad redis settings give typed errors within 5 s, and the BLOCK-timeout
//! pitfall: a listener idle longer than redis 1.x's default 500 ms response
//! timeout keeps working.

use crate::support::redis as redis_support;

use std::time::Duration;

use crate::support::{bounded, init_tracing, unique_queue, Collector, LIMIT};
use actorbus::{Bus, Error, ListenerOptions};
use redis_support::{cleanup, config_on, free_port, SHARED_URL};

/// The bound the issue sets for each bad setting.
const FIVE_SECONDS: Duration = Duration::from_secs(5);

async fn connect_error(url: &str) -> Error {
    let connected = bounded(
        &format!("Bus::connect({url})"),
        FIVE_SECONDS,
        Bus::connect(config_on(url)),
    )
    .await;
    match connected {
        Ok(bus) => panic!("connected to {url}: {bus:?}"),
        Err(error) => error,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_a_backend_error() {
    init_tracing();
    // The shared Redis has no password: AUTH fails either way.
    for url in [
        "redis://:wrong@127.0.0.1:6379/0",
        "redis://nobody:wrong@127.0.0.1:6379/0",
    ] {
        let error = connect_error(url).await;
        let text = error.to_string();
        assert!(matches!(error, Error::Backend { .. }), "{url}: {error:?}");
        assert!(text.contains("cannot connect to Redis"), "{text}");
        assert!(!text.contains("wrong"), "the password leaked into {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_port_is_a_backend_error() {
    init_tracing();
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let error = connect_error(&url).await;
    assert!(matches!(error, Error::Backend { .. }), "{error:?}");
    assert!(error.to_string().contains(&url), "{error}");
}

/// The whole report of a refused connection (and of a refused password)
/// says each thing once: the redis error prints its cause and returns it
/// too, the bus's error does not repeat it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_reads_once() {
    init_tracing();
    let url = format!("redis://127.0.0.1:{}/0", free_port());
    let error = connect_error(&url).await;
    let report = crate::support::assert_reads_once(&error, "refused");
    eprintln!("refused connection: {report}");

    let error = connect_error("redis://:wrong@127.0.0.1:6379/0").await;
    let report = crate::support::assert_reads_once(&error, "authentication failed");
    eprintln!("refused password: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_url_is_a_config_error_naming_redis_url() {
    init_tracing();
    for url in [
        "redis://[::1",
        "redis://127.0.0.1:99999/0",
        "redis://127.0.0.1:6379/notadb",
    ] {
        match connect_error(url).await {
            Error::Config { key, message } => {
                assert_eq!(key, "redis.url", "{message}");
            }
            other => panic!("{url}: expected Error::Config, got {other:?}"),
        }
    }
    // A scheme the driver does not speak is refused before any I/O.
    match connect_error("http://127.0.0.1:6379").await {
        Error::Config { key, .. } => assert_eq!(key, "redis.url"),
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_listener_outlives_the_block_timeout() {
    init_tracing();
    let mut config = config_on(SHARED_URL);
    let consumer = unique_queue("idle-consumer");
    config.redis.consumer = consumer.clone();
    let bus = Bus::connect(config).await.expect("connect");
    let q = unique_queue("idle-listener");
    let seen = Collector::new();
    let listener = bus
        .add_listener_with(&q, ListenerOptions::default(), seen.handler())
        .await
        .expect("add_listener");
    // Longer than redis 1.x's default 500 ms response timeout and than one
    // whole BLOCK of the driver's reads.
    // Its reader's connection is named after its consumer.
    let reader = format!("name={consumer}-");
    crate::support::eventually("the reader connected", LIMIT, || async {
        reader_connection(&reader).is_some()
    })
    .await;
    let before = reader_connection(&reader);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        reader_connection(&reader),
        before,
        "the idle reader's connection was replaced: its blocking read timed out"
    );
    for i in 0..3u32 {
        bus.push(&q, i.to_be_bytes().to_vec()).await.expect("push");
        seen.wait_for(i as usize + 1, LIMIT).await;
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let stats = bus.stats(&q).await.expect("stats");
    assert_eq!(
        (stats.ready, stats.in_flight, stats.listeners),
        (0, 0, 1),
        "{stats:?}"
    );
    // And a receive longer than 500 ms waits rather than failing.
    let waited = bus.receive(&q, Duration::from_millis(1500)).await;
    assert!(matches!(waited, Err(Error::Timeout)), "{waited:?}");
    listener.remove().await.expect("remove");
    bus.shutdown().await.expect("shutdown");
    cleanup(&q);
}

/// The `id=` of the connection whose `CLIENT LIST` line holds `name`.
fn reader_connection(name: &str) -> Option<String> {
    redis_support::cli(&["CLIENT", "LIST"])
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split(' ').next().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durability_shows_in_stats() {
    init_tracing();
    let appendonly = redis_support::cli(&["CONFIG", "GET", "appendonly"]);
    let bus = Bus::connect(config_on(SHARED_URL)).await.expect("connect");
    let q = unique_queue("durable");
    let stats = bus.stats(&q).await.expect("stats");
    assert_eq!(
        stats.durable,
        appendonly.contains("yes"),
        "{appendonly:?} {stats:?}"
    );
    bus.shutdown().await.expect("shutdown");
    cleanup(&q);
}
