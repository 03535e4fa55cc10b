//! Durations in humantime form (`250ms`, `10s`, `5m`, `1h 30m`), and the rules
//! a duration setting can have. The fields are read and written by
//! humantime-serde, which parses with the same `humantime::parse_duration`.

#[cfg(feature = "amqp")]
use std::ops::RangeInclusive;
use std::time::Duration;

use serde_json::Value;

use crate::config::value::{describe, out_of_range, scalar};
use crate::error::{Error, Result};

/// The longest a configured wait may be. Far beyond any sensible timeout, and
/// low enough that `Instant::now() + duration` can never overflow downstream.
const MAX_DURATION: Duration = Duration::from_secs(31_557_600); // humantime's `1year`

/// AMQP carries the heartbeat as whole seconds in 16 bits; 0 turns it off.
#[cfg(feature = "amqp")]
const HEARTBEAT: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(u16::MAX as u64);

/// What a duration setting allows besides being at most a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationRule {
    /// More than zero.
    Positive,
    /// Zero as well.
    ZeroOrMore,
    /// 0 (off) or 1s..=65535s: see [`HEARTBEAT`].
    #[cfg(feature = "amqp")]
    Heartbeat,
}

impl DurationRule {
    /// `Ok` if `value` is a duration (see [`duration`]) that keeps the rule.
    pub(crate) fn check(self, key: &str, value: &Value) -> Result<()> {
        let duration = duration(key, value)?;
        if duration > MAX_DURATION {
            let bounds = format!("0..={}", humantime::format_duration(MAX_DURATION));
            return Err(out_of_range(key, &describe(value), &bounds));
        }
        let problem = match self {
            DurationRule::Positive if duration.is_zero() => "must be more than 0",
            #[cfg(feature = "amqp")]
            DurationRule::Heartbeat if !duration.is_zero() && !HEARTBEAT.contains(&duration) => {
                "0 (off) or 1s..=65535s"
            }
            _ => return Ok(()),
        };
        Err(Error::config(
            key,
            format!("{} is out of range: {problem}", describe(value)),
        ))
    }
}

/// A duration in humantime form (`250ms`, `10s`, `5m`, `1h 30m`). A bare
/// number other than `0` has no unit and is refused rather than guessed.
pub(crate) fn duration(key: &str, value: &Value) -> Result<Duration> {
    let text = scalar(key, value, "a duration such as 10s or 250ms")?;
    humantime::parse_duration(&text).map_err(|err| {
        let problem = duration_problem(&text, &err);
        Error::config(
            key,
            format!("invalid duration {}: {problem}", describe(value)),
        )
    })
}

/// What is wrong with a duration's text, in our words.
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
