//! Named connections (`queue.connections.<name> { … }`) through
//! `Config::connection`: each a driver, a default queue and any key over the
//! top-level ones; an unknown name or key is `Error::Config` naming it.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set.

use std::time::Duration;

use actorbus::{Bus, Config, DriverKind, Error};

use crate::support::config::{config_error, parse};

/// The example of named connections in the README, verbatim.
const README_EXAMPLE: &str = r#"
queue.retry.max_attempts = 7
queue.connections {
  jobs   { driver = amqp,   default = "jobs" }
  events { driver = redis,  redis.url = "redis://10.0.0.7:6379/0" }
  local  { driver = memory }
}
"#;

#[track_caller]
fn connection_error(config: &Config, name: &str) -> (String, String) {
    match config.connection(name) {
        Err(Error::Config { key, message }) => (key, message),
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[test]
fn each_connection_is_its_keys_over_the_top_level() {
    let config = parse(README_EXAMPLE);
    assert_eq!(
        config.connection_names().collect::<Vec<_>>(),
        ["events", "jobs", "local"]
    );
    // The top level is untouched.
    assert_eq!(config.queue.driver, DriverKind::Memory);
    assert_eq!(config.queue.default, "default");
    let jobs = config.connection("jobs").unwrap();
    assert_eq!(jobs.queue.driver, DriverKind::Amqp);
    assert_eq!(jobs.queue.default, "jobs");
    assert_eq!(
        jobs.queue.retry.max_attempts, 7,
        "top-level keys carry over"
    );
    let events = config.connection("events").unwrap();
    assert_eq!(events.queue.driver, DriverKind::Redis);
    assert_eq!(events.queue.default, "default");
    #[cfg(feature = "redis")]
    assert_eq!(events.redis.url, "redis://10.0.0.7:6379/0");
    let local = config.connection("local").unwrap();
    assert_eq!(local.queue.driver, DriverKind::Memory);
    // A connection's config has no connections of its own.
    assert_eq!(local.connection_names().count(), 0);
}

#[test]
fn any_key_may_be_overridden_long_or_short() {
    let config = parse(
        "queue.connections.slow {\n\
           retry.max_attempts = 2\n\
           queue.retry.backoff = 1s\n\
           push_timeout = 1m\n\
           memory.capacity = 5\n\
         }\n\
         queue.connections.empty {}",
    );
    let slow = config.connection("slow").unwrap();
    assert_eq!(slow.queue.retry.max_attempts, 2);
    assert_eq!(slow.queue.retry.backoff, Duration::from_secs(1));
    assert_eq!(slow.queue.push_timeout, Duration::from_secs(60));
    assert_eq!(slow.queue.memory.capacity, 5);
    assert_eq!(config.connection("empty").unwrap().queue, config.queue);
}

#[test]
fn an_unknown_connection_names_its_key() {
    let config = parse(README_EXAMPLE);
    let (key, message) = connection_error(&config, "job");
    assert_eq!(key, "queue.connections.job");
    assert_eq!(message, "no such connection: did you mean `jobs`?");
    let (key, message) = connection_error(&config, "archive");
    assert_eq!(key, "queue.connections.archive");
    assert!(message.contains("events, jobs, local"), "{message}");
    let (key, message) = connection_error(&Config::default(), "jobs");
    assert_eq!(key, "queue.connections.jobs");
    assert!(message.contains("none is configured"), "{message}");
}

#[test]
fn a_bad_connection_fails_the_whole_config_naming_its_key() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("queue.connections.jobs { drivr = amqp }", "queue.connections.jobs.drivr", "unknown key: did you mean `driver`?"),
        ("queue.connections.jobs { driver = kafka }", "queue.connections.jobs.driver", "unknown driver \"kafka\""),
        ("queue.connections.jobs { retry.max_attempts = 0 }", "queue.connections.jobs.retry.max_attempts", "\"0\" is out of range 1..=1000"),
        ("queue.connections.jobs { queue.retry.max_attempts = 0 }", "queue.connections.jobs.queue.retry.max_attempts", "\"0\" is out of range 1..=1000"),
        ("queue.connections.jobs { queue.drivr = amqp }", "queue.connections.jobs.queue.drivr", "unknown key: did you mean `queue.driver`?"),
        ("queue.connections.jobs { retry = 5 }", "queue.connections.jobs.retry", "expected an object, found \"5\""),
        ("queue.connections.jobs { retry.backoff = 2m }", "queue.connections.jobs.queue.retry.max_backoff", "less than queue.retry.backoff"),
        ("queue.connections.jobs { default = \"amq.x\" }", "queue.connections.jobs.default", "invalid queue name"),
        ("queue.connections.jobs = 5", "queue.connections.jobs", "expected an object"),
        ("queue.connections = 5", "queue.connections", "expected an object"),
        ("queue.connections.jobs { connections.other { } }", "queue.connections.jobs.connections", "unknown key"),
    ];
    for (text, key, fragment) in cases {
        let (got_key, message) = config_error(text);
        assert_eq!(got_key, *key, "{text}: {message}");
        assert!(
            message.contains(fragment),
            "{text}: {message:?} should contain {fragment:?}"
        );
    }
}

#[test]
fn a_connection_is_laid_over_the_config_as_adjusted_in_code() {
    let mut config = parse("queue.connections { jobs { default = jobs } }");
    config.queue.retry.max_attempts = 3;
    config.queue.default = "other".to_owned();
    let jobs = config.connection("jobs").unwrap();
    assert_eq!(jobs.queue.retry.max_attempts, 3);
    assert_eq!(jobs.queue.default, "jobs", "the connection's key wins");
    // A value set in code is checked with the connection.
    config.queue.retry.max_attempts = 0;
    let (key, message) = connection_error(&config, "jobs");
    assert_eq!(key, "queue.connections.jobs.queue.retry.max_attempts");
    assert!(message.contains("out of range"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_per_connection() {
    let config = parse(
        "queue.connections { a { driver = memory, default = first }, b { driver = memory } }",
    );
    let a = Bus::connect(config.connection("a").unwrap()).await.unwrap();
    let b = Bus::connect(config.connection("b").unwrap()).await.unwrap();
    a.push_default("one").await.unwrap();
    assert_eq!(a.stats("first").await.unwrap().ready, 1);
    assert_eq!(
        b.stats("first").await.unwrap().ready,
        0,
        "buses are separate"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
