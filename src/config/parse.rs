//! Settings applied to a `Config` key by key, and the rules every `Config`
//! keeps, whether parsed or built in code.
//!
//! Each key's rule is a constant here, used by [`apply`] while parsing (so an
//! error quotes the value as written) and by [`check`] on a typed `Config` (so
//! `Bus::connect` refuses what a file could not say): the two cannot drift.

use std::ops::RangeInclusive;

#[cfg(feature = "amqp")]
use crate::config::amqp::{AmqpConfig, AmqpQueueType};
use crate::config::duration::{check_duration, duration, quote_duration, DurationRule};
#[cfg(feature = "redis")]
use crate::config::redis::RedisConfig;
use crate::config::size::{check_size, size};
#[cfg(any(feature = "amqp", feature = "redis"))]
use crate::config::value::string;
use crate::config::value::{check_integer, check_queue_name, driver, integer, queue_name, Value};
#[cfg(any(feature = "amqp", feature = "redis"))]
use crate::config::value::{check_url, check_urls, url, urls};
use crate::config::{Config, MemoryConfig, QueueConfig, RetryConfig};
use crate::error::{Error, Result};

/// `queue.max_payload`, in bytes: 512 MiB at most; one message beyond that
/// belongs in a blob store, not a queue.
const MAX_PAYLOAD: u64 = 512 * 1024 * 1024;
/// `queue.push_timeout`: a push allowed no wait at all would fail on the
/// first full queue or slow broker.
const PUSH_TIMEOUT: DurationRule = DurationRule::Positive;
/// `queue.shutdown_timeout`: 0 means shutdown does not wait for handlers.
const SHUTDOWN_TIMEOUT: DurationRule = DurationRule::ZeroOrMore;
/// `queue.retry.max_attempts`: every message gets at least one delivery.
const MAX_ATTEMPTS: RangeInclusive<u64> = 1..=1000;
/// `queue.retry.backoff` and `queue.retry.max_backoff`: a zero wait would
/// retry a failing message in a tight loop.
const BACKOFF: DurationRule = DurationRule::Positive;
/// `queue.memory.capacity`: a queue of no room could never take a push.
const CAPACITY: RangeInclusive<u64> = 1..=100_000_000;
/// `amqp.url`.
#[cfg(feature = "amqp")]
const AMQP_SCHEMES: &[&str] = &["amqp://", "amqps://"];
/// `amqp.prefetch`: AMQP carries it in 16 bits, and there 0 means no limit.
#[cfg(feature = "amqp")]
const PREFETCH: RangeInclusive<u64> = 1..=65535;
/// `amqp.heartbeat`.
#[cfg(feature = "amqp")]
const HEARTBEAT: DurationRule = DurationRule::Heartbeat;
/// `redis.url`.
#[cfg(feature = "redis")]
const REDIS_SCHEMES: &[&str] = &["redis://", "rediss://", "unix://"];
/// `redis.pool.max_size`: a pool of no connections could never serve.
#[cfg(feature = "redis")]
const POOL_MAX_SIZE: RangeInclusive<u64> = 1..=1024;
/// `redis.claim_idle`: a zero idle time would take deliveries away from
/// listeners that are handling them.
#[cfg(feature = "redis")]
const CLAIM_IDLE: DurationRule = DurationRule::Positive;
/// `redis.wait_replicas`: more replicas than any deployment has is a typo.
#[cfg(feature = "redis")]
const WAIT_REPLICAS: RangeInclusive<u64> = 0..=100;
/// `redis.consumer`: longest prefix; consumer names are shown by `XINFO` and
/// carried in every `XREADGROUP`.
#[cfg(feature = "redis")]
const CONSUMER_MAX_LEN: usize = 200;

/// Every key that holds a value, as the compiled features have them: what
/// [`apply`] sets, and what a typo is compared with.
pub(crate) const KEYS: &[&str] = &[
    "queue.driver",
    "queue.default",
    "queue.max_payload",
    "queue.push_timeout",
    "queue.shutdown_timeout",
    "queue.retry.max_attempts",
    "queue.retry.backoff",
    "queue.retry.max_backoff",
    "queue.memory.capacity",
    #[cfg(feature = "amqp")]
    "amqp.url",
    #[cfg(feature = "amqp")]
    "amqp.urls",
    #[cfg(feature = "amqp")]
    "amqp.queue_type",
    #[cfg(feature = "amqp")]
    "amqp.prefetch",
    #[cfg(feature = "amqp")]
    "amqp.heartbeat",
    #[cfg(feature = "redis")]
    "redis.url",
    #[cfg(feature = "redis")]
    "redis.cluster",
    #[cfg(feature = "redis")]
    "redis.wait_replicas",
    #[cfg(feature = "redis")]
    "redis.pool.max_size",
    #[cfg(feature = "redis")]
    "redis.claim_idle",
    #[cfg(feature = "redis")]
    "redis.consumer",
];

