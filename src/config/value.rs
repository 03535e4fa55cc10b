//! `Value`, one raw setting from the file or an `ACTORBUS_*` variable, and the
//! parsers that give it a type: strings, the driver, queue names, urls and
//! whole numbers (sizes and durations have files of their own).
//!
//! Every parser names the key and quotes the value in its error.
//! Each rule has a `check_*` twin for a value already typed, so that a
//! `Config` built in code meets the very rules a parsed one does.

use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::config::DriverKind;
use crate::error::{Error, Result};
use crate::validate;

/// Values longer than this are cut short when quoted in an error message.
const MAX_QUOTED_CHARS: usize = 80;

/// One raw setting, before it is given a type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A string; also every value that comes from an environment variable.
    Str(String),
    /// A number hocon read as whole.
    Int(i64),
    /// A number hocon read with a fraction or an exponent.
    Real(f64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An array (`amqp.urls`, `redis.cluster`).
    Array(Vec<Value>),
    /// An object where a value was expected.
    Object,
    /// The parser left a problem here (an unresolved substitution); holds
    /// its description.
    Bad(String),
}

impl Value {
    /// The value as an error message shows it: scalars quoted, others named.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Str(s) if s.chars().count() > MAX_QUOTED_CHARS => {
                let head: String = s.chars().take(MAX_QUOTED_CHARS).collect();
                format!("{head:?}…")
            }
            Value::Str(s) => format!("{s:?}"),
            Value::Int(i) => format!("\"{i}\""),
            Value::Real(f) => format!("\"{f}\""),
            Value::Bool(b) => format!("\"{b}\""),
            Value::Null => "null".to_owned(),
            Value::Array(_) => "an array".to_owned(),
            Value::Object => "an object".to_owned(),
            Value::Bad(problem) => problem.clone(),
        }
    }

    /// A typed value written out as `text`, shown as a parsed one would be.
    pub(crate) fn quote(text: impl Into<String>) -> String {
        Value::Str(text.into()).describe()
    }

    /// The error of a value of the wrong kind, e.g. an array for a string.
    pub(crate) fn wrong_type(&self, key: &str, expected: &str) -> Error {
        Error::config(
            key,
            format!("expected {expected}, found {}", self.describe()),
        )
    }
}

/// The error of a value, shown as `shown`, outside `bounds` (`1..=10`).
pub(crate) fn out_of_range(key: &str, shown: &str, bounds: &str) -> Error {
    Error::config(key, format!("{shown} is out of range {bounds}"))
}

/// A string setting. Numbers and booleans are taken as their text, as HOCON does.
pub(crate) fn string(key: &str, value: &Value) -> Result<String> {
    match value {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Real(f) => Ok(f.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(value.wrong_type(key, "a string")),
    }
}

/// `queue.driver`, case-insensitive. Whether the driver is compiled in is
/// `Bus::connect`'s to say: a `Config` can name any driver.
pub(crate) fn driver(key: &str, value: &Value) -> Result<DriverKind> {
    match string(key, value)?.trim().to_ascii_lowercase().as_str() {
        "memory" => Ok(DriverKind::Memory),
        "amqp" => Ok(DriverKind::Amqp),
        "redis" => Ok(DriverKind::Redis),
        _ => Err(Error::config(
            key,
            format!(
                "unknown driver {}: expected memory, amqp or redis",
                value.describe()
            ),
        )),
    }
}

/// A queue name, by the same rules as a name given to `push`.
pub(crate) fn queue_name(key: &str, value: &Value) -> Result<String> {
    let name = string(key, value)?;
    check_queue_name(key, &name)?;
    Ok(name)
}

/// [`queue_name`]'s rule for a name already a string.
pub(crate) fn check_queue_name(key: &str, name: &str) -> Result<()> {
    match validate::queue_name(name) {
        Ok(()) => Ok(()),
        Err(Error::InvalidQueueName { reason, .. }) => Err(Error::config(
            key,
            format!("invalid queue name {}: {reason}", Value::quote(name)),
        )),
        Err(other) => Err(Error::config(key, other.to_string())),
    }
}

/// A URL with one of `schemes` (each given with its `://`).
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn url(key: &str, value: &Value, schemes: &[&str]) -> Result<String> {
    let url = string(key, value)?;
    check_url(key, &url, schemes)?;
    Ok(url)
}

/// [`url`]'s rule for a URL already a string.
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn check_url(key: &str, url: &str, schemes: &[&str]) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    let scheme = schemes.iter().find(|scheme| lower.starts_with(**scheme));
    let problem = if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain whitespace or control characters".to_owned()
    } else if let Some(scheme) = scheme {
        // A url without a host would have the client pick 127.0.0.1 (lapin
        // does): a configuration mistake, not a wish. A unix socket has a
        // path instead.
        if *scheme == "unix://" || !host(&url[scheme.len()..]).is_empty() {
            return Ok(());
        }
        "has no host".to_owned()
    } else if lower.ends_with(':') && !lower.contains('/') {
        // What an unquoted url leaves: HOCON reads `//` as a comment.
        format!(
            "expected it to start with {} (an unquoted // starts a comment in hocon: \
             put urls in quotes)",
            schemes.join(" or ")
        )
    } else {
        format!("expected it to start with {}", schemes.join(" or "))
    };
    let shown = Value::quote(redact_password(url));
    Err(Error::config(
        key,
        format!("invalid url {shown}: {problem}"),
    ))
}

/// The host of the part of a url after its `scheme://`: what is between the
/// user info and the port.
#[cfg(any(feature = "amqp", feature = "redis"))]
fn host(rest: &str) -> &str {
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host_port.starts_with('[') {
        return host_port;
    }
    host_port.split(':').next().unwrap_or_default()
}

