//! Deployment wiring: parses the Kubernetes manifests under
//! `deploy/kubernetes`, `deploy/docker-compose.yml`, `deploy/docker-run.md`
//! and the `Dockerfile`, and checks that they agree with each other and with
//! what stanchion reads: probe ports are declared container ports and the
//! monitoring port, probe paths, every `STANCHION_*` name is one stanchion
//! reads, the store directory is on the persistent volume, compose reaches
//! the nats service. No nats-server needed; schema validation is
//! `scripts/lint-deploy.sh`'s job.
//!
//! Settings are resolved as stanchion layers them: defaults < config file
//! (`-sc`, from a ConfigMap) < environment (the image's `ENV`, then the
//! container's) < flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

/// The `STANCHION_*` names stanchion reads (the configuration contract).
/// `env_names_appear_in_stanchion_help` checks the used ones against the
/// binary's own `--help` as well.
const KNOWN_ENV: &str = "\
    STANCHION_NATS_SERVER STANCHION_CLUSTER_ID STANCHION_DISCOVER_PREFIX STANCHION_STORE \
    STANCHION_DIR STANCHION_FILE_SYNC STANCHION_CACHE_CAPACITY STANCHION_HTTP_PORT \
    STANCHION_HTTP_HOST STANCHION_LOG_FORMAT STANCHION_USER STANCHION_PASS STANCHION_AUTH \
    STANCHION_CREDENTIALS STANCHION_NKEY_SEED_FILE STANCHION_TLS_CLIENT_CERT \
    STANCHION_TLS_CLIENT_KEY STANCHION_TLS_CLIENT_CACERT STANCHION_HB_INTERVAL \
    STANCHION_HB_TIMEOUT STANCHION_HB_FAIL_COUNT STANCHION_MAX_CHANNELS STANCHION_MAX_SUBS \
    STANCHION_MAX_MSGS STANCHION_MAX_BYTES STANCHION_REPLACE_DURABLE STANCHION_IO_BATCH_SIZE \
    STANCHION_STAN_DEBUG STANCHION_STAN_TRACE STANCHION_CONFIG STANCHION_SECURE \
    STANCHION_TLS_SERVER_NAME STANCHION_TLS_INSECURE STANCHION_CONNECTION_NAME";

/// stanchion's store directory when nothing sets one (README).
const DEFAULT_DIR: &str = "./data";

const SIDECAR: &str = "deploy/kubernetes/sidecar.yaml";
const DROPIN: &str = "deploy/kubernetes/stan-helm-dropin.yaml";
const COMPOSE: &str = "deploy/docker-compose.yml";
const DOCKER_RUN: &str = "deploy/docker-run.md";

// ------------------------------------------------------------------ files

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn load_yaml(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: invalid YAML: {e}"))
}

