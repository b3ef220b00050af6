//! Byte sizes written the NATS way (`1024`, `64MB`, `1g`), because NSS's
//! `-mb` flag and config files accept them: `k`/`m`/`g`/`t`/`p`/`e` are
//! powers of 1000, `kb`/`ki`/`kib` (and so on) powers of 1024, any case.
//!
//! Pure: no I/O. Used by the flag parser and by the serde layer in
//! [`crate::config`].

use std::fmt;

/// Why a size string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// No leading digits, or a negative number.
    #[error("invalid size {0:?}: expected a number of bytes such as 1024, 64MB or 1GB")]
    Invalid(String),
    /// A suffix NATS does not know.
    #[error("invalid size {input:?}: unknown suffix {suffix:?} (use k, m, g, t for 1000s or kb, mb, gb, tb for 1024s)")]
    UnknownSuffix {
        /// The suffix as written.
        suffix: String,
        /// The whole input.
        input: String,
    },
    /// The value does not fit in 64 bits.
    #[error("invalid size {0:?}: too large")]
    Overflow(String),
}

/// The multiplier of a (lower-cased) NATS size suffix.
fn multiplier(suffix: &str) -> Option<u64> {
    const K: u64 = 1000;
    const KI: u64 = 1024;
    Some(match suffix {
        "" => 1,
        "k" => K,
        "kb" | "ki" | "kib" => KI,
        "m" => K.pow(2),
        "mb" | "mi" | "mib" => KI.pow(2),
        "g" => K.pow(3),
        "gb" | "gi" | "gib" => KI.pow(3),
        "t" => K.pow(4),
        "tb" | "ti" | "tib" => KI.pow(4),
        "p" => K.pow(5),
        "pb" | "pi" | "pib" => KI.pow(5),
        "e" => K.pow(6),
        "eb" | "ei" | "eib" => KI.pow(6),
        _ => return None,
    })
}

/// Parses a NATS size: decimal digits, then an optional suffix.
///
/// # Errors
///
/// Returns a [`SizeError`] for missing digits, an unknown suffix or a value
/// beyond `u64`.
pub fn parse(input: &str) -> Result<u64, SizeError> {
    let text = input.trim();
    let digits_end = text
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(text.len());
    if digits_end == 0 {
        return Err(SizeError::Invalid(input.to_string()));
    }
    let number: u64 = text[..digits_end]
        .parse()
        .map_err(|_| SizeError::Overflow(input.to_string()))?;
    let suffix = text[digits_end..].to_ascii_lowercase();
    let factor = multiplier(&suffix).ok_or_else(|| SizeError::UnknownSuffix {
        suffix: text[digits_end..].to_string(),
        input: input.to_string(),
    })?;
    number
        .checked_mul(factor)
        .ok_or_else(|| SizeError::Overflow(input.to_string()))
}

/// Serde for a size in bytes: a number, or a string [`parse`] accepts.
pub mod serde_size {
    use super::*;
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes the plain number of bytes.
    ///
    /// # Errors
    ///
    /// Only the serializer's own.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    /// Reads a size from a non-negative integer or a NATS size string.
    ///
    /// # Errors
    ///
    /// The [`SizeError`] text, which figment places next to the key.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct SizeVisitor;
        impl Visitor<'_> for SizeVisitor {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes such as 1024, \"64MB\" or \"1GB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::custom(SizeError::Invalid(v.to_string())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(SizeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_size_rules() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1024", 1024),
            ("1k", 1000),
            ("1K", 1000),
            ("1kb", 1024),
            ("1KB", 1024),
            ("1KiB", 1024),
            ("64MB", 64 * 1024 * 1024),
            ("64mb", 64 * 1024 * 1024),
            ("64m", 64_000_000),
            ("10Mi", 10 * 1024 * 1024),
            ("1GB", 1 << 30),
            ("1g", 1_000_000_000),
            ("2t", 2_000_000_000_000),
            ("2TB", 2 << 40),
            (" 5kb ", 5 * 1024),
        ];
        for &(text, bytes) in cases {
            assert_eq!(parse(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn rejects_bad_sizes() {
        for bad in ["", "MB", "-1", "1.5GB", "1 MB", "0x10"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("5xb"),
            Err(SizeError::UnknownSuffix {
                suffix: "xb".into(),
                input: "5xb".into()
            })
        );
        assert_eq!(parse("20EB"), Err(SizeError::Overflow("20EB".into())));
        assert_eq!(
            parse("99999999999999999999"),
            Err(SizeError::Overflow("99999999999999999999".into()))
        );
    }
}
