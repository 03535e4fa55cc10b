//! `Config`: the `queue.*`, `amqp.*` and `redis.*` keys of `application.conf`.

#[cfg(feature = "amqp")]
pub(crate) mod amqp;
pub(crate) mod duration;
pub(crate) mod hocon_text;
pub(crate) mod parse;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod size;
pub(crate) mod value;

#[cfg(feature = "amqp")]
pub use amqp::AmqpConfig;
#[cfg(feature = "redis")]
pub use redis::RedisConfig;

use std::path::Path;
use std::time::Duration;

use hocon::Hocon;

use crate::error::{Error, Result};
use value::Value;

/// Which backend a bus talks to (`queue.driver`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DriverKind {
    /// In-process queues; no services, nothing survives the process.
    #[default]
    Memory,
    /// RabbitMQ (or any AMQP 0-9-1 broker) through lapin.
    Amqp,
    /// Redis Streams through deadpool-redis.
    Redis,
}

/// The whole configuration of one bus.
///
/// Every key has a default, so `Config::default()` is a working memory bus.
/// Fields are public for adjusting in code; the struct is `#[non_exhaustive]`,
/// so start from `Config::default()` or a parsed file. A field set in code
/// must keep the same rule as in a file: [`Bus::connect`](crate::Bus::connect)
/// refuses an out-of-range one with [`Error::Config`] naming its key.
///
/// ```
/// use actorbus::{Config, DriverKind};
///
/// let mut config = Config::default();
/// config.queue.retry.max_attempts = 3;
/// assert_eq!(config.queue.driver, DriverKind::Memory);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The `queue.*` keys, shared by every driver.
    pub queue: QueueConfig,
    /// The `amqp.*` keys.
    #[cfg(feature = "amqp")]
    pub amqp: AmqpConfig,
    /// The `redis.*` keys.
    #[cfg(feature = "redis")]
    pub redis: RedisConfig,
}

/// The `queue.*` keys.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// `queue.driver`: `memory` (default), `amqp` or `redis`.
    pub driver: DriverKind,
    /// `queue.default`: the queue `push_default` uses (default `"default"`).
    pub default: String,
    /// `queue.max_payload`: largest payload in bytes (default 16 MiB).
    pub max_payload: usize,
    /// `queue.push_timeout`: how long a push may wait for room or a broker (default 10 s).
    pub push_timeout: Duration,
    /// `queue.shutdown_timeout`: how long shutdown waits for handlers (default 30 s).
    pub shutdown_timeout: Duration,
    /// `queue.retry.*`.
    pub retry: RetryConfig,
    /// `queue.memory.*`.
    pub memory: MemoryConfig,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            driver: DriverKind::Memory,
            default: "default".to_owned(),
            max_payload: 16 * 1024 * 1024,
            push_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(30),
            retry: RetryConfig::default(),
            memory: MemoryConfig::default(),
        }
    }
}

/// The `queue.retry.*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// `queue.retry.max_attempts`: deliveries before a message is dead-lettered (default 5, at least 1).
    pub max_attempts: u32,
    /// `queue.retry.backoff`: wait before the first retry; doubles per attempt (default 200 ms).
    pub backoff: Duration,
    /// `queue.retry.max_backoff`: the cap on that wait (default 1 min).
    pub max_backoff: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 5,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// The `queue.memory.*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryConfig {
    /// `queue.memory.capacity`: messages one queue holds before a push waits (default 100 000).
    pub capacity: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig { capacity: 100_000 }
    }
}

impl Config {
    /// Reads `application.conf` (HOCON) from `path`, then applies `ACTORBUS_*`
    /// environment overrides.
    ///
    /// Only the `queue`, `amqp` and `redis` objects are read; the rest of the
    /// file is the application's. Inside those objects an unknown key is an
    /// error, so that a typo does not silently leave a default in place.
    /// `include` is not supported, and `${...}` substitutions resolve only
    /// against the file itself: the environment comes in through `ACTORBUS_*`
    /// variables (see [`Config::from_hocon_str`]).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the file cannot be read or parsed (the key is
    /// the path), or a value is invalid (the key is the dotted key).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| {
            let problem = hocon_text::lower_first(&err.to_string());
            Error::config(&source, format!("cannot read the file: {problem}"))
        })?;
        load(&text, &source, process_env())
    }

    /// Parses HOCON text, then applies `ACTORBUS_*` environment overrides.
    ///
    /// An override's name is `ACTORBUS_` and the key's segments in upper case,
    /// joined by a double underscore: `ACTORBUS_QUEUE__DRIVER=redis` sets
    /// `queue.driver`, `ACTORBUS_QUEUE__RETRY__MAX_ATTEMPTS=3` sets
    /// `queue.retry.max_attempts`. The value is taken as written (no HOCON
    /// quoting) and checked like the file's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use actorbus::Config;
    ///
    /// let config = Config::from_hocon_str("queue.retry.backoff = 1s")?;
    /// assert_eq!(config.queue.retry.backoff, Duration::from_secs(1));
    /// # Ok::<_, actorbus::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the text does not parse (the key is
    /// `application.conf`) or a value is invalid (the key is the dotted key).
    pub fn from_hocon_str(text: &str) -> Result<Config> {
        load(text, "application.conf", process_env())
    }
}