/// Every `.yaml`/`.yml` under `deploy/kubernetes`, as paths relative to the
/// repository root, sorted.
fn manifest_paths() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&root().join("deploy/kubernetes"), &mut found);
    let mut rel: Vec<String> = found
        .iter()
        .map(|p| {
            p.strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    rel.sort();
    assert!(!rel.is_empty(), "no manifests under deploy/kubernetes");
    rel
}

/// One Kubernetes manifest file: its documents (empty ones dropped).
struct Manifest {
    path: String,
    docs: Vec<Yaml>,
}

impl Manifest {
    fn load(path: &str) -> Manifest {
        let docs = load_yaml(path)
            .into_iter()
            .filter(|d| !matches!(d, Yaml::Null))
            .collect();
        Manifest {
            path: path.to_string(),
            docs,
        }
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Yaml> + 'a {
        self.docs
            .iter()
            .filter(move |d| d["kind"].as_str() == Some(kind))
    }

    fn workloads(&self) -> Vec<&Yaml> {
        self.docs
            .iter()
            .filter(|d| {
                matches!(
                    d["kind"].as_str(),
                    Some("StatefulSet" | "Deployment" | "DaemonSet")
                )
            })
            .collect()
    }

    fn config_map(&self, name: &str) -> Option<&Yaml> {
        self.of_kind("ConfigMap")
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
    }
}

fn all_manifests() -> Vec<Manifest> {
    manifest_paths().iter().map(|p| Manifest::load(p)).collect()
}

// ------------------------------------------------------------ YAML helpers

/// A scalar as text: YAML gives `8222` as an integer and `"8222"` as a string.
fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn seq(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

fn strings(y: &Yaml) -> Vec<String> {
    seq(y).iter().filter_map(scalar).collect()
}

fn port_number(y: &Yaml) -> Option<u16> {
    scalar(y)?.parse().ok()
}

// --------------------------------------------------------------- settings

/// Where a resolved setting came from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Default,
    ConfigFile,
    ImageEnv,
    ContainerEnv,
    Flag,
}

#[derive(Debug, Clone)]
struct Setting {
    value: String,
    source: Source,
}

/// The settings the deployment files decide, resolved with stanchion's
/// precedence, plus the config file's own values for the shadowing check.
#[derive(Debug, Default)]
struct Settings {
    resolved: BTreeMap<&'static str, Setting>,
    /// The config file's values for the same keys, when there is one.
    from_file: BTreeMap<&'static str, String>,
}

impl Settings {
    fn get(&self, key: &str) -> Option<&str> {
        self.resolved.get(key).map(|s| s.value.as_str())
    }

    fn set(&mut self, key: &'static str, value: String, source: Source) {
        let replace = self.resolved.get(key).is_none_or(|s| s.source <= source);
        if replace {
            self.resolved.insert(key, Setting { value, source });
        }
    }

    fn http_port(&self) -> u16 {
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
const CONFIG_FLAGS: &[&str] = &["sc", "stan_config"];
const CONFIG_ENV: &str = "STANCHION_CONFIG";

/// Go-style flags (`-m 8222`, `--dir=/x`) as (name without dashes, value).
/// Every flag here takes a value, which is true of the ones the manifests use.
fn parse_flags(args: &[String]) -> Vec<(String, String)> {
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
fn resolve(
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
fn parse_nats_conf(text: &str) -> BTreeMap<String, String> {
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

// ------------------------------------------------------------- Dockerfile

/// One Dockerfile instruction, continuation lines joined.
#[derive(Debug)]
struct Instr {
    keyword: String,
    args: String,
}

/// The Dockerfile's stages, each a list of instructions starting with FROM.
fn dockerfile_stages() -> Vec<Vec<Instr>> {
    let text = read("Dockerfile");
    let mut stages: Vec<Vec<Instr>> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        // Comment lines are dropped, inside a continuation too (as Docker does).
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let full = full.trim();
        if full.is_empty() {
            continue;
        }
        let (keyword, args) = full.split_once(char::is_whitespace).unwrap_or((full, ""));
        let instr = Instr {
            keyword: keyword.to_ascii_uppercase(),
            args: args.trim().to_string(),
        };
        if instr.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("an instruction before the first FROM")
            .push(instr);
    }
    assert!(!stages.is_empty(), "Dockerfile has no FROM");
    stages
}

/// The final (runtime) stage's instructions with a given keyword.
fn runtime<'a>(stages: &'a [Vec<Instr>], keyword: &'a str) -> Vec<&'a str> {
    stages
        .last()
        .unwrap()
        .iter()
        .filter(|i| i.keyword == keyword)
        .map(|i| i.args.as_str())
        .collect()
}

/// A JSON array of strings (exec form), or None for the shell form.
fn exec_form(args: &str) -> Option<Vec<String>> {
    if !args.trim_start().starts_with('[') {
        return None;
    }
    let docs = YamlLoader::load_from_str(args).ok()?;
    let items = docs.first()?.as_vec()?;
    items.iter().map(|i| i.as_str().map(String::from)).collect()
}

/// The runtime stage's `ENV` (`ENV A=1 B=2` and the legacy `ENV A 1`).
fn image_env() -> BTreeMap<String, String> {
    let stages = dockerfile_stages();
    let mut env = BTreeMap::new();
    for args in runtime(&stages, "ENV") {
        if !args.split_whitespace().next().unwrap_or("").contains('=') {
            let (k, v) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            env.insert(k.to_string(), v.trim().to_string());
            continue;
        }
        for pair in args.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair:?} is not KEY=VALUE"));
            env.insert(k.to_string(), v.trim_matches('"').to_string());
        }
    }
    env
}

/// The runtime stage's `USER`, as (uid, gid).
fn image_user() -> (String, Option<String>) {
    let stages = dockerfile_stages();
    let user = *runtime(&stages, "USER")
        .last()
        .expect("the runtime stage sets no USER (it would run as root)");
    match user.split_once(':') {
        Some((u, g)) => (u.to_string(), Some(g.to_string())),
        None => (user.to_string(), None),
    }
}

fn image_volumes() -> Vec<String> {
    let stages = dockerfile_stages();
    runtime(&stages, "VOLUME")
        .into_iter()
        .flat_map(|args| {
            exec_form(args).unwrap_or_else(|| args.split_whitespace().map(String::from).collect())
        })
        .collect()
}

#[test]
fn dockerfile_entrypoint_is_exec_form_stanchion() {
    let stages = dockerfile_stages();
    let entry = runtime(&stages, "ENTRYPOINT");
    let last = entry.last().expect("no ENTRYPOINT in the runtime stage");
    let argv = exec_form(last).unwrap_or_else(|| {
        panic!("ENTRYPOINT {last} is shell form: SIGTERM would go to /bin/sh, not stanchion")
    });
    assert_eq!(argv, ["/usr/local/bin/stanchion"], "ENTRYPOINT");
    assert_eq!(runtime(&stages, "STOPSIGNAL"), ["SIGTERM"], "STOPSIGNAL");
}

#[test]
fn dockerfile_user_is_numeric_and_not_root() {
    let (uid, gid) = image_user();
    assert!(uid != "0" && uid != "root", "USER {uid} is root");
    let uid: u32 = uid.parse().unwrap_or_else(|_| {
        panic!("USER {uid} is not numeric: Kubernetes' runAsNonRoot cannot verify a name")
    });
    assert_ne!(uid, 0);
    let gid = gid.expect("USER has no group (uid:gid): fsGroup in the manifests needs one");
    assert!(
        gid.parse::<u32>().is_ok(),
        "USER group {gid} is not numeric"
    );
}

#[test]
fn dockerfile_healthcheck_runs_stanchion_healthcheck() {
    let stages = dockerfile_stages();
    let hc = runtime(&stages, "HEALTHCHECK");
    let hc = hc.last().expect("no HEALTHCHECK in the runtime stage");
    let cmd = hc
        .split_once("CMD")
        .unwrap_or_else(|| panic!("HEALTHCHECK {hc} has no CMD"))
        .1;
    let argv = exec_form(cmd).unwrap_or_else(|| panic!("HEALTHCHECK CMD {cmd} is not exec form"));
    assert_eq!(
        argv,
        ["/usr/local/bin/stanchion", "healthcheck"],
        "HEALTHCHECK CMD"
    );
}

#[test]
fn dockerfile_volume_is_the_store_dir() {
    let env = image_env();
    let volumes = image_volumes();
    assert!(
        volumes.iter().any(|v| v == "/data"),
        "VOLUME /data missing: {volumes:?}"
    );
    let dir = env.get("STANCHION_DIR").expect("no ENV STANCHION_DIR");
    assert!(
        volumes.contains(dir),
        "ENV STANCHION_DIR={dir} is not a VOLUME ({volumes:?})"
    );
    assert_eq!(
        env.get("STANCHION_STORE").map(String::as_str),
        Some("file"),
        "ENV STANCHION_STORE"
    );
}

#[test]
fn dockerfile_exposes_the_monitoring_port() {
    let stages = dockerfile_stages();
    let port = image_env()
        .get("STANCHION_HTTP_PORT")
        .cloned()
        .expect("no ENV STANCHION_HTTP_PORT");
    let exposed: Vec<&str> = runtime(&stages, "EXPOSE")
        .into_iter()
        .flat_map(str::split_whitespace)
        .map(|p| p.trim_end_matches("/tcp"))
        .collect();
    assert!(
        exposed.contains(&port.as_str()),
        "EXPOSE {exposed:?} lacks STANCHION_HTTP_PORT={port}"
    );
}

#[test]
fn dockerfile_builder_is_pinned_and_locked() {
    let stages = dockerfile_stages();
    let from = &stages[0][0].args;
    let image = from.split_whitespace().next().unwrap();
    let tag = image.split_once(':').map(|(_, t)| t).unwrap_or("");
    let version = tag.split('-').next().unwrap_or("");
    assert!(
        image.starts_with("rust:") && version.split('.').count() == 3,
        "builder {image} is not an exact rust:X.Y.Z tag"
    );
    let builds: Vec<&Instr> = stages[0]
        .iter()
        .filter(|i| i.keyword == "RUN" && i.args.contains("cargo build"))
        .collect();
    assert!(
        builds.len() >= 2,
        "expected a dependency layer and a source build"
    );
    for b in builds {
        assert!(
            b.args.contains("--release") && b.args.contains("--locked"),
            "{} lacks --release --locked",
            b.args
        );
    }
    let final_from = &stages.last().unwrap()[0].args;
    assert!(
        final_from.contains(':') && !final_from.contains(":latest"),
        "runtime base {final_from} is not pinned"
    );
}

// ------------------------------------------------------------- Kubernetes

/// A container's environment: literal `value`s (valueFrom entries map to "").
fn container_env(c: &Yaml) -> BTreeMap<String, String> {
    seq(&c["env"])
        .iter()
        .map(|e| {
            let name = e["name"]
                .as_str()
                .expect("env entry without a name")
                .to_string();
            (name, scalar(&e["value"]).unwrap_or_default())
        })
        .collect()
}

fn is_stanchion_image(image: &str) -> bool {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split([':', '@']).next() == Some("stanchion")
}

fn pod_containers(pod: &Yaml) -> Vec<&Yaml> {
    seq(&pod["containers"])
        .iter()
        .chain(seq(&pod["initContainers"]))
        .collect()
}

fn stanchion_container<'a>(m: &Manifest, workload: &'a Yaml) -> &'a Yaml {
    let pod = &workload["spec"]["template"]["spec"];
    let found: Vec<&Yaml> = pod_containers(pod)
        .into_iter()
        .filter(|c| c["image"].as_str().is_some_and(is_stanchion_image))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{}: expected one stanchion container",
        m.path
    );
    found[0]
}

