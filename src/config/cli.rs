//! The command line as clap sees it, after [`super::flags::normalize`]: one
//! `Option` per setting, turned into the top configuration layer.
//!
//! `--help` lists every option with its NSS spellings and its environment
//! variable, and then the reference server's flags that are accepted and
//! ignored.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::duration::{self, GoDuration};
use super::flags::{ignored_names, parse_go_bool};
use super::load::{ConfigError, ENV_PREFIX};
use super::secret::RedactedDict;
use super::{size, LogFormat, Secret, StoreKind};

const AFTER_HELP: &str = "\
Every flag takes one or two dashes, and its value after a space or '=':
  -cid mycluster, --cid=mycluster, -cluster_id mycluster are the same.
Booleans are set by the bare flag or take '=': -SD, -file_sync=false.
Sizes: 1024, 64MB, 1GB (k, m, g = powers of 1000; kb, mb, gb = powers of 1024).
Durations use Go syntax: 500ms, 30s, 1m30s, 1.5h.

Precedence: defaults < config file < environment < flags. The config file
(-sc, else -c, else STANCHION_CONFIG) is an NSS config file in NATS config
syntax (its streaming { } block if present), or TOML if it ends in .toml.
Every option has an environment variable STANCHION_<OPTION>, shown with it.
Logging: RUST_LOG (default info); -SD / -SV set stanchion's own level to debug / trace.

Subcommands (each has its own --help):
  stanchion import-nss --from NSS_DIR --dir DIR
      copy a nats-streaming-server file store (messages, subscriptions,
      clients) into a new stanchion store
  stanchion export-jetstream --channel CHANNEL_OR_PATTERN [--follow]
      copy channels into a JetStream stream, one subject per channel,
      resumable; --follow keeps mirroring new messages
  stanchion healthcheck
      exit 0 when the running server's /healthz answers 200";

