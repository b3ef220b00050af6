//! Configuration: the [`Config`] the server runs with, its defaults, and
//! loading in layers (defaults < file < env `STANCHION_*` < flags).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which [`crate::store::Store`] keeps the server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Durable channel logs in sled under `dir` (NSS's `file` is an alias).
    Sled,
    /// Everything in memory; lost on restart.
    Memory,
}

/// Everything the server needs to run. Field names match NSS's long flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// NATS server URL(s) to join, comma-separated.
    pub nats_server: String,
    /// The cluster ID clients name when they connect.
    pub cluster_id: String,
    /// Prefix of the discovery subject (`<prefix>.<cluster_id>`).
    pub discover_prefix: String,
    /// Store type.
    pub store: StoreKind,
    /// Directory of the sled store.
    pub dir: PathBuf,
    /// fsync before acknowledging publishes (NSS `file_sync`). Off trades
    /// crash durability of the last few hundred milliseconds for throughput.
    pub file_sync: bool,
    /// sled page cache size in bytes; bounds memory use on large logs.
    pub cache_capacity: u64,
    /// Interval between heartbeats to each client.
    #[serde(with = "duration_str")]
    pub hb_interval: Duration,
    /// How long a client has to answer a heartbeat.
    #[serde(with = "duration_str")]
    pub hb_timeout: Duration,
    /// Consecutive missed heartbeats after which a client is closed.
    pub hb_fail_count: u32,
    /// Maximum number of channels (0 = unlimited).
    pub max_channels: u32,
    /// Maximum subscriptions per channel (0 = unlimited).
    pub max_subs: u32,
    /// Maximum messages kept per channel (0 = unlimited).
    pub max_msgs: u64,
    /// Maximum bytes kept per channel (0 = unlimited).
    pub max_bytes: u64,
    /// Replace a duplicate durable subscription instead of rejecting it.
    pub replace_durable: bool,
    /// Maximum publishes written to the store in one batch.
    pub io_batch_size: usize,
    /// Raise stanchion's own log level to debug.
    pub stan_debug: bool,
    /// Raise stanchion's own log level to trace.
    pub stan_trace: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            nats_server: "nats://127.0.0.1:4222".into(),
            cluster_id: "test-cluster".into(),
            discover_prefix: crate::protocol::DEFAULT_DISCOVER_PREFIX.into(),
            store: StoreKind::Sled,
            dir: PathBuf::from("./data"),
            file_sync: true,
            cache_capacity: 64 * 1024 * 1024,
            hb_interval: Duration::from_secs(30),
            hb_timeout: Duration::from_secs(10),
            hb_fail_count: 10,
            max_channels: 100,
            max_subs: 1000,
            max_msgs: 1_000_000,
            max_bytes: 1_024_000_000,
            replace_durable: false,
            io_batch_size: 1024,
            stan_debug: false,
            stan_trace: false,
        }
    }
}

/// Serde for durations as Go-style strings (`"500ms"`, `"1m30s"`).
mod duration_str {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}