/// The one workload of a manifest that runs stanchion.
fn stanchion_workload(m: &Manifest) -> &Yaml {
    let found: Vec<&Yaml> = m
        .workloads()
        .into_iter()
        .filter(|w| {
            pod_containers(&w["spec"]["template"]["spec"])
                .iter()
                .any(|c| c["image"].as_str().is_some_and(is_stanchion_image))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{}: expected one workload running stanchion",
        m.path
    );
    found[0]
}

/// The text of the config file passed with `-sc` (or STANCHION_CONFIG),
/// read from the ConfigMap mounted over its directory. None without one.
fn k8s_config_file(
    m: &Manifest,
    pod: &Yaml,
    c: &Yaml,
    env: &BTreeMap<String, String>,
    flags: &[(String, String)],
) -> Option<String> {
    let file = flags
        .iter()
        .rev()
        .find(|(name, _)| CONFIG_FLAGS.contains(&name.as_str()))
        .map(|(_, v)| v)
        .or_else(|| env.get(CONFIG_ENV))?;
    let file = Path::new(file);
    let mount = seq(&c["volumeMounts"])
        .iter()
        .find(|vm| {
            vm["mountPath"]
                .as_str()
                .is_some_and(|p| file.starts_with(p))
        })
        .unwrap_or_else(|| panic!("{}: -sc {} is on no volume mount", m.path, file.display()));
    let volume_name = mount["name"].as_str().unwrap();
    let volume = seq(&pod["volumes"])
        .iter()
        .find(|v| v["name"].as_str() == Some(volume_name))
        .unwrap_or_else(|| panic!("{}: volume {volume_name} is not declared", m.path));
    let cm_name = volume["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: volume {volume_name} is not a ConfigMap", m.path));
    let cm = m
        .config_map(cm_name)
        .unwrap_or_else(|| panic!("{}: ConfigMap {cm_name} is not in the file", m.path));
    let key = file
        .strip_prefix(mount["mountPath"].as_str().unwrap())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let text = cm["data"][key.as_str()]
        .as_str()
        .unwrap_or_else(|| panic!("{}: ConfigMap {cm_name} has no key {key}", m.path));
    Some(text.to_string())
}

