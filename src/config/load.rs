//! Loading the configuration in layers: defaults < config file < environment
//! (`STANCHION_*`) < command-line flags, merged with figment.
//!
//! Owns which file is read (`-sc`/`--stan_config`/`--config`, else
//! `STANCHION_CONFIG`) and how (`.toml` as TOML, anything else as an NSS
//! config file in NATS config syntax), and the warnings about what was
//! accepted but not used.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::nss_file::Origin;
use super::{cli, flags, nss_file, Config};

/// Prefix of the environment variables read as the env layer.
pub const ENV_PREFIX: &str = "STANCHION_";

/// Environment variable naming the config file when no flag does.
pub const CONFIG_ENV: &str = "STANCHION_CONFIG";

/// Keys whose env values are taken verbatim: figment would otherwise read
/// `STANCHION_CLUSTER_ID=007` as the number 7 and lose the zeros.
const STRING_KEYS: &[&str] = &[
    "nats_server",
    "cluster_id",
    "discover_prefix",
    "dir",
    "user",
    "pass",
    "auth",
    "nkey_seed_file",
    "credentials",
    "tls_client_cert",
    "tls_client_key",
    "tls_client_cacert",
    "tls_server_name",
    "connection_name",
    "ft_group",
    "cluster_node_id",
    "cluster_peers",
    "cluster_log_path",
    "http_host",
    "encryption_cipher",
    "encryption_key",
];

/// Keys whose env values are read as Go's `strconv.ParseBool` reads NSS's
/// bool flags (`1`, `t`, `True`, `0`, `F`, …); figment alone would read
/// `1` as a number and reject `T`.
const BOOL_KEYS: &[&str] = &[
    "file_sync",
    "replace_durable",
    "stan_debug",
    "stan_trace",
    "secure",
    "tls_insecure",
    "encrypt",
    "partitioning",
    "clustered",
    "cluster_bootstrap",
    "cluster_sync",
    "cluster_raft_logging",
    "cluster_allow_add_remove_node",
];

/// The env layer: figment's [`Env`] (prefix `STANCHION_`, `__` for nesting),
/// except that [`STRING_KEYS`] keep their text exactly and [`BOOL_KEYS`]
/// take Go's spellings.
struct EnvLayer(Env);

impl EnvLayer {
    fn new() -> Self {
        EnvLayer(Env::prefixed(ENV_PREFIX).split("__").ignore(&["config"]))
    }
}

impl Provider for EnvLayer {
    /// Named so that figment's errors name the whole variable:
    /// `for key "STANCHION_FILE_SYNC" in environment variable(s)`.
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable(s)").interpolater(|_: &Profile, keys: &[&str]| {
            format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = self.0.data()?;
        for (key, raw) in self.0.iter() {
            let value = if STRING_KEYS.contains(&key.as_str()) {
                Value::from(raw)
            } else if BOOL_KEYS.contains(&key.as_str()) {
                // Not a bool: kept as text, for figment to report (naming
                // the variable and the value) only if no flag overrides it.
                flags::parse_go_bool(&raw).map_or_else(|_| Value::from(raw), Value::from)
            } else {
                continue;
            };
            for dict in data.values_mut() {
                dict.insert(key.to_string(), value.clone());
            }
        }
        Ok(data)
    }
}

/// An NSS config file's settings, as a figment layer named after the file.
struct NssLayer {
    path: PathBuf,
    values: Dict,
}

