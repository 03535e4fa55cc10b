//! `Config::from_hocon_str` and `Config::from_file` through the public API
//!: the defaults, and what each key reads. Bad values are in
//! `config_errors.rs`, hocon's syntax and its quirks in `config_hocon.rs`.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set, and say
//! so when it has.

use std::time::Duration;

use actorbus::{Config, DriverKind, Error, QueueConfig};

use crate::support::config::{assert_no_env_overrides, parse, TempDir};

/// The example `application.conf` of the README, verbatim.
const CONTRACT_EXAMPLE: &str = r#"
queue.driver = amqp              # memory | amqp | redis
queue.default = default          # the default queue of this connection
queue.max_payload = 16MiB
queue.push_timeout = 10s         # durations in humantime form: 250ms, 10s, 5m
queue.shutdown_timeout = 30s
queue.retry.max_attempts = 5
queue.retry.backoff = 200ms
queue.retry.max_backoff = 1m
queue.memory.capacity = 100000   # per queue; a full queue makes push wait (backpressure)
amqp.url = "amqp://guest:guest@127.0.0.1:5672/%2f"
amqp.prefetch = 256
amqp.heartbeat = 10s
redis.url = "redis://127.0.0.1:6379/0"
redis.pool.max_size = 16
"#;

#[test]
fn empty_text_gives_the_defaults() {
    assert_eq!(parse(""), Config::default());
    assert_eq!(
        parse("   \n# just a comment\n// and another\n"),
        Config::default()
    );
    assert_eq!(parse("queue {}"), Config::default());
}

/// Asserts the `queue.*` values the contract documents, all but
/// `queue.driver`: the defaults, which the contract example also spells out.
#[track_caller]
fn assert_contract_queue_values(queue: &QueueConfig) {
    assert_eq!(queue.default, "default");
    assert_eq!(queue.max_payload, 16 * 1024 * 1024);
    assert_eq!(queue.push_timeout, Duration::from_secs(10));
    assert_eq!(queue.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(queue.retry.max_attempts, 5);
    assert_eq!(queue.retry.backoff, Duration::from_millis(200));
    assert_eq!(queue.retry.max_backoff, Duration::from_secs(60));
    assert_eq!(queue.memory.capacity, 100_000);
}

#[test]
fn defaults_are_those_of_the_contract() {
    let config = Config::default();
    let queue = &config.queue;
    assert_eq!(queue.driver, DriverKind::Memory);
    assert_contract_queue_values(queue);
}

#[test]
fn the_contract_example_parses_to_its_documented_values() {
    let config = parse(CONTRACT_EXAMPLE);
    let queue = &config.queue;
    assert_eq!(queue.driver, DriverKind::Amqp);
    assert_contract_queue_values(queue);
    #[cfg(feature = "amqp")]
    {
        assert_eq!(config.amqp.url, "amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(config.amqp.prefetch, 256);
        assert_eq!(config.amqp.heartbeat, Duration::from_secs(10));
    }
    #[cfg(feature = "redis")]
    {
        assert_eq!(config.redis.url, "redis://127.0.0.1:6379/0");
        assert_eq!(config.redis.pool_max_size, 16);
    }
}

#[test]
fn every_key_is_read() {
    // Values unlike the defaults, so that a key that is not read shows.
    let config = parse(
        r#"
        queue {
          driver = REDIS
          default = "jobs"
          max_payload = 512KiB
          push_timeout = 250ms
          shutdown_timeout = 0
          retry { max_attempts = 3, backoff = 1s, max_backoff = "1h 30m" }
          memory.capacity = 42
        }
        amqp { url = "amqps://broker:5671/vhost", prefetch = 8, heartbeat = 0 }
        redis { url = "unix:///run/redis.sock", pool { max_size = 4 } }
        "#,
    );
    let queue = &config.queue;
    assert_eq!(queue.driver, DriverKind::Redis);
    assert_eq!(queue.default, "jobs");
    assert_eq!(queue.max_payload, 512 * 1024);
    assert_eq!(queue.push_timeout, Duration::from_millis(250));
    assert_eq!(queue.shutdown_timeout, Duration::ZERO);
    assert_eq!(queue.retry.max_attempts, 3);
    assert_eq!(queue.retry.backoff, Duration::from_secs(1));
    assert_eq!(queue.retry.max_backoff, Duration::from_secs(90 * 60));
    assert_eq!(queue.memory.capacity, 42);
    #[cfg(feature = "amqp")]
    {
        assert_eq!(config.amqp.url, "amqps://broker:5671/vhost");
        assert_eq!(config.amqp.prefetch, 8);
        assert_eq!(config.amqp.heartbeat, Duration::ZERO);
    }
    #[cfg(feature = "redis")]
    {
        assert_eq!(config.redis.url, "unix:///run/redis.sock");
        assert_eq!(config.redis.pool_max_size, 4);
    }
}

#[test]
fn values_may_be_quoted_or_not() {
    let config = parse(
        r#"
        queue.driver = "memory"
        queue.retry.max_attempts = "7"
        queue.memory.capacity = "1000"
        queue.push_timeout = "2 s"
        queue.max_payload = "1 MiB"
        "#,
    );
    assert_eq!(config.queue.retry.max_attempts, 7);
    assert_eq!(config.queue.memory.capacity, 1000);
    assert_eq!(config.queue.push_timeout, Duration::from_secs(2));
    assert_eq!(config.queue.max_payload, 1 << 20);
    // A boolean is a string's text, as HOCON reads it.
    assert_eq!(parse("queue.default = true").queue.default, "true");
}

#[test]
fn sizes_follow_hocon_units() {
    let max_payload = |text: &str| {
        parse(&format!("queue.max_payload = {text}"))
            .queue
            .max_payload
    };
    assert_eq!(max_payload("16MiB"), 16 << 20);
    assert_eq!(max_payload("512KiB"), 512 << 10);
    assert_eq!(max_payload("512K"), 512 << 10);
    assert_eq!(max_payload("1MB"), 1_000_000);
    assert_eq!(max_payload("1.5KiB"), 1536);
    assert_eq!(max_payload("1048576"), 1 << 20);
    assert_eq!(max_payload("1e6"), 1_000_000);
    assert_eq!(max_payload("512MiB"), 512 << 20);
    assert_eq!(max_payload("1"), 1);
}

#[test]
fn later_values_and_substitutions_work_as_in_hocon() {
    let config = parse(
        "timeouts.short = 5s\n\
         queue.push_timeout = ${timeouts.short}\n\
         queue.retry.max_attempts = 2\n\
         queue.retry.max_attempts = 4\n",
    );
    assert_eq!(config.queue.push_timeout, Duration::from_secs(5));
    assert_eq!(config.queue.retry.max_attempts, 4);
}

#[test]
fn the_applications_own_keys_are_ignored() {
    let config = parse(
        r#"
        app { name = "shop", db.url = "postgres://x", secret = ${DB_PASSWORD} }
        akka.loglevel = DEBUG
        queues = 5
        queue.retry.max_attempts = 2
        "#,
    );
    assert_eq!(config.queue.retry.max_attempts, 2);
}

#[test]
fn from_file_reads_the_contract_example() {
    assert_no_env_overrides();
    let dir = TempDir::new();
    let file = dir.file("application.conf", CONTRACT_EXAMPLE);
    let config = Config::from_file(&file).unwrap();
    assert_eq!(config, Config::from_hocon_str(CONTRACT_EXAMPLE).unwrap());
    assert_eq!(config.queue.driver, DriverKind::Amqp);
}

#[test]
fn from_file_names_a_missing_file() {
    let path = std::env::temp_dir().join("actorbus-config-does-not-exist/application.conf");
    match Config::from_file(&path) {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, path.display().to_string());
            assert!(message.starts_with("cannot read the file: "), "{message}");
        }
        other => panic!("expected Error::Config, got {other:?}"),
    }
    // A directory is not a file either.
    let dir = std::env::temp_dir();
    assert!(matches!(
        Config::from_file(&dir),
        Err(Error::Config { key, .. }) if key == dir.display().to_string()
    ));
}

