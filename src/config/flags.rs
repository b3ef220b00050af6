//! NSS's command-line flag spellings, read the way Go's `flag` package reads
//! them, rewritten into the canonical `--long[=value]` forms clap parses.
//!
//! Go accepts one or two dashes on every name (`-cluster_id x`, `--cid=x`)
//! and bools as bare flags or `-SD=false`; clap does not. So [`normalize`]
//! rewrites every known spelling through one table, [`FLAGS`]. Flags of the
//! reference server that stanchion has no use for ([`IGNORED`]) are consumed
//! here, with their value, and reported once each, so an NSS command line
//! starts unchanged. Pure: no env, no files.

use std::ffi::OsString;

/// Whether a flag consumes the next argument when no `=value` is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Takes {
    /// `-cid x` and `-cid=x`.
    Value,
    /// `-SD` alone, or `-SD=false`; never the next argument (Go's rule).
    Bool,
}

use Takes::{Bool, Value};

/// One flag: every spelling NSS accepts (without dashes) and the clap long
/// name they all become.
pub(super) struct FlagSpec {
    pub names: &'static [&'static str],
    pub long: &'static str,
    pub takes: Takes,
}

const fn flag(names: &'static [&'static str], long: &'static str, takes: Takes) -> FlagSpec {
    FlagSpec { names, long, takes }
}

/// Every flag stanchion uses, with NSS's spellings.
pub(super) const FLAGS: &[FlagSpec] = &[
    flag(&["ns", "nats_server"], "nats_server", Value),
    flag(&["cid", "cluster_id"], "cluster_id", Value),
    flag(&["discover_prefix"], "discover_prefix", Value),
    flag(&["st", "store"], "store", Value),
    flag(&["dir"], "dir", Value),
    flag(&["file_sync"], "file_sync", Bool),
    flag(&["cache_capacity"], "cache_capacity", Value),
    flag(&["hbi", "hb_interval"], "hb_interval", Value),
    flag(&["hbt", "hb_timeout"], "hb_timeout", Value),
    flag(&["hbf", "hb_fail_count"], "hb_fail_count", Value),
    flag(&["mc", "max_channels"], "max_channels", Value),
    flag(&["msu", "max_subs"], "max_subs", Value),
    flag(&["mm", "max_msgs"], "max_msgs", Value),
    flag(&["mb", "max_bytes"], "max_bytes", Value),
    flag(&["ma", "max_age"], "max_age", Value),
    flag(&["mi", "max_inactivity"], "max_inactivity", Value),
    flag(&["replace_durable"], "replace_durable", Bool),
    flag(&["encrypt"], "encrypt", Bool),
    flag(&["encryption_cipher"], "encryption_cipher", Value),
    flag(&["encryption_key"], "encryption_key", Value),
    flag(&["io_batch_size"], "io_batch_size", Value),
    flag(&["SD", "stan_debug"], "stan_debug", Bool),
    flag(&["SV", "stan_trace"], "stan_trace", Bool),
    flag(&["SDV"], "SDV", Bool),
    flag(&["log_format"], "log_format", Value),
    flag(&["user"], "user", Value),
    flag(&["pass"], "pass", Value),
    flag(&["auth"], "auth", Value),
    flag(&["nkey_seed_file"], "nkey_seed_file", Value),
    flag(&["credentials", "creds"], "credentials", Value),
    flag(&["secure"], "secure", Bool),
    flag(&["tls_client_cert"], "tls_client_cert", Value),
    flag(&["tls_client_key"], "tls_client_key", Value),
    flag(&["tls_client_cacert"], "tls_client_cacert", Value),
    flag(&["tls_server_name"], "tls_server_name", Value),
    flag(&["tls_insecure"], "tls_insecure", Bool),
    flag(&["connection_name"], "connection_name", Value),
    flag(&["ft_group"], "ft_group", Value),
    flag(&["partitioning"], "partitioning", Bool),
    flag(&["clustered"], "clustered", Bool),
    flag(&["cluster_node_id"], "cluster_node_id", Value),
    flag(&["cluster_peers"], "cluster_peers", Value),
    flag(&["cluster_log_path"], "cluster_log_path", Value),
    flag(&["cluster_bootstrap"], "cluster_bootstrap", Bool),
    flag(&["cluster_sync"], "cluster_sync", Bool),
    flag(
        &["cluster_allow_add_remove_node"],
        "cluster_allow_add_remove_node",
        Bool,
    ),
    flag(&["cluster_raft_logging"], "cluster_raft_logging", Bool),
    flag(&["cluster_trailing_logs"], "cluster_trailing_logs", Value),
    flag(
        &["cluster_raft_heartbeat_timeout"],
        "cluster_raft_heartbeat_timeout",
        Value,
    ),
    flag(
        &["cluster_raft_election_timeout"],
        "cluster_raft_election_timeout",
        Value,
    ),
    flag(&["a", "addr", "net", "http_host"], "http_host", Value),
    flag(&["m", "http_port"], "http_port", Value),
    flag(&["sc", "stan_config"], "stan_config", Value),
    flag(&["c", "config"], "nats_config", Value),
    flag(&["h", "help"], "help", Bool),
    flag(&["v", "version"], "version", Bool),
];