/// The command line as parsed. Every setting is an `Option` so that only
/// the flags actually given override the lower layers. Its `Debug` shows
/// the settings given with their credentials hidden.
#[derive(Default, Parser)]
#[command(
    name = "stanchion",
    version,
    about,
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true,
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// NATS server URL(s) to join, comma-separated; credentials may be in the URL [default: nats://127.0.0.1:4222]
    #[arg(long = "nats_server", visible_alias = "ns", value_name = "URL")]
    pub nats_server: Option<String>,
    /// Cluster ID clients connect to [default: test-cluster]
    #[arg(long = "cluster_id", visible_alias = "cid", value_name = "ID")]
    pub cluster_id: Option<String>,
    /// Prefix of the discovery subject [default: _STAN.discover]
    #[arg(long = "discover_prefix", value_name = "PREFIX")]
    pub discover_prefix: Option<String>,
    /// Store type: sled (alias FILE) or memory, any case [default: sled]
    #[arg(long = "store", visible_alias = "st", value_name = "TYPE")]
    pub store: Option<StoreKind>,
    /// Directory of the sled store [default: ./data]
    #[arg(long = "dir", value_name = "DIR")]
    pub dir: Option<String>,
    /// fsync before acknowledging publishes [default: true]
    #[arg(long = "file_sync", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub file_sync: Option<bool>,
    /// sled page cache size [default: 64MB]
    #[arg(long = "cache_capacity", value_name = "SIZE", value_parser = size::parse)]
    pub cache_capacity: Option<u64>,
    /// Interval between heartbeats to each client [default: 30s]
    #[arg(long = "hb_interval", visible_alias = "hbi", value_name = "DURATION",
          value_parser = duration::parse)]
    pub hb_interval: Option<Duration>,
    /// How long a client has to answer a heartbeat [default: 10s]
    #[arg(long = "hb_timeout", visible_alias = "hbt", value_name = "DURATION",
          value_parser = duration::parse)]
    pub hb_timeout: Option<Duration>,
    /// Missed heartbeats before a client is closed [default: 10]
    #[arg(long = "hb_fail_count", visible_alias = "hbf", value_name = "COUNT")]
    pub hb_fail_count: Option<u32>,
    /// Maximum number of channels, 0 = unlimited [default: 100]
    #[arg(long = "max_channels", visible_alias = "mc", value_name = "COUNT",
          value_parser = parse_limit::<u32>)]
    pub max_channels: Option<u32>,
    /// Maximum subscriptions per channel, 0 = unlimited [default: 1000]
    #[arg(long = "max_subs", visible_alias = "msu", value_name = "COUNT",
          value_parser = parse_limit::<u32>)]
    pub max_subs: Option<u32>,
    /// Maximum messages per channel, 0 = unlimited [default: 1000000]
    #[arg(long = "max_msgs", visible_alias = "mm", value_name = "COUNT",
          value_parser = parse_limit::<u64>)]
    pub max_msgs: Option<u64>,
    /// Maximum bytes per channel, 0 = unlimited [default: 1024000000]
    #[arg(long = "max_bytes", visible_alias = "mb", value_name = "SIZE",
          value_parser = size::parse)]
    pub max_bytes: Option<u64>,
    /// How long messages are kept, 0 = unlimited [default: 0s]
    #[arg(long = "max_age", visible_alias = "ma", value_name = "DURATION",
          value_parser = duration::parse)]
    pub max_age: Option<Duration>,
    /// Inactivity after which a channel without subscriptions or new messages is deleted, 0 = never [default: 0s]
    #[arg(long = "max_inactivity", visible_alias = "mi", value_name = "DURATION",
          value_parser = duration::parse)]
    pub max_inactivity: Option<Duration>,
    /// Replace a duplicate durable subscription instead of rejecting it [default: false]
    #[arg(long = "replace_durable", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub replace_durable: Option<bool>,
    /// Encrypt message payloads at rest (on when a key is given) [default: false]
    #[arg(long = "encrypt", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub encrypt: Option<bool>,
    /// Encryption cipher: AES or CHACHA [default: AES on x86, CHACHA elsewhere]
    #[arg(long = "encryption_cipher", value_name = "CIPHER")]
    pub encryption_cipher: Option<String>,
    /// Encryption key; NATS_STREAMING_ENCRYPTION_KEY is preferred and wins
    #[arg(long = "encryption_key", value_name = "KEY")]
    pub encryption_key: Option<Secret>,
    /// Maximum publishes written to the store in one batch [default: 1024]
    #[arg(long = "io_batch_size", value_name = "COUNT")]
    pub io_batch_size: Option<usize>,
    /// Log stanchion at debug level [default: false]
    #[arg(long = "stan_debug", visible_alias = "SD", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_go_bool)]
    pub stan_debug: Option<bool>,
    /// Log stanchion at trace level [default: false]
    #[arg(long = "stan_trace", visible_alias = "SV", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", value_parser = parse_go_bool)]
    pub stan_trace: Option<bool>,
    /// Both -SD and -SV; wins over an explicit -SD or -SV, as in NSS
    #[arg(long = "SDV", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub stan_debug_and_trace: Option<bool>,
    /// Log lines as text or json [default: text]
    #[arg(long = "log_format", value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// User name for nats-server
    #[arg(long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Password for nats-server
    #[arg(long = "pass", value_name = "PASSWORD")]
    pub pass: Option<Secret>,
    /// Authorization token for nats-server
    #[arg(long = "auth", value_name = "TOKEN")]
    pub auth: Option<Secret>,
    /// File with the NKey seed to authenticate to nats-server with
    #[arg(long = "nkey_seed_file", value_name = "FILE")]
    pub nkey_seed_file: Option<String>,
    /// Credentials file (user JWT and NKey seed) for nats-server
    #[arg(long = "credentials", visible_alias = "creds", value_name = "FILE")]
    pub credentials: Option<String>,
    /// Require TLS to nats-server; its certificate is still verified (as NSS's code does) [default: false]
    #[arg(long = "secure", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub secure: Option<bool>,
    /// Client certificate (PEM) for TLS to nats-server
    #[arg(long = "tls_client_cert", value_name = "FILE")]
    pub tls_client_cert: Option<String>,
    /// Key (PEM) of the client certificate
    #[arg(long = "tls_client_key", value_name = "FILE")]
    pub tls_client_key: Option<String>,
    /// CA certificates (PEM) that nats-server's certificate must chain to
    #[arg(long = "tls_client_cacert", value_name = "FILE")]
    pub tls_client_cacert: Option<String>,
    /// Name expected in nats-server's certificate [default: the URL's host]
    #[arg(long = "tls_server_name", value_name = "NAME")]
    pub tls_server_name: Option<String>,
    /// Skip verifying nats-server's certificate [default: false]
    #[arg(long = "tls_insecure", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub tls_insecure: Option<bool>,
    /// Name of stanchion's NATS connection [default: stanchion-<cluster_id>]
    #[arg(long = "connection_name", value_name = "NAME")]
    pub connection_name: Option<String>,
    /// Run in a fault-tolerance group: active/standby servers sharing one store directory
    #[arg(long = "ft_group", value_name = "NAME")]
    pub ft_group: Option<String>,
    /// Serve only the channels of store_limits.channels, beside other servers of the cluster ID [default: false]
    #[arg(long = "partitioning", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub partitioning: Option<bool>,
    /// Run as a node of a Raft cluster (NSS's clustered mode) [default: false]
    #[arg(long = "clustered", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub clustered: Option<bool>,
    /// This node's name in the cluster
    #[arg(long = "cluster_node_id", value_name = "NAME")]
    pub cluster_node_id: Option<String>,
    /// The other nodes of the cluster, comma-separated (this one may be listed too)
    #[arg(long = "cluster_peers", value_name = "NAMES")]
    pub cluster_peers: Option<String>,
    /// Directory of the Raft log [default: <dir>/raft]
    #[arg(long = "cluster_log_path", value_name = "DIR")]
    pub cluster_log_path: Option<PathBuf>,
    /// Start a new cluster with this node alone (a seed); nodes started without peers join it [default: false]
    #[arg(long = "cluster_bootstrap", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub cluster_bootstrap: Option<bool>,
    /// fsync every store write a node applies; the Raft log is always synced [default: false]
    #[arg(long = "cluster_sync", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub cluster_sync: Option<bool>,
    /// The leader adds and removes nodes on request (`_STAN.raft.<cluster_id>.node.add`, `.remove`) [default: false]
    #[arg(long = "cluster_allow_add_remove_node", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub cluster_allow_add_remove_node: Option<bool>,
    /// Log the Raft library's own lines [default: false]
    #[arg(long = "cluster_raft_logging", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub cluster_raft_logging: Option<bool>,
    /// Raft election timer t: a follower stands for election after 2.5 t to 3 t without its leader [default: 600ms]
    #[arg(long = "cluster_raft_heartbeat_timeout", value_name = "DURATION",
          value_parser = duration::parse)]
    pub cluster_raft_heartbeat_timeout: Option<Duration>,
    /// How long a candidate waits for votes; openraft uses the shorter of this and the heartbeat timeout [default: 600ms]
    #[arg(long = "cluster_raft_election_timeout", value_name = "DURATION",
          value_parser = duration::parse)]
    pub cluster_raft_election_timeout: Option<Duration>,
    /// Raft log entries kept behind a snapshot [default: 10240]
    #[arg(long = "cluster_trailing_logs", value_name = "COUNT")]
    pub cluster_trailing_logs: Option<u64>,
    /// Address the monitoring HTTP server binds [default: 0.0.0.0]
    #[arg(long = "http_host", visible_aliases = ["a", "addr", "net"], value_name = "HOST")]
    pub http_host: Option<String>,
    /// Monitoring HTTP port: /streaming/*, /healthz, /readyz, /metrics; 0 = off, -1 = any free port [default: 0]
    #[arg(
        long = "http_port",
        visible_alias = "m",
        value_name = "PORT",
        allow_negative_numbers = true
    )]
    pub http_port: Option<i32>,
    /// Config file: NSS config syntax, or TOML if it ends in .toml (env STANCHION_CONFIG)
    #[arg(long = "stan_config", visible_alias = "sc", value_name = "FILE")]
    pub stan_config: Option<PathBuf>,
    /// nats-server config file: its monitoring port (http, http_port) is used; the config file too when -sc is not given
    #[arg(long = "nats_config", visible_aliases = ["c", "config"], value_name = "FILE")]
    pub nats_config: Option<PathBuf>,
    /// Print help (also -help, or the command word: stanchion help)
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// Print version (also -version, or the command word: stanchion version)
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: Option<bool>,
}

