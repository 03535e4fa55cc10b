//! Topics and request/reply from outside: a group's entries are readable by
//! any client, a publish by the README's `redis-cli EVAL` line reaches every
//! group, and the bus's reply stream is deleted at shutdown.

use crate::support::redis as redis_support;

use crate::support::{init_tracing, unique_queue, Collector, LIMIT};
use actorbus::Delivery;
use redis_support::{bus_on, cleanup, cli, SHARED_URL};

/// The README's line for publishing to a topic from another client.
const PUBLISH: &str =
    "for _, s in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('XADD', s, '*', unpack(ARGV)) end";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_publish_reaches_every_group() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let topic = unique_queue("topic-interop");
    let seen: Collector<(String, String)> = Collector::new();
    let mut listeners = Vec::new();
    for group in ["a", "b"] {
        let s = seen.clone();
        let l = bus
            .add_subscriber(&topic, group, move |d: Delivery| {
                s.push((group.to_owned(), d.as_str().unwrap_or("?").to_owned()));
                async { Ok(()) }
            })
            .await
            .expect("add_subscriber");
        listeners.push(l);
    }
    let members = cli(&["SMEMBERS", &format!("{topic}.groups")]);
    assert!(members.contains(&format!("{topic}.a")), "{members}");
    let groups = format!("{topic}.groups");
    cli(&["EVAL", PUBLISH, "1", &groups, "payload", "from cli"]);
    let mut got = seen.wait_for(2, LIMIT).await;
    got.sort();
    assert_eq!(
        got,
        [
            ("a".to_owned(), "from cli".to_owned()),
            ("b".to_owned(), "from cli".to_owned())
        ]
    );
    for l in listeners {
        l.remove().await.unwrap();
    }
    bus.shutdown().await.unwrap();
    for key in [groups, format!("{topic}.a"), format!("{topic}.b")] {
        cleanup(&key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_stream_is_deleted_at_shutdown() {
    init_tracing();
    let bus = bus_on(SHARED_URL, None).await;
    let q = unique_queue("request-cleanup");
    let replier = bus.clone();
    let listener = bus
        .add_listener(&q, move |d: Delivery| {
            let bus = replier.clone();
            async move {
                bus.reply(&d, "pong").await?;
                Ok(())
            }
        })
        .await
        .expect("add_listener");
    let reply = bus.request(&q, "ping", LIMIT).await.expect("request");
    let reply_stream = reply.queue().to_owned();
    assert_eq!(cli(&["EXISTS", &reply_stream]).trim(), "1");
    listener.remove().await.unwrap();
    bus.shutdown().await.unwrap();
    assert_eq!(
        cli(&["EXISTS", &reply_stream]).trim(),
        "0",
        "the reply stream {reply_stream} outlived its bus"
    );
    cleanup(&q);
}