/// A flag of the reference server that stanchion accepts and does not use.
pub(super) struct Ignored {
    pub names: &'static [&'static str],
    pub takes: Takes,
    pub why: &'static str,
}

const fn ignored(names: &'static [&'static str], takes: Takes, why: &'static str) -> Ignored {
    Ignored { names, takes, why }
}

const EMBEDDED: &str =
    "an option of the reference server's embedded nats-server; stanchion joins the nats-server named by --nats_server";
const FILE_STORE: &str =
    "tuning of the reference server's file store; stanchion's store (sled and segment files) needs none";
const SQL_STORE: &str = "the SQL store is not implemented; use the file (sled) or memory store";
const NOT_YET: &str = "not implemented yet: stanchion runs without it";
const RAFT_STORAGE: &str =
    "tuning of the reference server's Raft storage; stanchion's Raft log (sled) caches on its own and keeps one snapshot";
const WINDOWS: &str = "only used by the reference server as a Windows service";

/// Every flag of the reference server (v0.23.2, embedded nats-server flags
/// included) that stanchion accepts without using, with why.
pub(super) const IGNORED: &[Ignored] = &[
    // The embedded nats-server's own flags.
    ignored(&["p", "port"], Value, EMBEDDED),
    ignored(&["n", "name", "server_name"], Value, EMBEDDED),
    ignored(&["client_advertise"], Value, EMBEDDED),
    ignored(
        &["D", "debug", "V", "trace", "VV", "DV", "DVV"],
        Bool,
        EMBEDDED,
    ),
    ignored(&["T", "logtime"], Bool, EMBEDDED),
    ignored(&["ms", "https_port"], Value, EMBEDDED),
    ignored(&["t"], Bool, EMBEDDED),
    ignored(&["sl", "signal"], Value, EMBEDDED),
    ignored(&["P", "pid", "ports_file_dir"], Value, EMBEDDED),
    ignored(&["l", "log", "log_size_limit"], Value, EMBEDDED),
    ignored(&["s", "syslog"], Bool, EMBEDDED),
    ignored(&["r", "remote_syslog"], Value, EMBEDDED),
    ignored(&["profile", "max_traced_msg_len"], Value, EMBEDDED),
    ignored(
        &[
            "routes",
            "cluster",
            "cluster_listen",
            "cluster_advertise",
            "cluster_name",
        ],
        Value,
        EMBEDDED,
    ),
    ignored(&["connect_retries"], Value, EMBEDDED),
    ignored(&["no_advertise", "help_tls"], Bool, EMBEDDED),
    ignored(&["tls", "tlsverify"], Bool, EMBEDDED),
    ignored(&["tlscert", "tlskey", "tlscacert"], Value, EMBEDDED),
    ignored(&["js", "jetstream"], Bool, EMBEDDED),
    ignored(&["sd", "store_dir"], Value, EMBEDDED),
    // The reference file store's tuning.
    ignored(
        &["file_compact_enabled", "file_crc", "file_truncate_bad_eof"],
        Bool,
        FILE_STORE,
    ),
    ignored(
        &[
            "file_compact_frag",
            "file_compact_interval",
            "file_compact_min_size",
            "file_buffer_size",
            "file_crc_poly",
            "file_slice_max_msgs",
            "file_slice_max_bytes",
            "file_slice_max_age",
            "file_slice_archive_script",
            "file_fds_limit",
            "file_parallel_recovery",
            "file_read_buffer_size",
            "file_auto_sync",
            "io_sleep_time",
        ],
        Value,
        FILE_STORE,
    ),
    // The SQL store.
    ignored(
        &[
            "sql_driver",
            "sql_source",
            "sql_max_open_conns",
            "sql_bulk_insert_limit",
        ],
        Value,
        SQL_STORE,
    ),
    ignored(&["sql_no_caching"], Bool, SQL_STORE),
    ignored(&["syslog_name"], Value, WINDOWS),
    // Features still to come.
    ignored(&["cluster_proceed_on_restore_failure"], Bool, NOT_YET),
    ignored(
        &["cluster_log_cache_size", "cluster_log_snapshots"],
        Value,
        RAFT_STORAGE,
    ),
];

