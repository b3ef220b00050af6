//! Configuration: the [`Config`] the server runs with, its defaults, and
//! loading in layers (defaults < file < env `STANCHION_*` < flags).
//!
//! Owns reading the command line, the environment and the config file; the
//! rest of the server only ever sees a validated [`Config`]. Submodules hold
//! the pure parsers: Go durations, NATS sizes, and NSS's flag spellings.

mod cli;
pub mod duration;
pub mod size;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer, Serialize};

use crate::protocol::{is_valid_channel, is_valid_client_id};

/// Prefix of the environment variables read as the env layer.
pub const ENV_PREFIX: &str = "STANCHION_";

/// Environment variable naming the config file when no flag does.
pub const CONFIG_ENV: &str = "STANCHION_CONFIG";

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

/// Everything the server needs to run. Field names match NSS's long flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// NATS server URL(s) to join, comma-separated.
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

/// Deserializes a string field that env or a file may hand us as a number
/// or bool (`STANCHION_CLUSTER_ID=123` parses as the integer 123).
fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
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
fn path_like<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    string_like(d).map(PathBuf::from)
}

/// Keys whose env values are taken verbatim: figment would otherwise read
/// `STANCHION_CLUSTER_ID=007` as the number 7 and lose the zeros.
const STRING_KEYS: &[&str] = &["nats_server", "cluster_id", "discover_prefix", "dir"];

/// The env layer: figment's [`Env`] (prefix `STANCHION_`, `__` for nesting),
/// except that [`STRING_KEYS`] keep their text exactly.
struct EnvLayer(Env);

impl EnvLayer {
    fn new() -> Self {
        EnvLayer(Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]))
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        self.0.metadata()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = self.0.data()?;
        for (key, raw) in self.0.iter() {
            if STRING_KEYS.contains(&key.as_str()) {
                for dict in data.values_mut() {
                    dict.insert(key.to_string(), Value::from(raw.clone()));
                }
            }
        }
        Ok(data)
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line was rejected, or asked for `--help` / `--version`.
    /// `clap::Error::exit` prints it and exits with clap's code (0 for help
    /// and version, 2 otherwise).
    #[error(transparent)]
    Args(clap::Error),
    /// The config file named by `--config` or `STANCHION_CONFIG` is missing
    /// or unreadable; an explicit file must exist.
    #[error("cannot read config file {}: {source}", path.display())]
    ConfigFile {
        /// The path as given.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// A value in the file, env or flags has the wrong type or syntax.
    /// figment's text names the key and where it came from. Boxed because
    /// figment's error is large.
    #[error(transparent)]
    Figment(Box<figment::Error>),
    /// The merged configuration breaks a rule of [`Config::validate`].
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The offending setting.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        ConfigError::Figment(Box::new(e))
    }
}

