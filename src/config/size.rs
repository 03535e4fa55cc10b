//! Sizes in bytes (`queue.max_payload`): a bare number of bytes, or a number
//! and one of HOCON's units (`16MiB`, `512K`, `1MB` = 10^6 bytes, `1.5KiB`).

use std::fmt::Display;

use crate::config::value::{out_of_range, Value};
use crate::error::{Error, Result};

/// A size in bytes in `1..=max`: a bare number of bytes, or a number and a
/// HOCON unit (`16MiB`, `512K`, `1MB` = 10^6 bytes, `1.5KiB`).
pub(crate) fn size<T: TryFrom<u64>>(key: &str, value: &Value, max: u64) -> Result<T> {
    let shown = || value.describe();
    let bytes: u128 = match value {
        Value::Int(i) => match u128::try_from(*i) {
            Ok(bytes) => bytes,
            Err(_) => return in_bounds(key, None, max, shown),
        },
        // `as` saturates, and anything that large is out of range anyway.
        Value::Real(f) if f.is_finite() && f.fract() == 0.0 && *f >= 0.0 => *f as u128,
        Value::Real(f) if f.is_finite() && f.fract() == 0.0 => {
            return in_bounds(key, None, max, shown)
        }
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
            Ok(None) => return in_bounds(key, None, max, shown),
            Err(problem) => {
                return Err(Error::config(
                    key,
                    format!("invalid size {}: {problem}", value.describe()),
                ))
            }
        },
        _ => return Err(value.wrong_type(key, "a size such as 16MiB")),
    };
    in_bounds(key, u64::try_from(bytes).ok(), max, shown)
}

/// [`size`]'s rule for a number of bytes already typed.
pub(crate) fn check_size<N>(key: &str, bytes: N, max: u64) -> Result<()>
where
    N: Copy + Display + TryInto<u64>,
{
    let number = bytes.try_into().ok();
    let shown = || Value::quote(number.map_or_else(|| bytes.to_string(), format_size));
    in_bounds::<u64>(key, number, max, shown).map(drop)
}

/// `bytes` as the field's type if it is in `1..=max`, else the error quoting
/// it as `shown` does. `None` is a size no `u64` holds.
fn in_bounds<T: TryFrom<u64>>(
    key: &str,
    bytes: Option<u64>,
    max: u64,
    shown: impl FnOnce() -> String,
) -> Result<T> {
    bytes
        .filter(|n| (1..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| out_of_range(key, &shown(), &format!("1..={}", format_size(max))))
}

/// The bytes of a size's text; `Ok(None)` when the size is too large to count.
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

/// `bytes` the way a size is best read: in MiB when it is a whole number of
/// them.
fn format_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{}MiB", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::config_error_message as message;

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
    fn typed_sizes_are_shown_as_the_parser_shows_them() {
        let max = 512 << 20;
        assert_eq!(
            message(check_size("k", 0usize, max)),
            message(size::<usize>("k", &Value::Int(0), max))
        );
        assert_eq!(
            message(check_size("k", 1usize << 30, max)),
            "\"1024MiB\" is out of range 1..=512MiB"
        );
        assert!(check_size("k", 512usize << 20, max).is_ok());
    }
}
