//! HOCON's syntax through `Config::from_hocon_str` and `Config::from_file`:
//! a document that does not parse is `Error::Config` naming the document,
//! never a panic or a stack overflow; includes, substitutions, merging and
//! comments work as the HOCON spec says.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set, and say
//! so when it has.

use std::time::Duration;

use actorbus::{Config, Error};

use crate::support::config::{config_error, parse, run_test_in_child, TempDir};

#[test]
fn syntax_errors_name_the_document() {
    for text in [
        "queue {",
        "queue.driver = redis }}}",
        "queue.retry.max_attempts = 3\n]\nqueue.driver = redis",
        "include required(\"actorbus-does-not-exist.conf\")",
        "{",
        "[1, 2]",
    ] {
        let (key, message) = config_error(text);
        assert_eq!(key, "application.conf", "{text:?}: {message}");
    }
}

#[test]
fn unquoted_non_ascii_is_read() {
    // hocon 0.9 panicked on this; it is valid HOCON.
    let config = parse("queue.retry.max_attempts = 2\napp.greeting = héllo\nqueue.default = é");
    assert_eq!(config.queue.default, "é");
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
    // Ordinary nesting is fine, and so is the deepest allowed, objects and
    // dotted keys together, on the 2 MiB stack of a test thread.
    parse(&nested(20));
    parse(&format!("{} = 1", vec!["a"; 100].join(".")));
    parse(&format!(
        "{}queue.retry.max_attempts = 3{}",
        "a.b.c { ".repeat(40),
        " }".repeat(40)
    ));
    let too_deep = format!("{}x = 1{}", "a.b.c { ".repeat(43), " }".repeat(43));
    let (key, message) = config_error(&too_deep);
    assert_eq!(key, "application.conf");
    assert!(message.contains("deeper than 128 levels"), "{message}");
    // A long chain of substitutions, resolved recursively, is bounded too.
    let chain = |n: usize| {
        (0..n)
            .map(|i| format!("a{i} = ${{a{}}}\n", i + 1))
            .collect::<String>()
            + &format!("a{n} = 7\nqueue.retry.max_attempts = ${{a0}}")
    };
    assert_eq!(parse(&chain(250)).queue.retry.max_attempts, 7);
    let (_, message) = config_error(&chain(400));
    assert!(message.contains("more than 256 substitutions"), "{message}");
}

#[test]
fn what_hocon_0_9_misread_is_read_right() {
    // Trailing blanks and blanks inside `{ }` are valid HOCON that hocon 0.9
    // refused (and, leniently, read as an empty document).
    let config = parse("queue.retry.max_attempts = 2\n  \t");
    assert_eq!(config.queue.retry.max_attempts, 2);
    let config = parse("app { }\nqueue { retry { } }\nqueue.memory.capacity = 7");
    assert_eq!(config.queue.memory.capacity, 7);
}

#[cfg(feature = "amqp")]
#[test]
fn an_unquoted_url_is_cut_at_its_comment_and_the_error_says_so() {
    // HOCON reads `//` as the start of a comment, even in an unquoted value
    // (the spec, and every implementation): `amqp.url` is "amqp:".
    let (key, message) = config_error("amqp.url = amqp://guest:guest@host/%2f");
    assert_eq!(key, "amqp.url");
    assert!(message.contains("put urls in quotes"), "{message}");
    assert!(!message.contains("guest"), "{message}");
    // Quoted, or with its `//` in quotes, it is read whole.
    let config = parse("amqp.url = \"amqp://guest:guest@host/%2f\"");
    assert_eq!(config.amqp.url, "amqp://guest:guest@host/%2f");
    let config = parse("amqp.url = amqp:\"//guest:guest@host/%2f\"");
    assert_eq!(config.amqp.url, "amqp://guest:guest@host/%2f");
}

