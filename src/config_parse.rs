//! The value parsers behind `Config`: HOCON text to a tree, and one raw value
//! (from the file or an `ACTORBUS_*` variable) to a typed setting.
//!
//! Every parser names the key and quotes the value in its error (§3.9, §5).

use std::ops::RangeInclusive;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use hocon::{Hocon, HoconLoader};

use crate::config::{Config, DriverKind};
use crate::error::{Error, Result};
use crate::validate;

/// The longest a configured wait may be. Far beyond any sensible timeout, and
/// low enough that `Instant::now() + duration` can never overflow downstream.
const MAX_DURATION: Duration = Duration::from_secs(31_557_600); // humantime's `1year`

/// Nesting budget of a document, see [`prepare`].
const MAX_NESTING: usize = 200;
/// What one `{` or `[` costs against [`MAX_NESTING`], against 1 per dot of a
/// dotted key: measured, an object level takes about eight times the parser
/// stack of a path segment.
const BRACKET_COST: usize = 8;

/// Values longer than this are cut short when quoted in an error message.
const MAX_QUOTED_CHARS: usize = 80;

/// One raw setting, before it is given a type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Real(f64),
    Bool(bool),
    Null,
    Array,
    Object,
    /// hocon went on past a problem here (e.g. an unresolved substitution);
    /// holds the description of that problem.
    Bad(String),
}

impl Value {
    pub(crate) fn from_hocon(value: &Hocon) -> Value {
        match value {
            Hocon::String(s) => Value::Str(s.clone()),
            Hocon::Integer(i) => Value::Int(*i),
            Hocon::Real(f) => Value::Real(*f),
            Hocon::Boolean(b) => Value::Bool(*b),
            Hocon::Null => Value::Null,
            Hocon::Array(_) => Value::Array,
            Hocon::Hash(_) => Value::Object,
            Hocon::BadValue(hocon::Error::KeyNotFound { key }) => Value::Bad(format!(
                "an unresolved substitution ${{{key}}} (substitution from the environment is \
                 off; use ACTORBUS_* variables)"
            )),
            Hocon::BadValue(err) => {
                Value::Bad(format!("an invalid value ({})", hocon_problem(err)))
            }
        }
    }

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
            Value::Array => "an array".to_owned(),
            Value::Object => "an object".to_owned(),
            Value::Bad(problem) => problem.clone(),
        }
    }

    fn wrong_type(&self, key: &str, expected: &str) -> Error {
        Error::config(
            key,
            format!("expected {expected}, found {}", self.describe()),
        )
    }

    fn out_of_range(&self, key: &str, range: &str) -> Error {
        Error::config(key, format!("{} is out of range {range}", self.describe()))
    }
}

/// Parses `text` into a tree, working around what makes hocon 0.9 misbehave.
///
/// hocon's lenient mode silently drops everything after a syntax error, so a
/// strict pass checks the syntax first; the lenient pass then builds the tree,
/// so that an unresolved `${...}` in the application's own keys does not fail
/// ours. hocon panics on some inputs (any unquoted non-ASCII text, odd
/// substitutions) and recurses without bound on deep nesting: [`prepare`]
/// refuses the known cases beforehand, and other panics are caught.
pub(crate) fn parse_document(text: &str, source: &str) -> Result<Hocon> {
    let prepared = prepare(text).map_err(|problem| Error::config(source, problem))?;
    let text = prepared.text.as_str();
    let parsed = panic::catch_unwind(AssertUnwindSafe(|| {
        HoconLoader::new().no_system().strict().load_str(text)?;
        HoconLoader::new().no_system().load_str(text)?.hocon()
    }));
    match parsed {
        Ok(Ok(document)) => Ok(document),
        Ok(Err(err)) => {
            let mut problem = hocon_problem(&err);
            if prepared.unquoted_url {
                problem.push_str(" (an unquoted // starts a comment: put urls in quotes)");
            }
            Err(Error::config(source, problem))
        }
        Err(_) => {
            tracing::warn!(
                source,
                "the hocon parser panicked; reporting a config error"
            );
            Err(Error::config(
                source,
                "invalid hocon: the parser failed on this text",
            ))
        }
    }
}

