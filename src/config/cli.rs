//! The command line: NSS's flag spellings, read the way Go's `flag` package
//! reads them, and turned into the top configuration layer.
//!
//! Go accepts one or two dashes on every name (`-cluster_id x`, `--cid=x`)
//! and bools as bare flags or `-SD=false`; clap does not. So [`normalize`]
//! first rewrites every known spelling to its canonical `--long` form (one
//! table, [`FLAGS`]), then clap parses. Pure: no env, no files.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser};
use figment::value::{Dict, Map, Value};
use figment::{Metadata, Profile, Provider};

use super::duration::{self, GoDuration};
use super::{size, StoreKind};

/// Whether a flag consumes the next argument when no `=value` is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// `-cid x` and `-cid=x`.
    Value,
    /// `-SD` alone, or `-SD=false`; never the next argument (Go's rule).
    Bool,
}

/// One flag: every spelling NSS accepts (without dashes) and the clap long
/// name they all become.
struct FlagSpec {
    names: &'static [&'static str],
    long: &'static str,
    takes: Takes,
}

const fn flag(names: &'static [&'static str], long: &'static str, takes: Takes) -> FlagSpec {
    FlagSpec { names, long, takes }
}

/// Every flag stanchion knows, with NSS's spellings.
const FLAGS: &[FlagSpec] = &[
    flag(&["ns", "nats_server"], "nats_server", Takes::Value),
    flag(&["cid", "cluster_id"], "cluster_id", Takes::Value),
    flag(&["discover_prefix"], "discover_prefix", Takes::Value),
    flag(&["st", "store"], "store", Takes::Value),
    flag(&["dir"], "dir", Takes::Value),
    flag(&["file_sync"], "file_sync", Takes::Bool),
    flag(&["cache_capacity"], "cache_capacity", Takes::Value),
    flag(&["hbi", "hb_interval"], "hb_interval", Takes::Value),
    flag(&["hbt", "hb_timeout"], "hb_timeout", Takes::Value),
    flag(&["hbf", "hb_fail_count"], "hb_fail_count", Takes::Value),
    flag(&["mc", "max_channels"], "max_channels", Takes::Value),
    flag(&["msu", "max_subs"], "max_subs", Takes::Value),
    flag(&["mm", "max_msgs"], "max_msgs", Takes::Value),
    flag(&["mb", "max_bytes"], "max_bytes", Takes::Value),
    flag(&["replace_durable"], "replace_durable", Takes::Bool),
    flag(&["io_batch_size"], "io_batch_size", Takes::Value),
    flag(&["SD", "stan_debug"], "stan_debug", Takes::Bool),
    flag(&["SV", "stan_trace"], "stan_trace", Takes::Bool),
    flag(&["SDV"], "SDV", Takes::Bool),
    flag(&["sc", "stan_config", "config"], "config", Takes::Value),
    flag(&["h", "help"], "help", Takes::Bool),
    flag(&["v", "version"], "version", Takes::Bool),
];

fn lookup(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|spec| spec.names.contains(&name))
}

/// Rewrites Go-style arguments into the canonical `--long[=value]` forms
/// clap parses. The first item (the program name) is kept as is. Like Go,
/// flag parsing stops at `--` or the first non-flag argument; the rest pass
/// through unchanged, for clap to report.
///
/// # Errors
///
/// A flag not in [`FLAGS`], with Go's text (`flag provided but not defined:
/// -ma`): clap would otherwise read `-ma` as the short flags `-m -a`.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, clap::Error> {
    let mut args = args.into_iter();
    let mut out: Vec<OsString> = args.next().into_iter().collect();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" || text == "-" || !text.starts_with('-') {
            out.push(arg);
            out.extend(args);
            break;
        }
        let body = text.strip_prefix("--").unwrap_or(&text[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let Some(spec) = lookup(name) else {
            return Err(unknown_flag(text));
        };
        let mut canonical = OsString::from(format!("--{}", spec.long));
        let value: Option<OsString> = match (inline, spec.takes) {
            (Some(value), _) => Some(value.into()),
            (None, Takes::Value) => args.next(),
            (None, Takes::Bool) => None,
        };
        if let Some(value) = value {
            canonical.push("=");
            canonical.push(&value);
        }
        out.push(canonical);
    }
    Ok(out)
}

/// Go's error for an undefined flag, formatted by clap with our usage line.
fn unknown_flag(arg: &str) -> clap::Error {
    use clap::CommandFactory;
    let name = arg.split('=').next().unwrap_or(arg);
    clap::Error::raw(
        clap::error::ErrorKind::UnknownArgument,
        format!(
            "flag provided but not defined: {name} (see --help for the flags stanchion supports)"
        ),
    )
    .format(&mut Cli::command())
}

/// Go's `strconv.ParseBool`, which NSS's bool flags use.
fn parse_go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {text:?}")),
    }
}

const AFTER_HELP: &str = "\
Every flag takes one or two dashes, and its value after a space or '=':
  -cid mycluster, --cid=mycluster, -cluster_id mycluster are the same.
