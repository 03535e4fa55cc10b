//! The config tree: the `queue`, `amqp` and `redis` objects as a
//! `serde_json::Value`, nested by key segment, whose scalars are their text
//! (booleans aside).
//!
//! A file (`document.rs`), each `ACTORBUS_*` variable and each named
//! connection is such a tree. It is laid over the tree of a `Config` (the
//! defaults, or the top level for a connection), checked (`rules.rs`) and
//! read into the `Config` (`deserializer.rs`). The keys of the defaults'
//! tree are every key there is: no list of keys is kept by hand.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::{Error, Result};

/// The tree of `config`: every key, with the value it has. (serde_json
/// refuses only maps whose keys are not strings: a `Config` has none.)
pub(crate) fn of(config: &Config) -> Result<Value> {
    serde_json::to_value(config)
        .map_err(|err| Error::config("config", format!("cannot be written as a tree: {err}")))
}

/// The tree of `Config::default()`: the keys there are. Made once.
pub(crate) fn defaults() -> Result<&'static Value> {
    static DEFAULTS: OnceLock<Value> = OnceLock::new();
    if let Some(tree) = DEFAULTS.get() {
        return Ok(tree);
    }
    let tree = of(&Config::default())?;
    Ok(DEFAULTS.get_or_init(|| tree))
}

/// The node at dotted `key`, if every object on the way is there.
pub(crate) fn get<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.')
        .try_fold(tree, |node, name| node.as_object()?.get(name))
}

/// A tree that holds `value` at dotted `key` and nothing else.
pub(crate) fn at(key: &str, value: Value) -> Value {
    key.rsplit('.').fold(value, |inner, name| {
        Value::Object(Map::from_iter([(name.to_owned(), inner)]))
    })
}

/// Lays `over` on `base` as HOCON merges: objects key by key, and any other
/// value replacing what was there.
pub(crate) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (name, value) in over {
                match base.get_mut(&name) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(name, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

/// The dotted keys of the values of `tree` that are not objects.
pub(crate) fn leaf_keys(tree: &Value) -> Vec<String> {
    let Value::Object(map) = tree else {
        return vec![String::new()];
    };
    map.iter()
        .flat_map(|(name, child)| {
            leaf_keys(child)
                .into_iter()
                .map(move |below| match below.as_str() {
                    "" => name.clone(),
                    _ => format!("{name}.{below}"),
                })
        })
        .collect()
}

/// The message of an unknown key: "unknown key", and the nearest of
/// `candidates` when it is near.
pub(crate) fn unknown_key<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(key, candidates) {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merging_follows_hocon() {
        let mut base = json!({ "queue": { "a": "1", "b": { "c": "2" } } });
        merge(&mut base, at("queue.b.d", json!("3")));
        merge(&mut base, json!({ "queue": { "a": null } }));
        assert_eq!(
            base,
            json!({ "queue": { "a": null, "b": { "c": "2", "d": "3" } } })
        );
        merge(&mut base, at("queue.b", json!("x")));
        assert_eq!(get(&base, "queue.b"), Some(&json!("x")));
        assert_eq!(get(&base, "queue.b.c"), None);
    }
}
