//! Bad values through the public API: each key refuses what breaks
//! its rule with `Error::Config` naming the key and quoting the value, whether
//! the value comes from `application.conf` or is set in code and given to
//! `Bus::connect`.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set, and say
//! so when it has.

use std::time::Duration;

use actorbus::{Bus, Config, Error};

use crate::support::config::{assert_no_env_overrides, config_error};

fn assert_error(text: &str, key: &str, fragment: &str) {
    let (got_key, message) = config_error(text);
    assert_eq!(got_key, key, "{text:?}: {message}");
    assert!(
        message.contains(fragment),
        "{text:?}: message {message:?} should contain {fragment:?}"
    );
    assert!(
        !message.starts_with(char::is_uppercase),
        "messages are lower case: {message:?}"
    );
}

#[test]
fn each_key_rejects_a_bad_value_naming_the_key() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("queue.driver = kafka", "queue.driver", "unknown driver \"kafka\""),
        ("queue.driver = [1, 2]", "queue.driver", "expected a string, found an array"),
        ("queue.driver { a = 1 }", "queue.driver", "found an object"),
        ("queue.default = \"\"", "queue.default", "invalid queue name \"\""),
        ("queue.default = \"amq.gen\"", "queue.default", "amq."),
        ("queue.default = \"a\\nb\"", "queue.default", "control"),
        ("queue.default = null", "queue.default", "expected a string, found null"),
        ("queue.max_payload = 0", "queue.max_payload", "\"0\" is out of range 1..=512MiB"),
        ("queue.max_payload = 1.5", "queue.max_payload", "not a whole number of bytes"),
        ("queue.max_payload = 1e20", "queue.max_payload", "out of range"),
        ("queue.max_payload = 513MiB", "queue.max_payload", "\"513MiB\" is out of range 1..=512MiB"),
        ("queue.max_payload = 1GB", "queue.max_payload", "out of range"),
        ("queue.max_payload = -1", "queue.max_payload", "\"-1\" is out of range"),
        ("queue.max_payload = \"-1KiB\"", "queue.max_payload", "negative"),
        ("queue.max_payload = 16XB", "queue.max_payload", "unknown unit \"XB\""),
        ("queue.max_payload = lots", "queue.max_payload", "invalid size \"lots\""),
        ("queue.max_payload = 99999999999999999999999999", "queue.max_payload", "out of range"),
        ("queue.push_timeout = soon", "queue.push_timeout", "invalid duration \"soon\": expected a number"),
        ("queue.push_timeout = 0", "queue.push_timeout", "more than 0"),
        ("queue.push_timeout = 0s", "queue.push_timeout", "more than 0"),
        ("queue.push_timeout = 10", "queue.push_timeout", "unit is needed"),
        ("queue.push_timeout = 10 parsecs", "queue.push_timeout", "unknown unit \"parsecs\""),
        ("queue.push_timeout = 2years", "queue.push_timeout", "out of range"),
        ("queue.push_timeout = true", "queue.push_timeout", "expected a duration"),
        ("queue.max_payload = true", "queue.max_payload", "expected a size such as 16MiB, found \"true\""),
        ("queue.retry.max_attempts = false", "queue.retry.max_attempts", "expected an integer, found \"false\""),
        ("queue.shutdown_timeout = -5s", "queue.shutdown_timeout", "invalid duration"),
        ("queue.shutdown_timeout = [10s]", "queue.shutdown_timeout", "an array"),
        ("queue.retry.max_attempts = \"five\"", "queue.retry.max_attempts", "invalid integer \"five\""),
        ("queue.retry.max_attempts = 0", "queue.retry.max_attempts", "\"0\" is out of range 1..=1000"),
        ("queue.retry.max_attempts = 1001", "queue.retry.max_attempts", "\"1001\" is out of range 1..=1000"),
        ("queue.retry.max_attempts = -3", "queue.retry.max_attempts", "out of range"),
        ("queue.retry.max_attempts = 2.5", "queue.retry.max_attempts", "whole number"),
        ("queue.retry.max_attempts = 99999999999999999999999", "queue.retry.max_attempts", "out of range"),
        ("queue.retry.max_attempts = { a = 1 }", "queue.retry.max_attempts", "an object"),
        ("queue.retry.backoff = soon", "queue.retry.backoff", "invalid duration \"soon\""),
        ("queue.retry.backoff = 0ms", "queue.retry.backoff", "more than 0"),
        ("queue.retry.max_backoff = fast", "queue.retry.max_backoff", "invalid duration"),
        ("queue.retry.backoff = 2m\nqueue.retry.max_backoff = 1m", "queue.retry.max_backoff", "less than queue.retry.backoff"),
        ("queue.retry.backoff = 2m", "queue.retry.max_backoff", "less than queue.retry.backoff"),
        ("queue.memory.capacity = 0", "queue.memory.capacity", "\"0\" is out of range 1..=100000000"),
        ("queue.memory.capacity = 100000001", "queue.memory.capacity", "out of range"),
        ("queue.memory.capacity = many", "queue.memory.capacity", "invalid integer \"many\""),
        ("queue.push_timeout = ${NOT_DEFINED}", "queue.push_timeout", "unresolved substitution ${NOT_DEFINED}"),
        ("queue = 5", "queue", "expected an object, found \"5\""),
        ("queue.retry = 5", "queue.retry", "expected an object"),
        ("queue.memory = [1]", "queue.memory", "expected an object, found an array"),
    ];
    for (text, key, fragment) in cases {
        assert_error(text, key, fragment);
    }
}