Booleans are set by the bare flag or take '=': -SD, -file_sync=false.
Sizes: 1024, 64MB, 1GB (k, m, g = powers of 1000; kb, mb, gb = powers of 1024).
Durations use Go syntax: 500ms, 30s, 1m30s, 1.5h.

Precedence: defaults < config file (TOML; its [streaming] table if present)
< environment STANCHION_<KEY> (STANCHION_CLUSTER_ID=x, STANCHION_HB_INTERVAL=500ms)
< flags. STANCHION_CONFIG names the config file when no flag does.
Logging: RUST_LOG (default info); -SD / -SV set stanchion's own level to debug / trace.";

/// The command line as parsed. Every setting is an `Option` so that only
/// the flags actually given override the lower layers.
#[derive(Debug, Default, Parser)]
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
    /// NATS server URL(s) to join, comma-separated [default: nats://127.0.0.1:4222]
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
    #[arg(long = "max_channels", visible_alias = "mc", value_name = "COUNT")]
    pub max_channels: Option<u32>,
    /// Maximum subscriptions per channel, 0 = unlimited [default: 1000]
    #[arg(long = "max_subs", visible_alias = "msu", value_name = "COUNT")]
    pub max_subs: Option<u32>,
    /// Maximum messages per channel, 0 = unlimited [default: 1000000]
    #[arg(long = "max_msgs", visible_alias = "mm", value_name = "COUNT")]
    pub max_msgs: Option<u64>,
    /// Maximum bytes per channel, 0 = unlimited [default: 1024000000]
    #[arg(long = "max_bytes", visible_alias = "mb", value_name = "SIZE",
          value_parser = size::parse)]
    pub max_bytes: Option<u64>,
    /// Replace a duplicate durable subscription instead of rejecting it [default: false]
    #[arg(long = "replace_durable", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub replace_durable: Option<bool>,
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
    /// Both -SD and -SV; an explicit -SD or -SV wins over it
    #[arg(long = "SDV", value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub stan_debug_and_trace: Option<bool>,
    /// TOML config file (also STANCHION_CONFIG)
    #[arg(long = "config", visible_aliases = ["sc", "stan_config"], value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print help (also -help)
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// Print version (also -version)
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    version: Option<bool>,
}

