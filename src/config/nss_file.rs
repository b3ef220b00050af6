//! NSS config files mapped onto stanchion's settings: NSS's keys and
//! aliases (`server/conf.go`) to stanchion's canonical names, with NSS's
//! type checks and error texts, as a figment [`Dict`].
//!
//! Owns which keys mean what; the syntax is [`super::nats_conf`]'s and the
//! durations [`super::duration`]'s. Keys NSS accepts but stanchion does not
//! implement, and keys nobody knows, are never errors: they come back in
//! [`NssFile::ignored`] for the loader to warn about.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Value as FigValue};

use super::duration::{self, DurationError};
use super::nats_conf::{self, ConfError, Entry, Kind, Map};
use super::size;

/// Why a key is in [`NssFile::ignored`]: not a setting anyone knows.
pub const UNKNOWN: &str = "unknown key";
/// Why a `file_options` key other than `sync` is ignored.
pub const FILE_TUNING: &str =
    "file-store tuning of the reference server; stanchion's store has its own";
const ONLY_VARIABLE: &str = "only defines a variable";
const NATS_SERVER_PART: &str = "outside the streaming block: nats-server's part of the file";
const NO_FT: &str = "fault-tolerance (FT) groups are not implemented";
const NO_PARTITIONING: &str = "partitioning is not implemented";
const NO_CLUSTERING: &str = "clustering is not implemented";
const NO_SQL: &str = "the SQL store is not implemented";
const NO_SYSLOG: &str = "syslog is not implemented";
const NO_ENCRYPTION: &str = "encryption at rest is not implemented";
const NO_HTTPS: &str = "HTTPS monitoring is not implemented";

/// An NSS config file's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NssFile {
    /// Settings under stanchion's canonical names (`cluster_id`,
    /// `max_msgs`, `tls_client_cert`, a nested `channels` dict, …), ready to
    /// be a figment layer.
    pub values: Dict,
    /// Keys accepted but not used, in file order, for startup warnings.
    pub ignored: Vec<Ignored>,
}

/// A key that was accepted but has no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// Dotted path as written, e.g. `streaming.file_options.compact`.
    pub key: String,
    /// The file it is in (an included file names itself).
    pub file: PathBuf,
    /// 1-based line of the key.
    pub line: usize,
    /// Why it has no effect.
    pub why: &'static str,
}

/// Why an NSS config file was rejected. The text starts with
/// `<path>:<line>:` whenever there is a line.
#[derive(Debug, thiserror::Error)]
pub enum NssFileError {
    /// The file is unreadable, or not valid NATS config syntax.
    #[error(transparent)]
    Syntax(#[from] ConfError),
    /// A value of the wrong type, in NSS's words:
    /// `parameter "max_msgs" value is expected to be int64, got string`.
    #[error("{}:{line}: parameter {key:?} value is expected to be {expected}, got {got}", file.display())]
    WrongType {
        /// The file.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// The Go kind NSS expects (`string`, `int64`, `bool`, …).
        expected: &'static str,
        /// The Go kind found.
        got: &'static str,
    },
    /// A duration Go's `time.ParseDuration` would not take.
    #[error("{}:{line}: parameter {key:?}: {source}", file.display())]
    Duration {
        /// The file.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// What is wrong with the text.
        source: DurationError,
    },
    /// A value of the right type that NSS rejects: a negative global limit,
    /// a bad channel pattern, a section that is not a map.
    #[error("{}:{line}: {msg}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// What is wrong, in NSS's words where it has them.
        msg: String,
    },
}

type Result<T> = std::result::Result<T, NssFileError>;

/// Reads the NSS config file at `path` (includes relative to its
/// directory).
///
/// # Errors
///
/// [`NssFileError::Syntax`] when it cannot be read or parsed, else as
/// [`from_str`].
pub fn read(path: &Path) -> Result<NssFile> {
    map_file(&nats_conf::parse_file(path)?)
}

/// Reads NSS config `text` as if from the file `path`.
///
/// # Errors
///
/// [`NssFileError::Syntax`] for bad syntax, [`NssFileError::WrongType`],
/// [`NssFileError::Duration`] and [`NssFileError::Invalid`] for values NSS
/// would reject; each names the file, line and key.
pub fn from_str(text: &str, path: &Path) -> Result<NssFile> {
    map_file(&nats_conf::parse_str(text, path)?)
}

fn map_file(root: &Map) -> Result<NssFile> {
    let mut reader = Reader {
        values: Dict::new(),
        ignored: Vec::new(),
    };
    let streaming = root
        .iter()
        .rev()
        .find(|e| e.key.eq_ignore_ascii_case("streaming"));
    match streaming {
        Some(block) => {
            let Kind::Map(inner) = &block.value.kind else {
                let msg = format!(
                    "expected streaming section to be a map/struct, got {}",
                    block.value.kind
                );
                return Err(invalid(block, msg));
            };
            for e in root {
                let name = e.key.to_ascii_lowercase();
                if name == "streaming" {
                    continue;
                }
                if !reader.monitoring(e, &name, e.key.clone())? {
                    let why = if e.used_as_variable {
                        ONLY_VARIABLE
                    } else {
                        NATS_SERVER_PART
                    };
                    reader.ignore(e, e.key.clone(), why);
                }
            }
            reader.streaming(inner, &format!("{}.", block.key))?;
        }
        None => reader.streaming(root, "")?,
    }
    Ok(NssFile {
        values: reader.values,
        ignored: reader.ignored,
    })
}

struct Reader {
    values: Dict,
    ignored: Vec<Ignored>,
}

impl Reader {
    fn put(&mut self, key: &str, value: impl Into<FigValue>) {
        self.values.insert(key.to_string(), value.into());
    }

    fn ignore(&mut self, e: &Entry, key: String, why: &'static str) {
        self.ignored.push(Ignored {
            key,
            file: e.value.file.to_path_buf(),
            line: e.line,
            why,
        });
    }