fn hocon_problem(err: &hocon::Error) -> String {
    match err {
        hocon::Error::Parse => "invalid hocon syntax".to_owned(),
        hocon::Error::Deserialization { .. } => {
            "invalid hocon syntax: the text could not be parsed completely (check brackets, \
             quotes and separators)"
                .to_owned()
        }
        hocon::Error::Include { .. }
        | hocon::Error::IncludeNotAllowedFromStr
        | hocon::Error::TooManyIncludes => {
            "include is not supported: put the keys in this file".to_owned()
        }
        other => format!("invalid hocon: {}", lower_first(&other.to_string())),
    }
}

/// A document made ready for hocon.
#[derive(Debug, PartialEq)]
pub(crate) struct Prepared {
    /// The text, with what hocon 0.9 wrongly refuses rewritten: whitespace
    /// at the very end, and blanks inside an empty `{ }`.
    pub(crate) text: String,
    /// An unquoted `scheme://` was seen: the likely cause of a syntax error.
    pub(crate) unquoted_url: bool,
}

/// Bounds the nesting of a document before hocon recurses into it, refuses
/// unquoted non-ASCII text before hocon panics on it, and rewrites what
/// hocon 0.9 cannot read although it is valid HOCON.
///
/// The nesting is over-estimated: each open `{` or `[` (quotes and comments
/// skipped) costs [`BRACKET_COST`] plus the dots of the key before it, and the
/// dots of the token at hand count too.
pub(crate) fn prepare(text: &str) -> std::result::Result<Prepared, String> {
    let text = text.trim_end();
    let bytes = text.as_bytes();
    let mut blanks = Vec::new(); // byte ranges to drop, all ASCII
    let mut unquoted_url = false;
    let mut open: Vec<usize> = Vec::new();
    let mut depth = 0;
    let mut dots = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i = find_from(bytes, i + 3, b"\"\"\"").map_or(bytes.len(), |end| end + 2);
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                i = find_from(bytes, i, b"\n").unwrap_or(bytes.len());
                dots = 0;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                unquoted_url |= i > 0 && bytes[i - 1] == b':';
                i = find_from(bytes, i, b"\n").unwrap_or(bytes.len());
                dots = 0;
            }
            open_bracket @ (b'{' | b'[') => {
                let cost = BRACKET_COST + dots;
                open.push(cost);
                depth += cost;
                dots = 0;
                let end = i
                    + 1
                    + bytes[i + 1..]
                        .iter()
                        .take_while(|b| matches!(b, b' ' | b'\t'))
                        .count();
                if open_bracket == b'{' && end > i + 1 && bytes.get(end) == Some(&b'}') {
                    blanks.push(i + 1..end);
                }
            }
            b'}' | b']' => {
                depth -= open.pop().unwrap_or(0);
                dots = 0;
            }
            b'.' => dots += 1,
            b'\n' | b',' => dots = 0,
            // hocon 0.9 panics on these; a precise error is better than a caught panic.
            0x80.. => {
                let line = text[..i].matches('\n').count() + 1;
                return Err(format!(
                    "invalid hocon: unquoted non-ascii text on line {line} (hocon 0.9 cannot \
                     read it: put the value or key in quotes)"
                ));
            }
            _ => {}
        }
        if depth + dots > MAX_NESTING {
            return Err(format!(
                "invalid hocon: nested too deeply (at most {} levels of objects and arrays)",
                MAX_NESTING / BRACKET_COST
            ));
        }
        i += 1;
    }
    let mut rewritten = String::with_capacity(text.len());
    let mut from = 0;
    for blank in blanks {
        rewritten.push_str(&text[from..blank.start]);
        from = blank.end;
    }
    rewritten.push_str(&text[from..]);
    Ok(Prepared {
        text: rewritten,
        unquoted_url,
    })
}