/// stanchion's resolved settings in a manifest, with the config file's text.
fn k8s_settings(m: &Manifest) -> (Settings, Option<String>) {
    let w = stanchion_workload(m);
    let pod = &w["spec"]["template"]["spec"];
    let c = stanchion_container(m, w);
    let mut argv = strings(&c["command"]);
    argv.extend(strings(&c["args"]));
    let flags = parse_flags(&argv);
    let env = container_env(c);
    let conf = k8s_config_file(m, pod, c, &env, &flags);
    let settings = resolve(conf.as_deref(), &image_env(), &env, &flags);
    (settings, conf)
}

/// Resolves a probe's or Service's port (a number or a port name) against a
/// container's declared ports.
fn resolve_container_port(c: &Yaml, port: &Yaml) -> Option<u16> {
    let ports = seq(&c["ports"]);
    match port {
        Yaml::String(name) => ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| port_number(&p["containerPort"])),
        other => {
            let n = port_number(other)?;
            ports
                .iter()
                .any(|p| port_number(&p["containerPort"]) == Some(n))
                .then_some(n)
        }
    }
}

fn probe_path(c: &Yaml, probe: &str) -> Option<String> {
    scalar(&c[probe]["httpGet"]["path"])
}

#[test]
fn k8s_manifests_parse_and_run_stanchion() {
    let paths = manifest_paths();
    for expected in [SIDECAR, DROPIN] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} missing: {paths:?}"
        );
    }
    for m in all_manifests() {
        assert!(!m.docs.is_empty(), "{}: no documents", m.path);
        for d in &m.docs {
            assert!(
                d["apiVersion"].as_str().is_some() && d["kind"].as_str().is_some(),
                "{}: a document without apiVersion/kind",
                m.path
            );
        }
        let w = stanchion_workload(&m);
        assert_eq!(
            w["kind"].as_str(),
            Some("StatefulSet"),
            "{}: stanchion's workload",
            m.path
        );
        assert_eq!(
            w["spec"]["replicas"].as_i64(),
            Some(1),
            "{}: one stanchion per cluster ID",
            m.path
        );
    }
}

#[test]
fn k8s_probe_ports_are_declared_container_ports() {
    for m in all_manifests() {
        for w in m.workloads() {
            for c in pod_containers(&w["spec"]["template"]["spec"]) {
                let name = c["name"].as_str().unwrap_or("?");
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    let port = &c[probe]["httpGet"]["port"];
                    if port.is_badvalue() {
                        continue;
                    }
                    assert!(
                        resolve_container_port(c, port).is_some(),
                        "{}: container {name}: {probe} port {port:?} is not one of its ports",
                        m.path
                    );
                }
            }
        }
    }
}

