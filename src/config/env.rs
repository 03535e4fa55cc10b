//! `ACTORBUS_*` environment variables: each names a key (`ACTORBUS_QUEUE__DRIVER`
//! is `queue.driver`) or is an error, so that a mistyped one cannot leave a
//! default silently in place.

use serde_json::Value;

use crate::config::connections::{self, SECTIONS};
use crate::config::tree::{self, did_you_mean};
use crate::error::{Error, Result};

/// What every variable of ours starts with.
pub(crate) const PREFIX: &str = "ACTORBUS_";

/// One variable that sets a key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Override {
    /// The variable's name, for messages.
    pub(crate) var: String,
    /// The dotted key it sets.
    pub(crate) key: String,
    /// Its value, as written.
    pub(crate) value: String,
}

/// `std::env::vars` panics on a variable that is not Unicode; ours are read
/// lossily instead and the rest skipped.
pub(crate) fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            name.starts_with(PREFIX)
                .then(|| (name, value.to_string_lossy().into_owned()))
        })
        .collect()
}

/// The overrides in `env`, sorted by variable so that the outcome does not
/// depend on the environment's order.
///
/// A variable is ours when it has a double underscore or its first word is
/// `QUEUE`, `AMQP` or `REDIS` (`ACTORBUS_QUEUE_DRIVER`); such a variable
/// must name a key. Others (`ACTORBUS_LOG`) are left to whoever reads them.
///
/// # Errors
///
/// [`Error::Config`] naming a variable of ours that names no key, with the
/// nearest variable that does.
pub(crate) fn overrides(env: impl IntoIterator<Item = (String, String)>) -> Result<Vec<Override>> {
    let defaults = tree::defaults()?;
    let mut overrides = Vec::new();
    for (var, value) in env {
        let Some(path) = var.strip_prefix(PREFIX) else {
            continue;
        };
        let first = path
            .split('_')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !path.contains("__") && !SECTIONS.contains(&first.as_str()) {
            tracing::debug!(%var, "ignoring a variable that is not a config key");
            continue;
        }
        let key = path
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        let section = key.split('.').next().unwrap_or_default();
        if SECTIONS.contains(&section) && defaults.get(section).is_none() {
            tracing::debug!(%var, "ignoring a variable of a driver not compiled in");
            continue;
        }
        if !names_a_key(&key, defaults) {
            return Err(Error::config(&var, no_such_key(path, defaults)));
        }
        overrides.push(Override { var, key, value });
    }
    overrides.sort();
    Ok(overrides)
}

/// Whether `key` is one a variable may set: a key or an object of the
/// defaults (an object's error comes later: "expected an object"), or a
/// connection's key (checked with the connection).
fn names_a_key(key: &str, defaults: &Value) -> bool {
    tree::get(defaults, key).is_some()
        || key == "queue.connections"
        || key
            .strip_prefix(connections::PREFIX)
            .is_some_and(|rest| !rest.is_empty())
}

/// The message of a variable of ours that names no key.
fn no_such_key(path: &str, defaults: &Value) -> String {
    // The variable of `queue.driver` is `QUEUE__DRIVER`, after the prefix.
    let variable = |key: String| key.to_ascii_uppercase().replace('.', "__");
    let names: Vec<String> = tree::leaf_keys(defaults)
        .into_iter()
        .map(variable)
        .collect();
    match did_you_mean(&path.to_ascii_uppercase(), names.iter().map(String::as_str)) {
        Some(near) => format!("names no config key: did you mean `{PREFIX}{near}`?"),
        None => "names no config key (keys are written like ACTORBUS_QUEUE__DRIVER)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{load, Config};
    use crate::error::{Error, Result};

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load_env(text: &str, vars: &[(&str, &str)]) -> Result<Config> {
        load(text, "test.conf", None, env(vars))
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
        assert_eq!(config.queue.driver, crate::config::DriverKind::Redis);
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
    fn a_variable_that_names_no_key_is_an_error() {
        let cases = [
            (
                "ACTORBUS_QUEUE__RETRY__MAX_ATTEMPS",
                "ACTORBUS_QUEUE__RETRY__MAX_ATTEMPTS",
            ),
            ("ACTORBUS_QUEUE_DRIVER", "ACTORBUS_QUEUE__DRIVER"),
            ("ACTORBUS_REDIS_URL", "ACTORBUS_REDIS__URL"),
            ("ACTORBUS_QUEUE____DRIVER", "ACTORBUS_QUEUE__DRIVER"),
            ("ACTORBUS_queue__drivr", "ACTORBUS_QUEUE__DRIVER"),
        ];
        for (var, near) in cases {
            if var.contains("REDIS") && !cfg!(feature = "redis") {
                continue;
            }
            let (key, message) = error(load_env("", &[(var, "3")]));
            assert_eq!(key, var);
            assert!(message.starts_with("names no config key"), "{message}");
            assert!(
                message.contains(&format!("did you mean `{near}`?")),
                "{message}"
            );
        }
        let (key, message) = error(load_env("", &[("ACTORBUS_QUEUE__RETRY", "5")]));
        assert_eq!(key, "queue.retry");
        assert!(message.starts_with("expected an object"), "{message}");
        let (key, message) = error(load_env("", &[("ACTORBUS_NOTHING__LIKE_IT", "5")]));
        assert_eq!(key, "ACTORBUS_NOTHING__LIKE_IT");
        assert!(!message.contains("did you mean"), "{message}");
    }

    #[test]
    fn other_variables_are_ignored() {
        let vars = [
            ("PATH", "/bin"),
            ("ACTORBUS_LOG", "debug"),
            ("ACTORBUS_BENCH_REDIS_URL", "not a url"),
            ("ACTORBUS_CRASH_QUEUE", "x"),
            ("ACTORBUS_", ""),
            ("actorbus_queue__driver", "nonsense"),
            ("XACTORBUS_QUEUE__DRIVER", "nonsense"),
        ];
        assert_eq!(load_env("", &vars).unwrap(), Config::default());
    }

    #[test]
    fn variables_set_connection_keys() {
        let text = "queue.connections { jobs { driver = memory } }";
        let config = load_env(
            text,
            &[
                ("ACTORBUS_QUEUE__CONNECTIONS__JOBS__DEFAULT", "work"),
                (
                    "ACTORBUS_QUEUE__CONNECTIONS__OTHER__RETRY__MAX_ATTEMPTS",
                    "2",
                ),
            ],
        )
        .unwrap();
        assert_eq!(config.connection("jobs").unwrap().queue.default, "work");
        assert_eq!(
            config.connection("other").unwrap().queue.retry.max_attempts,
            2
        );
        let (key, message) = error(load_env(
            text,
            &[("ACTORBUS_QUEUE__CONNECTIONS__JOBS__DRIVR", "redis")],
        ));
        assert_eq!(key, "queue.connections.jobs.drivr");
        assert!(message.contains("did you mean `driver`?"), "{message}");
        let (key, message) = error(load_env(
            text,
            &[("ACTORBUS_QUEUE__CONNECTIONS__JOBS__DRIVER", "kafka")],
        ));
        assert_eq!(key, "queue.connections.jobs.driver");
        assert!(message.contains("unknown driver \"kafka\""), "{message}");
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