    fn unknown(&mut self, e: &Entry, key: String) {
        let why = if e.used_as_variable {
            ONLY_VARIABLE
        } else {
            UNKNOWN
        };
        self.ignore(e, key, why);
    }

    fn string(&mut self, e: &Entry, to: &str) -> Result<()> {
        let text = string(e)?.to_string();
        self.put(to, text);
        Ok(())
    }

    fn boolean(&mut self, e: &Entry, to: &str) -> Result<()> {
        let b = boolean(e)?;
        self.put(to, b);
        Ok(())
    }

    fn duration(&mut self, e: &Entry, to: &str) -> Result<()> {
        let text = go_duration(e, false)?.to_string();
        self.put(to, text);
        Ok(())
    }

    /// The streaming options in `map`; `prefix` is the dotted path to it.
    fn streaming(&mut self, map: &Map, prefix: &str) -> Result<()> {
        for e in map {
            let path = format!("{prefix}{}", e.key);
            let name = e.key.to_ascii_lowercase();
            match name.as_str() {
                "id" | "cid" | "cluster_id" => self.string(e, "cluster_id")?,
                "discover_prefix" => self.string(e, "discover_prefix")?,
                "st" | "store_type" | "store" | "storetype" => self.string(e, "store")?,
                "dir" | "datastore" => self.string(e, "dir")?,
                "sd" | "stan_debug" => self.boolean(e, "stan_debug")?,
                "sv" | "stan_trace" => self.boolean(e, "stan_trace")?,
                "ns" | "nats_server" | "nats_server_url" => self.nats_server(e)?,
                "credentials" => self.string(e, "credentials")?,
                "nkey_seed_file" => self.string(e, "nkey_seed_file")?,
                "username" | "user" => self.string(e, "user")?,
                "password" | "pass" => self.string(e, "pass")?,
                "token" => self.string(e, "auth")?,
                "secure" => self.boolean(e, "secure")?,
                "tls" => self.tls(e, &path)?,
                "hbi" | "hb_interval" | "server_to_client_hb_interval" => {
                    self.duration(e, "hb_interval")?
                }
                "hbt" | "hb_timeout" | "server_to_client_hb_timeout" => {
                    self.duration(e, "hb_timeout")?
                }
                "hbf" | "hb_fail_count" | "server_to_client_hb_fail_count" => {
                    let n = int(e)?;
                    self.put("hb_fail_count", n);
                }
                "replace_durable"
                | "replace_durables"
                | "replace_duplicate_durable"
                | "replace_duplicate_durables" => self.boolean(e, "replace_durable")?,
                "limits" | "store_limits" | "storelimits" => self.store_limits(e, &path)?,
                "file" | "file_options" => self.file_options(e, &path)?,
                "cache_capacity" => self.cache_capacity(e)?,
                "io_batch_size" => {
                    let n = int(e)?;
                    if n < 0 {
                        return Err(invalid(
                            e,
                            format!("io batch size cannot be negative ({n})"),
                        ));
                    }
                    self.put("io_batch_size", n);
                }
                "log_format" => self.string(e, "log_format")?,
                "connection_name" => self.string(e, "connection_name")?,
                "ft_group" | "ft_group_name" => {
                    string(e)?;
                    self.ignore(e, path, NO_FT);
                }
                "partitioning" => {
                    boolean(e)?;
                    self.ignore(e, path, NO_PARTITIONING);
                }
                "cluster" => {
                    check_cluster(e)?;
                    self.ignore(e, path, NO_CLUSTERING);
                }
                "sql" | "sql_options" => {
                    check_sql(e)?;
                    self.ignore(e, path, NO_SQL);
                }
                "syslog_name" => {
                    string(e)?;
                    self.ignore(e, path, NO_SYSLOG);
                }
                "encrypt" => {
                    boolean(e)?;
                    self.ignore(e, path, NO_ENCRYPTION);
                }
                "encryption_cipher" | "encryption_key" => {
                    string(e)?;
                    self.ignore(e, path, NO_ENCRYPTION);
                }
                _ => {
                    if !self.monitoring(e, &name, path.clone())? {
                        self.unknown(e, path);
                    }
                }
            }
        }
        Ok(())
    }