#[cfg(feature = "amqp")]
#[test]
fn amqp_keys_reject_bad_values() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("amqp.url = \"http://broker\"", "amqp.url", "start with amqp:// or amqps://"),
        ("amqp.url = \"amqp://a b\"", "amqp.url", "whitespace"),
        ("amqp.url = 5", "amqp.url", "invalid url \"5\""),
        ("amqp.prefetch = 0", "amqp.prefetch", "\"0\" is out of range 1..=65535"),
        ("amqp.prefetch = 65536", "amqp.prefetch", "out of range"),
        ("amqp.prefetch = lots", "amqp.prefetch", "invalid integer"),
        ("amqp.heartbeat = soon", "amqp.heartbeat", "invalid duration"),
        ("amqp.heartbeat = 500ms", "amqp.heartbeat", "0 (off) or 1s..=65535s"),
        ("amqp.heartbeat = 1d", "amqp.heartbeat", "out of range"),
        ("amqp = true", "amqp", "expected an object"),
    ];
    for (text, key, fragment) in cases {
        assert_error(text, key, fragment);
    }
    // The password stays out of the message.
    let (_, message) = config_error("amqp.url = \"http://guest:hunter2@broker/\"");
    assert!(!message.contains("hunter2"), "{message}");
}

#[cfg(feature = "redis")]
#[test]
fn redis_keys_reject_bad_values() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str)] = &[
        ("redis.url = \"http://cache\"", "redis.url", "redis:// or rediss:// or unix://"),
        ("redis.url = [\"redis://a\"]", "redis.url", "an array"),
        ("redis.pool.max_size = 0", "redis.pool.max_size", "\"0\" is out of range 1..=1024"),
        ("redis.pool.max_size = 1025", "redis.pool.max_size", "out of range"),
        ("redis.pool.max_size = \"x\"", "redis.pool.max_size", "invalid integer \"x\""),
        ("redis.pool = 3", "redis.pool", "expected an object"),
    ];
    for (text, key, fragment) in cases {
        assert_error(text, key, fragment);
    }
}

#[test]
fn unknown_keys_in_our_objects_are_errors() {
    let mut cases = vec![
        ("queue.retry.max_attemps = 3", "queue.retry.max_attemps"),
        ("queue.drivr = redis", "queue.drivr"),
        ("queue.memory.capacty = 3", "queue.memory.capacty"),
        ("queue { colour { a = 1 } }", "queue.colour"),
    ];
    if cfg!(feature = "amqp") {
        cases.push(("amqp.uri = \"amqp://x\"", "amqp.uri"));
    }
    if cfg!(feature = "redis") {
        cases.push(("redis.pool.size = 3", "redis.pool.size"));
    }
    for (text, key) in cases {
        let (got_key, message) = config_error(text);
        assert_eq!(got_key, key, "{text:?}");
        assert!(message.starts_with("unknown key"), "{text:?}: {message}");
    }
    // A near miss says what was meant.
    let (_, message) = config_error("queue.retry.max_attemps = 3");
    assert_eq!(
        message,
        "unknown key: did you mean `queue.retry.max_attempts`?"
    );
    let (_, message) = config_error("queue { colour { a = 1 } }");
    assert_eq!(message, "unknown key");
    if cfg!(feature = "redis") {
        let (_, message) = config_error("redis.pool.size = 3");
        assert_eq!(message, "unknown key: did you mean `redis.pool.max_size`?");
    }
}

#[test]
fn errors_display_the_key_and_the_value() {
    let err = Config::from_hocon_str("queue.retry.backoff = soon").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config `queue.retry.backoff`: invalid duration \"soon\": expected a number"
    );
}