#[test]
fn k8s_stanchion_probes_hit_the_monitoring_port() {
    for m in all_manifests() {
        let w = stanchion_workload(&m);
        let c = stanchion_container(&m, w);
        let (settings, _) = k8s_settings(&m);
        let http_port = settings.http_port();
        let monitor = seq(&c["ports"])
            .iter()
            .find(|p| port_number(&p["containerPort"]) == Some(http_port));
        assert!(
            monitor.is_some(),
            "{}: the monitoring port {http_port} is not a container port",
            m.path
        );
        for probe in ["livenessProbe", "readinessProbe"] {
            let port = &c[probe]["httpGet"]["port"];
            assert!(
                !port.is_badvalue(),
                "{}: stanchion has no {probe} httpGet",
                m.path
            );
            assert_eq!(
                resolve_container_port(c, port),
                Some(http_port),
                "{}: {probe} port vs the monitoring port",
                m.path
            );
        }
    }
}

#[test]
fn sidecar_probes_are_healthz_and_readyz() {
    let m = Manifest::load(SIDECAR);
    let c = stanchion_container(&m, stanchion_workload(&m));
    assert_eq!(probe_path(c, "livenessProbe").as_deref(), Some("/healthz"));
    assert_eq!(probe_path(c, "readinessProbe").as_deref(), Some("/readyz"));
}

#[test]
fn sidecar_reaches_nats_on_the_pod_loopback() {
    let m = Manifest::load(SIDECAR);
    let w = stanchion_workload(&m);
    let (settings, _) = k8s_settings(&m);
    assert_eq!(settings.get("nats_server"), Some("nats://127.0.0.1:4222"));
    let nats = pod_containers(&w["spec"]["template"]["spec"])
        .into_iter()
        .find(|c| c["image"].as_str().is_some_and(|i| i.starts_with("nats:")))
        .expect("sidecar pod has no nats container");
    assert!(
        seq(&nats["ports"])
            .iter()
            .any(|p| port_number(&p["containerPort"]) == Some(4222)),
        "the nats container does not declare 4222"
    );
    // Both share the pod's network namespace: no two listeners on one port.
    let mut seen = BTreeMap::new();
    for c in pod_containers(&w["spec"]["template"]["spec"]) {
        for p in seq(&c["ports"]) {
            let n = port_number(&p["containerPort"]).unwrap();
            let name = c["name"].as_str().unwrap().to_string();
            if let Some(other) = seen.insert(n, name.clone()) {
                panic!("port {n} is declared by both {other} and {name}");
            }
        }
    }
    assert_eq!(
        seen.get(&settings.http_port()).map(String::as_str),
        Some("stanchion")
    );
}

#[test]
fn dropin_follows_the_stan_chart() {
    let m = Manifest::load(DROPIN);
    let w = stanchion_workload(&m);
    let c = stanchion_container(&m, w);
    let args = strings(&c["args"]);
    let has = |pair: [&str; 2]| args.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1]);
    assert!(
        has(["-sc", "/etc/stan-config/stan.conf"]),
        "args {args:?} lack -sc /etc/stan-config/stan.conf"
    );
    assert!(has(["-m", "8222"]), "args {args:?} lack -m 8222");
    let ns = args
        .windows(2)
        .find(|w| w[0] == "-ns")
        .map(|w| w[1].clone())
        .unwrap_or_else(|| panic!("args {args:?} lack -ns"));
    assert!(ns.starts_with("nats://"), "-ns {ns}");

    let monitor = seq(&c["ports"])
        .iter()
        .find(|p| p["name"].as_str() == Some("monitor"))
        .expect("no port named monitor");
    assert_eq!(port_number(&monitor["containerPort"]), Some(8222));
    assert_eq!(
        probe_path(c, "readinessProbe").as_deref(),
        Some("/streaming/serverz")
    );
    assert_eq!(
        resolve_container_port(c, &c["readinessProbe"]["httpGet"]["port"]),
        Some(8222)
    );
    assert!(
        probe_path(c, "livenessProbe").is_some(),
        "no liveness probe"
    );

    let (_, conf) = k8s_settings(&m);
    let conf = parse_nats_conf(&conf.expect("no -sc config file"));
    for key in [
        "streaming.id",
        "streaming.store",
        "streaming.dir",
        "streaming.hb_interval",
        "streaming.hb_timeout",
        "streaming.hb_fail_count",
        "streaming.store_limits.max_msgs",
    ] {
        assert!(conf.contains_key(key), "stan.conf lacks {key}: {conf:?}");
    }
    assert_eq!(
        conf.get("streaming.store").map(String::as_str),
        Some("file")
    );
}