/// The objects of the file that are ours, as the compiled features have them.
pub(crate) fn is_section(name: &str) -> bool {
    name == "queue"
        || (cfg!(feature = "amqp") && name == "amqp")
        || (cfg!(feature = "redis") && name == "redis")
}

/// Keys that hold objects of keys rather than a value.
pub(crate) fn is_object_key(key: &str) -> bool {
    matches!(
        key,
        "queue.retry" | "queue.memory" | "queue.connections" | "redis.pool"
    ) || is_section(key)
}

/// Sets the field of the dotted `key` from `value`, keeping the key's rule.
pub(crate) fn apply(config: &mut Config, key: &str, value: &Value) -> Result<()> {
    let queue = &mut config.queue;
    match key {
        "queue.driver" => queue.driver = driver(key, value)?,
        "queue.default" => queue.default = queue_name(key, value)?,
        "queue.max_payload" => queue.max_payload = size(key, value, MAX_PAYLOAD)?,
        "queue.push_timeout" => queue.push_timeout = duration(key, value, PUSH_TIMEOUT)?,
        "queue.shutdown_timeout" => {
            queue.shutdown_timeout = duration(key, value, SHUTDOWN_TIMEOUT)?;
        }
        "queue.retry.max_attempts" => {
            queue.retry.max_attempts = integer(key, value, MAX_ATTEMPTS)?;
        }
        "queue.retry.backoff" => queue.retry.backoff = duration(key, value, BACKOFF)?,
        "queue.retry.max_backoff" => queue.retry.max_backoff = duration(key, value, BACKOFF)?,
        "queue.memory.capacity" => queue.memory.capacity = integer(key, value, CAPACITY)?,
        #[cfg(feature = "amqp")]
        "amqp.url" => config.amqp.url = url(key, value, AMQP_SCHEMES)?,
        #[cfg(feature = "amqp")]
        "amqp.urls" => config.amqp.urls = urls(key, value, AMQP_SCHEMES)?,
        #[cfg(feature = "amqp")]
        "amqp.queue_type" => config.amqp.queue_type = queue_type(key, value)?,
        #[cfg(feature = "amqp")]
        "amqp.prefetch" => config.amqp.prefetch = integer(key, value, PREFETCH)?,
        #[cfg(feature = "amqp")]
        "amqp.heartbeat" => config.amqp.heartbeat = duration(key, value, HEARTBEAT)?,
        #[cfg(feature = "redis")]
        "redis.url" => config.redis.url = url(key, value, REDIS_SCHEMES)?,
        #[cfg(feature = "redis")]
        "redis.cluster" => config.redis.cluster = urls(key, value, REDIS_SCHEMES)?,
        #[cfg(feature = "redis")]
        "redis.wait_replicas" => {
            config.redis.wait_replicas = integer(key, value, WAIT_REPLICAS)?;
        }
        #[cfg(feature = "redis")]
        "redis.pool.max_size" => {
            config.redis.pool_max_size = integer(key, value, POOL_MAX_SIZE)?;
        }
        #[cfg(feature = "redis")]
        "redis.claim_idle" => config.redis.claim_idle = duration(key, value, CLAIM_IDLE)?,
        #[cfg(feature = "redis")]
        "redis.consumer" => {
            let consumer = string(key, value)?;
            check_consumer(key, &consumer)?;
            config.redis.consumer = consumer;
        }
        _ if is_object_key(key) => {
            return Err(Error::config(
                key,
                format!("expected an object, found {}", value.describe()),
            ));
        }
        _ => return Err(Error::config(key, unknown_key(key))),
    }
    Ok(())
}

/// The message of an unknown key: "unknown key", and the nearest known one
/// when it is near.
pub(crate) fn unknown_key(key: &str) -> String {
    match did_you_mean(key, KEYS.iter().copied()) {
        Some(near) => format!("unknown key: did you mean `{near}`?"),
        None => "unknown key".to_owned(),
    }
}

