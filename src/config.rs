//! Configuration: the [`Config`] the server runs with, its defaults and its
//! validation rules.
//!
//! Owns every setting; the rest of the server only ever sees a validated
//! [`Config`]. Submodules: [`load`] merges the layers (defaults < config file
//! < env `STANCHION_*` < flags), `flags` and `cli` read NSS's command line,
//! [`nats_conf`] and [`nss_file`] read NSS config files, and [`duration`] and
//! [`size`] parse Go durations and NATS sizes.

mod cli;
mod cluster;
pub mod duration;
mod flags;
mod kinds;
pub mod limits;
pub mod load;
pub mod nats_conf;
pub mod nss_file;
mod per_channel;
mod secret;
pub mod size;
#[cfg(test)]
mod tests;
mod text;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use cluster::ClusterStart;
pub use kinds::{LogFormat, StoreKind, UnknownLogFormat, UnknownStore};
pub use load::{ConfigError, Loaded, CONFIG_ENV, ENV_PREFIX};
pub use secret::{redact_urls, Secret};
use text::{opt_path_like, opt_string_like, path_like, string_like};

use crate::protocol::{is_valid_channel, is_valid_client_id};

/// Everything the server needs to run. Field names match NSS's long flags
/// (and so the environment variables, `STANCHION_<FIELD>`).
///
/// Its `Debug` hides credentials: the user info of `nats_server`'s URLs,
/// and `pass` and `auth` (each a [`Secret`]).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// NATS server URL(s) to join, comma-separated. Credentials in a URL
    /// (`nats://user:pass@host`) are used and never logged.
    #[serde(deserialize_with = "string_like")]
    pub nats_server: String,
    /// The cluster ID clients name when they connect.
    #[serde(deserialize_with = "string_like")]
    pub cluster_id: String,
    /// Prefix of the discovery subject (`<prefix>.<cluster_id>`).
    #[serde(deserialize_with = "string_like")]
    pub discover_prefix: String,
    /// Store type.
    pub store: StoreKind,
    /// Directory of the sled store.
    #[serde(deserialize_with = "path_like")]
    pub dir: PathBuf,
    /// fsync before acknowledging publishes (NSS `file_sync`). Off trades
    /// crash durability of the last few hundred milliseconds for throughput.
    pub file_sync: bool,
    /// sled page cache size in bytes; bounds memory use on large logs.
    #[serde(with = "size::serde_size")]
    pub cache_capacity: u64,
    /// Interval between heartbeats to each client.
    #[serde(with = "duration::serde_go")]
    pub hb_interval: Duration,
    /// How long a client has to answer a heartbeat.
    #[serde(with = "duration::serde_go")]
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
    #[serde(with = "size::serde_size")]
    pub max_bytes: u64,
    /// How long messages are kept (0 = no limit).
    #[serde(with = "duration::serde_go")]
    pub max_age: Duration,
    /// How long a channel without subscriptions or new messages is kept
    /// (0 = no limit).
    #[serde(with = "duration::serde_go")]
    pub max_inactivity: Duration,
    /// Per-channel limits by channel pattern, from the config file's
    /// `store_limits { channels { ... } }`; resolved with NSS's inheritance
    /// by [`Config::store_limits`]. File only: no flag or variable.
    #[serde(skip_serializing, deserialize_with = "per_channel::deserialize")]
    pub channels: std::collections::BTreeMap<String, limits::ChannelOverrides>,
    /// Replace a duplicate durable subscription instead of rejecting it.
    pub replace_durable: bool,
    /// Maximum publishes written to the store in one batch.
    pub io_batch_size: usize,
    /// Encrypt message payloads at rest. A key (here or in
    /// `NATS_STREAMING_ENCRYPTION_KEY`'s place, [`Config::encryption_key`])
    /// turns it on too, as in NSS.
    pub encrypt: bool,
    /// `AES` or `CHACHA`; empty picks NSS's default for the platform.
    #[serde(deserialize_with = "string_like")]
    pub encryption_cipher: String,
    /// The encryption key; `NATS_STREAMING_ENCRYPTION_KEY` wins when set.
    pub encryption_key: Option<Secret>,
    /// The fault-tolerance group this server belongs to: the servers of a
    /// group share one store directory, one of them is active (it holds the
    /// store lock) and the others stand by. `None`: standalone.
    #[serde(deserialize_with = "opt_string_like")]
    pub ft_group: Option<String>,
    /// Serve only the channels of `store_limits.channels` (patterns
    /// allowed), beside other servers of the same cluster ID that serve
    /// theirs, as NSS's partitioning does.
    pub partitioning: bool,
    /// NSS's clustered mode (`--clustered`, or a `cluster { }` block in the
    /// config file): nodes replicate every store write through Raft.
    pub clustered: bool,
    /// This node's name in the cluster (`cluster { node_id }`).
    #[serde(deserialize_with = "opt_string_like")]
    pub cluster_node_id: Option<String>,
    /// Every node of the cluster, comma-separated (this one may be listed).
    #[serde(deserialize_with = "opt_string_like")]
    pub cluster_peers: Option<String>,
    /// Where the Raft log lives [default: `<dir>/raft`].
    pub cluster_log_path: Option<PathBuf>,
    /// Start a cluster of one (a seed) that other nodes join, instead of
    /// one from the full list of `cluster_peers`.
    pub cluster_bootstrap: bool,
    /// fsync every store write a node applies (NSS `cluster_sync`); off,
    /// durability rests on the Raft log's majority, which is always synced.
    pub cluster_sync: bool,
    /// Log openraft's own lines (NSS `cluster_raft_logging`).
    pub cluster_raft_logging: bool,
    /// The leader adds and removes nodes on request, on
    /// `_STAN.raft.<cluster_id>.node.add` / `.remove` (NSS
    /// `cluster_allow_add_remove_node`).
    pub cluster_allow_add_remove_node: bool,
    /// Raft log entries kept behind a snapshot, so a node that fell a
    /// little behind catches up from the log and not from a snapshot.
    pub cluster_trailing_logs: u64,
    /// openraft's election timer `t`: a follower that hears nothing from
    /// its leader for its lease (1.5 t) plus one timer (t to 1.5 t) stands
    /// for election, and the leader sends heartbeats every t / 4.
    #[serde(with = "duration::serde_go")]
    pub cluster_raft_heartbeat_timeout: Duration,
    /// How long a candidate waits for votes before it tries again. openraft
    /// has one timer for both: the shorter of the two is used.
    #[serde(with = "duration::serde_go")]
    pub cluster_raft_election_timeout: Duration,
    /// Raise stanchion's own log level to debug.
    pub stan_debug: bool,
    /// Raise stanchion's own log level to trace.
    pub stan_trace: bool,
    /// How log lines are written: `text` or `json`.
    pub log_format: LogFormat,
    /// User name for nats-server (NSS `--user`, config `username`).
    #[serde(deserialize_with = "opt_string_like")]
    pub user: Option<String>,
    /// Password for nats-server (NSS `--pass`, config `password`).
    pub pass: Option<Secret>,
    /// Authorization token for nats-server (NSS `--auth`, config `token`).
    pub auth: Option<Secret>,
    /// File holding an NKey seed to authenticate with.
    #[serde(deserialize_with = "opt_path_like")]
    pub nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file (user JWT and NKey seed) to authenticate with.
    #[serde(deserialize_with = "opt_path_like")]
    pub credentials: Option<PathBuf>,
    /// Require TLS to nats-server (NSS `-secure`). Its certificate is still
    /// verified, as NSS's code does (its help text says otherwise).
    pub secure: bool,
    /// Client certificate presented to nats-server (PEM).
    #[serde(deserialize_with = "opt_path_like")]
    pub tls_client_cert: Option<PathBuf>,
    /// Key of [`Config::tls_client_cert`] (PEM).
    #[serde(deserialize_with = "opt_path_like")]
    pub tls_client_key: Option<PathBuf>,
    /// CA certificates that nats-server's certificate must chain to (PEM).
    #[serde(deserialize_with = "opt_path_like")]
    pub tls_client_cacert: Option<PathBuf>,
    /// Name expected in nats-server's certificate, when not the URL's host.
    #[serde(deserialize_with = "opt_string_like")]
    pub tls_server_name: Option<String>,
    /// Skip verifying nats-server's certificate (config `tls { insecure }`).
    pub tls_insecure: bool,
    /// Name of stanchion's NATS connection, as nats-server's monitoring shows it
    /// [default: `stanchion-<cluster_id>`].
    #[serde(deserialize_with = "opt_string_like")]
    pub connection_name: Option<String>,
    /// Address the monitoring HTTP server binds (NSS `-a`, as nats-server's
    /// `http_host` defaults to its host).
    #[serde(deserialize_with = "string_like")]
    pub http_host: String,
    /// Monitoring HTTP port (NSS `-m`): 0 disables it, -1 picks a free port.
    pub http_port: i32,
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
            max_age: Duration::ZERO,
            max_inactivity: Duration::ZERO,
            channels: Default::default(),
            replace_durable: false,
            io_batch_size: 1024,
            encrypt: false,
            encryption_cipher: String::new(),
            encryption_key: None,
            ft_group: None,
            partitioning: false,
            clustered: false,
            cluster_node_id: None,
            cluster_peers: None,
            cluster_log_path: None,
            cluster_bootstrap: false,
            cluster_sync: false,
            cluster_raft_logging: false,
            cluster_allow_add_remove_node: false,
            cluster_trailing_logs: 10_240,
            cluster_raft_heartbeat_timeout: Duration::from_millis(600),
            cluster_raft_election_timeout: Duration::from_millis(600),
            stan_debug: false,
            stan_trace: false,
            log_format: LogFormat::Text,
            user: None,
            pass: None,
            auth: None,
            nkey_seed_file: None,
            credentials: None,
            secure: false,
            tls_client_cert: None,
            tls_client_key: None,
            tls_client_cacert: None,
            tls_server_name: None,
            tls_insecure: false,
            connection_name: None,
            http_host: "0.0.0.0".into(),
            http_port: 0,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("nats_server", &secret::redact_urls(&self.nats_server))
            .field("cluster_id", &self.cluster_id)
            .field("discover_prefix", &self.discover_prefix)
            .field("store", &self.store)
            .field("dir", &self.dir)
            .field("file_sync", &self.file_sync)
            .field("cache_capacity", &self.cache_capacity)
            .field("hb_interval", &self.hb_interval)
            .field("hb_timeout", &self.hb_timeout)
            .field("hb_fail_count", &self.hb_fail_count)
            .field("max_channels", &self.max_channels)
            .field("max_subs", &self.max_subs)
            .field("max_msgs", &self.max_msgs)
            .field("max_bytes", &self.max_bytes)
            .field("replace_durable", &self.replace_durable)
            .field("io_batch_size", &self.io_batch_size)
            .field("encrypt", &self.encrypt)
            .field("encryption_cipher", &self.encryption_cipher)
            .field("encryption_key", &self.encryption_key)
            .field("ft_group", &self.ft_group)
            .field("partitioning", &self.partitioning)
            .field("clustered", &self.clustered)
            .field("cluster_node_id", &self.cluster_node_id)
            .field("cluster_peers", &self.cluster_peers)
            .field("cluster_log_path", &self.cluster_log_path)
            .field("cluster_bootstrap", &self.cluster_bootstrap)
            .field("cluster_sync", &self.cluster_sync)
            .field("cluster_raft_logging", &self.cluster_raft_logging)
            .field(
                "cluster_allow_add_remove_node",
                &self.cluster_allow_add_remove_node,
            )
            .field("cluster_trailing_logs", &self.cluster_trailing_logs)
            .field(
                "cluster_raft_heartbeat_timeout",
                &self.cluster_raft_heartbeat_timeout,
            )
            .field(
                "cluster_raft_election_timeout",
                &self.cluster_raft_election_timeout,
            )
            .field("stan_debug", &self.stan_debug)
            .field("stan_trace", &self.stan_trace)
            .field("log_format", &self.log_format)
            .field("user", &self.user)
            .field("pass", &self.pass)
            .field("auth", &self.auth)
            .field("nkey_seed_file", &self.nkey_seed_file)
            .field("credentials", &self.credentials)
            .field("secure", &self.secure)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("tls_client_key", &self.tls_client_key)
            .field("tls_client_cacert", &self.tls_client_cacert)
            .field("tls_server_name", &self.tls_server_name)
            .field("tls_insecure", &self.tls_insecure)
            .field("connection_name", &self.connection_name)
            .field("http_host", &self.http_host)
            .field("http_port", &self.http_port)
            .finish()
    }
}

