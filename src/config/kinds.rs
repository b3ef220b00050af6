//! The two settings that name a kind: the store and the log format, each
//! read case-insensitively with NSS's spellings.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use super::text::string_like;

/// Which [`crate::store::Store`] keeps the server's state.
///
/// Read case-insensitively from flags, env and file, with NSS's `file` as an
/// alias of `sled`, so NSS command lines (`-st FILE`) keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Durable channel logs in sled under `dir` (NSS's `file` is an alias).
    Sled,
    /// Everything in memory; lost on restart.
    Memory,
}

impl StoreKind {
    /// The canonical lower-case name, as written back to files and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sled => "sled",
            StoreKind::Memory => "memory",
        }
    }
}

impl fmt::Display for StoreKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A store type name that is none of `sled`, `file` or `memory`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown store type {0:?}: expected sled, file (an alias of sled) or memory")]
pub struct UnknownStore(pub String);

impl FromStr for StoreKind {
    type Err = UnknownStore;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sled" | "file" => Ok(StoreKind::Sled),
            "memory" => Ok(StoreKind::Memory),
            _ => Err(UnknownStore(s.to_string())),
        }
    }
}

impl<'de> Deserialize<'de> for StoreKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StoreVisitor;
        impl serde::de::Visitor<'_> for StoreVisitor {
            type Value = StoreKind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a store type: sled, file or memory")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StoreKind, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(StoreVisitor)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours on a terminal).
    Text,
    /// One JSON object a line, for log collectors.
    Json,
}

impl LogFormat {
    /// The canonical name, as accepted in every layer.
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// A log format name that is neither `text` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}: expected text or json")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_string())),
        }
    }
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_like(d)?.parse().map_err(serde::de::Error::custom)
    }
}