const ENV_PREFIX: &str = "ACTORBUS_";

/// `std::env::vars` panics on a variable that is not Unicode; ours are read
/// lossily instead and the rest skipped.
fn process_env() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(name, value)| {
        let name = name.into_string().ok()?;
        name.starts_with(ENV_PREFIX)
            .then(|| (name, value.to_string_lossy().into_owned()))
    })
}

/// The whole of `from_hocon_str`, with the environment passed in so that it
/// can be tested without touching the process's.
fn load(
    text: &str,
    source: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config> {
    let document = hocon_text::parse_document(text, source)?;
    let mut settings = Vec::new();
    if let Hocon::Hash(root) = &document {
        for (name, value) in root {
            if parse::is_section(name) {
                collect(name.clone(), value, &mut settings);
            }
        }
    }
    let mut config = Config::default();
    for (key, value) in &settings {
        parse::apply(&mut config, key, value)?;
    }
    for (var, key, value) in env_overrides(env) {
        parse::apply(&mut config, &key, &Value::Str(value)).map_err(|err| match err {
            Error::Config { key, message } => {
                Error::config(key, format!("{message} (from environment variable {var})"))
            }
            other => other,
        })?;
        tracing::debug!(%key, %var, "config key set from the environment");
    }
    parse::check(&config)?;
    Ok(config)
}

/// Flattens one of our objects into `(dotted key, value)` pairs, in file order.
fn collect(key: String, value: &Hocon, out: &mut Vec<(String, Value)>) {
    match value {
        Hocon::Hash(map) if parse::is_object_key(&key) => {
            for (name, child) in map {
                collect(format!("{key}.{name}"), child, out);
            }
        }
        _ => out.push((key, Value::from_hocon(value))),
    }
}

/// `(variable, dotted key, value)` of each `ACTORBUS_*` variable under one of
/// our objects, sorted by variable so that the outcome does not depend on the
/// environment's order.
fn env_overrides(env: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String, String)> {
    let mut overrides: Vec<_> = env
        .into_iter()
        .filter_map(|(var, value)| {
            let path = var.strip_prefix(ENV_PREFIX)?;
            let key = path
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            let section = key.split('.').next().unwrap_or_default();
            if !parse::is_section(section) {
                // Single underscores (`ACTORBUS_REDIS_URL`) land here: other
                // tools may own such names, so they are not an error.
                tracing::debug!(%var, "ignoring a variable outside queue, amqp and redis");
                return None;
            }
            Some((var, key, value))
        })
        .collect();
    overrides.sort();
    overrides
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
        load(text, "test.conf", env(vars))
    }

    fn error(result: Result<Config>) -> (String, String) {
        match result {
            Err(Error::Config { key, message }) => (key, message),
            other => panic!("expected Error::Config, got {other:?}"),
        }
    }

    #[test]
    fn no_variables_means_defaults() {
        assert_eq!(load_env("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn variables_set_nested_keys() {
        let config = load_env(
            "",
            &[
                ("ACTORBUS_QUEUE__RETRY__MAX_ATTEMPTS", "3"),
                ("ACTORBUS_QUEUE__MAX_PAYLOAD", "1MiB"),
                ("ACTORBUS_QUEUE__PUSH_TIMEOUT", "250ms"),
                ("ACTORBUS_QUEUE__DEFAULT", "jobs"),
            ],
        )
        .unwrap();
        assert_eq!(config.queue.retry.max_attempts, 3);
        assert_eq!(config.queue.max_payload, 1 << 20);
        assert_eq!(config.queue.push_timeout, Duration::from_millis(250));
        assert_eq!(config.queue.default, "jobs");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn variables_set_redis_keys_and_the_driver() {
        let config = load_env(
            "",
            &[
                ("ACTORBUS_QUEUE__DRIVER", "redis"),
                ("ACTORBUS_REDIS__POOL__MAX_SIZE", "4"),
                ("ACTORBUS_REDIS__URL", "rediss://cache:6380/1"),
            ],
        )
        .unwrap();
        assert_eq!(config.queue.driver, DriverKind::Redis);
        assert_eq!(config.redis.pool_max_size, 4);
        assert_eq!(config.redis.url, "rediss://cache:6380/1");
    }

    #[test]
    fn variables_override_the_file() {
        let text = "queue.retry.max_attempts = 9\nqueue.memory.capacity = 10";
        let config = load_env(text, &[("ACTORBUS_QUEUE__RETRY__MAX_ATTEMPTS", "2")]).unwrap();
        assert_eq!(config.queue.retry.max_attempts, 2);
        assert_eq!(config.queue.memory.capacity, 10);
    }

    #[test]
    fn variables_are_checked_together_with_the_file() {
        let (key, _) = error(load_env(
            "queue.retry.backoff = 10s",
            &[("ACTORBUS_QUEUE__RETRY__MAX_BACKOFF", "5s")],
        ));
        assert_eq!(key, "queue.retry.max_backoff");
        let config = load_env(
            "queue.retry.max_backoff = 1s",
            &[("ACTORBUS_QUEUE__RETRY__BACKOFF", "1s")],
        )
        .unwrap();
        assert_eq!(config.queue.retry.backoff, Duration::from_secs(1));
    }

    #[test]
    fn a_bad_variable_names_the_key_and_the_variable() {
        let (key, message) = error(load_env(
            "",
            &[("ACTORBUS_QUEUE__RETRY__MAX_ATTEMPTS", "five")],
        ));
        assert_eq!(key, "queue.retry.max_attempts");
        assert!(message.contains("\"five\""), "{message}");
        assert!(
            message.contains("ACTORBUS_QUEUE__RETRY__MAX_ATTEMPTS"),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_key_under_our_objects_is_an_error() {
        let (key, message) = error(load_env("", &[("ACTORBUS_QUEUE__RETRY__MAX_ATTEMPS", "3")]));
        assert_eq!(key, "queue.retry.max_attemps");
        assert!(message.starts_with("unknown key"), "{message}");
        let (key, _) = error(load_env("", &[("ACTORBUS_QUEUE____DRIVER", "redis")]));
        assert_eq!(key, "queue..driver");
        let (key, message) = error(load_env("", &[("ACTORBUS_QUEUE__RETRY", "5")]));
        assert_eq!(key, "queue.retry");
        assert!(message.starts_with("expected an object"), "{message}");
    }

    #[test]
    fn other_variables_are_ignored() {
        let vars = [
            ("PATH", "/bin"),
            ("ACTORBUS_REDIS_URL", "not a url"),
            ("ACTORBUS_LOG", "debug"),
            ("ACTORBUS_", ""),
            ("actorbus_queue__driver", "nonsense"),
            ("XACTORBUS_QUEUE__DRIVER", "nonsense"),
        ];
        assert_eq!(load_env("", &vars).unwrap(), Config::default());
    }

    #[test]
    fn variables_apply_in_name_order() {
        // Two spellings of one key: the result must not depend on the
        // environment's order.
        let a = ("ACTORBUS_QUEUE__DEFAULT", "upper");
        let b = ("ACTORBUS_queue__default", "lower");
        let one = load_env("", &[a, b]).unwrap();
        let other = load_env("", &[b, a]).unwrap();
        assert_eq!(one.queue.default, "lower");
        assert_eq!(one, other);
    }

    #[test]
    fn variable_values_are_not_hocon() {
        // A comment marker or quotes in a variable are part of the value.
        #[cfg(feature = "amqp")]
        {
            let config =
                load_env("", &[("ACTORBUS_AMQP__URL", "amqp://u:p@h:5672/%2f#x")]).unwrap();
            assert_eq!(config.amqp.url, "amqp://u:p@h:5672/%2f#x");
        }
        let (key, _) = error(load_env("", &[("ACTORBUS_QUEUE__DRIVER", "\"redis\"")]));
        assert_eq!(key, "queue.driver");
    }

    #[cfg(feature = "amqp")]
    #[test]
    fn url_errors_hide_the_password() {
        let (key, message) = error(load_env(
            "",
            &[("ACTORBUS_AMQP__URL", "http://u:secret@h/")],
        ));
        assert_eq!(key, "amqp.url");
        assert!(!message.contains("secret"), "{message}");
    }
}