impl Cli {
    /// The flags given, as the figment layer merged over env and file.
    pub fn layer(&self) -> FlagLayer {
        let mut dict = Dict::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                dict.insert(key.to_string(), value);
            }
        };
        let duration = |d: Option<Duration>| d.map(|d| Value::from(GoDuration(d).to_string()));
        put("nats_server", self.nats_server.clone().map(Value::from));
        put("cluster_id", self.cluster_id.clone().map(Value::from));
        put(
            "discover_prefix",
            self.discover_prefix.clone().map(Value::from),
        );
        put("store", self.store.map(|s| Value::from(s.as_str())));
        put("dir", self.dir.clone().map(Value::from));
        put("file_sync", self.file_sync.map(Value::from));
        put("cache_capacity", self.cache_capacity.map(Value::from));
        put("hb_interval", duration(self.hb_interval));
        put("hb_timeout", duration(self.hb_timeout));
        put("hb_fail_count", self.hb_fail_count.map(Value::from));
        put("max_channels", self.max_channels.map(Value::from));
        put("max_subs", self.max_subs.map(Value::from));
        put("max_msgs", self.max_msgs.map(Value::from));
        put("max_bytes", self.max_bytes.map(Value::from));
        put("replace_durable", self.replace_durable.map(Value::from));
        put("io_batch_size", self.io_batch_size.map(Value::from));
        let both = self.stan_debug_and_trace;
        put("stan_debug", self.stan_debug.or(both).map(Value::from));
        put("stan_trace", self.stan_trace.or(both).map(Value::from));
        FlagLayer(dict)
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn norm(args: &[&str]) -> Vec<String> {
        let argv = std::iter::once("stanchion")
            .chain(args.iter().copied())
            .map(OsString::from);
        normalize(argv)
            .unwrap()
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let argv = std::iter::once("stanchion")
            .chain(args.iter().copied())
            .map(OsString::from);
        Cli::try_parse_from(normalize(argv)?)
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
        for spec in FLAGS {
            assert!(
                Cli::command()
                    .get_arguments()
                    .any(|a| a.get_long() == Some(spec.long)),
                "{}",
                spec.long
            );
        }
    }

    #[test]
    fn every_spelling_becomes_the_canonical_long_form() {
        let cases: &[(&[&str], &[&str])] = &[
            (&["-cid", "x"], &["--cluster_id=x"]),
            (&["--cid", "x"], &["--cluster_id=x"]),
            (&["-cid=x"], &["--cluster_id=x"]),
            (&["--cid=x"], &["--cluster_id=x"]),
            (&["-cluster_id", "x"], &["--cluster_id=x"]),
            (&["--cluster_id=x"], &["--cluster_id=x"]),
            (&["-cid", "-weird"], &["--cluster_id=-weird"]),
            (&["-cid="], &["--cluster_id="]),
            (
                &["-ns", "nats://a:4222,nats://b:4222"],
                &["--nats_server=nats://a:4222,nats://b:4222"],
            ),
            (
                &["-st", "FILE", "-dir", "/d"],
                &["--store=FILE", "--dir=/d"],
            ),
            (
                &["-hbi", "1s", "-hbt=2s", "--hbf", "3"],
                &["--hb_interval=1s", "--hb_timeout=2s", "--hb_fail_count=3"],
            ),
            (
                &["-mc", "1", "-msu", "2", "-mm", "3", "-mb", "4KB"],
                &[
                    "--max_channels=1",
                    "--max_subs=2",
                    "--max_msgs=3",
                    "--max_bytes=4KB",
                ],
            ),
            (
                &["-SD", "-SV=false", "--SDV"],
                &["--stan_debug", "--stan_trace=false", "--SDV"],
            ),
            (
                &["-file_sync=false", "-replace_durable"],
                &["--file_sync=false", "--replace_durable"],
            ),
            (&["-sc", "a.toml"], &["--config=a.toml"]),
            (
                &["-stan_config=a.toml", "--config", "b"],
                &["--config=a.toml", "--config=b"],
            ),
            (
                &["-io_batch_size", "8", "-cache_capacity", "1g"],
                &["--io_batch_size=8", "--cache_capacity=1g"],
            ),
            (&["-h"], &["--help"]),
            (&["-help"], &["--help"]),
            (&["-v"], &["--version"]),
            (&["-version"], &["--version"]),
            // A bool never takes the next argument; Go stops at the non-flag.
            (
                &["-SD", "false", "-cid", "x"],
                &["--stan_debug", "false", "-cid", "x"],
            ),
            (&["--", "-cid", "x"], &["--", "-cid", "x"]),
            (&["-cid"], &["--cluster_id"]),
        ];
        for (input, expected) in cases {
            assert_eq!(norm(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn go_style_flags_parse() {
        for args in [
            &["-cid", "a"][..],
            &["--cid", "a"],
            &["-cid=a"],
            &["--cid=a"],
            &["-cluster_id", "a"],
            &["--cluster_id=a"],
            &["-cid", "b", "-cid", "a"],
        ] {
            assert_eq!(
                parse(args).unwrap().cluster_id.as_deref(),
                Some("a"),
                "{args:?}"
            );
        }
        let cli = parse(&["-SD", "-SV=false", "-file_sync=f", "-replace_durable=1"]).unwrap();
        assert_eq!(cli.stan_debug, Some(true));
        assert_eq!(cli.stan_trace, Some(false));
        assert_eq!(cli.file_sync, Some(false));
        assert_eq!(cli.replace_durable, Some(true));
        let cli = parse(&["-st", "MEMORY", "-mb", "1GB", "-hbi", "1m30s"]).unwrap();
        assert_eq!(cli.store, Some(StoreKind::Memory));
        assert_eq!(cli.max_bytes, Some(1 << 30));
        assert_eq!(cli.hb_interval, Some(Duration::from_secs(90)));
        assert_eq!(parse(&[]).unwrap().cluster_id, None);
    }

    #[test]
    fn sdv_sets_both_and_explicit_flags_win() {
        let layer = |args: &[&str]| {
            let dict = parse(args).unwrap().layer().0;
            (
                dict.get("stan_debug").cloned(),
                dict.get("stan_trace").cloned(),
            )
        };
        assert_eq!(layer(&["-SDV"]), (Some(true.into()), Some(true.into())));
        assert_eq!(
            layer(&["-SDV=false"]),
            (Some(false.into()), Some(false.into()))
        );
        assert_eq!(
            layer(&["-SDV", "-SV=false"]),
            (Some(true.into()), Some(false.into()))
        );
        assert_eq!(layer(&[]), (None, None));
    }

    #[test]
    fn bad_flags_are_rejected_naming_the_flag() {
        for (args, needle) in [
            (&["-hbi", "5x"][..], "--hb_interval"),
            (&["-mb", "5xb"], "--max_bytes"),
            (&["-st", "sql"], "--store"),
            (&["-SD=maybe"], "--stan_debug"),
            (&["-mc", "-1"], "--max_channels"),
            (&["-hbf", "many"], "--hb_fail_count"),
            (&["-ma", "1h"], "-ma"),
            (&["-SD", "false"], "false"),
            (&["-cid"], "--cluster_id"),
        ] {
            let err = parse(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn help_and_version_list_nss_spellings() {
        let err = parse(&["-help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = err.to_string();
        for spelling in [
            "--cid",
            "--ns",
            "--st",
            "--hbi",
            "--hbt",
            "--hbf",
            "--mc",
            "--msu",
            "--mm",
            "--mb",
            "--SD",
            "--SV",
            "--SDV",
            "--sc",
            "--stan_config",
            "--config",
            "--file_sync",
            "--replace_durable",
            "--io_batch_size",
            "--cache_capacity",
            "--discover_prefix",
            "-cid mycluster",
            "STANCHION_CLUSTER_ID",
        ] {
            assert!(help.contains(spelling), "{spelling} missing from:\n{help}");
        }
        let err = parse(&["-version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        assert!(err.to_string().contains(env!("CARGO_PKG_VERSION")));
    }
}