impl Config {
    /// The fault-tolerance group, if any (an empty name is none, as in NSS).
    pub fn ft_group(&self) -> Option<&str> {
        self.ft_group.as_deref().filter(|g| !g.is_empty())
    }

    /// The NATS connection name: `connection_name`, else `stanchion-<cluster_id>`.
    pub fn connection_name(&self) -> String {
        self.connection_name
            .clone()
            .unwrap_or_else(|| format!("stanchion-{}", self.cluster_id))
    }

    /// Checks the rules a server cannot start without, so mistakes surface
    /// at startup with the setting's name rather than as odd behaviour.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first offending setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| {
            Err(ConfigError::Invalid {
                key,
                at: None,
                reason,
            })
        };
        if self.cluster_id.is_empty() {
            return invalid("cluster_id", "must not be empty".into());
        }
        if !is_valid_client_id(&self.cluster_id) {
            return invalid(
                "cluster_id",
                format!(
                    "{:?} must be a valid client ID (only letters, digits, '_' and '-')",
                    self.cluster_id
                ),
            );
        }
        if self.nats_server.split(',').any(|url| url.trim().is_empty()) {
            // Not quoted back: the list may hold credentials.
            return invalid(
                "nats_server",
                "must list one or more URLs, comma-separated, none empty".into(),
            );
        }
        if !is_valid_channel(&self.discover_prefix) {
            return invalid(
                "discover_prefix",
                format!(
                    "{:?} must be a subject without wildcards or empty tokens",
                    self.discover_prefix
                ),
            );
        }
        if self.store == StoreKind::Sled && self.dir.as_os_str().is_empty() {
            return invalid("dir", "must not be empty with the sled store".into());
        }
        if self.hb_interval.is_zero() {
            return invalid("hb_interval", "must be greater than zero".into());
        }
        if self.hb_timeout.is_zero() {
            return invalid("hb_timeout", "must be greater than zero".into());
        }
        if self.io_batch_size == 0 {
            return invalid("io_batch_size", "must be at least 1".into());
        }

        if !(-1..=65535).contains(&self.http_port) {
            return invalid(
                "http_port",
                format!(
                    "{} must be a port (0 disables, -1 picks one)",
                    self.http_port
                ),
            );
        }
        if self.tls_client_cert.is_some() && self.tls_client_key.is_none() {
            return invalid(
                "tls_client_cert",
                "a client certificate and its key (tls_client_key) go together".into(),
            );
        }
        if self.tls_client_key.is_some() && self.tls_client_cert.is_none() {
            return invalid(
                "tls_client_key",
                "a client key and its certificate (tls_client_cert) go together".into(),
            );
        }
        if let Some(group) = self.ft_group() {
            if self.store == StoreKind::Memory {
                return invalid(
                    "ft_group",
                    "ft: only the file (sled) store can be shared by an FT group, not memory"
                        .into(),
                );
            }
            if !is_valid_channel(group) || group.contains(['*', '>']) {
                return invalid(
                    "ft_group",
                    format!("{group:?} must be a valid subject without wildcards"),
                );
            }
        }
        if self.clustered {
            let why = if self.store == StoreKind::Memory {
                "stan: clustering mode not supported with MEMORY store type"
            } else if self.partitioning {
                "stan: channels partitioning in clustering mode is not supported"
            } else if self.ft_group().is_some() {
                "fault-tolerance groups (ft_group) and clustering cannot be combined"
            } else {
                ""
            };
            if !why.is_empty() {
                return invalid("clustered", why.into());
            }
            if let Err(why) = self.check_cluster_nodes() {
                return invalid("cluster_peers", why);
            }
        }
        if self.partitioning && self.channels.is_empty() {
            return invalid(
                "partitioning",
                "stan: no configured channel (partitioning serves the channels of \
                 store_limits.channels, and none is set)"
                    .into(),
            );
        }
        if let Err(e) = self.store_limits() {
            return invalid("channels", e.to_string());
        }
        if let Err(e) = self.encryption() {
            let key = match e {
                crate::crypto::CryptoError::UnknownCipher(_) => "encryption_cipher",
                _ => "encryption_key",
            };
            return invalid(key, e.to_string());
        }
        Ok(())
    }

    /// The master key and cipher when payloads are to be encrypted: when
    /// `encrypt` is set or a key is configured, as in NSS, with
    /// `NATS_STREAMING_ENCRYPTION_KEY` winning over `encryption_key`.
    ///
    /// # Errors
    ///
    /// An unknown cipher, or encryption without a key.
    pub fn encryption(
        &self,
    ) -> Result<Option<(crate::crypto::MasterKey, crate::crypto::Cipher)>, crate::crypto::CryptoError>
    {
        let cipher = crate::crypto::Cipher::parse(&self.encryption_cipher)?;
        if !self.encrypt && self.encryption_key.is_none() {
            return Ok(None);
        }
        let flag = self.encryption_key.as_ref().map(Secret::expose);
        let key =
            crate::crypto::configured_key(flag).ok_or(crate::crypto::CryptoError::KeyRequired)?;
        Ok(Some((crate::crypto::MasterKey::new(&key), cipher)))
    }

    /// The global limits and the per-channel ones, built with NSS's
    /// inheritance: what each new channel gets.
    ///
    /// # Errors
    ///
    /// An invalid channel pattern, or more literal channels than
    /// `max_channels`, with NSS's texts.
    pub fn store_limits(&self) -> Result<limits::StoreLimits, limits::LimitsError> {
        limits::StoreLimits::build(
            self.global_limit(),
            self.max_channels,
            self.channels.clone(),
        )
    }

    /// The limits of a channel no pattern matches.
    pub fn global_limit(&self) -> limits::Limit {
        limits::Limit {
            max_msgs: self.max_msgs,
            max_bytes: self.max_bytes,
            max_age: self.max_age,
            max_subs: self.max_subs,
            max_inactivity: self.max_inactivity,
        }
    }
}
