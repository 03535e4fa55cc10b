//! Sizes in bytes (`queue.max_payload`): a bare number of bytes, or a number
//! and one of HOCON's units (`16MiB`, `512K`, `1MB` = 10^6 bytes, `1.5KiB`).
//!
//! The field is a `usize` read and written through this module
//! (`#[serde(with = "size")]`): written as `16MiB` when whole mebibytes,
//! else as bytes, so that a serialized size reads back the same.

use serde::{Deserialize, Deserializer, Serializer};
use serde_json::Value;

use crate::config::value::{describe, out_of_range, scalar, text, whole_number};
use crate::error::{Error, Result};

/// The rule of a size: `1..=max` bytes.
pub(crate) fn check_size(key: &str, value: &Value, max: u64) -> Result<()> {
    let text = scalar(key, value, "a size such as 16MiB")?;
    let bytes = parse_size(text.trim()).map_err(|problem| {
        Error::config(key, format!("invalid size {}: {problem}", describe(value)))
    })?;
    match bytes.and_then(|n| u64::try_from(n).ok()) {
        Some(n) if (1..=max).contains(&n) => Ok(()),
        _ => Err(out_of_range(
            key,
            &describe(value),
            &format!("1..={}", format_size(max)),
        )),
    }
}

/// Reads a size field (`#[serde(with)]`): text, or a number of bytes.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<usize, D::Error> {
    let written = Value::deserialize(deserializer)?;
    text(&written)
        .and_then(|text| parse_size(text.trim()).ok().flatten())
        .and_then(|bytes| usize::try_from(bytes).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("invalid size {}", describe(&written))))
}

/// Writes a size field (`#[serde(with)]`).
pub(crate) fn serialize<S: Serializer>(
    bytes: &usize,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_size(*bytes as u64))
}

/// The bytes of a size's text; `Ok(None)` when the size is too large to count.
fn parse_size(text: &str) -> std::result::Result<Option<u128>, String> {
    // A bare number (`1048576`, `1e6`, `-1`) is a number of bytes: one out of
    // range is said to be.
    if let Ok(bytes) = whole_number(text) {
        return Ok(bytes.and_then(|bytes| u128::try_from(bytes).ok()));
    }
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

    #[test]
    fn sizes_follow_hocon_units() {
        assert_eq!(parse_size("16MiB"), Ok(Some(16 << 20)));
        assert_eq!(parse_size("512K"), Ok(Some(512 << 10)));
        assert_eq!(parse_size("1MB"), Ok(Some(1_000_000)));
        assert_eq!(parse_size("1 kB"), Ok(Some(1000)));
        assert_eq!(parse_size("1.5KiB"), Ok(Some(1536)));
        assert_eq!(parse_size("42"), Ok(Some(42)));
        assert_eq!(parse_size("-1"), Ok(None));
        assert_eq!(parse_size("1e6"), Ok(Some(1_000_000)));
        assert_eq!(
            parse_size("99999999999999999999999999999999999999999"),
            Ok(None)
        );
        assert_eq!(parse_size("999999999999999999999999999999TiB"), Ok(None));
        assert_eq!(parse_size(&format!("{}.5", "9".repeat(400))), Ok(None));
        assert!(parse_size("1.3B").is_err());
        assert!(parse_size("1.2.3MiB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("16XB").is_err());
    }
}