fn find_from(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| from + at)
}

pub(crate) fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
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

/// A queue name, by the same rules as a name given to `push` (§3.9).
pub(crate) fn queue_name(key: &str, value: &Value) -> Result<String> {
    let name = string(key, value)?;
    match validate::queue_name(&name) {
        Ok(()) => Ok(name),
        Err(Error::InvalidQueueName { reason, .. }) => Err(Error::config(
            key,
            format!("invalid queue name {}: {reason}", value.describe()),
        )),
        Err(other) => Err(Error::config(key, other.to_string())),
    }
}

/// A URL with one of `schemes` (each given with its `://`).
#[cfg(any(feature = "amqp", feature = "redis"))]
pub(crate) fn url(key: &str, value: &Value, schemes: &[&str]) -> Result<String> {
    let url = string(key, value)?;
    let lower = url.to_ascii_lowercase();
    let problem = if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        "must not contain whitespace or control characters".to_owned()
    } else if schemes.iter().any(|scheme| lower.starts_with(scheme)) {
        return Ok(url);
    } else {
        format!("expected it to start with {}", schemes.join(" or "))
    };
    let shown = Value::Str(redact_password(&url)).describe();
    Err(Error::config(
        key,
        format!("invalid url {shown}: {problem}"),
    ))
}

/// `url` with the password of its user info replaced, so that error messages
/// and logs do not leak it.
#[cfg(any(feature = "amqp", feature = "redis"))]
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
    let out_of_range = || value.out_of_range(key, &format!("{}..={}", range.start(), range.end()));
    let number: i128 = match value {
        Value::Int(i) => i128::from(*i),
        // `as` saturates, and anything that large is out of range anyway.
        Value::Real(f) if f.is_finite() && f.fract() == 0.0 => *f as i128,
        Value::Real(_) => return Err(not_whole(key, value)),
        Value::Str(s) => match s.trim().parse::<i128>() {
            Ok(number) => number,
            Err(err) if is_overflow(&err) => return Err(out_of_range()),
            Err(_) => return Err(not_whole(key, value)),
        },
        _ => return Err(value.wrong_type(key, "an integer")),
    };
    let checked = u64::try_from(number)
        .ok()
        .filter(|n| range.contains(n))
        .and_then(|n| T::try_from(n).ok());
    checked.ok_or_else(out_of_range)
}

fn not_whole(key: &str, value: &Value) -> Error {
    Error::config(
        key,
        format!(
            "invalid integer {}: expected a whole number",
            value.describe()
        ),
    )
}

fn is_overflow(err: &std::num::ParseIntError) -> bool {
    use std::num::IntErrorKind;
    matches!(
        err.kind(),
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
    )
}

/// A size in bytes in `1..=max`: a bare number of bytes, or a number and a
/// HOCON unit (`16MiB`, `512K`, `1MB` = 10^6 bytes, `1.5KiB`).
pub(crate) fn size<T: TryFrom<u64>>(key: &str, value: &Value, max: u64) -> Result<T> {
    let out_of_range = || value.out_of_range(key, &format!("1..={}", format_size(max)));
    let bytes: u128 = match value {
        Value::Int(i) => u128::try_from(*i).map_err(|_| out_of_range())?,
        // `as` saturates, and anything that large is out of range anyway.
        Value::Real(f) if f.is_finite() && f.fract() == 0.0 && *f >= 0.0 => *f as u128,
        Value::Real(f) if f.is_finite() && f.fract() == 0.0 => return Err(out_of_range()),
        Value::Real(_) => {
            return Err(Error::config(
                key,
                format!(
                    "invalid size {}: not a whole number of bytes",
                    value.describe()
                ),
            ))
        }
        Value::Str(s) => match parse_size(s.trim()) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(out_of_range()),
            Err(problem) => {
                return Err(Error::config(
                    key,
                    format!("invalid size {}: {problem}", value.describe()),
                ))
            }
        },
        _ => return Err(value.wrong_type(key, "a size such as 16MiB")),
    };
    let checked = u64::try_from(bytes)
        .ok()
        .filter(|n| (1..=max).contains(n))
        .and_then(|n| T::try_from(n).ok());
    checked.ok_or_else(out_of_range)
}

