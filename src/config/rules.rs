//! The rule of each key, in one table, applied to a config tree: to the tree
//! as written before it is read (so that an error quotes the value as
//! written), and to the tree of a typed `Config` by [`check`] (so that
//! `Bus::connect` refuses what a file could not say). One table for both, so
//! the two cannot drift.

use std::ops::RangeInclusive;

use serde_json::Value;

use crate::config::duration::{duration, DurationRule};
use crate::config::size::check_size;
use crate::config::tree;
use crate::config::value::{check_integer, check_queue_name, describe};
#[cfg(any(feature = "amqp", feature = "redis"))]
use crate::config::value::{check_url, check_urls};
#[cfg(feature = "redis")]
use crate::config::value::{quote, string};
use crate::config::Config;
use crate::error::{Error, Result};

/// What a key's value must be besides readable as its field's type.
enum Rule {
    /// A whole number in the range.
    Integer(RangeInclusive<u64>),
    /// A size of 1 byte up to this many.
    Size(u64),
    /// A duration keeping the rule.
    Duration(DurationRule),
    /// A queue name, by the rules of a name given to `push`.
    QueueName,
    /// A url with one of these schemes.
    #[cfg(any(feature = "amqp", feature = "redis"))]
    Url(&'static [&'static str]),
    /// Urls, each with one of these schemes.
    #[cfg(any(feature = "amqp", feature = "redis"))]
    Urls(&'static [&'static str]),
    /// See [`check_consumer`].
    #[cfg(feature = "redis")]
    Consumer,
}

/// `amqp.url` and `amqp.urls`.
#[cfg(feature = "amqp")]
const AMQP_SCHEMES: &[&str] = &["amqp://", "amqps://"];
/// `redis.url` and `redis.cluster`.
#[cfg(feature = "redis")]
const REDIS_SCHEMES: &[&str] = &["redis://", "rediss://", "unix://"];
/// `redis.consumer`: longest prefix; consumer names are shown by `XINFO` and
/// carried in every `XREADGROUP`.
#[cfg(feature = "redis")]
const CONSUMER_MAX_LEN: usize = 200;

/// Each key's rule. A key whose type is its whole rule (`queue.driver`,
/// `amqp.queue_type`) has none.
#[rustfmt::skip]
const RULES: &[(&str, Rule)] = &[
    ("queue.default", Rule::QueueName),
    // One message beyond 512 MiB belongs in a blob store, not a queue.
    ("queue.max_payload", Rule::Size(512 * 1024 * 1024)),
    // A push allowed no wait at all would fail on the first full queue or slow broker.
    ("queue.push_timeout", Rule::Duration(DurationRule::Positive)),
    // 0 means shutdown does not wait for handlers.
    ("queue.shutdown_timeout", Rule::Duration(DurationRule::ZeroOrMore)),
    ("queue.idle_timeout", Rule::Duration(DurationRule::ZeroOrMore)),
    // Every message gets at least one delivery.
    ("queue.retry.max_attempts", Rule::Integer(1..=1000)),
    // A zero wait would retry a failing message in a tight loop.
    ("queue.retry.backoff", Rule::Duration(DurationRule::Positive)),
    ("queue.retry.max_backoff", Rule::Duration(DurationRule::Positive)),
    // A queue of no room could never take a push.
    ("queue.memory.capacity", Rule::Integer(1..=100_000_000)),
    #[cfg(feature = "amqp")]
    ("amqp.url", Rule::Url(AMQP_SCHEMES)),
    #[cfg(feature = "amqp")]
    ("amqp.urls", Rule::Urls(AMQP_SCHEMES)),
    // AMQP carries the prefetch in 16 bits, and there 0 means no limit.
    #[cfg(feature = "amqp")]
    ("amqp.prefetch", Rule::Integer(1..=65535)),
    #[cfg(feature = "amqp")]
    ("amqp.heartbeat", Rule::Duration(DurationRule::Heartbeat)),
    // A zero lease would send every redelivered message back at once, as
    // if its handler had died.
    #[cfg(feature = "amqp")]
    ("amqp.redelivery_lease", Rule::Duration(DurationRule::Positive)),
    #[cfg(feature = "redis")]
    ("redis.url", Rule::Url(REDIS_SCHEMES)),
    #[cfg(feature = "redis")]
    ("redis.cluster", Rule::Urls(REDIS_SCHEMES)),
    // More replicas than any deployment has is a typo.
    #[cfg(feature = "redis")]
    ("redis.wait_replicas", Rule::Integer(0..=100)),
    // A pool of no connections could never serve.
    #[cfg(feature = "redis")]
    ("redis.pool.max_size", Rule::Integer(1..=1024)),
    // A zero idle time would take deliveries away from listeners that are handling them.
    #[cfg(feature = "redis")]
    ("redis.claim_idle", Rule::Duration(DurationRule::Positive)),
    #[cfg(feature = "redis")]
    ("redis.consumer", Rule::Consumer),
];

