//! `Config::from_hocon_str` and `Config::from_file` through the public API (§5, §3.9).
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set, and say
//! so when it has.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actorbus::{Config, DriverKind, Error};

/// The example block of the contract, §5, verbatim.
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

fn assert_no_env_overrides() {
    let set: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("ACTORBUS_") && name.contains("__"))
        .collect();
    assert!(
        set.is_empty(),
        "these tests expect no ACTORBUS_* overrides in the environment, found {set:?}"
    );
}

fn parse(text: &str) -> Config {
    assert_no_env_overrides();
    match Config::from_hocon_str(text) {
        Ok(config) => config,
        Err(err) => panic!("{text:?} should parse, got {err}"),
    }
}

/// The key and message of the `Error::Config` that `text` must give.
fn config_error(text: &str) -> (String, String) {
    assert_no_env_overrides();
    match Config::from_hocon_str(text) {
        Err(Error::Config { key, message }) => (key, message),
        other => panic!("{text:?} should be Error::Config, got {other:?}"),
    }
}

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
fn empty_text_gives_the_defaults() {
    assert_eq!(parse(""), Config::default());
    assert_eq!(
        parse("   \n# just a comment\n// and another\n"),
        Config::default()
    );
    assert_eq!(parse("queue {}"), Config::default());
}