/// Long names of the command line that are not configuration settings.
const NOT_SETTINGS: &[&str] = &["SDV", "stan_config", "nats_config", "help", "version"];

/// The clap command with each setting's environment variable in its help
/// line. Shown only: the env layer is figment's, so that a bad value is
/// reported as coming from the environment, not from a flag.
pub fn command() -> clap::Command {
    let ignored = format!(
        "{AFTER_HELP}\n\nAccepted for NSS compatibility and ignored, with a warning naming each \
         one and why (embedded nats-server, file-store tuning, SQL, clustering, fault \
         tolerance):\n  {}",
        ignored_names()
    );
    Cli::command().after_help(ignored).mut_args(|arg| {
        let long = arg.get_long().unwrap_or_default().to_string();
        if long.is_empty() || NOT_SETTINGS.contains(&long.as_str()) {
            return arg;
        }
        let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
        let env = format!("{ENV_PREFIX}{}", long.to_ascii_uppercase());
        arg.help(format!("{help} [env: {env}]"))
    })
}

/// Go's error for an undefined flag, formatted by clap with our usage line.
pub(super) fn unknown_flag(arg: &str) -> clap::Error {
    let name = arg.split('=').next().unwrap_or(arg);
    clap::Error::raw(
        clap::error::ErrorKind::UnknownArgument,
        format!(
            "flag provided but not defined: {name} (see --help for the flags stanchion supports)"
        ),
    )
    .format(&mut command())
}

