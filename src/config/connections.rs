//! Named connections (`queue.connections.<name> { … }`): each a driver, a
//! default queue and any key overriding the top level, kept as written until
//! `Config::connection` lays them over the top-level `Config`.

use std::collections::BTreeMap;
use std::fmt;

use crate::config::parse::{self, did_you_mean, KEYS};
use crate::config::value::{redact_password, Value};
use crate::config::Config;
use crate::error::{Error, Result};

/// Where connections live in the file.
pub(crate) const PREFIX: &str = "queue.connections.";

/// The connections of a file: name -> its settings, keys relative to the
/// connection (`driver`, `redis.url`), in file order then environment order.
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Connections(BTreeMap<String, Vec<(String, Value)>>);

impl Connections {
    /// Takes one setting under [`PREFIX`]: `rest` is what follows it, the
    /// connection's name and then its key. A bare name declares the
    /// connection (an empty `local {}` is one).
    pub(crate) fn add(&mut self, rest: &str, value: Value) -> Result<()> {
        match rest.split_once('.') {
            Some((name, key)) => {
                self.0
                    .entry(name.to_owned())
                    .or_default()
                    .push((key.to_owned(), value));
                Ok(())
            }
            None if value == Value::Object => {
                self.0.entry(rest.to_owned()).or_default();
                Ok(())
            }
            None => Err(Error::config(
                format!("{PREFIX}{rest}"),
                format!("expected an object, found {}", value.describe()),
            )),
        }
    }

    /// The names, sorted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// `base` with the settings of connection `name` over it.
    pub(crate) fn apply(&self, base: &Config, name: &str) -> Result<Config> {
        let Some(settings) = self.0.get(name) else {
            let message = match did_you_mean(name, self.names()) {
                Some(near) => format!("no such connection: did you mean `{near}`?"),
                None if self.0.is_empty() => "no such connection: none is configured".to_owned(),
                None => format!(
                    "no such connection: expected one of {}",
                    self.names().collect::<Vec<_>>().join(", ")
                ),
            };
            return Err(Error::config(format!("{PREFIX}{name}"), message));
        };
        let mut config = base.clone();
        config.connections = Connections::default();
        for (key, value) in settings {
            let written = format!("{PREFIX}{name}.{key}");
            let Some(target) = target_key(key) else {
                // As at the top level, the keys of a driver not compiled
                // in are not ours.
                let section = key.split('.').next().unwrap_or_default();
                if matches!(section, "amqp" | "redis") && !parse::is_section(section) {
                    continue;
                }
                return Err(Error::config(written, unknown_key(key)));
            };
            parse::apply(&mut config, target, value).map_err(|err| rename(err, &written))?;
        }
        parse::check(&config).map_err(|err| match err {
            Error::Config { key, message } => {
                Error::config(format!("{PREFIX}{name}.{key}"), message)
            }
            other => other,
        })?;
        Ok(config)
    }
}

/// The top-level key a connection's `key` sets: `queue.<key>` (so `driver`
/// and `default` are `queue.driver` and `queue.default`), else `key` itself
/// (`redis.url`, `queue.retry.max_attempts`).
fn target_key(key: &str) -> Option<&'static str> {
    let queued = format!("queue.{key}");
    KEYS.iter()
        .copied()
        .find(|known| *known == queued)
        .or_else(|| KEYS.iter().copied().find(|known| *known == key))
}

/// The message of a connection key that sets nothing.
fn unknown_key(key: &str) -> String {
    let short = KEYS.iter().filter_map(|known| known.strip_prefix("queue."));
    match did_you_mean(key, short.chain(KEYS.iter().copied())) {
        Some(near) => format!("unknown key: did you mean `{near}`?"),
        None => "unknown key".to_owned(),
    }
}

/// `err` about the key as written in the connection rather than the
/// top-level key it sets.
fn rename(err: Error, written: &str) -> Error {
    match err {
        Error::Config { message, .. } => Error::config(written, message),
        other => other,
    }
}

impl fmt::Debug for Connections {
    /// Every string shown without a url's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |value: &Value| match value {
            Value::Str(text) => Value::quote(redact_password(text)),
            Value::Array(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|item| match item {
                        Value::Str(text) => Value::quote(redact_password(text)),
                        other => other.describe(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.describe(),
        };
        f.debug_map()
            .entries(self.0.iter().map(|(name, settings)| {
                let settings: Vec<String> = settings
                    .iter()
                    .map(|(key, value)| format!("{key} = {}", shown(value)))
                    .collect();
                (name, settings)
            }))
            .finish()
    }
}
