//! `Config`: the `queue.*`, `amqp.*` and `redis.*` keys of `application.conf`.
//!
//! A key is the field of its name, object by object: `queue.retry.max_attempts`
//! is `config.queue.retry.max_attempts` (serde derives on the config types,
//! `#[serde(default, deny_unknown_fields)]`); the one exception is
//! `redis.pool.max_size`, the field `pool_max_size`. Adding a key is adding a
//! field with its default, and its rule to `rules.rs` if it has one.
//!
//! How a `Config` is made, whatever the source:
//!
//! 1. `document.rs` parses the HOCON text into a tree of our objects, each
//!    scalar but a boolean kept as its text; the `ACTORBUS_*` variables (`env.rs`) are
//!    laid over it, and `queue.connections` is taken out (`connections.rs`);
//! 2. the tree is laid over the tree of the defaults (`tree.rs`: every key
//!    there is, and so the keys a typo is compared with);
//! 3. each key's rule is checked on the value as written (`rules.rs`);
//! 4. serde reads the tree into the types (`deserializer.rs`), under
//!    `serde_path_to_error`, which names the key of what fails.
//!
//! A named connection is its tree over the top level's, read the same way.

#[cfg(feature = "amqp")]
pub(crate) mod amqp;
pub(crate) mod connections;
pub(crate) mod deserializer;
pub(crate) mod document;
pub(crate) mod duration;
pub(crate) mod env;
pub(crate) mod queue;
#[cfg(feature = "redis")]
pub(crate) mod redis;
pub(crate) mod rules;
pub(crate) mod size;
pub(crate) mod tree;
pub(crate) mod value;

#[cfg(feature = "amqp")]
pub use amqp::{AmqpConfig, AmqpQueueType};
pub use queue::{DriverKind, MemoryConfig, QueueConfig, RetryConfig};
#[cfg(feature = "redis")]
pub use redis::RedisConfig;

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use connections::Connections;
use deserializer::Fault;
use env::Override;

/// The whole configuration of one bus.
///
/// Every key has a default, so `Config::default()` is a working memory bus.
///
/// Which call reads what:
///
/// | call | `application.conf` | `ACTORBUS_*` variables |
/// |------|--------------------|------------------------|
/// | [`Config::default()`] | no | no |
/// | [`Config::from_env()`] | no | yes |
/// | [`Config::load()`] | `./application.conf` when it exists | yes |
/// | [`Config::from_file(path)`](Config::from_file) | `path` | yes |
/// | [`Config::from_hocon_str(text)`](Config::from_hocon_str) | `text` | yes |
///
/// Its `Debug` shows urls without their password (`***`). Its serde form is
/// the file's (`{"queue": {"retry": {"max_attempts": 5, …}}}`, durations as
/// `10s`), without `queue.connections` and with urls as they are, passwords
/// included; one read through serde alone meets the rules only at
/// [`Bus::connect`](crate::Bus::connect).
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// `queue.connections.*`, read through [`Config::connection`].
    #[serde(skip)]
    connections: Connections,
}

/// The file [`Config::load`] reads when it exists.
const DEFAULT_FILE: &str = "application.conf";

impl Config {
    /// Reads `./application.conf` when it exists (else starts from the
    /// defaults), then applies `ACTORBUS_*` environment overrides: what an
    /// application usually wants, and what the examples use.
    ///
    /// ```
    /// let config = actorbus::Config::load()?;
    /// # Ok::<_, actorbus::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Config::from_file`] and [`Config::from_env`].
    pub fn load() -> Result<Config> {
        let path = Path::new(DEFAULT_FILE);
        if path.exists() {
            Config::from_file(path)
        } else {
            Config::from_env()
        }
    }

    /// The defaults with `ACTORBUS_*` environment overrides applied (see
    /// [`Config::from_hocon_str`] for their names).
    ///
    /// ```
    /// let config = actorbus::Config::from_env()?;
    /// # Ok::<_, actorbus::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming a variable that names no key, or the key of
    /// a bad value.
    pub fn from_env() -> Result<Config> {
        load("", "environment", None, env::process_env())
    }