/// The candidate nearest to `typo`, if it is near enough to be what was
/// meant (at most a third of it differs).
pub(crate) fn did_you_mean<'a>(
    typo: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(typo, candidate), candidate))
        .filter(|(distance, _)| *distance > 0 && *distance * 3 <= typo.chars().count().max(3))
        .min()
        .map(|(_, candidate)| candidate)
}

/// `amqp.queue_type`, case-insensitive.
#[cfg(feature = "amqp")]
fn queue_type(key: &str, value: &Value) -> Result<AmqpQueueType> {
    match string(key, value)?.trim().to_ascii_lowercase().as_str() {
        "classic" => Ok(AmqpQueueType::Classic),
        "quorum" => Ok(AmqpQueueType::Quorum),
        _ => Err(Error::config(
            key,
            format!(
                "unknown queue type {}: expected classic or quorum",
                value.describe()
            ),
        )),
    }
}

/// Checks every rule of `config`: each key's, as [`apply`] keeps it, and those
/// between keys. `Config::from_hocon_str` runs it once file and environment
/// are both in; `Bus::connect` runs it on whatever it is given, as fields are
/// public and a `Config` built in code has met no parser.
pub(crate) fn check(config: &Config) -> Result<()> {
    // Destructured to the last field, so that a new one does not compile
    // until it has a rule here.
    let Config {
        queue,
        #[cfg(feature = "amqp")]
        amqp,
        #[cfg(feature = "redis")]
        redis,
        // Checked one by one as they are read (`Config::connection`).
        connections: _,
    } = config;
    let QueueConfig {
        // Any driver is a valid setting; whether it is compiled in is
        // `Bus::connect`'s to say.
        driver: _,
        default,
        max_payload,
        push_timeout,
        shutdown_timeout,
        retry,
        memory,
    } = queue;
    check_queue_name("queue.default", default)?;
    check_size("queue.max_payload", *max_payload, MAX_PAYLOAD)?;
    check_duration("queue.push_timeout", *push_timeout, PUSH_TIMEOUT)?;
    check_duration(
        "queue.shutdown_timeout",
        *shutdown_timeout,
        SHUTDOWN_TIMEOUT,
    )?;
    check_retry(retry)?;
    let MemoryConfig { capacity } = memory;
    check_integer("queue.memory.capacity", *capacity, CAPACITY)?;
    #[cfg(feature = "amqp")]
    {
        let AmqpConfig {
            url,
            urls,
            // Both kinds are valid.
            queue_type: _,
            prefetch,
            heartbeat,
        } = amqp;
        check_url("amqp.url", url, AMQP_SCHEMES)?;
        check_urls("amqp.urls", urls, AMQP_SCHEMES)?;
        check_integer("amqp.prefetch", *prefetch, PREFETCH)?;
        check_duration("amqp.heartbeat", *heartbeat, HEARTBEAT)?;
    }
    #[cfg(feature = "redis")]
    {
        let RedisConfig {
            url,
            cluster,
            wait_replicas,
            pool_max_size,
            claim_idle,
            consumer,
        } = redis;
        check_url("redis.url", url, REDIS_SCHEMES)?;
        check_urls("redis.cluster", cluster, REDIS_SCHEMES)?;
        check_integer("redis.wait_replicas", *wait_replicas, WAIT_REPLICAS)?;
        check_integer("redis.pool.max_size", *pool_max_size, POOL_MAX_SIZE)?;
        check_duration("redis.claim_idle", *claim_idle, CLAIM_IDLE)?;
        check_consumer("redis.consumer", consumer)?;
    }
    Ok(())
}

/// `redis.consumer`: empty (the default name), or up to 200 bytes without
/// control characters or spaces, which would make the name hard to pass to
/// `redis-cli`.
#[cfg(feature = "redis")]
fn check_consumer(key: &str, consumer: &str) -> Result<()> {
    if consumer.len() > CONSUMER_MAX_LEN {
        return Err(Error::config(
            key,
            format!(
                "{} is longer than {CONSUMER_MAX_LEN} bytes",
                Value::quote(consumer)
            ),
        ));
    }
    if consumer
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Error::config(
            key,
            format!(
                "{} holds a control or space character",
                Value::quote(consumer)
            ),
        ));
    }
    Ok(())
}