/// `Ok(None)` when the size is too large to count.
fn parse_size(text: &str) -> std::result::Result<Option<u128>, String> {
    if text.starts_with('-') {
        return Err("must not be negative".to_owned());
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    if number.is_empty() {
        return Err("expected a number".to_owned());
    }
    let Some(multiplier) = size_unit(unit) else {
        return Err(format!(
            "unknown unit {unit:?}: use B, KiB, MiB, GiB, kB, MB or GB"
        ));
    };
    if number.contains('.') {
        let Ok(number) = number.parse::<f64>() else {
            return Err("expected a number".to_owned());
        };
        let bytes = number * multiplier as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Ok(None);
        }
        if bytes.fract() != 0.0 {
            return Err("not a whole number of bytes".to_owned());
        }
        return Ok(Some(bytes as u128));
    }
    Ok(number
        .parse::<u128>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier)))
}

/// The units of HOCON's size format: powers of ten for `kB`, `MB`...,
/// powers of two for `K`, `Ki`, `KiB`...
fn size_unit(unit: &str) -> Option<u128> {
    let (decimal, binary) = match unit {
        "" | "B" | "b" | "byte" | "bytes" => return Some(1),
        "kB" | "kilobyte" | "kilobytes" => (1, 0),
        "MB" | "megabyte" | "megabytes" => (2, 0),
        "GB" | "gigabyte" | "gigabytes" => (3, 0),
        "TB" | "terabyte" | "terabytes" => (4, 0),
        "K" | "k" | "Ki" | "KiB" | "kibibyte" | "kibibytes" => (0, 1),
        "M" | "m" | "Mi" | "MiB" | "mebibyte" | "mebibytes" => (0, 2),
        "G" | "g" | "Gi" | "GiB" | "gibibyte" | "gibibytes" => (0, 3),
        "T" | "t" | "Ti" | "TiB" | "tebibyte" | "tebibytes" => (0, 4),
        _ => return None,
    };
    Some(1000u128.pow(decimal) * 1024u128.pow(binary))
}

fn format_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MiB", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

/// A duration in humantime form (`250ms`, `10s`, `5m`, `1h 30m`), at most a
/// year. A bare number other than `0` has no unit and is refused rather than
/// guessed.
pub(crate) fn duration(key: &str, value: &Value, allow_zero: bool) -> Result<Duration> {
    let text = match value {
        Value::Str(s) => s.trim().to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        _ => return Err(value.wrong_type(key, "a duration such as 10s or 250ms")),
    };
    let parsed = humantime::parse_duration(&text).map_err(|err| {
        let problem = duration_problem(&text, &err);
        Error::config(
            key,
            format!("invalid duration {}: {problem}", value.describe()),
        )
    })?;
    if parsed.is_zero() && !allow_zero {
        return Err(Error::config(
            key,
            format!("{} is out of range: must be more than 0", value.describe()),
        ));
    }
    if parsed > MAX_DURATION {
        return Err(value.out_of_range(key, "0..=1year"));
    }
    Ok(parsed)
}

fn duration_problem(text: &str, err: &humantime::DurationError) -> String {
    use humantime::DurationError;
    match err {
        DurationError::InvalidCharacter(at) => match text.get(*at..).and_then(|s| s.chars().next())
        {
            Some(c) => format!("invalid character {c:?}"),
            None => "invalid character".to_owned(),
        },
        DurationError::NumberExpected(_) => "expected a number".to_owned(),
        DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            "a unit is needed, e.g. 10s or 250ms".to_owned()
        }
        DurationError::UnknownUnit { unit, .. } => {
            format!("unknown unit {unit:?}: use ms, s, m, h or d")
        }
        DurationError::NumberOverflow => "number is too large or too precise".to_owned(),
        DurationError::Empty => "empty value".to_owned(),
    }
}

