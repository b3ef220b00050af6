//! Go-style durations (`500ms`, `1m30s`, `1.5h`), parsed and printed
//! exactly as Go's `time.ParseDuration` and `Duration.String` do, because NSS
//! users' flags, env and config files are written in that syntax.
//!
//! Pure: no I/O. Used by the flag parser and by the serde layer in
//! [`crate::config`].

use std::fmt;
use std::time::Duration;

/// Why a duration string was rejected. The texts are Go's
/// (`time: unknown unit "x" in duration "5x"`), so messages read the same as
/// the reference server's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or too large.
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    /// A number without a unit (only `0` may omit it).
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit other than `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
    },
    /// Go accepts negative durations; no stanchion setting has a use for one.
    #[error("time: negative duration {0:?} is not allowed")]
    Negative(String),
}

/// Nanoseconds per unit, as Go's `unitMap`.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

const LIMIT: u64 = 1 << 63;

/// Go's `leadingInt`: digits at the start of `s`, `None` on overflow.
fn leading_int(s: &str) -> Option<(u64, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let mut x: u64 = 0;
    for b in s[..end].bytes() {
        if x > LIMIT / 10 {
            return None;
        }
        x = x * 10 + u64::from(b - b'0');
        if x > LIMIT {
            return None;
        }
    }
    Some((x, &s[end..]))
}

/// Go's `leadingFraction`: digits after the point, as `x / scale`. Digits
/// past what fits are consumed but ignored, as in Go.
fn leading_fraction(s: &str) -> (u64, f64, &str) {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let (mut x, mut scale, mut overflow) = (0u64, 1f64, false);
    for b in s[..end].bytes() {
        if overflow {
            continue;
        }
        if x > (LIMIT - 1) / 10 {
            overflow = true;
            continue;
        }
        let y = x * 10 + u64::from(b - b'0');
        if y > LIMIT {
            overflow = true;
            continue;
        }
        x = y;
        scale *= 10.0;
    }
    (x, scale, &s[end..])
}

/// Parses a Go duration (`300ms`, `-1.5h`, `2h45m`, `0`) the way Go's
/// `time.ParseDuration` does, except that negative durations are refused.
///
/// # Errors
///
/// Returns a [`DurationError`] carrying Go's message for malformed input, a
/// missing or unknown unit, overflow, or a negative value.
pub fn parse(input: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(input.to_string());
    let mut s = input;
    let mut negative = false;
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        negative = s.starts_with('-');
        s = rest;
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !s.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let before = s.len();
        let (mut value, rest) = leading_int(s).ok_or_else(invalid)?;
        s = rest;
        let had_int = s.len() != before;
        let (mut frac, mut scale, mut had_frac) = (0, 1.0, false);
        if let Some(rest) = s.strip_prefix('.') {
            let before = rest.len();
            (frac, scale, s) = leading_fraction(rest);
            had_frac = s.len() != before;
        }
        if !had_int && !had_frac {
            return Err(invalid());
        }
        let unit_end = s
            .bytes()
            .position(|b| b == b'.' || b.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_end == 0 {
            return Err(DurationError::MissingUnit(input.to_string()));
        }
        let unit = &s[..unit_end];
        s = &s[unit_end..];
        let nanos = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_string(),
            input: input.to_string(),
        })?;
        if value > LIMIT / nanos {
            return Err(invalid());
        }
        value *= nanos;
        if frac > 0 {
            // Go computes the fraction in float64 (exact to the nanosecond
            // for up to an hour); do the same so results match bit for bit.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let part = (frac as f64 * (nanos as f64 / scale)) as u64;
            value += part;
            if value > LIMIT {
                return Err(invalid());
            }
        }
        total += value;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(input.to_string()));
    }
    if total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(Duration::from_nanos(total))
}

/// Displays a [`Duration`] as Go's `Duration.String` does (`1h0m0s`,
/// `1.5s`, `500ms`, `0s`), so it reads back through [`parse`] unchanged.
#[derive(Debug, Clone, Copy)]
pub struct GoDuration(pub Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        /// `v / 10^prec` as `int[.frac]` with trailing zeros dropped.
        fn with_fraction(v: u128, prec: u32) -> String {
            let div = 10u128.pow(prec);
            let (int, frac) = (v / div, v % div);
            if frac == 0 {
                return int.to_string();
            }
            let digits = format!("{frac:0width$}", width = prec as usize);
            format!("{int}.{}", digits.trim_end_matches('0'))
        }
        match nanos {
            0 => f.write_str("0s"),
            n if n < 1_000 => write!(f, "{n}ns"),
            n if n < 1_000_000 => write!(f, "{}\u{b5}s", with_fraction(n, 3)),
            n if n < 1_000_000_000 => write!(f, "{}ms", with_fraction(n, 6)),
            n => {
                let secs = with_fraction(n % 60_000_000_000, 9);
                let minutes = n / 60_000_000_000;
                match (minutes / 60, minutes % 60) {
                    (0, 0) => write!(f, "{secs}s"),
                    (0, m) => write!(f, "{m}m{secs}s"),
                    (h, m) => write!(f, "{h}h{m}m{secs}s"),
                }
            }
        }
    }
}

/// Serde for a [`Duration`] written Go-style. Strings are parsed with
/// [`parse`]; bare numbers (env values such as `STANCHION_HB_INTERVAL=0` reach
/// us as numbers) are parsed from their text, so `0` works and `30` is
/// refused for its missing unit, as Go does.
pub mod serde_go {
    use super::*;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes the duration as Go's `Duration.String` would.
    ///
    /// # Errors
    ///
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&GoDuration(*d))
    }

    /// Reads a Go duration from a string or a number.
    ///
    /// # Errors
    ///
    /// The [`DurationError`] text, which figment places next to the key.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct GoVisitor;
        impl Visitor<'_> for GoVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Go duration such as \"500ms\" or \"1m30s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                self.visit_str(&v.to_string())
            }
        }
        d.deserialize_any(GoVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    #[test]
    fn parses_what_go_parses() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("0s", 0),
            ("500ms", 500 * MS),
            ("30s", 30 * S),
            ("1m30s", 90 * S),
            ("1.5h", 5400 * S),
            ("1h2m3s", 3723 * S),
            ("100us", 100_000),
            ("100\u{b5}s", 100_000),
            ("100\u{3bc}s", 100_000),
            ("7ns", 7),
            (".5s", 500 * MS),
            ("5.s", 5 * S),
            ("1.0001s", S + 100_000),
            ("+2h", 7200 * S),
            ("2h45m", 9900 * S),
            ("1.000000001s", S + 1),
            ("0.3333333333333333333h", 1_200 * S),
            ("0.100000000000000000000h", 360 * S),
            ("0.830103483285477580700h", 2_988 * S + 372_539_827),
            ("9223372036854775807ns", 9_223_372_036_854_775_807),
            ("9223372036s854ms775us807ns", 9_223_372_036_854_775_807),
        ];
        for &(text, nanos) in cases {
            assert_eq!(parse(text), Ok(Duration::from_nanos(nanos)), "{text}");
        }
    }

    #[test]
    fn rejects_what_go_rejects_with_go_text() {
        for bad in [
            "", "-", "s", ".", ".s", "+.s", "1.2.3s", "x1s", "1s ", " 1s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("30").unwrap_err().to_string(),
            r#"time: missing unit in duration "30""#
        );
        assert_eq!(
            parse("5x").unwrap_err().to_string(),
            r#"time: unknown unit "x" in duration "5x""#
        );
        assert_eq!(
            parse("3000000h").unwrap_err().to_string(),
            r#"time: invalid duration "3000000h""#
        );
        assert!(parse("9223372036854775808ns").is_err());
        assert_eq!(
            parse("-5s"),
            Err(DurationError::Negative("-5s".to_string()))
        );
    }

    #[test]
    fn prints_like_go_and_round_trips() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1_100, "1.1\u{b5}s"),
            (2_200_000, "2.2ms"),
            (500 * MS, "500ms"),
            (3_300_000_000, "3.3s"),
            (30 * S, "30s"),
            (90 * S, "1m30s"),
            (3600 * S, "1h0m0s"),
            (4 * 60 * S + 5_001 * MS, "4m5.001s"),
            (5 * 3600 * S + 6 * 60 * S + 7_001 * MS, "5h6m7.001s"),
            (8 * 60 * S + 1, "8m0.000000001s"),
        ];
        for &(nanos, text) in cases {
            let d = Duration::from_nanos(nanos);
            assert_eq!(GoDuration(d).to_string(), text);
            assert_eq!(parse(text), Ok(d), "{text}");
        }
    }
}