#[test]
fn defaults_are_those_of_the_contract() {
    let config = Config::default();
    let queue = &config.queue;
    assert_eq!(queue.driver, DriverKind::Memory);
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
fn the_contract_example_parses_to_its_documented_values() {
    let config = parse(CONTRACT_EXAMPLE);
    let queue = &config.queue;
    assert_eq!(queue.driver, DriverKind::Amqp);
    assert_eq!(queue.default, "default");
    assert_eq!(queue.max_payload, 16 * 1024 * 1024);
    assert_eq!(queue.push_timeout, Duration::from_secs(10));
    assert_eq!(queue.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(queue.retry.max_attempts, 5);
    assert_eq!(queue.retry.backoff, Duration::from_millis(200));
    assert_eq!(queue.retry.max_backoff, Duration::from_secs(60));
    assert_eq!(queue.memory.capacity, 100_000);
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
        assert_eq!(message, "unknown key", "{text:?}");
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

#[test]
fn syntax_errors_name_the_document() {
    for text in [
        "queue {",
        "queue.driver = redis }}}",
        "queue.retry.max_attempts = 3\n]\nqueue.driver = redis",
        "include \"other.conf\"",
        "{",
        "[1, 2]",
    ] {
        let (key, message) = config_error(text);
        assert_eq!(key, "application.conf", "{text:?}: {message}");
    }
}

#[test]
fn unquoted_non_ascii_is_an_error_not_a_panic() {
    // hocon 0.9 panics on this; the caller gets an error naming the line.
    let (key, message) = config_error("queue.retry.max_attempts = 2\napp.greeting = héllo");
    assert_eq!(key, "application.conf");
    assert!(message.contains("non-ascii text on line 2"), "{message}");
    // Quoted, or in a comment, it is fine.
    let config = parse("# Größe\napp.greeting = \"héllo\"\nqueue.default = \"é\"");
    assert_eq!(config.queue.default, "é");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let nested = |levels: usize| format!("{}x = 1{}", "a { ".repeat(levels), " }".repeat(levels));
    assert_eq!(config_error(&nested(5000)).0, "application.conf");
    let deep_array = format!("app = {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(config_error(&deep_array).0, "application.conf");
    let long_path = format!("{} = 1", vec!["a"; 100_000].join("."));
    assert_eq!(config_error(&long_path).0, "application.conf");
    // Ordinary nesting is fine.
    parse(&nested(20));
    parse(&format!("{} = 1", vec!["a"; 100].join(".")));
}

#[test]
fn what_hocon_0_9_misreads_is_handled() {
    // Trailing blanks and blanks inside `{ }` are valid HOCON that hocon 0.9
    // refuses (and, leniently, reads as an empty document).
    let config = parse("queue.retry.max_attempts = 2\n  \t");
    assert_eq!(config.queue.retry.max_attempts, 2);
    let config = parse("app { }\nqueue { retry { } }\nqueue.memory.capacity = 7");
    assert_eq!(config.queue.memory.capacity, 7);
    // An unquoted URL is cut at `//`, a comment: the error says so.
    let (key, message) = config_error("amqp.url = amqp://guest:guest@host/%2f");
    assert_eq!(key, "application.conf");
    assert!(message.contains("put urls in quotes"), "{message}");
}

#[test]
fn odd_input_never_panics() {
    let fixed = [
        "",
        "=",
        "queue",
        "queue =",
        "queue.driver",
        "queue.driver = ",
        "queue = null",
        "queue = []",
        "queue = [{ driver = redis }]",
        "queue.driver = [1,2]",
        "queue.driver = ${queue.driver}",
        "a = ${b}\nb = ${a}\nqueue.default = ${a}",
        "queue.retry.max_attempts = 1e400",
        "queue.retry.max_attempts = -9223372036854775808",
        "queue.retry.max_attempts = 9223372036854775807",
        "queue.max_payload = 1e308",
        "queue.max_payload = \"1e308\"",
        "queue.max_payload = \"0.0000001\"",
        "queue.push_timeout = \"99999999999999999999999999years\"",
        "queue.push_timeout = 1.5",
        "queue.push_timeout = \"\"",
        "\u{0}",
        "queue.default = \"\\u0000\"",
        "\"queue\" : { \"driver\" : \"redis\" }",
        "{ \"queue\" : { \"retry\" : { \"max_attempts\" : 2 } } }",
        "queue += 1",
        "queue.retry.max_attempts += 1",
        "include required(\"x\")",
        "🦀 = 1",
        "queue.default = 🦀",
    ];
    for text in fixed {
        check_no_panic(text);
    }
    // A small deterministic fuzz over HOCON-ish tokens.
    let tokens = [
        "queue",
        "retry",
        "driver",
        ".",
        "=",
        ":",
        "{",
        "}",
        "[",
        "]",
        ",",
        "\n",
        " ",
        "\"",
        "${",
        "${?",
        "#",
        "//",
        "+=",
        "include",
        "1",
        "-",
        "\\",
        "\"\"\"",
        "null",
        "true",
        "16MiB",
        "10s",
        "1.5",
        "é",
        "\u{0}",
        "${queue}",
        "amqp",
        "redis",
        "max_attempts",
    ];
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..1500 {
        let len = next() % 16 + 1;
        let text: String = (0..len)
            .map(|_| tokens[(next() % tokens.len() as u64) as usize])
            .collect();
        check_no_panic(&text);
    }
}

fn check_no_panic(text: &str) {
    match std::panic::catch_unwind(|| Config::from_hocon_str(text)) {
        Ok(Ok(_)) | Ok(Err(Error::Config { .. })) => {}
        Ok(Err(other)) => panic!("{text:?}: unexpected error kind {other:?}"),
        Err(_) => panic!("{text:?}: Config::from_hocon_str panicked"),
    }
}

/// A file under the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &str) -> TempFile {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "actorbus-config-{}-{nanos}-{}.conf",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).expect("cannot write the temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn from_file_reads_the_contract_example() {
    assert_no_env_overrides();
    let file = TempFile::new(CONTRACT_EXAMPLE);
    let config = Config::from_file(&file.0).unwrap();
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
    let broken = TempFile::new("queue {\n  driver = redis\n");
    match Config::from_file(&broken.0) {
        Err(Error::Config { key, .. }) => assert_eq!(key, broken.0.display().to_string()),
        other => panic!("expected Error::Config, got {other:?}"),
    }
    let bad = TempFile::new("queue.retry.max_attempts = 0\n");
    match Config::from_file(&bad.0) {
        Err(Error::Config { key, .. }) => assert_eq!(key, "queue.retry.max_attempts"),
        other => panic!("expected Error::Config, got {other:?}"),
    }
}
