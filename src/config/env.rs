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