    /// nats-server's monitoring keys, which stanchion serves too; false if
    /// `name` is not one.
    fn monitoring(&mut self, e: &Entry, name: &str, path: String) -> Result<bool> {
        match name {
            "http_port" | "monitor_port" => {
                let port = int(e)?;
                self.put("http_port", port);
            }
            "http_host" => self.string(e, "http_host")?,
            "http" => match &e.value.kind {
                Kind::Integer(port) => self.put("http_port", *port),
                Kind::String(listen) => {
                    let (host, port) = host_port(e, listen)?;
                    self.put("http_host", host);
                    self.put("http_port", port);
                }
                _ => return Err(wrong_type(e, "string")),
            },
            "https" | "https_port" => self.ignore(e, path, NO_HTTPS),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `nats_server_url`: a URL or comma-separated URLs, or an array of
    /// them, which is joined with commas.
    fn nats_server(&mut self, e: &Entry) -> Result<()> {
        let urls = match &e.value.kind {
            Kind::String(url) => url.clone(),
            Kind::Array(items) => {
                let mut urls = Vec::with_capacity(items.len());
                for item in items {
                    match &item.kind {
                        Kind::String(url) => urls.push(url.as_str()),
                        other => {
                            return Err(NssFileError::WrongType {
                                file: item.file.to_path_buf(),
                                line: item.line,
                                key: e.key.clone(),
                                expected: "string",
                                got: other.type_name(),
                            })
                        }
                    }
                }
                urls.join(",")
            }
            _ => return Err(wrong_type(e, "string")),
        };
        self.put("nats_server", urls);
        Ok(())
    }

    /// `cache_capacity`: bytes, as a (size-suffixed) integer or a size
    /// string.
    fn cache_capacity(&mut self, e: &Entry) -> Result<()> {
        let bytes = match &e.value.kind {
            Kind::Integer(n) => u64::try_from(*n)
                .map_err(|_| invalid(e, format!("cache capacity cannot be negative ({n})")))?,
            Kind::String(text) => size::parse(text).map_err(|err| invalid(e, err.to_string()))?,
            _ => return Err(wrong_type(e, "int64")),
        };
        self.put("cache_capacity", bytes);
        Ok(())
    }

    fn tls(&mut self, e: &Entry, path: &str) -> Result<()> {
        for t in section(e, "TLS")? {
            let to = match t.key.to_ascii_lowercase().as_str() {
                "client_cert" => "tls_client_cert",
                "client_key" => "tls_client_key",
                "client_ca" | "client_cacert" => "tls_client_cacert",
                "server_name" | "server_hostname" => "tls_server_name",
                "skip_verify" | "insecure" => {
                    self.boolean(t, "tls_insecure")?;
                    continue;
                }
                _ => {
                    self.unknown(t, format!("{path}.{}", t.key));
                    continue;
                }
            };
            self.string(t, to)?;
        }
        Ok(())
    }

    /// The global limits, flat under their canonical names, and the
    /// per-channel ones as a `channels` dict.
    fn store_limits(&mut self, e: &Entry, path: &str) -> Result<()> {
        for l in section(e, "store limits")? {
            let name = l.key.to_ascii_lowercase();
            match name.as_str() {
                "mc" | "max_channels" | "maxchannels" => {
                    let n = int(l)?;
                    if n < 0 {
                        let msg = format!("max channels limit cannot be negative ({n})");
                        return Err(invalid(l, msg));
                    }
                    self.put("max_channels", n);
                }
                "channels" | "channels_limits" | "channelslimits" | "per_channel"
                | "per_channel_limits" => self.per_channel(l, &format!("{path}.{}", l.key))?,
                _ => match limit(l, &name, true)? {
                    Some((to, value)) => self.put(to, value),
                    None => self.unknown(l, format!("{path}.{}", l.key)),
                },
            }
        }
        Ok(())
    }

    /// `channels { pattern { limits } }`, as written: NSS's 0 ("unlimited
    /// for this limit") and absent ("inherit") are left to the caller.
    fn per_channel(&mut self, e: &Entry, path: &str) -> Result<()> {
        let mut channels = match self.values.remove("channels") {
            Some(FigValue::Dict(_, dict)) => dict,
            _ => Dict::new(),
        };
        for c in section(e, "per channel limits")? {
            let Kind::Map(limits) = &c.value.kind else {
                let msg = format!(
                    "expected channel limits to be a map/struct, got {}",
                    c.value.kind
                );
                return Err(invalid(c, msg));
            };
            if !is_channel_pattern(&c.key) {
                return Err(invalid(c, format!("invalid channel name {:?}", c.key)));
            }
            let mut dict = Dict::new();
            for l in limits {
                match limit(l, &l.key.to_ascii_lowercase(), false)? {
                    Some((to, value)) => {
                        dict.insert(to.to_string(), value);
                    }
                    None => self.unknown(l, format!("{path}.{}.{}", c.key, l.key)),
                }
            }
            channels.insert(c.key.clone(), FigValue::from(dict));
        }
        self.put("channels", channels);
        Ok(())
    }

    /// `file_options`: `sync` is stanchion's `file_sync`; the rest is the
    /// reference's file-store tuning, type-checked and ignored.
    fn file_options(&mut self, e: &Entry, path: &str) -> Result<()> {
        for f in section(e, "file options")? {
            let fpath = format!("{path}.{}", f.key);
            match f.key.to_ascii_lowercase().as_str() {
                "sync" | "do_sync" | "sync_on_flush" => {
                    self.boolean(f, "file_sync")?;
                    continue;
                }
                "compact" | "compact_enabled" | "crc" | "do_crc" => {
                    boolean(f)?;
                }
                "compact_frag"
                | "compact_fragmentation"
                | "compact_interval"
                | "compact_min_size"
                | "buffer_size"
                | "crc_poly"
                | "slice_max_msgs"
                | "slice_max_count"
                | "slice_msgs"
                | "slice_count"
                | "slice_max_bytes"
                | "slice_max_size"
                | "slice_bytes"
                | "slice_size"
                | "file_descriptors_limit"
                | "fds_limit"
                | "parallel_recovery"
                | "file_read_buffer_size"
                | "read_buffer_size" => {
                    int(f)?;
                }
                "slice_max_age" | "slice_age" | "slice_max_time" | "slice_time_limit"
                | "file_auto_sync" | "auto_sync" => {
                    go_duration(f, true)?;
                }
                "slice_archive_script" | "slice_archive" | "slice_script" => {
                    string(f)?;
                }
                _ => {
                    self.unknown(f, fpath);
                    continue;
                }
            }
            self.ignore(f, fpath, FILE_TUNING);
        }
        Ok(())
    }
}

/// A store limit under any of NSS's names: its canonical name and value,
/// or `None` if `name` is not a limit. Global limits may not be negative;
/// per-channel ones may (NSS reads that as unlimited).
fn limit(e: &Entry, name: &str, global: bool) -> Result<Option<(&'static str, FigValue)>> {
    let (to, what) = match name {
        "msu" | "max_subs" | "max_subscriptions" | "maxsubscriptions" => {
            ("max_subs", "max subscriptions")
        }
        "mm" | "max_msgs" | "maxmsgs" | "max_count" | "maxcount" => ("max_msgs", "max messages"),
        "mb" | "max_bytes" | "maxbytes" => ("max_bytes", "max bytes"),
        "ma" | "max_age" | "maxage" => ("max_age", "max age"),
        "mi" | "max_inactivity" | "maxinactivity" => ("max_inactivity", "max inactivity"),
        _ => return Ok(None),
    };
    let value = if matches!(to, "max_age" | "max_inactivity") {
        FigValue::from(go_duration(e, !global)?)
    } else {
        let n = int(e)?;
        if global && n < 0 {
            return Err(invalid(e, format!("{what} limit cannot be negative ({n})")));
        }
        FigValue::from(n)
    };
    Ok(Some((to, value)))
}

/// Type-checks the `cluster` section as NSS does; none of it is used.
fn check_cluster(e: &Entry) -> Result<()> {
    for c in section(e, "cluster")? {
        match c.key.to_ascii_lowercase().as_str() {
            "node_id" | "log_path" => {
                string(c)?;
            }
            "bootstrap"
            | "sync"
            | "proceed_on_restore_failure"
            | "allow_add_remove_node"
            | "raft_logging"
            | "bolt_free_list_sync"
            | "bolt_free_list_map"
            | "nodes_connections" => {
                boolean(c)?;
            }
            "log_cache_size" | "log_snapshots" | "trailing_logs" => {
                int(c)?;
            }
            "raft_heartbeat_timeout"
            | "raft_election_timeout"
            | "raft_lease_timeout"
            | "raft_commit_timeout" => {
                go_duration(c, true)?;
            }
            "peers" => {
                let Kind::Array(peers) = &c.value.kind else {
                    return Err(wrong_type(c, "slice"));
                };
                if let Some(peer) = peers.iter().find(|p| !matches!(p.kind, Kind::String(_))) {
                    return Err(NssFileError::WrongType {
                        file: peer.file.to_path_buf(),
                        line: peer.line,
                        key: c.key.clone(),
                        expected: "string",
                        got: peer.kind.type_name(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Type-checks the `sql_options` section as NSS does; none of it is used.
fn check_sql(e: &Entry) -> Result<()> {
    for s in section(e, "SQL options")? {
        match s.key.to_ascii_lowercase().as_str() {
            "driver" | "source" => {
                string(s)?;
            }
            "no_caching" => {
                boolean(s)?;
            }
            "max_open_conns" | "max_conns" | "bulk_insert_limit" => {
                int(s)?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn wrong_type(e: &Entry, expected: &'static str) -> NssFileError {
    NssFileError::WrongType {
        file: e.value.file.to_path_buf(),
        line: e.line,
        key: e.key.clone(),
        expected,
        got: e.value.kind.type_name(),
    }
}

fn invalid(e: &Entry, msg: String) -> NssFileError {
    NssFileError::Invalid {
        file: e.value.file.to_path_buf(),
        line: e.line,
        key: e.key.clone(),
        msg,
    }
}

fn string(e: &Entry) -> Result<&str> {
    match &e.value.kind {
        Kind::String(s) => Ok(s),
        _ => Err(wrong_type(e, "string")),
    }
}

fn boolean(e: &Entry) -> Result<bool> {
    match e.value.kind {
        Kind::Bool(b) => Ok(b),
        _ => Err(wrong_type(e, "bool")),
    }
}

fn int(e: &Entry) -> Result<i64> {
    match e.value.kind {
        Kind::Integer(n) => Ok(n),
        _ => Err(wrong_type(e, "int64")),
    }
}

/// A map section, or NSS's `expected <what> to be a map/struct` error.
fn section<'a>(e: &'a Entry, what: &str) -> Result<&'a Map> {
    match &e.value.kind {
        Kind::Map(map) => Ok(map),
        other => Err(invalid(
            e,
            format!("expected {what} to be a map/struct, got {other}"),
        )),
    }
}

/// A Go duration string, checked with Go's syntax. Stanchion's settings
/// take no negative durations; the reference's ignored ones may.
fn go_duration(e: &Entry, negative_ok: bool) -> Result<&str> {
    let text = string(e)?;
    match duration::parse(text) {
        Ok(_) => Ok(text),
        Err(DurationError::Negative(_)) if negative_ok => Ok(text),
        Err(source) => Err(NssFileError::Duration {
            file: e.value.file.to_path_buf(),
            line: e.line,
            key: e.key.clone(),
            source,
        }),
    }
}

/// `host:port` or `[v6]:port`, as nats-server reads its `http` key.
fn host_port(e: &Entry, listen: &str) -> Result<(String, i64)> {
    let bad = || invalid(e, format!("could not parse address string {listen:?}"));
    let (host, port) = match listen.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once("]:").ok_or_else(bad)?,
        None => listen.rsplit_once(':').ok_or_else(bad)?,
    };
    if host.contains(':') && !listen.starts_with('[') {
        return Err(bad());
    }
    let port = port
        .parse::<i64>()
        .map_err(|_| invalid(e, format!("could not parse port {port:?}")))?;
    Ok((host.to_string(), port))
}

/// NSS's channel pattern rule: dot-separated non-empty tokens, no `/`, and
/// wildcards only as whole tokens (`>` only last).
fn is_channel_pattern(name: &str) -> bool {
    let tokens: Vec<&str> = name.split('.').collect();
    !name.is_empty()
        && !name.contains('/')
        && tokens.iter().enumerate().all(|(n, token)| match *token {
            "" => false,
            ">" => n + 1 == tokens.len(),
            "*" => true,
            t => !t.contains(['*', '>']),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NssFile> {
        from_str(text, Path::new("stan.conf"))
    }

    fn ok(text: &str) -> NssFile {
        parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(file) => panic!("accepted: {file:?}\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn get<'a>(file: &'a NssFile, key: &str) -> &'a FigValue {
        file.values
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", file.values))
    }

    fn text(file: &NssFile, key: &str) -> String {
        get(file, key)
            .as_str()
            .unwrap_or_else(|| panic!("{key} not a string"))
            .to_string()
    }

    fn num(file: &NssFile, key: &str) -> i64 {
        let value = get(file, key);
        value
            .to_i128()
            .or_else(|| value.to_u128().and_then(|n| i128::try_from(n).ok()))
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or_else(|| panic!("{key} not an integer"))
    }

    fn flag(file: &NssFile, key: &str) -> bool {
        get(file, key)
            .to_bool()
            .unwrap_or_else(|| panic!("{key} not a bool"))
    }

    fn dict<'a>(value: &'a FigValue, what: &str) -> &'a Dict {
        value
            .as_dict()
            .unwrap_or_else(|| panic!("{what} not a dict: {value:?}"))
    }

    fn ignored(file: &NssFile) -> Vec<(&str, usize, &'static str)> {
        file.ignored
            .iter()
            .map(|i| (i.key.as_str(), i.line, i.why))
            .collect()
    }

    #[test]
    fn protocol_example() {
        let file = ok(r#"
streaming {
  cluster_id: my_cluster
  store: file
  dir: /data/stan
  hb_interval: "10s"
  store_limits {
    max_channels: 10
    max_msgs: 10000
    max_bytes: 10MB
    max_age: "1h"
    channels {
      "foo":       { max_msgs: 300, max_subs: 50 }
      "baz":       { max_msgs: 0 }            # 0 => unlimited for this limit only
      "foo.>":     { max_msgs: 400 }
      "foo.bar.>": { max_age: "2h" }          # inherits max_msgs 400 from foo.>
      "temp.>":    { max_inactivity: "1h" }
    }
  }
}
"#);
        assert_eq!(text(&file, "cluster_id"), "my_cluster");
        assert_eq!(text(&file, "store"), "file");
        assert_eq!(text(&file, "dir"), "/data/stan");
        assert_eq!(text(&file, "hb_interval"), "10s");
        assert_eq!(num(&file, "max_channels"), 10);
        assert_eq!(num(&file, "max_msgs"), 10000);
        assert_eq!(num(&file, "max_bytes"), 10 * 1024 * 1024);
        assert_eq!(text(&file, "max_age"), "1h");
        let channels = dict(get(&file, "channels"), "channels");
        let keys: Vec<_> = channels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["baz", "foo", "foo.>", "foo.bar.>", "temp.>"]);
        let foo = dict(&channels["foo"], "foo");
        assert_eq!(foo["max_msgs"].to_i128(), Some(300));
        assert_eq!(foo["max_subs"].to_i128(), Some(50));
        assert_eq!(dict(&channels["baz"], "baz")["max_msgs"].to_i128(), Some(0));
        assert_eq!(
            dict(&channels["foo.>"], "foo.>")["max_msgs"].to_i128(),
            Some(400)
        );
        let foobar = dict(&channels["foo.bar.>"], "foo.bar.>");
        assert_eq!(foobar["max_age"].as_str(), Some("2h"));
        assert_eq!(foobar.len(), 1, "no inheritance here");
        let temp = dict(&channels["temp.>"], "temp.>");
        assert_eq!(temp["max_inactivity"].as_str(), Some("1h"));
        assert_eq!(file.values.len(), 9);
        assert!(file.ignored.is_empty(), "{:?}", file.ignored);
    }

    /// Every key of the reference's own parse test (test/configs/
    /// test_parse.conf), written differently.
    const EVERY_KEY: &str = r#"
# Shared file: nats-server's part first.
port: 4222
http: "0.0.0.0:8333"
STREAMING {
  ID = "nss-cluster"; discover_prefix = "_STAN.disc"
  store: FILE, dir: "/var/lib/stan"
  sd: true, sv: false
  ns: "nats://127.0.0.1:4222"
  secure: yes
  hb_interval: "3s", hb_timeout: "2s", hb_fail_count: 7
  ft_group: "grp"
  partitioning: false
  syslog_name: "stan-svc"
  encrypt: false
  encryption_cipher: "CHACHA"
  encryption_key: "secret"
  credentials: "/etc/stan/user.creds"
  username: "stan"
  password: "pw"
  token: "tkn"
  nkey_seed_file: "/etc/stan/seed.nk"
  store_limits: {
    max_channels: 21, max_msgs: 22, max_bytes: 23
    max_age: "24s", max_subs: 25, max_inactivity: "26s"
    channels: {
      "orders.*": { max_msgs: 31, max_bytes: 32, max_age: "33s", max_subs: 34, max_inactivity: "35s" }
      "audit":    { max_msgs: 0, max_bytes: 0 }
    }
  }
  tls: {
    client_cert: "/tls/cert.pem"
    client_key: "/tls/key.pem"
    client_ca: "/tls/ca.pem"
    server_name: "nats.example"
    insecure: false
  }
  file: {
    compact: false
    compact_frag: 11
    compact_interval: 12
    compact_min_size: 13
    buffer_size: 14
    crc: false
    crc_poly: 15
    sync: false
    cache: false
    slice_max_msgs: 16
    slice_max_bytes: 17
    slice_max_age: "18s"
    slice_archive_script: "/bin/archive"
    fds_limit: 19
    parallel_recovery: 2
    read_buffer_size: 20
    auto_sync: "1m"
  }
  cluster: {
    node_id: "n1", bootstrap: false, peers: ["n2", "n3"], log_path: "/raft"
    log_cache_size: 64, log_snapshots: 3, trailing_logs: 128, sync: false
    proceed_on_restore_failure: false, raft_logging: false
    raft_heartbeat_timeout: "2s", raft_election_timeout: "2s"
    raft_lease_timeout: "1s", raft_commit_timeout: "100ms"
    allow_add_remove_node: false, bolt_free_list_sync: false
    bolt_free_list_map: false, nodes_connections: false
  }
  sql: {
    driver: "postgres", source: "dbname=stan", no_caching: false
    max_open_conns: 9, bulk_insert_limit: 500
  }
}
"#;

    #[test]
    fn every_reference_key() {
        let file = ok(EVERY_KEY);
        for (key, want) in [
            ("cluster_id", "nss-cluster"),
            ("discover_prefix", "_STAN.disc"),
            ("store", "FILE"),
            ("dir", "/var/lib/stan"),
            ("nats_server", "nats://127.0.0.1:4222"),
            ("hb_interval", "3s"),
            ("hb_timeout", "2s"),
            ("credentials", "/etc/stan/user.creds"),
            ("user", "stan"),
            ("pass", "pw"),
            ("auth", "tkn"),
            ("nkey_seed_file", "/etc/stan/seed.nk"),
            ("max_age", "24s"),
            ("max_inactivity", "26s"),
            ("tls_client_cert", "/tls/cert.pem"),
            ("tls_client_key", "/tls/key.pem"),
            ("tls_client_cacert", "/tls/ca.pem"),
            ("tls_server_name", "nats.example"),
            ("http_host", "0.0.0.0"),
        ] {
            assert_eq!(text(&file, key), want, "{key}");
        }
        for (key, want) in [
            ("hb_fail_count", 7),
            ("max_channels", 21),
            ("max_msgs", 22),
            ("max_bytes", 23),
            ("max_subs", 25),
            ("http_port", 8333),
        ] {
            assert_eq!(num(&file, key), want, "{key}");
        }
        for (key, want) in [
            ("stan_debug", true),
            ("stan_trace", false),
            ("secure", true),
            ("tls_insecure", false),
            ("file_sync", false),
        ] {
            assert_eq!(flag(&file, key), want, "{key}");
        }
        let channels = dict(get(&file, "channels"), "channels");
        let orders = dict(&channels["orders.*"], "orders.*");
        assert_eq!(orders["max_msgs"].to_i128(), Some(31));
        assert_eq!(orders["max_bytes"].to_i128(), Some(32));
        assert_eq!(orders["max_age"].as_str(), Some("33s"));
        assert_eq!(orders["max_subs"].to_i128(), Some(34));
        assert_eq!(orders["max_inactivity"].as_str(), Some("35s"));
        let audit = dict(&channels["audit"], "audit");
        assert_eq!(audit["max_msgs"].to_i128(), Some(0));
        assert_eq!(audit["max_bytes"].to_i128(), Some(0));
        assert_eq!(file.values.len(), 31);

        let tuning = |key: &'static str, line| (key, line, FILE_TUNING);
        assert_eq!(
            ignored(&file),
            [
                ("port", 3, NATS_SERVER_PART),
                ("STREAMING.ft_group", 12, NO_FT),
                ("STREAMING.partitioning", 13, NO_PARTITIONING),
                ("STREAMING.syslog_name", 14, NO_SYSLOG),
                ("STREAMING.encrypt", 15, NO_ENCRYPTION),
                ("STREAMING.encryption_cipher", 16, NO_ENCRYPTION),
                ("STREAMING.encryption_key", 17, NO_ENCRYPTION),
                tuning("STREAMING.file.compact", 39),
                tuning("STREAMING.file.compact_frag", 40),
                tuning("STREAMING.file.compact_interval", 41),
                tuning("STREAMING.file.compact_min_size", 42),
                tuning("STREAMING.file.buffer_size", 43),
                tuning("STREAMING.file.crc", 44),
                tuning("STREAMING.file.crc_poly", 45),
                ("STREAMING.file.cache", 47, UNKNOWN),
                tuning("STREAMING.file.slice_max_msgs", 48),
                tuning("STREAMING.file.slice_max_bytes", 49),
                tuning("STREAMING.file.slice_max_age", 50),
                tuning("STREAMING.file.slice_archive_script", 51),
                tuning("STREAMING.file.fds_limit", 52),
                tuning("STREAMING.file.parallel_recovery", 53),
                tuning("STREAMING.file.read_buffer_size", 54),
                tuning("STREAMING.file.auto_sync", 55),
                ("STREAMING.cluster", 57, NO_CLUSTERING),
                ("STREAMING.sql", 66, NO_SQL),
            ]
        );
        assert!(file
            .ignored
            .iter()
            .all(|i| i.file == Path::new("stan.conf")));
    }

    #[test]
    fn without_a_streaming_block_the_top_level_is_read() {
        let file = ok(
            "cid: top\nmaxmsgs_not_here: 1\nport: 4222\nhttp_port: 8222\n\
                       limits { MaxMsgs: 5, mb: 1kb, MM: 6 }\n",
        );
        assert_eq!(text(&file, "cluster_id"), "top");
        assert_eq!(num(&file, "http_port"), 8222);
        assert_eq!(num(&file, "max_msgs"), 6, "the later alias wins");
        assert_eq!(num(&file, "max_bytes"), 1024);
        assert_eq!(
            ignored(&file),
            [("maxmsgs_not_here", 2, UNKNOWN), ("port", 3, UNKNOWN)]
        );
    }

    #[test]
    fn a_streaming_block_hides_top_level_streaming_keys() {
        let file = ok("cluster_id: outside\nhttp_port: 8222\nmonitor_port: 8223\n\
                       streaming { cluster_id: inside }\n");
        assert_eq!(text(&file, "cluster_id"), "inside");
        assert_eq!(num(&file, "http_port"), 8223);
        assert_eq!(ignored(&file), [("cluster_id", 1, NATS_SERVER_PART)]);
        assert!(err("streaming: 5")
            .starts_with("stan.conf:1: expected streaming section to be a map/struct, got 5"));
    }

    #[test]
    fn monitoring_keys() {
        let file = ok("http: 8222\nstreaming { http_host: \"10.0.0.1\" }");
        assert_eq!(num(&file, "http_port"), 8222);
        assert_eq!(text(&file, "http_host"), "10.0.0.1");
        let file = ok("http: localhost:9000\nhttps_port: 8443\nstreaming {}");
        assert_eq!(text(&file, "http_host"), "localhost");
        assert_eq!(num(&file, "http_port"), 9000);
        assert_eq!(ignored(&file), [("https_port", 2, NO_HTTPS)]);
        let file = ok("http: \"[::1]:9001\"");
        assert_eq!(text(&file, "http_host"), "::1");
        assert_eq!(num(&file, "http_port"), 9001);
        // Inside the block, the block wins.
        let file = ok("http_port: 1\nstreaming { http_port: 2 }");
        assert_eq!(num(&file, "http_port"), 2);
        assert_eq!(
            err("http: \"nohost\""),
            "stan.conf:1: could not parse address string \"nohost\""
        );
        assert_eq!(
            err("\nhttp: \"h:x\""),
            "stan.conf:2: could not parse port \"x\""
        );
        assert!(err("http_port: \"80\"").contains("expected to be int64, got string"));
    }

    #[test]
    fn aliases_and_case() {
        let file = ok("Streaming {\n  CID: a\n  Store_Type: memory\n  DataStore: /d\n  SD: on\n  SV: off\n\
                       NATS_SERVER_URL: [\"nats://a:1\", \"nats://b:2\"]\n  USER: u\n  Pass: p\n  Token: t\n\
                       HBI: \"1s\"\n  server_to_client_hb_timeout: \"2s\"\n  HBF: 3\n  Replace_Durables: true\n\
                       TLS { Client_CACert: ca, Server_Hostname: h, Skip_Verify: true }\n\
                       StoreLimits { MC: 1, MSU: 2, MaxCount: 3, MaxBytes: 4, MA: \"5s\", MI: \"6s\"\n\
                       Per_Channel_Limits { \"x.>\": { MaxSubscriptions: 7 } } }\n\
                       File_Options { Do_Sync: true }\n}\n");
        assert_eq!(text(&file, "cluster_id"), "a");
        assert_eq!(text(&file, "store"), "memory");
        assert_eq!(text(&file, "dir"), "/d");
        assert!(flag(&file, "stan_debug"));
        assert!(!flag(&file, "stan_trace"));
        assert_eq!(text(&file, "nats_server"), "nats://a:1,nats://b:2");
        assert_eq!(text(&file, "user"), "u");
        assert_eq!(text(&file, "pass"), "p");
        assert_eq!(text(&file, "auth"), "t");
        assert_eq!(text(&file, "hb_interval"), "1s");
        assert_eq!(text(&file, "hb_timeout"), "2s");
        assert_eq!(num(&file, "hb_fail_count"), 3);
        assert!(flag(&file, "replace_durable"));
        assert_eq!(text(&file, "tls_client_cacert"), "ca");
        assert_eq!(text(&file, "tls_server_name"), "h");
        assert!(flag(&file, "tls_insecure"));
        assert_eq!(num(&file, "max_channels"), 1);
        assert_eq!(num(&file, "max_subs"), 2);
        assert_eq!(num(&file, "max_msgs"), 3);
        assert_eq!(num(&file, "max_bytes"), 4);
        assert_eq!(text(&file, "max_age"), "5s");
        assert_eq!(text(&file, "max_inactivity"), "6s");
        let channels = dict(get(&file, "channels"), "channels");
        assert_eq!(dict(&channels["x.>"], "x.>")["max_subs"].to_i128(), Some(7));
        assert!(flag(&file, "file_sync"));
        assert!(file.ignored.is_empty(), "{:?}", file.ignored);
    }

    #[test]
    fn stanchion_keys() {
        let file = ok("cache_capacity: 64MB\nio_batch_size: 512\nlog_format: json\nconnection_name: \"stan-1\"\n");
        assert_eq!(num(&file, "cache_capacity"), 64 * 1024 * 1024);
        assert_eq!(num(&file, "io_batch_size"), 512);
        assert_eq!(text(&file, "log_format"), "json");
        assert_eq!(text(&file, "connection_name"), "stan-1");
        assert_eq!(
            num(&ok("cache_capacity: \"1g\""), "cache_capacity"),
            1_000_000_000
        );
        assert!(err("cache_capacity: \"lots\"").starts_with("stan.conf:1: invalid size"));
        assert!(err("io_batch_size: -1").contains("cannot be negative"));
    }

    #[test]
    fn wrong_types_name_file_line_and_key() {
        let e = err("streaming {\n  store_limits {\n    max_msgs: \"many\"\n  }\n}\n");
        assert_eq!(
            e,
            "stan.conf:3: parameter \"max_msgs\" value is expected to be int64, got string"
        );
        assert_eq!(
            err("\n\nsd: 1"),
            "stan.conf:3: parameter \"sd\" value is expected to be bool, got int64"
        );
        assert_eq!(
            err("id: [a]"),
            "stan.conf:1: parameter \"id\" value is expected to be string, got slice"
        );
        assert_eq!(
            err("ns: [\"a\",\n 2]"),
            "stan.conf:2: parameter \"ns\" value is expected to be string, got int64"
        );
        assert_eq!(
            err("tls: yes"),
            "stan.conf:1: expected TLS to be a map/struct, got true"
        );
        assert_eq!(
            err("hbf: 1.5"),
            "stan.conf:1: parameter \"hbf\" value is expected to be int64, got float64"
        );
        assert!(err("file { compact_frag: x }")
            .contains("parameter \"compact_frag\" value is expected to be int64"));
        assert!(err("cluster { peers: \"a\" }").contains("expected to be slice, got string"));
        assert!(err("sql { no_caching: 1 }").contains("expected to be bool, got int64"));
        assert!(err("partitioning: \"yes\"").contains("expected to be bool, got string"));
    }

    #[test]
    fn durations_and_limits_are_checked() {
        assert_eq!(
            err("hb_interval: \"10x\""),
            "stan.conf:1: parameter \"hb_interval\": time: unknown unit \"x\" in duration \"10x\""
        );
        assert!(err("hb_timeout: 10").contains("expected to be string, got int64"));
        assert!(err("store_limits { max_age: \"1d\" }")
            .starts_with("stan.conf:1: parameter \"max_age\": time: unknown unit"));
        assert_eq!(
            err("store_limits {\n mc: -1 }"),
            "stan.conf:2: max channels limit cannot be negative (-1)"
        );
        assert!(
            err("limits { max_msgs: -5 }").contains("max messages limit cannot be negative (-5)")
        );
        assert!(err("limits { max_age: \"-1h\" }").contains("negative duration"));
        // Per channel, negatives are NSS's "unlimited" and stay as written.
        let file = ok("limits { channels { a: { max_msgs: -1, max_age: \"-1s\" } } }");
        let a = dict(&dict(get(&file, "channels"), "channels")["a"], "a").clone();
        assert_eq!(a["max_msgs"].to_i128(), Some(-1));
        assert_eq!(a["max_age"].as_str(), Some("-1s"));
        // The reference's ignored durations may be negative.
        assert!(ok("file { auto_sync: \"-1s\" }").values.is_empty());
        assert!(err("file { auto_sync: \"soon\" }").contains("parameter \"auto_sync\""));
    }

    #[test]
    fn channel_patterns() {
        for good in ["foo", "foo.bar", "foo.*", "*.bar", "foo.>", ">", "a.*.c"] {
            assert!(is_channel_pattern(good), "{good}");
        }
        for bad in [
            "",
            ".foo",
            "foo.",
            "foo..bar",
            "foo.>.bar",
            "fo*",
            "a/b",
            "f>",
        ] {
            assert!(!is_channel_pattern(bad), "{bad}");
        }
        assert_eq!(
            err("limits {\n channels {\n  \"foo..bar\": { max_msgs: 1 }\n }\n}"),
            "stan.conf:3: invalid channel name \"foo..bar\""
        );
        assert!(err("limits { channels { foo: 1 } }")
            .contains("expected channel limits to be a map/struct, got 1"));
        assert!(err("limits { channels: [] }")
            .contains("expected per channel limits to be a map/struct"));
        // Two aliases of `channels` add up.
        let file = ok("limits { channels { a: {mm: 1} }, per_channel { b: {mm: 2} } }");
        assert_eq!(dict(get(&file, "channels"), "channels").len(), 2);
    }

    #[test]
    fn ignored_keys() {
        let file = ok("streaming {\n  bogus: 1\n  file_options { compact: true, sync: true, zzz: 1 }\n  \
                       store_limits { max_zzz: 1, channels { a: { mc: 1 } } }\n  tls { cert_file: x }\n}\n");
        assert_eq!(
            ignored(&file),
            [
                ("streaming.bogus", 2, UNKNOWN),
                ("streaming.file_options.compact", 3, FILE_TUNING),
                ("streaming.file_options.zzz", 3, UNKNOWN),
                ("streaming.store_limits.max_zzz", 4, UNKNOWN),
                ("streaming.store_limits.channels.a.mc", 4, UNKNOWN),
                ("streaming.tls.cert_file", 5, UNKNOWN),
            ]
        );
        assert!(flag(&file, "file_sync"));
    }

    #[test]
    #[allow(clippy::result_large_err)] // `Jail`'s closure returns figment's error
    fn variables_are_resolved_and_their_keys_not_called_unknown() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STANCHION_NSS_FILE_TEST_DIR", "/from/env");
            let file = ok("PW: \"s3cret\"\nstreaming {\n  password: $PW\n  dir: $STANCHION_NSS_FILE_TEST_DIR\n  \
                           lim: 5\n  store_limits { max_msgs: $lim }\n}\n");
            assert_eq!(text(&file, "pass"), "s3cret");
            assert_eq!(text(&file, "dir"), "/from/env");
            assert_eq!(num(&file, "max_msgs"), 5);
            assert_eq!(
                ignored(&file),
                [
                    ("PW", 1, ONLY_VARIABLE),
                    ("streaming.lim", 5, ONLY_VARIABLE)
                ]
            );
            Ok(())
        });
        let e = err("streaming {\n  id: $STANCHION_NSS_FILE_TEST_UNSET\n}");
        assert_eq!(
            e,
            "stan.conf:2: variable reference for 'STANCHION_NSS_FILE_TEST_UNSET' can not be found"
        );
    }

    #[test]
    fn syntax_errors_pass_through_with_file_and_line() {
        assert_eq!(
            err("a: 1\nb: [1,,2]\n"),
            "stan.conf:2: Unexpected array value terminator ','."
        );
    }

    #[test]
    fn read_follows_includes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let main = dir.path().join("stan.conf");
        std::fs::write(&main, "streaming {\n  id: inc\n  include limits.conf\n}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(
            dir.path().join("limits.conf"),
            "store_limits { max_msgs: 9 }\nwhat: 1\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let file = read(&main).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text(&file, "cluster_id"), "inc");
        assert_eq!(num(&file, "max_msgs"), 9);
        assert_eq!(file.ignored.len(), 1);
        assert_eq!(file.ignored[0].file, dir.path().join("limits.conf"));
        assert_eq!(file.ignored[0].line, 2);

        std::fs::write(
            dir.path().join("limits.conf"),
            "store_limits { max_msgs: x }\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let e = read(&main).map(|_| ()).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}:1: parameter \"max_msgs\"",
                dir.path().join("limits.conf").display()
            )),
            "{e}"
        );

        let e = read(&dir.path().join("missing.conf"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.conf: error opening config file"), "{e}");
    }
}