#[test]
fn k8s_store_dir_is_on_the_volume_claim() {
    for m in all_manifests() {
        let w = stanchion_workload(&m);
        let c = stanchion_container(&m, w);
        let (settings, _) = k8s_settings(&m);
        let store = settings.get("store").unwrap_or("file").to_ascii_lowercase();
        assert!(
            store == "file" || store == "sled",
            "{}: store {store}: nothing persists",
            m.path
        );
        let dir = settings.get("dir").unwrap();
        let claims: Vec<&str> = seq(&w["spec"]["volumeClaimTemplates"])
            .iter()
            .filter_map(|t| t["metadata"]["name"].as_str())
            .collect();
        let mount = seq(&c["volumeMounts"])
            .iter()
            .filter(|vm| vm["mountPath"].as_str().is_some_and(|p| is_within(dir, p)))
            .max_by_key(|vm| vm["mountPath"].as_str().unwrap().len())
            .unwrap_or_else(|| panic!("{}: store dir {dir} is on no volume mount", m.path));
        let name = mount["name"].as_str().unwrap();
        assert!(
            claims.contains(&name),
            "{}: store dir {dir} is on volume {name}, not a volumeClaimTemplate ({claims:?})",
            m.path
        );
    }
}

#[test]
fn k8s_config_file_is_not_shadowed() {
    // The image's ENV beats a config file: a manifest that sets dir, store,
    // the NATS URL or the cluster ID in stan.conf must end up with those
    // values, not the image's.
    for m in all_manifests() {
        let (settings, _) = k8s_settings(&m);
        for (key, file_value) in &settings.from_file {
            let resolved = &settings.resolved[key];
            assert_eq!(
                &resolved.value, file_value,
                "{}: stan.conf sets {key}={file_value} but {:?} wins with {}",
                m.path, resolved.source, resolved.value
            );
        }
    }
}

#[test]
fn k8s_pod_runs_as_the_image_user() {
    let (uid, gid) = image_user();
    for m in all_manifests() {
        let w = stanchion_workload(&m);
        let pod = &w["spec"]["template"]["spec"];
        let sc = &pod["securityContext"];
        assert_eq!(
            sc["runAsNonRoot"].as_bool(),
            Some(true),
            "{}: runAsNonRoot",
            m.path
        );
        assert_eq!(
            scalar(&sc["runAsUser"]),
            Some(uid.clone()),
            "{}: runAsUser vs the image's USER",
            m.path
        );
        assert_eq!(
            scalar(&sc["fsGroup"]),
            gid.clone(),
            "{}: fsGroup vs the image's group",
            m.path
        );
        let grace = pod["terminationGracePeriodSeconds"]
            .as_i64()
            .unwrap_or_else(|| panic!("{}: no terminationGracePeriodSeconds", m.path));
        assert!(
            grace > 10,
            "{}: grace {grace}s does not cover stanchion's 10 s shutdown",
            m.path
        );
        let c = stanchion_container(&m, w);
        for kind in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                assert!(
                    scalar(&c["resources"][kind][res]).is_some(),
                    "{}: stanchion has no resources.{kind}.{res}",
                    m.path
                );
            }
        }
    }
}

#[test]
fn k8s_services_select_the_pod_and_target_its_ports() {
    for m in all_manifests() {
        let w = stanchion_workload(&m);
        let pod = &w["spec"]["template"]["spec"];
        let labels = w["spec"]["template"]["metadata"]["labels"]
            .as_hash()
            .expect("pod template without labels");
        let services: Vec<&Yaml> = m.of_kind("Service").collect();
        assert!(!services.is_empty(), "{}: no Service", m.path);
        for svc in &services {
            let name = svc["metadata"]["name"].as_str().unwrap();
            let selector = svc["spec"]["selector"]
                .as_hash()
                .expect("Service without a selector");
            for (k, v) in selector {
                assert_eq!(
                    labels.get(k),
                    Some(v),
                    "{}: Service {name} selects {k:?}={v:?}",
                    m.path
                );
            }
            for p in seq(&svc["spec"]["ports"]) {
                let target = if p["targetPort"].is_badvalue() {
                    &p["port"]
                } else {
                    &p["targetPort"]
                };
                let resolved = pod_containers(pod)
                    .into_iter()
                    .find_map(|c| resolve_container_port(c, target));
                assert!(
                    resolved.is_some(),
                    "{}: Service {name} port {target:?} is no container port",
                    m.path
                );
            }
        }
        let governing = w["spec"]["serviceName"]
            .as_str()
            .expect("StatefulSet without serviceName");
        let headless = services
            .iter()
            .find(|s| s["metadata"]["name"].as_str() == Some(governing))
            .unwrap_or_else(|| panic!("{}: serviceName {governing} is not in the file", m.path));
        assert_eq!(
            headless["spec"]["clusterIP"].as_str(),
            Some("None"),
            "{}: {governing} is not headless",
            m.path
        );
    }
}

// ---------------------------------------------------------------- compose

fn compose() -> Yaml {
    load_yaml(COMPOSE)
        .into_iter()
        .next()
        .expect("empty compose file")
}