impl Provider for NssLayer {
    fn metadata(&self) -> Metadata {
        Metadata::from("NSS config file", Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
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
    /// The NSS config file has a syntax error or a value of the wrong type;
    /// the text names the file, the line and the key.
    #[error(transparent)]
    NssFile(#[from] nss_file::NssFileError),
    /// A value in the file, env or flags has the wrong type or syntax.
    /// figment's text names the key and where it came from. Boxed because
    /// figment's error is large.
    #[error(transparent)]
    Figment(Box<figment::Error>),
    /// The merged configuration breaks a rule of [`Config::validate`].
    /// When the value came from a config file, the text names it after
    /// the key: `invalid hb_interval (stan.conf:3): must be greater than
    /// zero`.
    #[error("invalid {key}{}: {reason}", at.as_ref().map(|at| format!(" ({at})")).unwrap_or_default())]
    Invalid {
        /// The offending setting.
        key: &'static str,
        /// The config file it was read from, as `file:line` for an NSS
        /// file (`file` alone for TOML); `None` for defaults, env and
        /// flags, whose texts name the setting already.
        at: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        ConfigError::Figment(Box::new(e))
    }
}

/// A loaded configuration, with what was accepted but is not used. Its
/// `Debug` is [`Config`]'s, credentials hidden; the warnings name keys and
/// flags, never values.
#[derive(Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// One line per ignored flag or config key, naming it and why; logged
    /// once at startup, when logging is set up.
    pub warnings: Vec<String>,
}

impl Config {
    /// [`Config::load_reporting`] without the warnings.
    ///
    /// # Errors
    ///
    /// As [`Config::load_reporting`].
    pub fn load(args: impl IntoIterator<Item = OsString>) -> Result<Config, ConfigError> {
        Config::load_reporting(args).map(|loaded| loaded.config)
    }

    /// Loads and validates the configuration from the command line `args`
    /// (program name first, as `std::env::args_os()` yields them), the
    /// environment and the config file: defaults < file < env < flags.
    ///
    /// The file is named by `-sc`/`--stan_config`/`--config` or else by
    /// `STANCHION_CONFIG`. A `.toml` file is read as TOML (its `[streaming]`
    /// table if it has one); any other as an NSS config file.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Args`] for a bad command line or `--help`/`--version`,
    /// [`ConfigError::ConfigFile`] when the named file cannot be read,
    /// [`ConfigError::NssFile`] for a syntax or type error in an NSS file,
    /// [`ConfigError::Figment`] for a malformed value in any layer, and
    /// [`ConfigError::Invalid`] when [`Config::validate`] fails.
    pub fn load_reporting(args: impl IntoIterator<Item = OsString>) -> Result<Loaded, ConfigError> {
        let normalized = flags::normalize(args).map_err(ConfigError::Args)?;
        let cli = cli::Cli::try_parse_from_normalized(normalized.args)?;
        let mut warnings = normalized.ignored;
        let file = cli.config_file().or_else(|| {
            std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        let mut origins = Vec::new();
        if let Some(path) = file {
            figment = figment.merge(file_layer(&path, &mut warnings, &mut origins)?);
        }
        if let (Some(_), Some(nats_file)) = (&cli.stan_config, &cli.nats_config) {
            figment = figment.merge(monitoring_layer(nats_file, &mut origins)?);
        }
        let figment = figment.merge(EnvLayer::new()).merge(cli.layer());
        let config: Config = figment.extract()?;
        config
            .validate()
            .map_err(|e| locate(e, &figment, &origins))?;
        Ok(Loaded { config, warnings })
    }
}

/// Where each setting of one NSS file layer was written.
struct FileOrigins {
    /// The file, as its layer's metadata names it.
    path: PathBuf,
    /// Canonical key to file and line (an included file names itself).
    origins: BTreeMap<String, Origin>,
}

/// `e` with the config file (and line) its setting came from, when the
/// merged value is a file's: figment knows which layer won, the NSS
/// layers' [`FileOrigins`] know the line.
fn locate(mut e: ConfigError, figment: &Figment, files: &[FileOrigins]) -> ConfigError {
    if let ConfigError::Invalid { key, at, .. } = &mut e {
        let source = figment.find_metadata(key).and_then(|m| m.source.as_ref());
        if let Some(Source::File(path)) = source {
            let line = files
                .iter()
                .rev()
                .find(|f| f.path == *path)
                .and_then(|f| f.origins.get(*key));
            *at = Some(line.map_or_else(|| path.display().to_string(), Origin::to_string));
        }
    }
    e
}

/// The file layer for `path`: TOML (focused on its `[streaming]` table when
/// it has one) for a `.toml` file, else an NSS config file, whose ignored
/// keys join `warnings` and whose origins join `origins`.
fn file_layer(
    path: &Path,
    warnings: &mut Vec<String>,
    origins: &mut Vec<FileOrigins>,
) -> Result<Figment, ConfigError> {
    require_file(path)?;
    let is_toml = path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("toml"));
    if is_toml {
        let file = Figment::from(Toml::file_exact(path));
        return Ok(if file.contains("streaming") {
            file.focus("streaming")
        } else {
            file
        });
    }
    let nss = nss_file::read(path)?;
    for ignored in &nss.ignored {
        warnings.push(format!(
            "ignoring config key {:?} ({}:{}): {}",
            ignored.key,
            ignored.file.display(),
            ignored.line,
            ignored.why
        ));
    }
    Ok(nss_layer(path, nss, origins))
}

/// Keys of a nats-server config file that stanchion uses when it is given
/// with `-c` beside `-sc`: where the reference server serves monitoring.
const MONITORING_KEYS: &[&str] = &["http_host", "http_port"];

/// The monitoring settings of the nats-server config file at `path`, as
/// the reference server reads them from its `-c` file; their origins join
/// `origins`.
fn monitoring_layer(path: &Path, origins: &mut Vec<FileOrigins>) -> Result<Figment, ConfigError> {
    require_file(path)?;
    let mut nss = nss_file::read(path)?;
    nss.values
        .retain(|key, _| MONITORING_KEYS.contains(&key.as_str()));
    Ok(nss_layer(path, nss, origins))
}

/// An explicitly named file must exist: a clear error before anything else.
fn require_file(path: &Path) -> Result<(), ConfigError> {
    std::fs::metadata(path)
        .map(drop)
        .map_err(|source| ConfigError::ConfigFile {
            path: path.to_path_buf(),
            source,
        })
}

/// The figment layer of an NSS file read from `path`; where its values
/// came from joins `origins`, for validation errors.
fn nss_layer(path: &Path, nss: nss_file::NssFile, origins: &mut Vec<FileOrigins>) -> Figment {
    origins.push(FileOrigins {
        path: path.to_path_buf(),
        origins: nss.origins,
    });
    Figment::from(NssLayer {
        path: path.to_path_buf(),
        values: nss.values,
    })
}