fn lookup(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|spec| spec.names.contains(&name))
}

fn lookup_ignored(name: &str) -> Option<&'static Ignored> {
    IGNORED.iter().find(|spec| spec.names.contains(&name))
}

/// The command line rewritten for clap, and what it set that is ignored.
#[derive(Debug, Default)]
pub struct Normalized {
    /// Canonical arguments, program name first.
    pub args: Vec<OsString>,
    /// One line per ignored flag, naming it (as written) and why.
    pub ignored: Vec<String>,
}

/// Rewrites Go-style arguments into the canonical `--long[=value]` forms
/// clap parses, and takes out the ignored flags. The first item (the program
/// name) is kept as is. Like Go, flag parsing stops at `--` or the first
/// non-flag argument; the rest pass through unchanged, for clap to report.
/// As in nats-server, a first argument `version` or `help` (any case) is a
/// command word, read as `--version` or `--help`.
///
/// # Errors
///
/// A flag the reference server does not have either, with Go's text (`flag
/// provided but not defined: -x`): clap would otherwise read `-xy` as the
/// short flags `-x -y`.
pub fn normalize(args: impl IntoIterator<Item = OsString>) -> Result<Normalized, clap::Error> {
    let mut args = args.into_iter();
    let mut out = Normalized {
        args: args.next().into_iter().collect(),
        ignored: Vec::new(),
    };
    let mut first = true;
    while let Some(arg) = args.next() {
        if std::mem::take(&mut first) {
            if let Some(command) = command_word(&arg) {
                out.args.push(command.into());
                continue;
            }
        }
        let Some(text) = arg.to_str() else {
            out.args.push(arg);
            continue;
        };
        if text == "--" || text == "-" || !text.starts_with('-') {
            out.args.push(arg);
            out.args.extend(args);
            break;
        }
        let body = text.strip_prefix("--").unwrap_or(&text[1..]);
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        if let Some(spec) = lookup_ignored(name) {
            if inline.is_none() && spec.takes == Value {
                args.next();
            }
            let shown = text.split('=').next().unwrap_or(text);
            let line = format!("ignoring flag {shown}: {}", spec.why);
            if !out.ignored.contains(&line) {
                out.ignored.push(line);
            }
            continue;
        }
        let Some(spec) = lookup(name) else {
            return Err(super::cli::unknown_flag(text));
        };
        let mut canonical = OsString::from(format!("--{}", spec.long));
        let value: Option<OsString> = match (inline, spec.takes) {
            (Some(value), _) => Some(value.into()),
            (None, Value) => args.next(),
            (None, Bool) => None,
        };
        if let Some(value) = value {
            canonical.push("=");
            canonical.push(&value);
        }
        out.args.push(canonical);
    }
    Ok(out)
}

/// The flag a nats-server command word (`version`, `help`) stands for.
fn command_word(arg: &std::ffi::OsStr) -> Option<&'static str> {
    let word = arg.to_str()?;
    if word.eq_ignore_ascii_case("version") {
        Some("--version")
    } else if word.eq_ignore_ascii_case("help") {
        Some("--help")
    } else {
        None
    }
}

