//! stanchion's settings as a deployment file decides them: flags, the
//! config file (`-sc`, in NATS syntax), the image's and the container's
//! environment, resolved with stanchion's precedence, and NATS URLs.
//!
//! Tests of the resolution itself are here; what the files resolve to is
//! checked by the groups that read them.

use std::collections::BTreeMap;

/// stanchion's store directory when nothing sets one (README).
const DEFAULT_DIR: &str = "./data";

/// Where a resolved setting came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    Default,
    ConfigFile,
    ImageEnv,
    ContainerEnv,
    Flag,
}

#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub(crate) value: String,
    pub(crate) source: Source,
}

/// The settings the deployment files decide, resolved with stanchion's
/// precedence, plus the config file's own values for the shadowing check.
#[derive(Debug, Default)]
pub(crate) struct Settings {
    pub(crate) resolved: BTreeMap<&'static str, Setting>,
    /// The config file's values for the same keys, when there is one.
    pub(crate) from_file: BTreeMap<&'static str, String>,
}

impl Settings {
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.resolved.get(key).map(|s| s.value.as_str())
    }

    fn set(&mut self, key: &'static str, value: String, source: Source) {
        let replace = self.resolved.get(key).is_none_or(|s| s.source <= source);
        if replace {
            self.resolved.insert(key, Setting { value, source });
        }
    }

    pub(crate) fn http_port(&self) -> u16 {
        let port = self.get("http_port").expect("no monitoring port set");
        port.parse()
            .unwrap_or_else(|_| panic!("monitoring port {port:?} is not a port number"))
    }
}

/// A setting, its flag spellings (without dashes), its environment
/// variable and its keys in an NSS config file (dotted block paths).
struct Key {
    key: &'static str,
    flags: &'static [&'static str],
    env: &'static str,
    conf: &'static [&'static str],
}

const KEYS: &[Key] = &[
    Key {
        key: "http_port",
        flags: &["m", "http_port"],
        env: "STANCHION_HTTP_PORT",
        // The manifests pass it as -m; no stan.conf key is relied on.
        conf: &[],
    },
    Key {
        key: "dir",
        flags: &["dir"],
        env: "STANCHION_DIR",
        conf: &["streaming.dir"],
    },
    Key {
        key: "store",
        flags: &["st", "store"],
        env: "STANCHION_STORE",
        conf: &["streaming.store"],
    },
    Key {
        key: "nats_server",
        flags: &["ns", "nats_server"],
        env: "STANCHION_NATS_SERVER",
        conf: &["streaming.ns", "streaming.nats_server_url"],
    },
    Key {
        key: "cluster_id",
        flags: &["cid", "cluster_id"],
        env: "STANCHION_CLUSTER_ID",
        conf: &["streaming.id", "streaming.cluster_id"],
    },
];

/// The NSS config file's flag spellings (`-c` is nats-server's config file,
/// a different thing) and its environment variable.
pub(crate) const CONFIG_FLAGS: &[&str] = &["sc", "stan_config"];
pub(crate) const CONFIG_ENV: &str = "STANCHION_CONFIG";

/// Go-style flags (`-m 8222`, `--dir=/x`) as (name without dashes, value).
/// Every flag here takes a value, which is true of the ones the manifests use.
pub(crate) fn parse_flags(args: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if let Some(flag) = arg.strip_prefix('-') {
            let flag = flag.trim_start_matches('-');
            if let Some((name, value)) = flag.split_once('=') {
                out.push((name.to_string(), value.to_string()));
            } else if let Some(value) = args.get(i + 1) {
                out.push((flag.to_string(), value.clone()));
                i += 1;
            } else {
                out.push((flag.to_string(), String::new()));
            }
        }
        i += 1;
    }
    out
}

/// Resolves [`KEYS`] from, lowest first: defaults, the config file's text,
/// the image's `ENV`, the container's environment and its flags.
pub(crate) fn resolve(
    conf_text: Option<&str>,
    image_env: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    flags: &[(String, String)],
) -> Settings {
    let mut s = Settings::default();
    s.set("dir", DEFAULT_DIR.to_string(), Source::Default);
    let conf = conf_text.map(parse_nats_conf).unwrap_or_default();
    for k in KEYS {
        if let Some(v) = k.conf.iter().find_map(|c| conf.get(*c)) {
            s.from_file.insert(k.key, v.clone());
            s.set(k.key, v.clone(), Source::ConfigFile);
        }
        if let Some(v) = image_env.get(k.env) {
            s.set(k.key, v.clone(), Source::ImageEnv);
        }
        if let Some(v) = env.get(k.env) {
            s.set(k.key, v.clone(), Source::ContainerEnv);
        }
        for (name, value) in flags {
            if k.flags.contains(&name.as_str()) {
                s.set(k.key, value.clone(), Source::Flag);
            }
        }
    }
    s
}

