//! Input checks (queue names, payload sizes), done before any I/O so bad input never reaches a driver.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// Longest queue name, in bytes.
pub(crate) const MAX_QUEUE_NAME: usize = 200;

/// Checks a queue name given by a user.
///
/// The 200-byte limit applies to the name without its `.dead` suffixes, so
/// that the dead-letter queue of a 200-byte queue is as reachable as any
/// other (`<queue>.dead` is an ordinary queue).
pub(crate) fn queue_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > MAX_QUEUE_NAME && without_dead_suffixes(name).len() > MAX_QUEUE_NAME {
        "must be at most 200 bytes"
    } else if has_control(name) {
        "must not contain control characters"
    } else if name.starts_with("amq.") {
        // RabbitMQ reserves the prefix; refusing it everywhere keeps queues
        // portable between drivers.
        "must not start with \"amq.\""
    } else if name.ends_with(DELAYED_SUFFIX) {
        // The redis driver keeps a queue's delayed messages under
        // `<queue>.delayed`; refused on every driver to keep queues portable.
        "must not end with \".delayed\" (the delay set of another queue)"
    } else if is_wait_queue(name) {
        // The amqp driver's TTL wait queues are `<queue>.wait.<ms>`.
        "must not end with \".wait.<digits>\" (a wait queue of another queue)"
    } else if is_lease_queue(name) {
        // The amqp driver's lease queues are `<queue>.lease.<pid>-<time>-<listener>`.
        "must not end with \".lease.<hex>-<hex>-<digits>\" (a lease queue of another queue)"
    } else {
        return Ok(());
    };
    Err(Error::InvalidQueueName {
        name: name.to_owned(),
        reason,
    })
}

/// Whether `name` has a control character. Every push checks its queue's
/// name: printable ASCII, the common case, is one pass over the bytes
/// without decoding UTF-8.
fn has_control(name: &str) -> bool {
    let printable_ascii = name.bytes().all(|b| (0x20..0x7f).contains(&b));
    !printable_ascii && name.chars().any(char::is_control)
}

/// Whether `name` ends like a wait queue: `.wait.` and then only digits.
/// Read from the end (every push checks its queue's name): most names
/// fail at their last byte, and none needs a substring search.
fn is_wait_queue(name: &str) -> bool {
    strip_run(name, |b| b.is_ascii_digit()).is_some_and(|rest| rest.ends_with(WAIT_INFIX))
}

/// Whether `name` ends like a lease queue: `.lease.`, then hex digits,
/// `-`, hex digits, `-`, decimal digits (read from the end, as
/// [`is_wait_queue`]).
fn is_lease_queue(name: &str) -> bool {
    let hex = |b: u8| b.is_ascii_hexdigit();
    strip_run(name, |b| b.is_ascii_digit())
        .and_then(|rest| rest.strip_suffix('-'))
        .and_then(|rest| strip_run(rest, hex))
        .and_then(|rest| rest.strip_suffix('-'))
        .and_then(|rest| strip_run(rest, hex))
        .is_some_and(|rest| rest.ends_with(LEASE_INFIX))
}

/// `name` without the run of trailing bytes that match `class`; `None`
/// when it does not end with at least one.
fn strip_run(name: &str, class: impl Fn(u8) -> bool) -> Option<&str> {
    let run = name.bytes().rev().take_while(|&b| class(b)).count();
    // The run is ASCII, so the cut falls on a character boundary.
    (run > 0).then(|| &name[..name.len() - run])
}

/// Longest header name, in bytes: AMQP carries names as short strings.
const MAX_HEADER_NAME: usize = 255;

/// Checks the headers of a push: names the bus can carry on every driver,
/// none that it reserves for itself (`x-…`).
pub(crate) fn headers(headers: &BTreeMap<String, String>) -> Result<()> {
    for name in headers.keys() {
        let reason = if name.is_empty() {
            "must not be empty"
        } else if name.len() > MAX_HEADER_NAME {
            "must be at most 255 bytes"
        } else if has_control(name) {
            "must not contain control characters"
        } else if name.len() >= 2 && name[..2].eq_ignore_ascii_case("x-") {
            "names starting with \"x-\" are reserved for the bus (x-error, x-attempts, ...)"
        } else {
            continue;
        };
        return Err(Error::InvalidHeader {
            name: name.clone(),
            reason: reason.to_owned(),
        });
    }
    Ok(())
}

/// Checks a topic and a subscriber group given by a user, and names the
/// group's queue, `<topic>.<group>`.
///
/// A group name is not empty, has no control characters and no `.`, so
/// that one queue name never stands for two topic and group pairs; the
/// topic and the group's queue follow the queue-name rules.
pub(crate) fn group_queue(topic: &str, group: &str) -> Result<String> {
    queue_name(topic)?;
    let reason = if group.is_empty() {
        "a group name must not be empty"
    } else if group.contains('.') {
        "a group name must not contain \".\""
    } else if group.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        let queue = format!("{topic}.{group}");
        queue_name(&queue)?;
        return Ok(queue);
    };
    Err(Error::InvalidQueueName {
        name: group.to_owned(),
        reason,
    })
}