/// Go's `strconv.ParseBool`, which NSS's bool flags use.
pub(super) fn parse_go_bool(text: &str) -> Result<bool, String> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("invalid boolean value {text:?}")),
    }
}

/// Every ignored flag name with one dash, for `--help`.
pub(super) fn ignored_names() -> String {
    IGNORED
        .iter()
        .flat_map(|spec| spec.names.iter())
        .map(|name| format!("-{name}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> Normalized {
        let argv = std::iter::once("stanchion")
            .chain(args.iter().copied())
            .map(OsString::from);
        normalize(argv).unwrap()
    }

    fn canonical(args: &[&str]) -> Vec<String> {
        norm(args)
            .args
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn no_name_is_both_used_and_ignored_or_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        let used = FLAGS.iter().flat_map(|s| s.names.iter());
        let unused = IGNORED.iter().flat_map(|s| s.names.iter());
        for name in used.chain(unused) {
            assert!(seen.insert(*name), "-{name} listed twice");
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
            (&["-sc", "a.conf"], &["--stan_config=a.conf"]),
            (
                &["-stan_config=a.conf", "-c", "b"],
                &["--stan_config=a.conf", "--nats_config=b"],
            ),
            (
                &["-m", "8222", "-a", "127.0.0.1"],
                &["--http_port=8222", "--http_host=127.0.0.1"],
            ),
            (
                &["--user", "u", "-pass=p", "-auth", "t"],
                &["--user=u", "--pass=p", "--auth=t"],
            ),
            (
                &["-secure", "-tls_client_cert", "c.pem"],
                &["--secure", "--tls_client_cert=c.pem"],
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
            // nats-server's command words, only first.
            (&["version"], &["--version"]),
            (&["help"], &["--help"]),
            (&["Version", "-cid", "x"], &["--version", "--cluster_id=x"]),
            (&["-cid", "help"], &["--cluster_id=help"]),
            (&["versions"], &["versions"]),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical(input), *expected, "{input:?}");
        }
    }

    #[test]
    fn ignored_flags_are_consumed_with_their_values_and_reported_once() {
        let n = norm(&[
            "-p",
            "4222",
            "--file_buffer_size=2MB",
            "-file_compact_enabled",
            "-cid",
            "x",
            "-tls=false",
            "--routes",
            "nats://a:6222",
            "-cluster_proceed_on_restore_failure",
            "-cluster_log_snapshots",
            "3",
            "-D",
            "-p",
            "4223",
        ]);
        let args: Vec<_> = n.args.iter().skip(1).collect();
        assert_eq!(args, ["--cluster_id=x"]);
        let flags: Vec<&str> = n
            .ignored
            .iter()
            .map(|line| line.split(':').next().unwrap())
            .collect();
        assert_eq!(
            flags,
            [
                "ignoring flag -p",
                "ignoring flag --file_buffer_size",
                "ignoring flag -file_compact_enabled",
                "ignoring flag -tls",
                "ignoring flag --routes",
                "ignoring flag -cluster_proceed_on_restore_failure",
                "ignoring flag -cluster_log_snapshots",
                "ignoring flag -D",
            ]
        );
        assert!(n.ignored[0].contains("embedded nats-server"), "{n:?}");
        assert!(n.ignored[1].contains("file store"), "{n:?}");
    }

    #[test]
    fn ignored_bools_never_take_the_next_argument() {
        // `-tls` is a bool: `-cid` after it is a flag, not its value.
        assert_eq!(canonical(&["-tls", "-cid", "x"]), ["--cluster_id=x"]);
    }

    #[test]
    fn go_bools() {
        assert_eq!(parse_go_bool("T"), Ok(true));
        assert_eq!(parse_go_bool("0"), Ok(false));
        assert!(parse_go_bool("yes").is_err());
        for text in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_go_bool(text), Ok(true), "{text}");
        }
        for text in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_go_bool(text), Ok(false), "{text}");
        }
        for text in ["", "yes", "on", "tRUE", "2"] {
            assert!(parse_go_bool(text).is_err(), "{text}");
        }
    }
}
