//! hocon's syntax through `Config::from_hocon_str`: a document that does
//! not parse is `Error::Config` naming the document, never a panic or a stack
//! overflow, and what hocon 0.9 misreads is read right.
//!
//! These tests set no environment variables (that would race with other
//! tests); they assume the process has no `ACTORBUS_*` override set, and say
//! so when it has.

use actorbus::{Config, Error};

use crate::support::config::{config_error, parse};

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
