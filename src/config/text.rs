//! Lenient text fields: env and config files may hand a string setting over
//! as a number or bool (`STANCHION_CLUSTER_ID=123` parses as the integer
//! 123); these deserializers take any scalar as its text.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// Deserializes a string field that env or a file may hand us as a number
/// or bool (`STANCHION_CLUSTER_ID=123` parses as the integer 123).
pub(super) fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct StringVisitor;
    impl serde::de::Visitor<'_> for StringVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_char<E: serde::de::Error>(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(StringVisitor)
}

/// [`string_like`] for paths.
pub(super) fn path_like<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    string_like(d).map(PathBuf::from)
}

/// [`string_like`] for optional settings (absent or null is `None`).
pub(super) fn opt_string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    /// Any scalar, as text.
    struct Text(String);
    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            string_like(d).map(Text)
        }
    }
    Ok(Option::<Text>::deserialize(d)?.map(|t| t.0))
}

/// [`opt_string_like`] for paths.
pub(super) fn opt_path_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    opt_string_like(d).map(|s| s.map(PathBuf::from))
}