    /// Reads `application.conf` (HOCON) from `path`, then applies `ACTORBUS_*`
    /// environment overrides.
    ///
    /// Only the `queue`, `amqp` and `redis` objects are read; the rest of the
    /// file is the application's. Inside those objects an unknown key is an
    /// error (with the nearest known key), so that a typo does not silently
    /// leave a default in place. `include "other.conf"` is read relative to
    /// the file; `${?AMQP_URL}` takes the process environment's value.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the file cannot be read, is not UTF-8 or does
    /// not parse (the key is the path), or a value is invalid (the key is the
    /// dotted key).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|err| {
            let problem = document::lower_first(&err.to_string());
            Error::config(&source, format!("cannot read the file: {problem}"))
        })?;
        let text = String::from_utf8(bytes).map_err(|err| {
            let at = err.utf8_error().valid_up_to();
            Error::config(
                &source,
                format!("the file is not utf-8 (invalid byte at offset {at})"),
            )
        })?;
        let base_dir = path.parent().map(Path::to_path_buf);
        load(&text, &source, base_dir, env::process_env())
    }

    /// Parses HOCON text, then applies `ACTORBUS_*` environment overrides.
    ///
    /// An override's name is `ACTORBUS_` and the key's segments in upper case,
    /// joined by a double underscore: `ACTORBUS_QUEUE__DRIVER=redis` sets
    /// `queue.driver`, `ACTORBUS_QUEUE__RETRY__MAX_ATTEMPTS=3` sets
    /// `queue.retry.max_attempts`, and
    /// `ACTORBUS_QUEUE__CONNECTIONS__EVENTS__REDIS__URL` sets `redis.url` of
    /// the connection `events` (connections named in lower case). The value
    /// is taken as written (no HOCON quoting; a list of urls is separated by
    /// commas) and checked like the file's. A variable with a double
    /// underscore, or whose first word is `QUEUE`, `AMQP` or `REDIS`, must
    /// name a key: `ACTORBUS_QUEUE_DRIVER` is an error. Other `ACTORBUS_*`
    /// variables are not ours and are left alone. `include` is read
    /// relative to the current directory.
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
    /// `application.conf`), a value is invalid (the key is the dotted key),
    /// or a variable names no key (the key is the variable).
    pub fn from_hocon_str(text: &str) -> Result<Config> {
        load(text, DEFAULT_FILE, None, env::process_env())
    }

    /// The configuration of the named connection: the keys of
    /// `queue.connections.<name>` over the top-level ones. A connection's
    /// `driver` and `default` are `queue.driver` and `queue.default`; any
    /// other key is written as at the top level (`redis.url`,
    /// `queue.retry.max_attempts`, or `retry.max_attempts` for short).
    ///
    /// ```
    /// use actorbus::{Config, DriverKind};
    ///
    /// let config = Config::from_hocon_str(
    ///     "queue.connections { jobs { driver = memory, default = jobs } }",
    /// )?;
    /// let jobs = config.connection("jobs")?;
    /// assert_eq!(jobs.queue.driver, DriverKind::Memory);
    /// assert_eq!(jobs.queue.default, "jobs");
    /// assert!(config.connection("nope").is_err());
    /// # Ok::<_, actorbus::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `queue.connections.<name>` when there is no
    /// such connection, or the connection's key whose value is invalid.
    pub fn connection(&self, name: &str) -> Result<Config> {
        self.connections.apply(self, name)
    }

    /// The names of the connections in `queue.connections`, sorted.
    ///
    /// ```
    /// let config = actorbus::Config::from_hocon_str("queue.connections { a {}, b {} }")?;
    /// assert_eq!(config.connection_names().collect::<Vec<_>>(), ["a", "b"]);
    /// # Ok::<_, actorbus::Error>(())
    /// ```
    pub fn connection_names(&self) -> impl Iterator<Item = &str> {
        self.connections.names()
    }
}

/// The whole of `from_hocon_str`, with the environment passed in so that it
/// can be tested without touching the process's.
fn load(
    text: &str,
    source: &str,
    base_dir: Option<std::path::PathBuf>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config> {
    let overrides = env::overrides(env)?;
    let mut written = document::tree(text, source, base_dir)?;
    for Override { var, key, value } in &overrides {
        tree::merge(&mut written, tree::at(key, Value::String(value.clone())));
        tracing::debug!(%key, %var, "config key set from the environment");
    }
    // An error about a key a variable set says which variable.
    let from_env = |err| match err {
        Error::Config { key, mut message } => {
            if let Some(set) = overrides.iter().find(|set| set.key == key) {
                message = format!("{message} (from environment variable {})", set.var);
            }
            Error::config(key, message)
        }
        other => other,
    };
    let connections = Connections::take(&mut written).map_err(from_env)?;
    let defaults = tree::defaults()?;
    let mut config = build(&Config::default(), written).map_err(|fault| {
        let keys = tree::leaf_keys(defaults);
        from_env(fault.into_error("", str::to_owned, keys.iter().map(String::as_str)))
    })?;
    config.connections = connections;
    // A connection's mistakes show now, not when it is first used.
    for name in config.connections.names() {
        config.connection(name).map_err(from_env)?;
    }
    Ok(config)
}

/// The `Config` of the tree `over` laid over the tree of `base`: checked
/// (`rules.rs`), then read (`deserializer.rs`).
fn build(base: &Config, over: Value) -> std::result::Result<Config, Fault> {
    let mut tree = tree::of(base).map_err(Fault::Invalid)?;
    tree::merge(&mut tree, over);
    rules::check_tree(&tree).map_err(Fault::Invalid)?;
    deserializer::read(&tree)
}
