//! Per-channel limits as a config file writes them (`store_limits {
//! channels { "foo.>": { max_msgs: 400 } } }`): read into
//! [`ChannelOverrides`], with NSS's reading rules: an absent key inherits,
//! 0 (or a negative value) means unlimited for that one limit.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::limits::ChannelOverrides;
use super::{duration, size};

/// A number, or text with a unit (`10MB`, `"1h"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Int(i64),
    Text(String),
}

/// One pattern's limits as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    max_msgs: Option<Scalar>,
    max_bytes: Option<Scalar>,
    max_age: Option<Scalar>,
    max_subs: Option<Scalar>,
    max_inactivity: Option<Scalar>,
}

/// A count or size: negative is unlimited (0), as NSS reads per-channel values.
fn amount(value: Option<Scalar>, key: &str) -> Result<Option<u64>, String> {
    match value {
        None => Ok(None),
        Some(Scalar::Int(n)) => Ok(Some(u64::try_from(n).unwrap_or(0))),
        Some(Scalar::Text(t)) => size::parse(&t).map(Some).map_err(|e| format!("{key}: {e}")),
    }
}

/// A Go duration string.
fn age(value: Option<Scalar>, key: &str) -> Result<Option<Duration>, String> {
    match value {
        None => Ok(None),
        Some(Scalar::Text(t)) => duration::parse(&t)
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
        Some(Scalar::Int(0)) => Ok(Some(Duration::ZERO)),
        Some(Scalar::Int(n)) => Err(format!(
            "{key}: {n} needs a unit, as a duration string such as \"{n}s\""
        )),
    }
}

/// Deserializes the `channels` map of a config file.
pub(super) fn deserialize<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, ChannelOverrides>, D::Error> {
    let raw = BTreeMap::<String, Raw>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (pattern, r) in raw {
        let err = |e: String| serde::de::Error::custom(format!("channel {pattern:?}: {e}"));
        let subs = amount(r.max_subs, "max_subs").map_err(err)?;
        let overrides = ChannelOverrides {
            max_msgs: amount(r.max_msgs, "max_msgs").map_err(err)?,
            max_bytes: amount(r.max_bytes, "max_bytes").map_err(err)?,
            max_age: age(r.max_age, "max_age").map_err(err)?,
            max_subs: subs.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            max_inactivity: age(r.max_inactivity, "max_inactivity").map_err(err)?,
        };
        out.insert(pattern, overrides);
    }
    Ok(out)
}