/// The objects of the file that are ours, as the compiled features have them.
pub(crate) fn is_section(name: &str) -> bool {
    name == "queue"
        || (cfg!(feature = "amqp") && name == "amqp")
        || (cfg!(feature = "redis") && name == "redis")
}

/// Keys that hold objects of keys rather than a value.
pub(crate) fn is_object_key(key: &str) -> bool {
    matches!(key, "queue.retry" | "queue.memory" | "redis.pool") || is_section(key)
}

/// Sets the field of the dotted `key` from `value`.
pub(crate) fn apply(config: &mut Config, key: &str, value: &Value) -> Result<()> {
    let queue = &mut config.queue;
    match key {
        "queue.driver" => queue.driver = driver(key, value)?,
        "queue.default" => queue.default = queue_name(key, value)?,
        "queue.max_payload" => queue.max_payload = size(key, value, MAX_PAYLOAD)?,
        "queue.push_timeout" => queue.push_timeout = duration(key, value, false)?,
        "queue.shutdown_timeout" => queue.shutdown_timeout = duration(key, value, true)?,
        "queue.retry.max_attempts" => {
            queue.retry.max_attempts = integer(key, value, 1..=1000)?;
        }
        "queue.retry.backoff" => queue.retry.backoff = duration(key, value, false)?,
        "queue.retry.max_backoff" => queue.retry.max_backoff = duration(key, value, false)?,
        "queue.memory.capacity" => {
            queue.memory.capacity = integer(key, value, 1..=100_000_000)?;
        }
        #[cfg(feature = "amqp")]
        "amqp.url" => config.amqp.url = url(key, value, &["amqp://", "amqps://"])?,
        #[cfg(feature = "amqp")]
        "amqp.prefetch" => config.amqp.prefetch = integer(key, value, 1..=65535)?,
        #[cfg(feature = "amqp")]
        "amqp.heartbeat" => config.amqp.heartbeat = heartbeat(key, value)?,
        #[cfg(feature = "redis")]
        "redis.url" => {
            config.redis.url = url(key, value, &["redis://", "rediss://", "unix://"])?;
        }
        #[cfg(feature = "redis")]
        "redis.pool.max_size" => config.redis.pool_max_size = integer(key, value, 1..=1024)?,
        _ if is_object_key(key) => {
            return Err(Error::config(
                key,
                format!("expected an object, found {}", value.describe()),
            ));
        }
        _ => return Err(Error::config(key, "unknown key")),
    }
    Ok(())
}

/// 512 MiB: one message beyond that belongs in a blob store, not a queue.
const MAX_PAYLOAD: u64 = 512 * 1024 * 1024;

/// AMQP carries the heartbeat as whole seconds in 16 bits; 0 turns it off.
#[cfg(feature = "amqp")]
fn heartbeat(key: &str, value: &Value) -> Result<Duration> {
    let heartbeat = duration(key, value, true)?;
    let allowed = Duration::from_secs(1)..=Duration::from_secs(u64::from(u16::MAX));
    if heartbeat.is_zero() || allowed.contains(&heartbeat) {
        Ok(heartbeat)
    } else {
        Err(Error::config(
            key,
            format!(
                "{} is out of range: 0 (off) or 1s..=65535s",
                value.describe()
            ),
        ))
    }
}

