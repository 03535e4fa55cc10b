//! Named connections (`queue.connections.<name> { … }`): each a driver, a
//! default queue and any key overriding the top level, kept as the tree the
//! file wrote until `Config::connection` lays it over the top-level
//! `Config`'s tree and reads it like any other.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::config::tree::{self, did_you_mean};
use crate::config::value::{redact_password, wrong_type};
use crate::config::Config;
use crate::error::{Error, Result};

/// Where connections live in the file.
pub(crate) const PREFIX: &str = "queue.connections.";

/// The objects of the file that are ours, whether or not their driver is
/// compiled in.
pub(crate) const SECTIONS: [&str; 3] = ["queue", "amqp", "redis"];

/// The connections of a file: name -> its tree, keys as written in the
/// connection (`driver`, `redis.url`).
#[derive(Clone, Default, PartialEq)]
pub(crate) struct Connections(BTreeMap<String, Value>);

impl Connections {
    /// Takes `queue.connections` out of `tree`, where no field takes it; it
    /// and each connection in it must be objects.
    pub(crate) fn take(tree: &mut Value) -> Result<Connections> {
        let written = tree
            .get_mut("queue")
            .and_then(Value::as_object_mut)
            .and_then(|queue| queue.remove("connections"));
        let map = match written {
            None => return Ok(Connections::default()),
            Some(Value::Object(map)) => map,
            Some(other) => return Err(wrong_type("queue.connections", "an object", &other)),
        };
        if let Some((name, other)) = map.iter().find(|(_, tree)| !tree.is_object()) {
            return Err(wrong_type(&format!("{PREFIX}{name}"), "an object", other));
        }
        Ok(Connections(map.into_iter().collect()))
    }

    /// The names, sorted.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// `base` with the keys of connection `name` over it.
    pub(crate) fn apply(&self, base: &Config, name: &str) -> Result<Config> {
        let Some(written) = self.0.get(name) else {
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
        let defaults = tree::defaults()?;
        let over = top_level_tree(written, defaults);
        // An error names the key as the connection wrote it: `retry.backoff`
        // short for `queue.retry.backoff`; a key it did not write in full.
        let written_key = |key: &str| {
            key.strip_prefix("queue.")
                .filter(|short| tree::get(written, short).is_some())
                .unwrap_or(key)
                .to_owned()
        };
        let keys = tree::leaf_keys(defaults);
        let short = keys.iter().filter_map(|known| known.strip_prefix("queue."));
        let candidates: Vec<&str> = short.chain(keys.iter().map(String::as_str)).collect();
        crate::config::build(base, over)
            .map_err(|fault| fault.into_error(&format!("{PREFIX}{name}."), written_key, candidates))
    }
}

/// The tree of a connection as the top level writes it: `driver` is
/// `queue.driver`, `redis.url` stays. The keys of a driver not compiled in
/// are not ours, as at the top level.
fn top_level_tree(written: &Value, defaults: &Value) -> Value {
    let mut over = Value::Object(Map::new());
    for (key, value) in written.as_object().into_iter().flatten() {
        let key = if defaults.get(key).is_some() {
            key.clone()
        } else if SECTIONS.contains(&key.as_str()) {
            continue;
        } else {
            format!("queue.{key}")
        };
        tree::merge(&mut over, tree::at(&key, value.clone()));
    }
    over
}

/// `tree` with every string shown without a url's password.
fn redacted(tree: &Value) -> Value {
    match tree {
        Value::String(text) => Value::String(redact_password(text)),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), redacted(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

impl fmt::Debug for Connections {
    /// Every string shown without a url's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(name, tree)| (name, redacted(tree))))
            .finish()
    }
}