#[test]
fn comments_and_object_merging_work() {
    let config = parse(
        "// a comment\n\
         queue { retry { max_attempts = 3 } }  # another\n\
         queue { retry { backoff = 1s }, default = jobs }\n\
         queue.retry { max_backoff = 2s }\n",
    );
    assert_eq!(config.queue.retry.max_attempts, 3);
    assert_eq!(config.queue.retry.backoff, Duration::from_secs(1));
    assert_eq!(config.queue.retry.max_backoff, Duration::from_secs(2));
    assert_eq!(config.queue.default, "jobs");
    // A value replaces an object wholly; a later object merges again.
    let config = parse("queue.retry = null\nqueue.retry { max_attempts = 4 }");
    assert_eq!(config.queue.retry.max_attempts, 4);
    assert_eq!(config.queue.retry.backoff, Duration::from_millis(200));
}

#[test]
fn includes_are_read_relative_to_the_file() {
    let dir = TempDir::new();
    std::fs::create_dir(dir.0.join("conf")).unwrap();
    dir.file(
        "conf/queue.conf",
        "queue.retry.max_attempts = 3\nqueue.default = base",
    );
    dir.file(
        "conf/broker.conf",
        "include \"queue.conf\"\nqueue.memory.capacity = 9",
    );
    let main = dir.file(
        "application.conf",
        "include \"conf/broker.conf\"\ninclude \"missing.conf\"\nqueue.default = jobs",
    );
    let config = Config::from_file(&main).unwrap();
    assert_eq!(config.queue.retry.max_attempts, 3);
    assert_eq!(config.queue.memory.capacity, 9);
    assert_eq!(config.queue.default, "jobs", "the including file wins");
    // A required include that is missing is an error naming the file.
    let strict = dir.file("strict.conf", "include required(\"missing.conf\")");
    match Config::from_file(&strict) {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, strict.display().to_string());
            assert!(message.contains("missing.conf"), "{message}");
        }
        other => panic!("expected Error::Config, got {other:?}"),
    }
    // A file that includes itself is an error, not a loop.
    let looping = dir.file("loop.conf", "include \"loop.conf\"\nqueue.default = x");
    assert!(matches!(
        Config::from_file(&looping),
        Err(Error::Config { .. })
    ));
}

#[test]
fn a_file_that_is_not_utf8_is_a_config_error() {
    let dir = TempDir::new();
    let path = dir.file("latin1.conf", b"queue.default = \"caf\xe9\"\n");
    match Config::from_file(&path) {
        Err(Error::Config { key, message }) => {
            assert_eq!(key, path.display().to_string());
            assert!(message.contains("not utf-8"), "{message}");
            assert!(message.contains("offset 20"), "{message}");
        }
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

/// The variable the substitution tests set in their child process.
const URL_VAR: &str = "ACTORBUS_TEST_SUBSTITUTED_URL";

#[test]
#[ignore = "run by optional_substitutions_read_the_environment with its variable set"]
fn child_reads_a_substitution() {
    let config = parse(&format!(
        "redis.consumer = fallback\nredis.consumer = ${{?{URL_VAR}_UNSET}}\n\
         queue.default = fallback\nqueue.default = ${{?{URL_VAR}}}"
    ));
    assert_eq!(config.queue.default, "from-the-environment");
    #[cfg(feature = "redis")]
    assert_eq!(config.redis.consumer, "fallback");
}

#[test]
fn optional_substitutions_read_the_environment() {
    run_test_in_child(
        "api::config_hocon::child_reads_a_substitution",
        &[(URL_VAR, "from-the-environment")],
    );
    // Without the variable the fallback stays.
    let config = parse(&format!(
        "queue.default = jobs\nqueue.default = ${{?{URL_VAR}}}"
    ));
    assert_eq!(config.queue.default, "jobs");
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
    // Generated inputs, 200,000 of them, are in `config_fuzz.rs`.
}

fn check_no_panic(text: &str) {
    match std::panic::catch_unwind(|| Config::from_hocon_str(text)) {
        Ok(Ok(_)) | Ok(Err(Error::Config { .. })) => {}
        Ok(Err(other)) => panic!("{text:?}: unexpected error kind {other:?}"),
        Err(_) => panic!("{text:?}: Config::from_hocon_str panicked"),
    }
}