/// `name` with every trailing `.dead` removed.
fn without_dead_suffixes(mut name: &str) -> &str {
    while let Some(base) = name.strip_suffix(DEAD_SUFFIX) {
        name = base;
    }
    name
}

/// Checks a payload's size against `queue.max_payload`.
pub(crate) fn payload(size: usize, max: usize) -> Result<()> {
    if size > max {
        return Err(Error::PayloadTooLarge { size, max });
    }
    Ok(())
}

/// The name of a queue's dead-letter queue.
pub(crate) fn dead_letter_name(queue: &str) -> String {
    format!("{queue}{DEAD_SUFFIX}")
}

const DEAD_SUFFIX: &str = ".dead";
const DELAYED_SUFFIX: &str = ".delayed";
const WAIT_INFIX: &str = ".wait.";
/// The infix of the amqp driver's lease queues, `<queue>.lease.<id>`.
pub(crate) const LEASE_INFIX: &str = ".lease.";

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> &'static str {
        match queue_name(name) {
            Err(Error::InvalidQueueName { reason, .. }) => reason,
            other => panic!("expected InvalidQueueName for {name:?}, got {other:?}"),
        }
    }

    #[test]
    fn accepts_ordinary_names() {
        for name in ["a", "orders", "orders.dead", "émoji-✓", &"x".repeat(200)] {
            assert!(queue_name(name).is_ok(), "{name:?} should be valid");
        }
    }

    #[test]
    fn rejects_names_of_driver_internal_keys() {
        assert!(reason("jobs.delayed").contains(".delayed"));
        assert!(reason("jobs.wait.5000").contains(".wait."));
        assert!(reason("jobs.lease.1a2b-18f3c0ffee-7").contains(".lease."));
        for fine in [
            "jobs.lease",
            "jobs.lease.2024",
            "car.lease.a-b-c",
            "jobs.lease.1a-2b-",
            "jobs.wait",
            "jobs.wait.",
            "jobs.wait.5s",
            "delayed",
            "jobs.delayedx",
        ] {
            assert!(queue_name(fine).is_ok(), "{fine:?} should be valid");
        }
    }

    #[test]
    fn checks_header_names() {
        let one = |name: &str| BTreeMap::from([(name.to_owned(), "v".to_owned())]);
        assert!(headers(&one("tenant")).is_ok());
        for bad in ["", "x-attempt", "X-Error", "a\nb"] {
            assert!(
                matches!(headers(&one(bad)), Err(Error::InvalidHeader { .. })),
                "{bad:?} should be refused"
            );
        }
        assert!(headers(&one(&"h".repeat(255))).is_ok());
        assert!(headers(&one(&"h".repeat(256))).is_err());
    }

    #[test]
    fn rejects_each_rule() {
        assert_eq!(reason(""), "must not be empty");
        assert_eq!(reason(&"x".repeat(201)), "must be at most 200 bytes");
        // 100 two-byte chars is 200 bytes: fine; one more byte is not.
        assert!(queue_name(&"é".repeat(100)).is_ok());
        assert_eq!(
            reason(&format!("{}x", "é".repeat(100))),
            "must be at most 200 bytes"
        );
        assert_eq!(reason("a\nb"), "must not contain control characters");
        assert_eq!(reason("tab\t"), "must not contain control characters");
        assert_eq!(reason("\u{7f}"), "must not contain control characters");
        assert_eq!(reason("amq.gen-1"), "must not start with \"amq.\"");
    }

    #[test]
    fn dead_letter_queues_of_long_names_are_valid() {
        let long = "q".repeat(200);
        assert!(queue_name(&dead_letter_name(&long)).is_ok());
        assert!(queue_name(&dead_letter_name(&dead_letter_name(&long))).is_ok());
        // The suffix does not stretch the limit for other names.
        assert_eq!(
            reason(&format!("{long}x.dead")),
            "must be at most 200 bytes"
        );
        assert_eq!(
            reason(&format!("{long}.deadx")),
            "must be at most 200 bytes"
        );
    }

    #[test]
    fn group_queues_are_topic_dot_group() {
        assert_eq!(group_queue("orders", "billing").unwrap(), "orders.billing");
        for (topic, group) in [
            ("orders", ""),
            ("orders", "a.b"),
            ("orders", "x\n"),
            ("", "g"),
        ] {
            assert!(
                matches!(
                    group_queue(topic, group),
                    Err(Error::InvalidQueueName { .. })
                ),
                "{topic:?} / {group:?}"
            );
        }
        let long = "t".repeat(199);
        assert!(
            group_queue(&long, "g").is_err(),
            "the group's queue is too long"
        );
    }

    #[test]
    fn payload_limit_is_inclusive() {
        assert!(payload(10, 10).is_ok());
        assert!(matches!(
            payload(11, 10),
            Err(Error::PayloadTooLarge { size: 11, max: 10 })
        ));
    }
}