/// Rules between keys, checked once file and environment are both in.
pub(crate) fn check(config: &Config) -> Result<()> {
    let retry = &config.queue.retry;
    if retry.max_backoff < retry.backoff {
        return Err(Error::config(
            "queue.retry.max_backoff",
            format!(
                "\"{}\" is less than queue.retry.backoff (\"{}\")",
                humantime::format_duration(retry.max_backoff),
                humantime::format_duration(retry.backoff)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(Error::Config { message, .. }) => message,
            other => panic!("expected Error::Config, got {other:?}"),
        }
    }

    #[test]
    fn sizes_follow_hocon_units() {
        assert_eq!(parse_size("16MiB"), Ok(Some(16 << 20)));
        assert_eq!(parse_size("512K"), Ok(Some(512 << 10)));
        assert_eq!(parse_size("1MB"), Ok(Some(1_000_000)));
        assert_eq!(parse_size("1 kB"), Ok(Some(1000)));
        assert_eq!(parse_size("1.5KiB"), Ok(Some(1536)));
        assert_eq!(parse_size("42"), Ok(Some(42)));
        assert_eq!(
            parse_size("99999999999999999999999999999999999999999"),
            Ok(None)
        );
        assert_eq!(parse_size("999999999999999999999999999999TiB"), Ok(None));
        assert!(parse_size("1.3B").is_err());
        assert!(parse_size("1.2.3MiB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("16XB").is_err());
    }

    #[test]
    fn huge_real_sizes_saturate_instead_of_panicking() {
        assert_eq!(parse_size("1e400").ok(), None); // `e` is an unknown unit
        let got = size::<usize>("k", &Value::Real(1e300), 512 << 20);
        assert!(message(got).contains("out of range"));
        let got = size::<usize>(
            "k",
            &Value::Str(format!("{}.5", "9".repeat(400))),
            512 << 20,
        );
        assert!(message(got).contains("out of range"));
    }

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
    fn durations_need_a_unit_except_zero() {
        assert_eq!(
            duration("k", &Value::Str("250ms".into()), false).ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            duration("k", &Value::Int(0), true).ok(),
            Some(Duration::ZERO)
        );
        assert!(message(duration("k", &Value::Int(10), false)).contains("unit is needed"));
        assert_eq!(
            message(duration("k", &Value::Str("soon".into()), false)),
            "invalid duration \"soon\": expected a number"
        );
        assert!(message(duration("k", &Value::Str("2years".into()), false)).contains("range"));
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

    #[test]
    fn nesting_is_bounded_outside_quotes_and_comments() {
        let deep = |text: &str| prepare(text).is_err();
        assert!(!deep(&"a{".repeat(20)));
        assert!(deep(&"a{".repeat(30)));
        assert!(deep(&format!("a = [{}]", "[".repeat(30))));
        assert!(deep(&format!("{} = 1", vec!["a"; 300].join("."))));
        assert!(!deep(&format!("a = \"{}\"", "{.".repeat(300))));
        assert!(!deep(&format!("a = \"\"\"{}\"\"\"", "{\"".repeat(300))));
        assert!(!deep(&format!(
            "# {}\n// {}",
            "{".repeat(300),
            "[".repeat(300)
        )));
        assert!(!deep("\"\\"));
        assert!(!deep("}}}]]]"));
    }

    #[test]
    fn what_hocon_wrongly_refuses_is_rewritten() {
        let text = |input: &str| prepare(input).unwrap().text;
        assert_eq!(text("a = 1\n  \t\n"), "a = 1");
        assert_eq!(text("a { }\nb {\t\t}\nc = [ ]"), "a {}\nb {}\nc = [ ]");
        assert_eq!(text("a = \"{ }\" # { }"), "a = \"{ }\" # { }");
        assert_eq!(text("a = \"\"\"{ }\"\"\""), "a = \"\"\"{ }\"\"\"");
        assert_eq!(text("\"é\" { }"), "\"é\" {}");
        assert_eq!(text("{"), "{");
    }

    #[test]
    fn unquoted_non_ascii_is_refused_with_its_line() {
        let err = prepare("a = 1\n# é\nb = \"é\"\nc = é").unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(prepare("a = \"\"\"é\"\"\" // é").is_ok());
    }

    #[test]
    fn unquoted_urls_are_noticed() {
        assert!(prepare("a = amqp://host/x").unwrap().unquoted_url);
        assert!(!prepare("a = \"amqp://host/x\"").unwrap().unquoted_url);
        assert!(!prepare("a = 1 // comment").unwrap().unquoted_url);
    }
}