impl Rule {
    /// `Ok` if `value`, at `key`, keeps the rule.
    fn check(&self, key: &str, value: &Value) -> Result<()> {
        match self {
            Rule::Integer(range) => check_integer(key, value, range.clone()),
            Rule::Size(max) => check_size(key, value, *max),
            Rule::Duration(rule) => rule.check(key, value),
            Rule::QueueName => check_queue_name(key, value),
            #[cfg(any(feature = "amqp", feature = "redis"))]
            Rule::Url(schemes) => check_url(key, value, schemes),
            #[cfg(any(feature = "amqp", feature = "redis"))]
            Rule::Urls(schemes) => check_urls(key, value, schemes),
            #[cfg(feature = "redis")]
            Rule::Consumer => check_consumer(key, value),
        }
    }
}

/// Checks every rule of `config`. `Bus::connect` runs it on whatever it is
/// given, as fields are public and a `Config` built in code has met no
/// parser; a value set in code is shown as a file would write it.
pub(crate) fn check(config: &Config) -> Result<()> {
    check_tree(&tree::of(config)?)
}

/// Checks the rule of each key of `tree`, then those between keys. A key
/// that is missing, or under a value that is not an object, is left to the
/// reading, which names it.
pub(crate) fn check_tree(tree: &Value) -> Result<()> {
    for (key, rule) in RULES {
        if let Some(value) = tree::get(tree, key) {
            rule.check(key, value)?;
        }
    }
    check_backoffs(tree)
}

/// `queue.retry.max_backoff` caps a wait that starts at
/// `queue.retry.backoff`, so it may not be less.
fn check_backoffs(tree: &Value) -> Result<()> {
    const BACKOFF: &str = "queue.retry.backoff";
    const MAX_BACKOFF: &str = "queue.retry.max_backoff";
    let (Some(backoff), Some(max_backoff)) =
        (tree::get(tree, BACKOFF), tree::get(tree, MAX_BACKOFF))
    else {
        return Ok(());
    };
    if duration(MAX_BACKOFF, max_backoff)? < duration(BACKOFF, backoff)? {
        return Err(Error::config(
            MAX_BACKOFF,
            format!(
                "{} is less than {BACKOFF} ({})",
                describe(max_backoff),
                describe(backoff)
            ),
        ));
    }
    Ok(())
}