fn compose_env(svc: &Yaml) -> BTreeMap<String, String> {
    match &svc["environment"] {
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| (scalar(k).unwrap(), scalar(v).unwrap_or_default()))
            .collect(),
        Yaml::Array(a) => a
            .iter()
            .filter_map(|e| e.as_str())
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn compose_stanchion(doc: &Yaml) -> (String, &Yaml) {
    let services = doc["services"]
        .as_hash()
        .expect("compose file without services");
    let found: Vec<(String, &Yaml)> = services
        .iter()
        .filter(|(_, s)| {
            s["image"].as_str().is_some_and(is_stanchion_image) || !s["build"].is_badvalue()
        })
        .map(|(k, s)| (k.as_str().unwrap().to_string(), s))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one stanchion service in {COMPOSE}"
    );
    found.into_iter().next().unwrap()
}

/// `nats://[user:pass@]host:port` -> (host, port); port 4222 if absent.
fn url_host_port(url: &str) -> (String, u16) {
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
fn compose_stanchion_reaches_the_nats_service() {
    let doc = compose();
    let (name, svc) = compose_stanchion(&doc);
    let settings = resolve(
        None,
        &image_env(),
        &compose_env(svc),
        &parse_flags(&strings(&svc["command"])),
    );
    let urls = settings
        .get("nats_server")
        .expect("STANCHION_NATS_SERVER not set");
    for url in urls.split(',') {
        let (host, port) = url_host_port(url.trim());
        let nats = &doc["services"][host.as_str()];
        assert!(
            !nats.is_badvalue(),
            "{name}: {url} names no compose service"
        );
        let nats_flags = parse_flags(&strings(&nats["command"]));
        let nats_port = nats_flags
            .iter()
            .find(|(f, _)| f == "p" || f == "port")
            .map(|(_, v)| v.parse::<u16>().unwrap())
            .unwrap_or(4222);
        assert_eq!(port, nats_port, "{url} vs the {host} service's client port");
        let depends = &svc["depends_on"];
        let listed = match depends {
            Yaml::Hash(h) => h.contains_key(&Yaml::String(host.clone())),
            Yaml::Array(_) => strings(depends).contains(&host),
            _ => false,
        };
        assert!(listed, "{name} does not depend_on {host}");
        if let Yaml::Hash(_) = depends {
            assert_eq!(
                depends[host.as_str()]["condition"].as_str(),
                Some("service_healthy"),
                "{name} should wait for {host} to be healthy"
            );
            assert!(
                !nats["healthcheck"]["test"].is_badvalue(),
                "{host} has no healthcheck"
            );
        }
    }
}

#[test]
fn compose_volume_port_and_healthcheck() {
    let doc = compose();
    let (name, svc) = compose_stanchion(&doc);
    let settings = resolve(
        None,
        &image_env(),
        &compose_env(svc),
        &parse_flags(&strings(&svc["command"])),
    );
    let dir = settings.get("dir").unwrap();
    let volumes = strings(&svc["volumes"]);
    let mount = volumes
        .iter()
        .find(|v| v.split(':').nth(1).is_some_and(|target| target == dir))
        .unwrap_or_else(|| panic!("{name}: no volume on the store dir {dir}: {volumes:?}"));
    let source = mount.split(':').next().unwrap();
    assert!(
        !doc["volumes"][source].is_badvalue(),
        "{name}: volume {source} is not declared under top-level volumes"
    );
    let port = settings.http_port();
    let published = strings(&svc["ports"]).iter().any(|p| {
        p.rsplit(':').next().map(|c| c.trim_end_matches("/tcp")) == Some(&port.to_string())
    });
    assert!(
        published,
        "{name}: the monitoring port {port} is not published"
    );
    let test = strings(&svc["healthcheck"]["test"]);
    assert!(
        test.windows(2)
            .any(|w| w[0].ends_with("stanchion") && w[1] == "healthcheck"),
        "{name}: healthcheck {test:?} does not run `stanchion healthcheck`"
    );
    assert!(
        !svc["stop_grace_period"].is_badvalue(),
        "{name}: no stop_grace_period"
    );
}

// ------------------------------------------------------------- docker run

/// The `docker ...` commands in a Markdown file's code blocks, continuation
/// lines joined and split into words.
fn docker_commands(rel: &str) -> Vec<Vec<String>> {
    let text = read(rel);
    let mut out = Vec::new();
    let mut in_code = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let line = line.split(" #").next().unwrap().trim();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        for cmd in std::mem::take(&mut pending).split("&&") {
            let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
            if words.first().map(String::as_str) == Some("docker") {
                out.push(words);
            }
        }
    }
    out
}

/// `docker run` words -> (options as (flag, value), image, args).
fn docker_run_parts(words: &[String]) -> (Vec<(String, String)>, String, Vec<String>) {
    const NO_VALUE: &[&str] = &["-d", "--detach", "--rm", "-i", "-t", "-it", "--init"];
    let mut opts = Vec::new();
    let mut i = 2;
    while i < words.len() && words[i].starts_with('-') {
        let w = &words[i];
        if NO_VALUE.contains(&w.as_str()) {
            opts.push((w.clone(), String::new()));
        } else if let Some((f, v)) = w.split_once('=').filter(|_| w.starts_with("--")) {
            opts.push((f.to_string(), v.to_string()));
        } else {
            opts.push((w.clone(), words.get(i + 1).cloned().unwrap_or_default()));
            i += 1;
        }
        i += 1;
    }
    let image = words.get(i).cloned().unwrap_or_default();
    (opts, image, words.get(i + 1..).unwrap_or(&[]).to_vec())
}