#[test]
fn from_file_names_the_file_on_a_syntax_error_and_the_key_on_a_bad_value() {
    let dir = TempDir::new();
    let broken = dir.file("broken.conf", "queue {\n  driver = redis\n");
    match Config::from_file(&broken) {
        Err(Error::Config { key, .. }) => assert_eq!(key, broken.display().to_string()),
        other => panic!("expected Error::Config, got {other:?}"),
    }
    let bad = dir.file("bad.conf", "queue.retry.max_attempts = 0\n");
    match Config::from_file(&bad) {
        Err(Error::Config { key, .. }) => assert_eq!(key, "queue.retry.max_attempts"),
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[test]
fn a_config_reads_back_from_its_serde_form() {
    let config = parse(
        "queue { driver = redis, max_payload = 1MiB, retry.backoff = 1s }\n\
         queue.connections.jobs { driver = memory }\n\
         redis.pool.max_size = 4",
    );
    // The form of the file: durations and sizes as written there.
    let tree = serde_json::to_value(&config).unwrap();
    assert_eq!(tree["queue"]["driver"], "redis");
    assert_eq!(tree["queue"]["max_payload"], "1MiB");
    assert_eq!(tree["queue"]["retry"]["backoff"], "1s");
    assert_eq!(tree["queue"]["retry"]["max_attempts"], 5);
    assert!(tree["queue"].get("connections").is_none());
    #[cfg(feature = "redis")]
    assert_eq!(tree["redis"]["pool"]["max_size"], 4);
    let back: Config = serde_json::from_value(tree).unwrap();
    assert_eq!(back.queue, config.queue);
    assert_eq!(back.connection_names().count(), 0);
    // Any key left out keeps its default; a size may be a number of bytes.
    let partial =
        serde_json::json!({ "queue": { "max_payload": 1024, "retry": { "max_attempts": 3 } } });
    let partial: Config = serde_json::from_value(partial).unwrap();
    assert_eq!(partial.queue.max_payload, 1024);
    assert_eq!(partial.queue.retry.max_attempts, 3);
    assert_eq!(partial.queue.retry.backoff, Duration::from_millis(200));
    let typo = serde_json::json!({ "queue": { "drivr": "redis" } });
    assert!(serde_json::from_value::<Config>(typo).is_err());
}