/// `redis.consumer`: empty (the default name), or up to 200 bytes without
/// control characters or spaces, which would make the name hard to pass to
/// `redis-cli`.
#[cfg(feature = "redis")]
fn check_consumer(key: &str, value: &Value) -> Result<()> {
    let consumer = string(key, value)?;
    let problem = if consumer.len() > CONSUMER_MAX_LEN {
        format!("is longer than {CONSUMER_MAX_LEN} bytes")
    } else if consumer
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        "holds a control or space character".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::config(
        key,
        format!("{} {problem}", quote(&consumer)),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::deserializer::Fault;

    /// A key, a value as a file or variable gives it, whether the key's rule
    /// takes it, and the same value set in code.
    type Case = (&'static str, &'static str, bool, fn(&mut Config));

    const YEAR: Duration = Duration::from_secs(31_557_600);
    const NS: Duration = Duration::from_nanos(1);

    /// Values either side of each bound of the `queue.*` keys.
    #[rustfmt::skip]
    fn queue_cases() -> Vec<Case> {
        vec![
            ("queue.default", "", false, |c| c.queue.default = String::new()),
            ("queue.default", "amq.x", false, |c| c.queue.default = "amq.x".into()),
            ("queue.default", "jobs", true, |c| c.queue.default = "jobs".into()),
            ("queue.max_payload", "0", false, |c| c.queue.max_payload = 0),
            ("queue.max_payload", "1", true, |c| c.queue.max_payload = 1),
            ("queue.max_payload", "512MiB", true, |c| c.queue.max_payload = 512 << 20),
            ("queue.max_payload", "536870913", false, |c| c.queue.max_payload = (512 << 20) + 1),
            ("queue.push_timeout", "0s", false, |c| c.queue.push_timeout = Duration::ZERO),
            ("queue.push_timeout", "1ns", true, |c| c.queue.push_timeout = NS),
            ("queue.push_timeout", "1year", true, |c| c.queue.push_timeout = YEAR),
            ("queue.push_timeout", "1year 1ns", false, |c| c.queue.push_timeout = YEAR + NS),
            ("queue.shutdown_timeout", "0s", true, |c| c.queue.shutdown_timeout = Duration::ZERO),
            ("queue.shutdown_timeout", "1year 1ns", false, |c| c.queue.shutdown_timeout = YEAR + NS),
            ("queue.idle_timeout", "0s", true, |c| c.queue.idle_timeout = Duration::ZERO),
            ("queue.idle_timeout", "1year 1ns", false, |c| c.queue.idle_timeout = YEAR + NS),
            ("queue.retry.max_attempts", "0", false, |c| c.queue.retry.max_attempts = 0),
            ("queue.retry.max_attempts", "1", true, |c| c.queue.retry.max_attempts = 1),
            ("queue.retry.max_attempts", "1000", true, |c| c.queue.retry.max_attempts = 1000),
            ("queue.retry.max_attempts", "1001", false, |c| c.queue.retry.max_attempts = 1001),
            ("queue.retry.backoff", "0s", false, |c| c.queue.retry.backoff = Duration::ZERO),
            ("queue.retry.backoff", "1ns", true, |c| c.queue.retry.backoff = NS),
            ("queue.retry.backoff", "2m", false, |c| c.queue.retry.backoff = Duration::from_secs(120)),
            ("queue.retry.max_backoff", "0s", false, |c| c.queue.retry.max_backoff = Duration::ZERO),
            ("queue.retry.max_backoff", "1year 1ns", false, |c| c.queue.retry.max_backoff = YEAR + NS),
            ("queue.memory.capacity", "0", false, |c| c.queue.memory.capacity = 0),
            ("queue.memory.capacity", "1", true, |c| c.queue.memory.capacity = 1),
            ("queue.memory.capacity", "100000000", true, |c| c.queue.memory.capacity = 100_000_000),
            ("queue.memory.capacity", "100000001", false, |c| c.queue.memory.capacity = 100_000_001),
        ]
    }

    /// Values either side of each bound of the `amqp.*` keys.
    #[cfg(feature = "amqp")]
    #[rustfmt::skip]
    fn amqp_cases() -> Vec<Case> {
        vec![
            ("amqp.url", "amqps://h/v", true, |c| c.amqp.url = "amqps://h/v".into()),
            ("amqp.url", "http://u:pw@h/", false, |c| c.amqp.url = "http://u:pw@h/".into()),
            ("amqp.url", "amqp://a b", false, |c| c.amqp.url = "amqp://a b".into()),
            ("amqp.urls", "amqp://a, amqps://b", true, |c| c.amqp.urls = vec!["amqp://a".into(), "amqps://b".into()]),
            ("amqp.urls", "amqp://a, http://b", false, |c| c.amqp.urls = vec!["amqp://a".into(), "http://b".into()]),
            ("amqp.queue_type", "Quorum", true, |c| c.amqp.queue_type = crate::AmqpQueueType::Quorum),
            ("amqp.prefetch", "0", false, |c| c.amqp.prefetch = 0),
            ("amqp.prefetch", "1", true, |c| c.amqp.prefetch = 1),
            ("amqp.prefetch", "65535", true, |c| c.amqp.prefetch = 65535),
            ("amqp.heartbeat", "0s", true, |c| c.amqp.heartbeat = Duration::ZERO),
            ("amqp.heartbeat", "999ms", false, |c| c.amqp.heartbeat = Duration::from_millis(999)),
            ("amqp.heartbeat", "1s", true, |c| c.amqp.heartbeat = Duration::from_secs(1)),
            ("amqp.heartbeat", "18h 12m 15s", true, |c| c.amqp.heartbeat = Duration::from_secs(65535)),
            ("amqp.heartbeat", "18h 12m 16s", false, |c| c.amqp.heartbeat = Duration::from_secs(65536)),
            ("amqp.redelivery_lease", "0s", false, |c| c.amqp.redelivery_lease = Duration::ZERO),
            ("amqp.redelivery_lease", "1ms", true, |c| c.amqp.redelivery_lease = Duration::from_millis(1)),
        ]
    }

    /// Values either side of each bound of the `redis.*` keys.
    #[cfg(feature = "redis")]
    #[rustfmt::skip]
    fn redis_cases() -> Vec<Case> {
        vec![
            ("redis.url", "unix:///r.sock", true, |c| c.redis.url = "unix:///r.sock".into()),
            ("redis.url", "http://cache", false, |c| c.redis.url = "http://cache".into()),
            ("redis.wait_replicas", "100", true, |c| c.redis.wait_replicas = 100),
            ("redis.wait_replicas", "101", false, |c| c.redis.wait_replicas = 101),
            ("redis.pool.max_size", "0", false, |c| c.redis.pool_max_size = 0),
            ("redis.pool.max_size", "1024", true, |c| c.redis.pool_max_size = 1024),
            ("redis.pool.max_size", "1025", false, |c| c.redis.pool_max_size = 1025),
            ("redis.claim_idle", "0s", false, |c| c.redis.claim_idle = Duration::ZERO),
            ("redis.claim_idle", "1ms", true, |c| c.redis.claim_idle = Duration::from_millis(1)),
            ("redis.claim_idle", "1year 1ns", false, |c| c.redis.claim_idle = YEAR + NS),
            ("redis.consumer", "worker-1", true, |c| c.redis.consumer = "worker-1".into()),
            ("redis.consumer", "two words", false, |c| c.redis.consumer = "two words".into()),
            ("redis.consumer", "a\tb", false, |c| c.redis.consumer = "a\tb".into()),
        ]
    }

    #[test]
    fn a_file_and_code_get_the_same_verdict_at_every_bound() {
        let cases = [
            queue_cases(),
            #[cfg(feature = "amqp")]
            amqp_cases(),
            #[cfg(feature = "redis")]
            redis_cases(),
        ]
        .concat();
        for (key, text, valid, set) in cases {
            let written = tree::at(key, Value::String(text.to_owned()));
            let parsed = crate::config::build(&Config::default(), written);
            let mut built = Config::default();
            set(&mut built);
            match (parsed, check(&built)) {
                (Ok(parsed), Ok(())) => {
                    assert!(valid, "{key} = {text:?} should be refused");
                    assert_eq!(parsed, built, "{key} = {text:?}");
                }
                (Err(Fault::Invalid(by_parser)), Err(by_check)) => {
                    assert!(!valid, "{key} = {text:?} should be taken");
                    assert_eq!(by_parser.to_string(), by_check.to_string());
                }
                (by_parser, by_check) => {
                    panic!("{key} = {text:?}: parser {by_parser:?}, check {by_check:?}")
                }
            }
        }
    }

    #[test]
    fn every_key_has_a_rule_or_is_its_type() {
        // A new field must get its rule here, or be a keyword type.
        let keys = tree::leaf_keys(tree::defaults().unwrap());
        let typed = ["queue.driver", "amqp.queue_type"];
        for key in &keys {
            let ruled = RULES.iter().any(|(ruled, _)| ruled == key);
            assert!(ruled || typed.contains(&key.as_str()), "{key} has no rule");
        }
        for (key, _) in RULES {
            assert!(keys.iter().any(|known| known == key), "{key} is no key");
        }
    }
}