/// A list of urls (`amqp.urls`, `redis.cluster`), each with one of
/// `schemes`: an array in the file, or one string of urls separated by
/// commas (as an environment variable gives them).
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn urls(key: &str, value: &Value, schemes: &[&str]) -> Result<Vec<String>> {
    let items: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .map(|item| string(key, item))
            .collect::<Result<_>>()?,
        Value::Str(text) if text.trim().is_empty() => Vec::new(),
        Value::Str(text) => text.split(',').map(|url| url.trim().to_owned()).collect(),
        _ => return Err(value.wrong_type(key, "an array of urls")),
    };
    check_urls(key, &items, schemes)?;
    Ok(items)
}

/// [`urls`]'s rule for a list already typed.
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn check_urls(key: &str, urls: &[String], schemes: &[&str]) -> Result<()> {
    urls.iter().try_for_each(|url| check_url(key, url, schemes))
}

/// `url` with the password of its user info replaced, so that error messages
/// and logs do not leak it.
pub(crate) fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|at| at + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!(
            "{}:***{}",
            &url[..scheme_end + colon],
            &url[scheme_end + at..]
        ),
        None => url.to_owned(),
    }
}

/// A whole number in `range`, converted to the field's type.
pub(crate) fn integer<T: TryFrom<u64>>(
    key: &str,
    value: &Value,
    range: RangeInclusive<u64>,
) -> Result<T> {
    let shown = || value.describe();
    let number: i128 = match value {
        Value::Int(i) => i128::from(*i),
        // `as` saturates, and anything that large is out of range anyway.
        Value::Real(f) if f.is_finite() && f.fract() == 0.0 => *f as i128,
        Value::Real(_) => return Err(not_whole(key, value)),
        Value::Str(s) => match s.trim().parse::<i128>() {
            Ok(number) => number,
            Err(err) if is_overflow(&err) => return in_range(key, None, &range, shown),
            Err(_) => return Err(not_whole(key, value)),
        },
        _ => return Err(value.wrong_type(key, "an integer")),
    };
    in_range(key, u64::try_from(number).ok(), &range, shown)
}

/// [`integer`]'s rule for a number already typed.
pub(crate) fn check_integer<N>(key: &str, number: N, range: RangeInclusive<u64>) -> Result<()>
where
    N: Copy + Display + TryInto<u64>,
{
    let shown = || Value::quote(number.to_string());
    in_range::<u64>(key, number.try_into().ok(), &range, shown).map(drop)
}

/// `number` as the field's type if it is in `range`, else the error quoting
/// it as `shown` does. `None` is a number no `u64` holds.
fn in_range<T: TryFrom<u64>>(
    key: &str,
    number: Option<u64>,
    range: &RangeInclusive<u64>,
    shown: impl FnOnce() -> String,
) -> Result<T> {
    number
        .filter(|n| range.contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| {
            let bounds = format!("{}..={}", range.start(), range.end());
            out_of_range(key, &shown(), &bounds)
        })
}

/// The error of a number with a fraction where a whole one is needed.
fn not_whole(key: &str, value: &Value) -> Error {
    Error::config(
        key,
        format!(
            "invalid integer {}: expected a whole number",
            value.describe()
        ),
    )
}

/// Whether `err` is about the size of the number rather than its spelling.
fn is_overflow(err: &std::num::ParseIntError) -> bool {
    use std::num::IntErrorKind;
    matches!(
        err.kind(),
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
    )
}

/// The message of the `Error::Config` that `result` must be: for the unit
/// tests of the value parsers (this file, `config_duration.rs`,
/// `config_size.rs`).
#[cfg(test)]
pub(crate) fn config_error_message(result: Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(Error::Config { message, .. }) => message,
        other => panic!("expected Error::Config, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::config_error_message as message;
    use super::*;

    #[test]
    fn integers_accept_strings_and_whole_reals() {
        assert_eq!(
            integer::<u32>("k", &Value::Str(" 7 ".into()), 1..=10).ok(),
            Some(7)
        );
        assert_eq!(integer::<u32>("k", &Value::Real(3.0), 1..=10).ok(), Some(3));
        assert!(message(integer::<u32>("k", &Value::Real(3.5), 1..=10)).contains("whole"));
        assert_eq!(
            message(integer::<u32>("k", &Value::Int(-1), 1..=10)),
            "\"-1\" is out of range 1..=10"
        );
        assert!(
            message(integer::<u32>("k", &Value::Str("9".repeat(60)), 1..=10))
                .contains("out of range")
        );
    }

    #[test]
    fn typed_checks_word_errors_as_the_parsers_do() {
        assert_eq!(
            message(check_integer("k", 0u32, 1..=10)),
            message(integer::<u32>("k", &Value::Int(0), 1..=10))
        );
        assert_eq!(
            message(check_integer("k", usize::MAX, 1..=10)),
            format!("\"{}\" is out of range 1..=10", usize::MAX)
        );
        assert!(check_integer("k", 10u16, 1..=10).is_ok());
        assert_eq!(
            message(check_queue_name("k", "amq.x")),
            message(queue_name("k", &Value::Str("amq.x".into())))
        );
    }

    #[cfg(any(feature = "amqp", feature = "redis"))]
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_password("http://guest:secret@host:5672/%2f"),
            "http://guest:***@host:5672/%2f"
        );
        assert_eq!(redact_password("http://host/a@b"), "http://host/a@b");
        assert_eq!(redact_password("http://user@host"), "http://user@host");
        assert_eq!(redact_password("no scheme"), "no scheme");
        assert_eq!(redact_password("é://é:é@é"), "é://é:***@é");
    }
}
