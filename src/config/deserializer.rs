//! Reading a checked tree into a `Config` with serde: [`Node`], a
//! `Deserializer` over a borrowed node of the tree, run under
//! `serde_path_to_error`, which names the dotted key of whatever fails. The
//! derives of the config types do the mapping (see `mod.rs`).

use std::fmt;

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;

use crate::config::tree::unknown_key;
use crate::config::value::{describe, text, whole_number};
use crate::config::Config;
use crate::error::Error;

/// What stopped a tree from being read.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The dotted key is not one of ours.
    Unknown(String),
    /// A value did not read; the error names its key.
    Invalid(Error),
}

impl Fault {
    /// The error, its key shown as `prefix` and what `written` makes of the
    /// dotted key; an unknown key is compared with `candidates`.
    pub(crate) fn into_error<'a>(
        self,
        prefix: &str,
        written: impl Fn(&str) -> String,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Error {
        match self {
            Fault::Unknown(key) => {
                let key = written(&key);
                let message = unknown_key(&key, candidates);
                Error::config(format!("{prefix}{key}"), message)
            }
            Fault::Invalid(Error::Config { key, message }) => {
                Error::config(format!("{prefix}{}", written(&key)), message)
            }
            Fault::Invalid(other) => other,
        }
    }
}

/// The `Config` that `tree` holds.
pub(crate) fn read(tree: &Value) -> Result<Config, Fault> {
    serde_path_to_error::deserialize(Node(tree)).map_err(|err| {
        let key = err.path().to_string();
        match err.into_inner() {
            Problem::Unknown => Fault::Unknown(key),
            Problem::Message(message) => Fault::Invalid(Error::config(key, message)),
        }
    })
}

/// The error of [`Node`]: serde's, without the key (`serde_path_to_error`
/// adds it).
#[derive(Debug, thiserror::Error)]
enum Problem {
    /// A key that no field takes.
    #[error("unknown key")]
    Unknown,
    /// What is wrong with a value.
    #[error("{0}")]
    Message(String),
}

impl de::Error for Problem {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Problem::Message(message.to_string())
    }

    fn unknown_field(_field: &str, _expected: &'static [&'static str]) -> Self {
        // The caller words it: the near keys depend on where the tree was
        // written (the top level or a connection).
        Problem::Unknown
    }
}

/// One node of the tree, read by serde. Scalars are read from their text, so
/// a number may be written quoted or not.
#[derive(Clone, Copy)]
struct Node<'a>(&'a Value);

impl Node<'_> {
    /// The error of a node of the wrong kind.
    fn expected(self, what: &str) -> Problem {
        Problem::Message(format!("expected {what}, found {}", describe(self.0)))
    }
}

impl<'de> IntoDeserializer<'de, Problem> for Node<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for Node<'de> {
    type Error = Problem;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Array(items) => visitor.visit_seq(SeqDeserializer::new(items.iter().map(Node))),
            Value::Object(map) => visitor.visit_map(MapDeserializer::new(
                map.iter().map(|(name, node)| (name.as_str(), Node(node))),
            )),
            // A whole number (`7`, `"7"`, `7.0`) is offered as one, for the
            // integer fields.
            scalar => {
                let text = text(scalar).unwrap_or_default();
                match whole_number(&text).ok().flatten().map(u64::try_from) {
                    Some(Ok(number)) => visitor.visit_u64(number),
                    _ => visitor.visit_string(text),
                }
            }
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match text(self.0) {
            Some(text) => visitor.visit_string(text),
            None => Err(self.expected("a string")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        self.deserialize_string(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Problem> {
        match self.0 {
            Value::Object(_) => self.deserialize_any(visitor),
            _ => Err(self.expected("an object")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Problem> {
        self.deserialize_map(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
        ignored_any
    }
}