/// The key and message of the `Error::Config` that `Bus::connect` must give.
async fn connect_error(config: Config) -> (String, String) {
    match Bus::connect(config).await {
        Err(Error::Config { key, message }) => (key, message),
        Err(other) => panic!("expected Error::Config, got {other:?}"),
        Ok(bus) => {
            let _ = bus.shutdown().await;
            panic!("expected Error::Config, got a bus");
        }
    }
}

/// Sets one value of a `Config` in code.
type Set = fn(&mut Config);

/// A key, part of the message its error must have, and a bad value set in code.
type CodeCase = (&'static str, &'static str, Set);

const YEAR: Duration = Duration::from_secs(31_557_600);

#[rustfmt::skip]
fn queue_code_cases() -> Vec<CodeCase> {
    vec![
        ("queue.memory.capacity", "\"0\" is out of range 1..=100000000", |c| c.queue.memory.capacity = 0),
        ("queue.retry.max_attempts", "\"0\" is out of range 1..=1000", |c| c.queue.retry.max_attempts = 0),
        ("queue.retry.max_attempts", "\"1001\" is out of range 1..=1000", |c| c.queue.retry.max_attempts = 1001),
        ("queue.max_payload", "\"0\" is out of range 1..=512MiB", |c| c.queue.max_payload = 0),
        ("queue.max_payload", "\"513MiB\" is out of range 1..=512MiB", |c| c.queue.max_payload = 513 << 20),
        ("queue.retry.backoff", "\"0s\" is out of range: must be more than 0", |c| c.queue.retry.backoff = Duration::ZERO),
        ("queue.retry.max_backoff", "\"1s\" is less than queue.retry.backoff (\"2s\")", |c| {
            c.queue.retry.backoff = Duration::from_secs(2);
            c.queue.retry.max_backoff = Duration::from_secs(1);
        }),
        ("queue.push_timeout", "\"0s\" is out of range: must be more than 0", |c| c.queue.push_timeout = Duration::ZERO),
        ("queue.shutdown_timeout", "\"2years\" is out of range 0..=1year", |c| c.queue.shutdown_timeout = 2 * YEAR),
        ("queue.default", "invalid queue name \"amq.x\"", |c| c.queue.default = "amq.x".to_owned()),
    ]
}

#[cfg(feature = "amqp")]
#[rustfmt::skip]
fn amqp_code_cases() -> Vec<CodeCase> {
    vec![
        ("amqp.prefetch", "\"0\" is out of range 1..=65535", |c| c.amqp.prefetch = 0),
        ("amqp.heartbeat", "\"500ms\" is out of range: 0 (off) or 1s..=65535s", |c| c.amqp.heartbeat = Duration::from_millis(500)),
        ("amqp.url", "invalid url \"http://u:***@h/\"", |c| c.amqp.url = "http://u:secret@h/".to_owned()),
    ]
}

#[cfg(feature = "redis")]
#[rustfmt::skip]
fn redis_code_cases() -> Vec<CodeCase> {
    vec![
        ("redis.pool.max_size", "\"1025\" is out of range 1..=1024", |c| c.redis.pool_max_size = 1025),
        ("redis.url", "expected it to start with redis://", |c| c.redis.url = "http://cache".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_built_configs_are_refused_naming_the_key() {
    let cases = [
        queue_code_cases(),
        #[cfg(feature = "amqp")]
        amqp_code_cases(),
        #[cfg(feature = "redis")]
        redis_code_cases(),
    ]
    .concat();
    for (key, fragment, set) in cases {
        let mut config = Config::default();
        set(&mut config);
        let (got_key, message) = connect_error(config).await;
        assert_eq!(got_key, key, "{message}");
        assert!(
            message.contains(fragment),
            "{key}: message {message:?} should contain {fragment:?}"
        );
        assert!(!message.contains("secret"), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_built_and_parsed_configs_get_the_same_error() {
    #[rustfmt::skip]
    let cases: &[(&str, Set)] = &[
        ("queue.memory.capacity = 0", |c| c.queue.memory.capacity = 0),
        ("queue.retry.max_attempts = 1001", |c| c.queue.retry.max_attempts = 1001),
        ("queue.max_payload = 0", |c| c.queue.max_payload = 0),
        ("queue.retry.backoff = 0s", |c| c.queue.retry.backoff = Duration::ZERO),
        ("queue.retry.backoff = 2m", |c| c.queue.retry.backoff = Duration::from_secs(120)),
        #[cfg(feature = "amqp")]
        ("amqp.prefetch = 0", |c| c.amqp.prefetch = 0),
    ];
    for (text, set) in cases {
        assert_no_env_overrides();
        let parsed = Config::from_hocon_str(text).unwrap_err();
        let mut config = Config::default();
        set(&mut config);
        let built = Bus::connect(config).await.unwrap_err();
        assert_eq!(parsed.to_string(), built.to_string(), "{text}");
    }
}