impl Config {
    /// Loads and validates the configuration from the command line `args`
    /// (program name first, as `std::env::args_os()` yields them), the
    /// environment and the config file: defaults < file < env < flags.
    ///
    /// The file is TOML, named by `--config`/`-sc`/`--stan_config` or else
    /// by `STANCHION_CONFIG`; if it has a `[streaming]` table (NSS's
    /// recommended layout) only that table is read.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Args`] for a bad command line or `--help`/`--version`,
    /// [`ConfigError::ConfigFile`] when the named file cannot be read,
    /// [`ConfigError::Figment`] for a malformed value in any layer, and
    /// [`ConfigError::Invalid`] when [`Config::validate`] fails.
    pub fn load(args: impl IntoIterator<Item = OsString>) -> Result<Config, ConfigError> {
        let argv = cli::normalize(args).map_err(ConfigError::Args)?;
        let cli = cli::Cli::try_parse_from(argv).map_err(ConfigError::Args)?;
        let file = cli.config.clone().or_else(|| {
            std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            figment = figment.merge(file_layer(&path)?);
        }
        let config: Config = figment
            .merge(EnvLayer::new())
            .merge(cli.layer())
            .extract()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules a server cannot start without, so mistakes surface
    /// at startup with the setting's name rather than as odd behaviour.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the first offending setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: String| Err(ConfigError::Invalid { key, reason });
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
            return invalid(
                "nats_server",
                format!(
                    "{:?} must list one or more URLs, comma-separated",
                    self.nats_server
                ),
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
        Ok(())
    }
}

/// The file layer: the TOML file at `path`, focused on its `[streaming]`
/// table when it has one.
fn file_layer(path: &Path) -> Result<Figment, ConfigError> {
    std::fs::metadata(path).map_err(|source| ConfigError::ConfigFile {
        path: path.to_path_buf(),
        source,
    })?;
    let file = Figment::from(Toml::file_exact(path));
    Ok(if file.contains("streaming") {
        file.focus("streaming")
    } else {
        file
    })
}

// `figment::Jail` closures return figment's (large) error type by design.
#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    /// `Config::load` with a program name prepended, errors as strings so
    /// they fit `Jail`'s closure.
    fn load(args: &[&str]) -> Result<Config, ConfigError> {
        let argv = std::iter::once("stanchion")
            .chain(args.iter().copied())
            .map(OsString::from);
        Config::load(argv)
    }

    fn ok(args: &[&str]) -> figment::error::Result<Config> {
        load(args).map_err(|e| figment::Error::from(e.to_string()))
    }

    fn err(args: &[&str]) -> String {
        load(args).expect_err("expected an error").to_string()
    }

    #[test]
    fn defaults_round_trip_through_figment() {
        Jail::expect_with(|_| {
            assert_eq!(ok(&[])?, Config::default());
            Config::default().validate().unwrap();
            Ok(())
        });
    }

    #[test]
    fn file_layer_reads_every_kind_of_value() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "stan.toml",
                r#"
                nats_server = "nats://a:4222,nats://b:4222"
                cluster_id = 123
                store = "FILE"
                dir = "/var/stan"
                file_sync = false
                cache_capacity = "1GB"
                max_bytes = 2048
                hb_interval = "1m30s"
                hb_timeout = "1.5s"
                hb_fail_count = 3
                unknown_key = "ignored, as NSS does"
                "#,
            )?;
            let config = ok(&["-sc", "stan.toml"])?;
            assert_eq!(config.nats_server, "nats://a:4222,nats://b:4222");
            assert_eq!(config.cluster_id, "123");
            assert_eq!(config.store, StoreKind::Sled);
            assert_eq!(config.dir, PathBuf::from("/var/stan"));
            assert!(!config.file_sync);
            assert_eq!(config.cache_capacity, 1 << 30);
            assert_eq!(config.max_bytes, 2048);
            assert_eq!(config.hb_interval, Duration::from_secs(90));
            assert_eq!(config.hb_timeout, Duration::from_millis(1500));
            assert_eq!(config.hb_fail_count, 3);
            assert_eq!(config.max_msgs, Config::default().max_msgs);
            Ok(())
        });
    }

    #[test]
    fn streaming_table_is_used_when_present() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "nss.toml",
                "cluster_id = \"outer\"\n[streaming]\ncluster_id = \"inner\"\nstore = \"memory\"\n",
            )?;
            let config = ok(&["--config=nss.toml"])?;
            assert_eq!(config.cluster_id, "inner");
            assert_eq!(config.store, StoreKind::Memory);
            Ok(())
        });
    }

    #[test]
    fn config_file_from_env_and_flag_precedence() {
        Jail::expect_with(|jail| {
            jail.create_file("env.toml", "cluster_id = \"from-env-file\"")?;
            jail.create_file("flag.toml", "cluster_id = \"from-flag-file\"")?;
            jail.set_env("STANCHION_CONFIG", "env.toml");
            assert_eq!(ok(&[])?.cluster_id, "from-env-file");
            assert_eq!(
                ok(&["--stan_config", "flag.toml"])?.cluster_id,
                "from-flag-file"
            );
            Ok(())
        });
    }

    #[test]
    fn missing_config_file_is_an_error() {
        Jail::expect_with(|_| {
            let e = load(&["-sc", "nope.toml"]).unwrap_err();
            assert!(matches!(e, ConfigError::ConfigFile { .. }), "{e}");
            assert!(e.to_string().contains("nope.toml"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn env_layer_reads_typed_values() {
        Jail::expect_with(|jail| {
            jail.set_env("STANCHION_CLUSTER_ID", "123");
            jail.set_env("STANCHION_NATS_SERVER", "nats://h:1");
            jail.set_env("STANCHION_DIR", "1.50");
            jail.set_env("STANCHION_HB_INTERVAL", "500ms");
            jail.set_env("STANCHION_HB_TIMEOUT", "1h2m3s");
            jail.set_env("STANCHION_FILE_SYNC", "false");
            jail.set_env("STANCHION_STORE", "MEMORY");
            jail.set_env("STANCHION_MAX_BYTES", "64MB");
            jail.set_env("STANCHION_CACHE_CAPACITY", "1000");
            jail.set_env("STANCHION_MAX_CHANNELS", "7");
            jail.set_env("STANCHION_REPLACE_DURABLE", "true");
            let config = ok(&[])?;
            assert_eq!(config.cluster_id, "123");
            assert_eq!(config.nats_server, "nats://h:1");
            assert_eq!(config.dir, PathBuf::from("1.50"));
            assert_eq!(config.hb_interval, Duration::from_millis(500));
            assert_eq!(config.hb_timeout, Duration::from_secs(3723));
            assert!(!config.file_sync);
            assert_eq!(config.store, StoreKind::Memory);
            assert_eq!(config.max_bytes, 64 << 20);
            assert_eq!(config.cache_capacity, 1000);
            assert_eq!(config.max_channels, 7);
            assert!(config.replace_durable);
            Ok(())
        });
    }

    #[test]
    fn env_string_fields_keep_their_exact_text() {
        Jail::expect_with(|jail| {
            jail.set_env("STANCHION_CLUSTER_ID", "007");
            assert_eq!(ok(&[])?.cluster_id, "007");
            jail.set_env("STANCHION_CLUSTER_ID", "true");
            assert_eq!(ok(&[])?.cluster_id, "true");
            Ok(())
        });
    }

    #[test]
    fn store_aliases_in_every_layer() {
        Jail::expect_with(|jail| {
            for (text, kind) in [
                ("sled", StoreKind::Sled),
                ("SLED", StoreKind::Sled),
                ("file", StoreKind::Sled),
                ("FILE", StoreKind::Sled),
                ("memory", StoreKind::Memory),
                ("MEMORY", StoreKind::Memory),
                ("Memory", StoreKind::Memory),
            ] {
                assert_eq!(ok(&["-st", text])?.store, kind, "flag {text}");
                jail.set_env("STANCHION_STORE", text);
                assert_eq!(ok(&[])?.store, kind, "env {text}");
                jail.create_file("s.toml", &format!("store = {text:?}"))?;
                jail.set_env("STANCHION_STORE", "");
                assert!(err(&[]).contains("STORE"));
                std::env::remove_var("STANCHION_STORE");
                assert_eq!(ok(&["-sc", "s.toml"])?.store, kind, "file {text}");
            }
            Ok(())
        });
    }

    #[test]
    fn precedence_is_file_then_env_then_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "p.toml",
                "cluster_id = \"file\"\nhb_interval = \"1s\"\nmax_msgs = 1\nstan_debug = true\n",
            )?;
            jail.set_env("STANCHION_CONFIG", "p.toml");
            let config = ok(&[])?;
            assert_eq!(
                (
                    config.cluster_id.as_str(),
                    config.hb_interval,
                    config.max_msgs
                ),
                ("file", Duration::from_secs(1), 1)
            );
            jail.set_env("STANCHION_CLUSTER_ID", "env");
            jail.set_env("STANCHION_HB_INTERVAL", "2s");
            let config = ok(&[])?;
            assert_eq!(
                (
                    config.cluster_id.as_str(),
                    config.hb_interval,
                    config.max_msgs
                ),
                ("env", Duration::from_secs(2), 1)
            );
            let config = ok(&["-cid", "flag", "-SD=false"])?;
            assert_eq!(
                (
                    config.cluster_id.as_str(),
                    config.hb_interval,
                    config.max_msgs
                ),
                ("flag", Duration::from_secs(2), 1)
            );
            assert!(!config.stan_debug);
            Ok(())
        });
    }

    #[test]
    fn a_flag_overrides_an_invalid_env_value() {
        Jail::expect_with(|jail| {
            jail.set_env("STANCHION_HB_INTERVAL", "bogus");
            assert!(err(&[]).contains("HB_INTERVAL"));
            assert_eq!(ok(&["-hbi", "5s"])?.hb_interval, Duration::from_secs(5));
            Ok(())
        });
    }

    #[test]
    fn flags_in_all_go_spellings() {
        Jail::expect_with(|_| {
            let expected = Config {
                nats_server: "nats://x:1".into(),
                cluster_id: "c".into(),
                discover_prefix: "_D.x".into(),
                store: StoreKind::Memory,
                dir: "d".into(),
                file_sync: false,
                cache_capacity: 2_000_000,
                hb_interval: Duration::from_millis(1500),
                hb_timeout: Duration::from_micros(100),
                hb_fail_count: 4,
                max_channels: 5,
                max_subs: 6,
                max_msgs: 7,
                max_bytes: 8 << 10,
                replace_durable: true,
                io_batch_size: 9,
                stan_debug: true,
                stan_trace: true,
            };
            let one_dash = [
                "-ns",
                "nats://x:1",
                "-cid",
                "c",
                "-discover_prefix",
                "_D.x",
                "-st",
                "MEMORY",
                "-dir",
                "d",
                "-file_sync=false",
                "-cache_capacity",
                "2m",
                "-hbi",
                "1.5s",
                "-hbt",
                "100us",
                "-hbf",
                "4",
                "-mc",
                "5",
                "-msu",
                "6",
                "-mm",
                "7",
                "-mb",
                "8KB",
                "-replace_durable",
                "-io_batch_size",
                "9",
                "-SDV",
            ];
            let two_dashes_equals = [
                "--nats_server=nats://x:1",
                "--cluster_id=c",
                "--discover_prefix=_D.x",
                "--store=memory",
                "--dir=d",
                "--file_sync=0",
                "--cache_capacity=2M",
                "--hb_interval=1500ms",
                "--hb_timeout=0.1ms",
                "--hb_fail_count=4",
                "--max_channels=5",
                "--max_subs=6",
                "--max_msgs=7",
                "--max_bytes=8kb",
                "--replace_durable=true",
                "--io_batch_size=9",
                "--SD",
                "--SV=t",
            ];
            assert_eq!(ok(&one_dash)?, expected);
            assert_eq!(ok(&two_dashes_equals)?, expected);
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_key_and_source() {
        Jail::expect_with(|jail| {
            jail.set_env("STANCHION_HB_FAIL_COUNT", "many");
            let e = err(&[]);
            assert!(
                e.contains("HB_FAIL_COUNT") && e.contains("STANCHION_"),
                "{e}"
            );
            std::env::remove_var("STANCHION_HB_FAIL_COUNT");

            jail.set_env("STANCHION_MAX_BYTES", "12zz");
            let e = err(&[]);
            assert!(
                e.contains("MAX_BYTES") && e.contains("unknown suffix"),
                "{e}"
            );
            std::env::remove_var("STANCHION_MAX_BYTES");

            jail.create_file("bad.toml", "[streaming]\nhb_interval = \"5x\"\n")?;
            let e = err(&["-sc", "bad.toml"]);
            assert!(e.contains("hb_interval") && e.contains("bad.toml"), "{e}");
            assert!(e.contains(r#"unknown unit "x""#), "{e}");

            jail.create_file("bad2.toml", "store = \"sql\"\n")?;
            let e = err(&["-sc", "bad2.toml"]);
            assert!(
                e.contains("store") && e.contains("unknown store type"),
                "{e}"
            );

            jail.create_file("bad3.toml", "max_msgs = -1\n")?;
            assert!(err(&["-sc", "bad3.toml"]).contains("max_msgs"));

            let e = err(&["-hbi", "30"]);
            assert!(
                e.contains("--hb_interval") && e.contains("missing unit"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn validation_names_the_setting() {
        Jail::expect_with(|_| {
            for (args, key) in [
                (&["-cid", ""][..], "cluster_id"),
                (&["-cid", "a.b"], "cluster_id"),
                (&["-cid", "a b"], "cluster_id"),
                (&["-ns", ""], "nats_server"),
                (&["-ns", "nats://a:1,"], "nats_server"),
                (&["-discover_prefix", "_STAN.>"], "discover_prefix"),
                (&["-dir", ""], "dir"),
                (&["-hbi", "0"], "hb_interval"),
                (&["-hbt", "0s"], "hb_timeout"),
                (&["-io_batch_size", "0"], "io_batch_size"),
            ] {
                match load(args) {
                    Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{args:?}"),
                    other => panic!("{args:?}: {other:?}"),
                }
            }
            // The memory store needs no directory.
            ok(&["-st", "memory", "-dir", ""])?;
            Ok(())
        });
    }

    #[test]
    fn help_and_version_are_args_errors() {
        Jail::expect_with(|_| {
            for (flag, kind) in [
                ("--help", clap::error::ErrorKind::DisplayHelp),
                ("-h", clap::error::ErrorKind::DisplayHelp),
                ("-version", clap::error::ErrorKind::DisplayVersion),
            ] {
                match load(&[flag]) {
                    Err(ConfigError::Args(e)) => assert_eq!(e.kind(), kind),
                    other => panic!("{flag}: {other:?}"),
                }
            }
            Ok(())
        });
    }
}