/// The `queue.retry.*` part of [`check`].
fn check_retry(retry: &RetryConfig) -> Result<()> {
    let RetryConfig {
        max_attempts,
        backoff,
        max_backoff,
    } = retry;
    check_integer("queue.retry.max_attempts", *max_attempts, MAX_ATTEMPTS)?;
    check_duration("queue.retry.backoff", *backoff, BACKOFF)?;
    check_duration("queue.retry.max_backoff", *max_backoff, BACKOFF)?;
    if max_backoff < backoff {
        return Err(Error::config(
            "queue.retry.max_backoff",
            format!(
                "{} is less than queue.retry.backoff ({})",
                quote_duration(*max_backoff),
                quote_duration(*backoff)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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
            ("queue.retry.max_attempts", "0", false, |c| c.queue.retry.max_attempts = 0),
            ("queue.retry.max_attempts", "1", true, |c| c.queue.retry.max_attempts = 1),
            ("queue.retry.max_attempts", "1000", true, |c| c.queue.retry.max_attempts = 1000),
            ("queue.retry.max_attempts", "1001", false, |c| c.queue.retry.max_attempts = 1001),
            ("queue.retry.backoff", "0s", false, |c| c.queue.retry.backoff = Duration::ZERO),
            ("queue.retry.backoff", "1ns", true, |c| c.queue.retry.backoff = NS),
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
            ("amqp.prefetch", "0", false, |c| c.amqp.prefetch = 0),
            ("amqp.prefetch", "1", true, |c| c.amqp.prefetch = 1),
            ("amqp.prefetch", "65535", true, |c| c.amqp.prefetch = 65535),
            ("amqp.heartbeat", "0s", true, |c| c.amqp.heartbeat = Duration::ZERO),
            ("amqp.heartbeat", "999ms", false, |c| c.amqp.heartbeat = Duration::from_millis(999)),
            ("amqp.heartbeat", "1s", true, |c| c.amqp.heartbeat = Duration::from_secs(1)),
            ("amqp.heartbeat", "18h 12m 15s", true, |c| c.amqp.heartbeat = Duration::from_secs(65535)),
            ("amqp.heartbeat", "18h 12m 16s", false, |c| c.amqp.heartbeat = Duration::from_secs(65536)),
        ]
    }

    /// Values either side of each bound of the `redis.*` keys.
    #[cfg(feature = "redis")]
    #[rustfmt::skip]
    fn redis_cases() -> Vec<Case> {
        vec![
            ("redis.url", "unix:///r.sock", true, |c| c.redis.url = "unix:///r.sock".into()),
            ("redis.url", "http://cache", false, |c| c.redis.url = "http://cache".into()),
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
    fn every_listed_key_is_one_apply_sets() {
        // `KEYS` feeds the did-you-mean and the environment's names: a key
        // missing from `apply` would be listed yet refused.
        for key in KEYS {
            let result = apply(&mut Config::default(), key, &Value::Null);
            if let Err(Error::Config { message, .. }) = result {
                assert!(!message.starts_with("unknown key"), "{key}: {message}");
            }
        }
        let unknown = apply(&mut Config::default(), "queue.drivr", &Value::Null);
        assert!(
            matches!(unknown, Err(Error::Config { message, .. }) if message.starts_with("unknown key"))
        );
    }

    #[test]
    fn parser_and_check_agree_at_every_bound() {
        let cases = [
            queue_cases(),
            #[cfg(feature = "amqp")]
            amqp_cases(),
            #[cfg(feature = "redis")]
            redis_cases(),
        ]
        .concat();
        for (key, text, valid, set) in cases {
            let mut parsed = Config::default();
            let from_text = apply(&mut parsed, key, &Value::Str(text.to_owned()));
            let mut built = Config::default();
            set(&mut built);
            match (from_text, check(&built)) {
                (Ok(()), Ok(())) => {
                    assert!(valid, "{key} = {text:?} should be refused");
                    assert_eq!(parsed, built, "{key} = {text:?}");
                }
                (Err(by_parser), Err(by_check)) => {
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
    fn the_defaults_keep_every_rule() {
        assert!(check(&Config::default()).is_ok());
    }

    #[test]
    fn max_backoff_may_not_be_less_than_backoff() {
        let mut config = Config::default();
        config.queue.retry.backoff = Duration::from_secs(2);
        config.queue.retry.max_backoff = Duration::from_secs(1);
        match check(&config) {
            Err(Error::Config { key, message }) => {
                assert_eq!(key, "queue.retry.max_backoff");
                assert_eq!(message, "\"1s\" is less than queue.retry.backoff (\"2s\")");
            }
            other => panic!("expected Error::Config, got {other:?}"),
        }
        config.queue.retry.max_backoff = Duration::from_secs(2);
        assert!(check(&config).is_ok());
    }
}
