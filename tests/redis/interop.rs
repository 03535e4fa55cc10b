//! The wire format, from outside: a plain `redis-cli XADD <q> '*' payload hello` reaches a
//! listener, an entry without `payload` lands in `<q>.dead` with a why-header
//! (never dropped, never crashing the listener), and what the bus pushes is
//! readable by any client.

use crate::support::redis as redis_support;

use std::time::Duration;

use crate::support::{init_tracing, stats_until, unique_queue, Collector, LIMIT};
use actorbus::PushOptions;
use redis_support::{bus_on, cleanup, cli, SHARED_URL};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_xadd_reaches_a_listener() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let q = unique_queue("interop");
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let entry = cli(&["XADD", &q, "*", "payload", "hello", "source", "cli"]);
    let entry = entry.trim();
    let got = seen.wait_for(1, LIMIT).await;
    assert_eq!(got[0].as_str().unwrap(), "hello");
    assert_eq!(got[0].id().to_string(), entry);
    assert_eq!(got[0].attempt(), 1);
    assert_eq!(got[0].headers()["source"], "cli");
    stats_until(&bus, &q, "acknowledged and deleted", |s| {
        (s.ready, s.in_flight) == (0, 0)
    })
    .await;
    assert_eq!(
        cli(&["XLEN", &q]).trim(),
        "0",
        "acknowledged entries are deleted"
    );
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
    cleanup(&q);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_without_payload_is_dead_lettered_and_the_listener_goes_on() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let q = unique_queue("interop-bad");
    cli(&["XADD", &q, "*", "body", "no payload field"]);
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let stats = stats_until(&bus, &q, "the bad entry in .dead", |s| s.dead == 1).await;
    assert_eq!((stats.ready, stats.in_flight), (0, 0), "{stats:?}");
    let dead = cli(&["XRANGE", &format!("{q}.dead"), "-", "+"]);
    assert!(dead.contains("no payload field"), "kept as it was: {dead}");
    assert!(dead.contains("h:x-error"), "{dead}");
    assert!(
        dead.contains("payload"),
        "the why-header says what is missing: {dead}"
    );

    // The listener still works.
    bus.push(&q, "fine").await.unwrap();
    let got = seen.wait_for(1, LIMIT).await;
    assert_eq!(got[0].as_str().unwrap(), "fine");
    // The dead letter is an ordinary queue: its x-error arrives as a header.
    let d = bus
        .receive(&format!("{q}.dead"), LIMIT)
        .await
        .expect("receive from .dead");
    assert!(
        d.headers()["x-error"].contains("payload"),
        "{:?}",
        d.headers()
    );
    assert_eq!(d.headers()["body"], "no payload field");
    assert!(
        d.payload().is_empty(),
        "an empty payload stands in for the missing one"
    );
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
    cleanup(&q);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_entries_are_plain_stream_entries() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let q = unique_queue("interop-out");
    let opts = PushOptions::default().with_header("tenant", "acme");
    let id = bus.push_with(&q, "bytes unchanged", opts).await.unwrap();
    let entries = cli(&["XRANGE", &q, "-", "+"]);
    for part in [
        "payload",
        "bytes unchanged",
        "id",
        &id.to_string(),
        "attempt",
        "h:tenant",
        "acme",
    ] {
        assert!(entries.contains(part), "{part:?} missing in {entries}");
    }
    // A delayed push waits in the delay set, visible to any client.
    let later = PushOptions::default().with_delay(Duration::from_secs(600));
    bus.push_with(&q, "later", later).await.unwrap();
    assert_eq!(cli(&["ZCARD", &format!("{q}.delayed")]).trim(), "1");
    bus.shutdown().await.unwrap();
    cleanup(&q);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_entry_deleted_by_another_client_is_cleared_not_dead_lettered() {
    init_tracing();
    let q = unique_queue("interop-deleted");
    let consumer = unique_queue("interop-worker");
    // An earlier run of consumer `<consumer>-1` read two entries; someone
    // then deleted one of them with XDEL.
    cli(&["XGROUP", "CREATE", &q, "actorbus", "0", "MKSTREAM"]);
    let gone = cli(&["XADD", &q, "*", "payload", "gone"]);
    cli(&["XADD", &q, "*", "payload", "kept"]);
    let reader = format!("{consumer}-1");
    cli(&[
        "XREADGROUP",
        "GROUP",
        "actorbus",
        &reader,
        "COUNT",
        "2",
        "STREAMS",
        &q,
        ">",
    ]);
    cli(&["XDEL", &q, gone.trim()]);

    let mut config = redis_support::config_on(SHARED_URL);
    config.redis.consumer = consumer;
    let bus = bus_on(SHARED_URL, Some(config)).await;
    let seen = Collector::new();
    let listener = seen.listen(&bus, &q).await;
    let got = seen.wait_for(1, LIMIT).await;
    assert_eq!(
        got[0].as_str().unwrap(),
        "kept",
        "its own pending entry, re-read"
    );
    let s = stats_until(&bus, &q, "nothing pending", |s| s.in_flight == 0).await;
    assert_eq!((s.ready, s.dead), (0, 0), "{s:?}");
    assert_eq!(seen.len(), 1);
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
    cleanup(&q);
}
