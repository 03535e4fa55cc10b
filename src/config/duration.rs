//! Durations in humantime form (`250ms`, `10s`, `5m`, `1h 30m`), and the rules
//! a duration setting can have.

#[cfg(feature = "amqp")]
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::config::value::{out_of_range, Value};
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
    /// `Ok` if `duration` keeps the rule, else the error quoting it as `shown`
    /// does.
    fn check(self, key: &str, duration: Duration, shown: impl FnOnce() -> String) -> Result<()> {
        if duration > MAX_DURATION {
            let bounds = format!("0..={}", humantime::format_duration(MAX_DURATION));
            return Err(out_of_range(key, &shown(), &bounds));
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
            format!("{} is out of range: {problem}", shown()),
        ))
    }
}

/// A duration in humantime form (`250ms`, `10s`, `5m`, `1h 30m`) that keeps
/// `rule`. A bare number other than `0` has no unit and is refused rather
/// than guessed.
pub(crate) fn duration(key: &str, value: &Value, rule: DurationRule) -> Result<Duration> {
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
    rule.check(key, parsed, || value.describe())?;
    Ok(parsed)
}

/// [`duration`]'s rule for a duration already typed.
pub(crate) fn check_duration(key: &str, duration: Duration, rule: DurationRule) -> Result<()> {
    rule.check(key, duration, || quote_duration(duration))
}

/// `duration` quoted in humantime form, as a file would give it.
pub(crate) fn quote_duration(duration: Duration) -> String {
    Value::quote(humantime::format_duration(duration).to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::config_error_message as message;

    #[test]
    fn durations_need_a_unit_except_zero() {
        assert_eq!(
            duration("k", &Value::Str("250ms".into()), DurationRule::Positive).ok(),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            duration("k", &Value::Int(0), DurationRule::ZeroOrMore).ok(),
            Some(Duration::ZERO)
        );
        assert!(
            message(duration("k", &Value::Int(10), DurationRule::Positive))
                .contains("unit is needed")
        );
        assert_eq!(
            message(duration(
                "k",
                &Value::Str("soon".into()),
                DurationRule::Positive
            )),
            "invalid duration \"soon\": expected a number"
        );
        assert!(message(duration(
            "k",
            &Value::Str("2years".into()),
            DurationRule::Positive
        ))
        .contains("range"));
    }

    #[test]
    fn typed_durations_are_shown_as_the_parser_shows_them() {
        let year = Duration::from_secs(31_557_600);
        assert_eq!(
            message(check_duration("k", Duration::ZERO, DurationRule::Positive)),
            message(duration(
                "k",
                &Value::Str("0s".into()),
                DurationRule::Positive
            ))
        );
        assert_eq!(
            message(check_duration("k", year * 2, DurationRule::ZeroOrMore)),
            "\"2years\" is out of range 0..=1year"
        );
        assert!(check_duration("k", year, DurationRule::Positive).is_ok());
        assert!(check_duration("k", Duration::ZERO, DurationRule::ZeroOrMore).is_ok());
    }

    #[cfg(feature = "amqp")]
    #[test]
    fn heartbeats_are_off_or_whole_seconds_that_amqp_can_carry() {
        let ok = |d| check_duration("k", d, DurationRule::Heartbeat).is_ok();
        assert!(ok(Duration::ZERO));
        assert!(ok(Duration::from_secs(1)));
        assert!(ok(Duration::from_secs(65535)));
        assert!(!ok(Duration::from_millis(999)));
        assert!(!ok(Duration::from_secs(65536)));
        assert_eq!(
            message(check_duration(
                "k",
                Duration::from_millis(500),
                DurationRule::Heartbeat
            )),
            "\"500ms\" is out of range: 0 (off) or 1s..=65535s"
        );
    }
}