/// The key/value lines of a NATS-syntax config file, keyed by block path
/// (`streaming.dir`, `streaming.store_limits.max_msgs`). Handles what the
/// manifests use: one `key: value`, `key = value` or `key value` per line,
/// `key {` / `key: {` opening a block, `}` closing one, `#` and `//`
/// comments, quoted values.
pub(crate) fn parse_nats_conf(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut path: Vec<String> = Vec::new();
    for raw in text.lines() {
        let line = strip_conf_comment(raw).trim().trim_end_matches(',').trim();
        if line.is_empty() {
            continue;
        }
        if line == "}" {
            path.pop();
            continue;
        }
        let key_end = line
            .find(|c: char| c == ':' || c == '=' || c.is_whitespace() || c == '{')
            .unwrap_or(line.len());
        let key = line[..key_end].to_string();
        let rest = line[key_end..]
            .trim_start_matches(|c: char| c == ':' || c == '=' || c.is_whitespace())
            .trim();
        if rest == "{" {
            path.push(key);
            continue;
        }
        let value = rest.trim_matches(|c| c == '"' || c == '\'').to_string();
        let full = path
            .iter()
            .cloned()
            .chain(std::iter::once(key))
            .collect::<Vec<_>>()
            .join(".");
        out.insert(full, value);
    }
    out
}

fn strip_conf_comment(line: &str) -> &str {
    let mut in_quote = None;
    for (i, c) in line.char_indices() {
        match (in_quote, c) {
            (None, '"' | '\'') => in_quote = Some(c),
            (Some(q), _) if q == c => in_quote = None,
            (None, '#') => return &line[..i],
            (None, '/') if line[i..].starts_with("//") => return &line[..i],
            _ => {}
        }
    }
    line
}

/// `nats://[user:pass@]host:port` -> (host, port); port 4222 if absent.
pub(crate) fn url_host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let rest = rest.rsplit_once('@').map(|(_, r)| r).unwrap_or(rest);
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse().unwrap_or_else(|_| panic!("port in {url}")),
        ),
        None => (rest.to_string(), 4222),
    }
}

#[test]
fn nats_conf_parser_reads_blocks_and_comments() {
    let conf = parse_nats_conf(
        "# top\nhttp: 8222\nstreaming {\n  id: \"x\" # c\n  dir = /d\n  store_limits: {\n    max_msgs: 5,\n  }\n  store file\n}\n",
    );
    assert_eq!(conf.get("http").map(String::as_str), Some("8222"));
    assert_eq!(conf.get("streaming.id").map(String::as_str), Some("x"));
    assert_eq!(conf.get("streaming.dir").map(String::as_str), Some("/d"));
    assert_eq!(
        conf.get("streaming.store_limits.max_msgs")
            .map(String::as_str),
        Some("5")
    );
    assert_eq!(
        conf.get("streaming.store").map(String::as_str),
        Some("file")
    );
}

#[test]
fn settings_follow_stanchion_precedence() {
    let image: BTreeMap<String, String> =
        [("STANCHION_DIR".to_string(), "/data".to_string())].into();
    let s = resolve(
        Some("streaming {\n dir: /conf\n}\n"),
        &image,
        &BTreeMap::new(),
        &[],
    );
    assert_eq!(s.get("dir"), Some("/data"), "env beats the config file");
    assert_eq!(s.from_file.get("dir").map(String::as_str), Some("/conf"));
    let flags = parse_flags(&["--dir=/flag".to_string(), "-m".to_string(), "9".to_string()]);
    let s = resolve(None, &image, &image, &flags);
    assert_eq!(s.get("dir"), Some("/flag"), "flags beat env");
    assert_eq!(s.get("http_port"), Some("9"));
    assert_eq!(
        resolve(None, &BTreeMap::new(), &BTreeMap::new(), &[]).get("dir"),
        Some(DEFAULT_DIR)
    );
}