#[test]
fn docker_run_wires_network_volume_port_and_nats() {
    let cmds = docker_commands(DOCKER_RUN);
    let network = cmds
        .iter()
        .find(|c| c.get(1..3) == Some(&["network".to_string(), "create".to_string()]))
        .and_then(|c| c.get(3).cloned())
        .expect("no `docker network create`");
    let runs: Vec<_> = cmds
        .iter()
        .filter(|c| c.get(1).map(String::as_str) == Some("run"))
        .map(|c| docker_run_parts(c))
        .collect();
    let opt = |opts: &[(String, String)], f: &str| -> Vec<String> {
        opts.iter()
            .filter(|(k, _)| k == f)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (nats_opts, _, _) = runs
        .iter()
        .find(|(_, image, _)| image.starts_with("nats:"))
        .expect("no `docker run` of nats");
    assert_eq!(
        opt(nats_opts, "--network"),
        std::slice::from_ref(&network),
        "nats container's network"
    );
    let nats_name = opt(nats_opts, "--name")
        .pop()
        .expect("nats container has no --name");

    let stanchion_runs: Vec<_> = runs
        .iter()
        .filter(|(_, image, _)| is_stanchion_image(image))
        .collect();
    assert!(!stanchion_runs.is_empty(), "no `docker run` of stanchion");
    let (opts, _, args) = stanchion_runs[0];
    assert_eq!(
        opt(opts, "--network"),
        [network],
        "stanchion container's network"
    );
    let env: BTreeMap<String, String> = opt(opts, "-e")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let settings = resolve(None, &image_env(), &env, &parse_flags(args));
    let (host, port) = url_host_port(
        settings
            .get("nats_server")
            .expect("no STANCHION_NATS_SERVER"),
    );
    assert_eq!(
        (host.as_str(), port),
        (nats_name.as_str(), 4222),
        "stanchion's NATS URL"
    );
    let dir = settings.get("dir").unwrap();
    assert!(
        opt(opts, "-v")
            .iter()
            .any(|v| v.split(':').nth(1) == Some(dir) && !v.starts_with('/')),
        "no named volume on the store dir {dir}"
    );
    let p = settings.http_port();
    assert!(
        opt(opts, "-p").contains(&format!("{p}:{p}")),
        "-p {p}:{p} missing"
    );
    let text = read(DOCKER_RUN);
    for needle in ["/readyz", "/streaming/serverz"] {
        assert!(text.contains(needle), "{DOCKER_RUN} does not show {needle}");
    }
}

// -------------------------------------------------------------- env names

/// Every `STANCHION_*` name the deployment files set, with where.
fn used_env_names() -> BTreeMap<String, String> {
    let mut used = BTreeMap::new();
    for m in all_manifests() {
        for w in m.workloads() {
            for c in pod_containers(&w["spec"]["template"]["spec"]) {
                for name in container_env(c).into_keys() {
                    used.insert(name, m.path.clone());
                }
            }
        }
    }
    for (_, svc) in compose()["services"].as_hash().unwrap() {
        for name in compose_env(svc).into_keys() {
            used.insert(name, COMPOSE.to_string());
        }
    }
    for name in image_env().into_keys() {
        used.insert(name, "Dockerfile".to_string());
    }
    for rel in [DOCKER_RUN, "deploy/README.md"] {
        let text = read(rel);
        for (i, _) in text.match_indices("STANCHION_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.len() > "STANCHION_".len() {
                used.insert(name, rel.to_string());
            }
        }
    }
    used.retain(|name, _| name.starts_with("STANCHION_"));
    assert!(
        used.contains_key("STANCHION_DIR"),
        "found no STANCHION_* names at all: {used:?}"
    );
    used
}

#[test]
fn env_names_are_ones_stanchion_reads() {
    for (name, file) in used_env_names() {
        assert!(
            KNOWN_ENV.split_whitespace().any(|k| k == name),
            "{file}: {name} is not a stanchion setting"
        );
    }
}

/// Needs the help text to list each option's environment variable.
#[test]
fn env_names_appear_in_stanchion_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_stanchion"))
        .arg("--help")
        .env_remove("RUST_LOG")
        .output()
        .expect("running stanchion --help");
    assert!(
        out.status.success(),
        "stanchion --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<String> = used_env_names()
        .into_iter()
        .filter(|(name, _)| !help.contains(name.as_str()))
        .map(|(name, file)| format!("{name} ({file})"))
        .collect();
    assert!(missing.is_empty(), "not in `stanchion --help`: {missing:?}");
}

// --------------------------------------------------------- parser checks

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

fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}