impl Cli {
    /// Parses arguments already normalized by [`super::flags::normalize`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::Args`] for a malformed value, or for `--help` and
    /// `--version`.
    pub fn try_parse_from_normalized(args: Vec<OsString>) -> Result<Cli, ConfigError> {
        let matches = command()
            .try_get_matches_from(args)
            .map_err(ConfigError::Args)?;
        Cli::from_arg_matches(&matches).map_err(ConfigError::Args)
    }

    /// The config file to read: `-sc`, else `-c`.
    pub fn config_file(&self) -> Option<PathBuf> {
        self.stan_config
            .clone()
            .or_else(|| self.nats_config.clone())
    }

    /// The flags given, as the figment layer merged over env and file.
    pub fn layer(&self) -> FlagLayer {
        let mut dict = Dict::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                dict.insert(key.to_string(), value);
            }
        };
        let text = |s: &Option<String>| s.clone().map(Value::from);
        let duration = |d: Option<Duration>| d.map(|d| Value::from(GoDuration(d).to_string()));
        put("nats_server", text(&self.nats_server));
        put("cluster_id", text(&self.cluster_id));
        put("discover_prefix", text(&self.discover_prefix));
        put("store", self.store.map(|s| Value::from(s.as_str())));
        put("dir", text(&self.dir));
        put("file_sync", self.file_sync.map(Value::from));
        put("cache_capacity", self.cache_capacity.map(Value::from));
        put("hb_interval", duration(self.hb_interval));
        put("hb_timeout", duration(self.hb_timeout));
        put("hb_fail_count", self.hb_fail_count.map(Value::from));
        put("max_channels", self.max_channels.map(Value::from));
        put("max_subs", self.max_subs.map(Value::from));
        put("max_msgs", self.max_msgs.map(Value::from));
        put("max_bytes", self.max_bytes.map(Value::from));
        put("max_age", duration(self.max_age));
        put("max_inactivity", duration(self.max_inactivity));
        put("replace_durable", self.replace_durable.map(Value::from));
        put("io_batch_size", self.io_batch_size.map(Value::from));
        put("encrypt", self.encrypt.map(Value::from));
        put("encryption_cipher", text(&self.encryption_cipher));
        // NSS applies -SDV after every other flag, so it wins.
        let both = self.stan_debug_and_trace;
        put("stan_debug", both.or(self.stan_debug).map(Value::from));
        put("stan_trace", both.or(self.stan_trace).map(Value::from));
        put(
            "log_format",
            self.log_format.map(|f| Value::from(f.as_str())),
        );
        put("user", text(&self.user));
        let secret = |s: &Option<Secret>| s.as_ref().map(|s| Value::from(s.expose()));
        put("pass", secret(&self.pass));
        put("auth", secret(&self.auth));
        put("encryption_key", secret(&self.encryption_key));
        put("nkey_seed_file", text(&self.nkey_seed_file));
        put("credentials", text(&self.credentials));
        put("secure", self.secure.map(Value::from));
        put("tls_client_cert", text(&self.tls_client_cert));
        put("tls_client_key", text(&self.tls_client_key));
        put("tls_client_cacert", text(&self.tls_client_cacert));
        put("tls_server_name", text(&self.tls_server_name));
        put("tls_insecure", self.tls_insecure.map(Value::from));
        put("connection_name", text(&self.connection_name));
        put("ft_group", text(&self.ft_group));
        put("partitioning", self.partitioning.map(Value::from));
        put("clustered", self.clustered.map(Value::from));
        put("cluster_node_id", text(&self.cluster_node_id));
        put("cluster_peers", text(&self.cluster_peers));
        put(
            "cluster_log_path",
            self.cluster_log_path
                .as_ref()
                .map(|p| Value::from(p.display().to_string())),
        );
        put("cluster_bootstrap", self.cluster_bootstrap.map(Value::from));
        put("cluster_sync", self.cluster_sync.map(Value::from));
        put(
            "cluster_allow_add_remove_node",
            self.cluster_allow_add_remove_node.map(Value::from),
        );
        put(
            "cluster_raft_logging",
            self.cluster_raft_logging.map(Value::from),
        );
        put(
            "cluster_trailing_logs",
            self.cluster_trailing_logs.map(Value::from),
        );
        put(
            "cluster_raft_heartbeat_timeout",
            duration(self.cluster_raft_heartbeat_timeout),
        );
        put(
            "cluster_raft_election_timeout",
            duration(self.cluster_raft_election_timeout),
        );
        put("http_host", text(&self.http_host));
        put("http_port", self.http_port.map(Value::from));
        FlagLayer(dict)
    }
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("settings", &RedactedDict(&self.layer().0))
            .field("stan_debug_and_trace", &self.stan_debug_and_trace)
            .field("stan_config", &self.stan_config)
            .field("nats_config", &self.nats_config)
            .finish_non_exhaustive()
    }
}

/// The top figment layer: the flags given, named as flags in error texts.
pub struct FlagLayer(Dict);

impl Provider for FlagLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flags")
            .interpolater(|_: &Profile, keys: &[&str]| format!("--{}", keys.join(".")))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.0.clone()))
    }
}

/// A limit flag: a whole number, 0 meaning unlimited; a negative one is
/// refused saying so, not as a bad digit.
fn parse_limit<T: TryFrom<i128>>(s: &str) -> Result<T, String> {
    let n: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number (0 means unlimited)"))?;
    if n < 0 {
        return Err(format!("{n} is negative: limits are 0 (unlimited) or more"));
    }
    T::try_from(n).map_err(|_| format!("{n} is too large"))
}

#[cfg(test)]
mod tests;
