//! One value of the config tree, as the file or an `ACTORBUS_*` variable
//! wrote it: how an error message shows it, and the rules of the kinds of
//! value that are not sizes or durations (whole numbers, queue names, urls),
//! plus the serde readers of keywords and url lists.
//!
//! Every scalar of the tree but a boolean is its text (see `document.rs`), so
//! that a value is checked and quoted as written; the numbers of a serialized
//! `Config` are read the same way.

use std::num::IntErrorKind::{NegOverflow, PosOverflow};
use std::ops::RangeInclusive;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::validate;

/// Values longer than this are cut short when quoted in an error message.
const MAX_QUOTED_CHARS: usize = 80;

/// The text of a scalar; `None` for null, arrays and objects.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The value as an error message shows it: scalars quoted, others named.
pub(crate) fn describe(value: &Value) -> String {
    match (text(value), value) {
        (Some(text), _) => quote(&text),
        (None, Value::Array(_)) => "an array".to_owned(),
        (None, Value::Object(_)) => "an object".to_owned(),
        (None, _) => "null".to_owned(),
    }
}

/// `text` quoted, and cut short when long.
pub(crate) fn quote(text: &str) -> String {
    if text.chars().count() > MAX_QUOTED_CHARS {
        let head: String = text.chars().take(MAX_QUOTED_CHARS).collect();
        return format!("{head:?}…");
    }
    format!("{text:?}")
}

/// The error of a value of the wrong kind, e.g. an array for a string.
pub(crate) fn wrong_type(key: &str, expected: &str, value: &Value) -> Error {
    Error::config(
        key,
        format!("expected {expected}, found {}", describe(value)),
    )
}

/// The error of a value, shown as `shown`, outside `bounds` (`1..=10`).
pub(crate) fn out_of_range(key: &str, shown: &str, bounds: &str) -> Error {
    Error::config(key, format!("{shown} is out of range {bounds}"))
}

/// The text of a number setting (a size, a duration, a whole number),
/// quoted or not, or the error of a value of another kind.
pub(crate) fn scalar(key: &str, value: &Value, expected: &str) -> Result<String> {
    text(value)
        .filter(|_| !value.is_boolean())
        .ok_or_else(|| wrong_type(key, expected, value))
}

/// The text of a string setting: a number or a boolean is taken as its
/// text, as HOCON does.
pub(crate) fn string(key: &str, value: &Value) -> Result<String> {
    text(value).ok_or_else(|| wrong_type(key, "a string", value))
}

/// The rule of a whole number in `range`. A number written with a fraction
/// or an exponent is taken when it is whole (`3.0`, `1e3`), as HOCON's
/// getters take it.
pub(crate) fn check_integer(key: &str, value: &Value, range: RangeInclusive<u64>) -> Result<()> {
    let text = scalar(key, value, "an integer")?;
    let number = whole_number(&text).map_err(|()| {
        Error::config(
            key,
            format!(
                "invalid integer {}: expected a whole number",
                describe(value)
            ),
        )
    })?;
    match number.and_then(|n| u64::try_from(n).ok()) {
        Some(n) if range.contains(&n) => Ok(()),
        _ => {
            let bounds = format!("{}..={}", range.start(), range.end());
            Err(out_of_range(key, &describe(value), &bounds))
        }
    }
}

/// The whole number `text` writes (`7`, `7.0`, `1e3`): `Ok(None)` when it
/// is too large for any integer type, `Err` when it is not a whole number.
pub(crate) fn whole_number(text: &str) -> std::result::Result<Option<i128>, ()> {
    let text = text.trim();
    match text.parse::<i128>() {
        Ok(number) => Ok(Some(number)),
        Err(err) if matches!(err.kind(), PosOverflow | NegOverflow) => Ok(None),
        Err(_) => match text.parse::<f64>() {
            // `as` saturates, and anything that large is out of range anyway.
            Ok(real) if real.is_finite() && real.fract() == 0.0 => Ok(Some(real as i128)),
            _ => Err(()),
        },
    }
}

/// A keyword setting (`queue.driver`, `amqp.queue_type`), case-insensitive:
/// the serde reader behind their `Deserialize`. `what` names the setting in
/// the error (`driver`); `options` are the keywords and what they stand for.
pub(crate) fn keyword<'de, D, T>(
    deserializer: D,
    what: &str,
    options: &[(&str, T)],
) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Copy,
{
    let text = String::deserialize(deserializer)?;
    let wanted = text.trim().to_ascii_lowercase();
    if let Some((_, kind)) = options.iter().find(|(name, _)| *name == wanted) {
        return Ok(*kind);
    }
    let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
    let (last, rest) = names.split_last().unwrap_or((&"", &[]));
    Err(serde::de::Error::custom(format!(
        "unknown {what} {}: expected {} or {last}",
        quote(&text),
        rest.join(", ")
    )))
}

/// A queue name, by the same rules as a name given to `push`.
pub(crate) fn check_queue_name(key: &str, value: &Value) -> Result<()> {
    let name = string(key, value)?;
    match validate::queue_name(&name) {
        Ok(()) => Ok(()),
        Err(Error::InvalidQueueName { reason, .. }) => Err(Error::config(
            key,
            format!("invalid queue name {}: {reason}", quote(&name)),
        )),
        Err(other) => Err(Error::config(key, other.to_string())),
    }
}

/// The rule of a URL with one of `schemes` (each given with its `://`).
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn check_url(key: &str, value: &Value, schemes: &[&str]) -> Result<()> {
    let url = string(key, value)?;
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
    let shown = quote(&redact_password(&url));
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

/// The rule of a list of urls (`amqp.urls`, `redis.cluster`): an array, or
/// one string of urls separated by commas (as a variable gives them), each
/// with one of `schemes`.
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn check_urls(key: &str, value: &Value, schemes: &[&str]) -> Result<()> {
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_url(key, item, schemes)),
        Value::String(text) => split_urls(text)
            .into_iter()
            .try_for_each(|url| check_url(key, &Value::String(url), schemes)),
        _ => Err(wrong_type(key, "an array of urls", value)),
    }
}

/// The urls of one string that separates them by commas.
#[cfg(any(feature = "amqp", feature = "redis"))]
fn split_urls(text: &str) -> Vec<String> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    text.split(',').map(|url| url.trim().to_owned()).collect()
}

/// The serde reader of a list of urls, as [`check_urls`] takes it.
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn url_list<'de, D>(deserializer: D) -> std::result::Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "an array of urls")]
    enum Urls {
        Array(Vec<String>),
        Joined(String),
    }
    Ok(match Urls::deserialize(deserializer)? {
        Urls::Array(urls) => urls,
        Urls::Joined(text) => split_urls(&text),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_may_be_written_as_reals() {
        assert_eq!(whole_number(" 7 "), Ok(Some(7)));
        assert_eq!(whole_number("3.0"), Ok(Some(3)));
        assert_eq!(whole_number("1e3"), Ok(Some(1000)));
        assert_eq!(whole_number(&"9".repeat(60)), Ok(None));
        assert_eq!(whole_number("3.5"), Err(()));
        assert_eq!(whole_number("1e400"), Err(()));
    }

    #[test]
    fn long_values_are_cut_short() {
        let long = "x".repeat(200);
        assert_eq!(quote(&long), format!("{:?}…", "x".repeat(80)));
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
