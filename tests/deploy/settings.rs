//! stanchion's configuration as a deployed container loads it: the real
//! loader (`Config::load_reporting`) run in a `figment::Jail` that holds
//! the container's environment (the image's `ENV`, then the container's),
//! its mounted config files and its argv. Also NATS URLs.
//!
//! The groups that read the deployment files build a [`Container`] each;
//! what it loads is checked there. Tests of the jail itself are here.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use figment::Jail;
use stanchion::config::{nss_file, Config, ENV_PREFIX};

/// One stanchion container as a deployment file runs it.
#[derive(Debug, Clone)]
pub(crate) struct Container {
    /// Where it is defined, for messages (`deploy/x.yaml: stan`).
    pub(crate) name: String,
    /// The process's argv, program first: the entrypoint and its arguments
    /// as the image's and the deployment's overrides leave them.
    pub(crate) argv: Vec<String>,
    /// The environment in the order it is set (the image's `ENV`, then
    /// the container's); a later entry of the same name wins.
    pub(crate) env: Vec<(String, String)>,
    /// Files by their absolute path in the container (ConfigMap keys),
    /// with their text.
    pub(crate) files: Vec<(String, String)>,
    /// The working directory, which a relative `dir` is relative to.
    pub(crate) workdir: String,
}

/// What a [`Container`] starts with.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The validated configuration.
    pub(crate) config: Config,
    /// The loader's warnings: flags and config keys accepted but unused.
    pub(crate) warnings: Vec<String>,
    /// `config.dir` as an absolute path in the container.
    pub(crate) dir: PathBuf,
    /// Each of [`Container::files`] that the argv or the environment
    /// names and that reads as an NSS config file, with what it decides on
    /// its own.
    pub(crate) config_files: Vec<ConfigFile>,
}

/// A config file a container reads, and what it decides on its own.
#[derive(Debug)]
pub(crate) struct ConfigFile {
    /// Its path in the container.
    pub(crate) path: String,
    /// The settings it writes, as stanchion's NSS reader names them
    /// (`cluster_id`, `dir`, `http_port`, ...).
    pub(crate) keys: Vec<String>,
    /// The configuration from this file alone (`-sc` and no `STANCHION_*`).
    pub(crate) config: Config,
}

impl Container {
    /// Loads the configuration as the container would, panicking with the
    /// loader's error text when stanchion would not start.
    pub(crate) fn load(&self) -> Resolved {
        self.try_load().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Container::load`], with the loader's error as text naming the
    /// container.
    // The jail's closure returns figment's (large) error type by design.
    #[allow(clippy::result_large_err)]
    pub(crate) fn try_load(&self) -> Result<Resolved, String> {
        let mut out = None;
        Jail::try_with(|jail| {
            for (path, text) in &self.files {
                let rel = jailed(path);
                if let Some(parent) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
                    jail.create_dir(parent)?;
                }
                jail.create_file(&rel, text)?;
            }
            let mut named = Vec::new();
            jail.clear_env();
            for (k, v) in &self.env {
                jail.set_env(k, self.rewrite(v, &mut named));
            }
            let argv: Vec<OsString> = self
                .argv
                .iter()
                .map(|a| self.rewrite(a, &mut named).into())
                .collect();
            let loaded = Config::load_reporting(argv).map_err(|e| e.to_string())?;

            // Each named file alone: its own keys, and the configuration from
            // it and the defaults (its `$VARS` still need the environment).
            named.sort();
            named.dedup();
            jail.clear_env();
            for (k, v) in self.env.iter().filter(|(k, _)| !k.starts_with(ENV_PREFIX)) {
                jail.set_env(k, v);
            }
            let mut config_files = Vec::new();
            for path in named {
                let rel = jailed(&path);
                if rel.extension().is_some_and(|e| e == "toml") {
                    return Err(format!("{path}: TOML config files are not modelled here").into());
                }
                // Not NSS config text: a credentials or TLS file (were it the
                // config file, the load above would have failed).
                let Ok(file) = nss_file::read(&rel) else {
                    continue;
                };
                let keys = file.values.into_keys().collect();
                let alone = ["stanchion".into(), "-sc".into(), rel.into_os_string()];
                let config = Config::load(alone).map_err(|e| format!("{path} alone: {e}"))?;
                config_files.push(ConfigFile { path, keys, config });
            }
            out = Some((loaded, config_files));
            Ok(())
        })
        .map_err(|e| format!("{}: stanchion would not start: {e}", self.name))?;
        let (loaded, config_files) = out.expect("the jail ran");
        Ok(Resolved {
            dir: absolute(&self.workdir, &loaded.config.dir),
            config: loaded.config,
            warnings: loaded.warnings,
            config_files,
        })
    }

    /// `arg` with a path of one of [`Container::files`] (whole, or after a
    /// `=`) made relative to the jail, and that file recorded in `named`.
    fn rewrite(&self, arg: &str, named: &mut Vec<String>) -> String {
        for (path, _) in &self.files {
            let head = if arg == path {
                ""
            } else if let Some(head) = arg.strip_suffix(path.as_str()) {
                if !head.ends_with('=') {
                    continue;
                }
                head
            } else {
                continue;
            };
            named.push(path.clone());
            return format!("{head}{}", jailed(path).display());
        }
        arg.to_string()
    }

    /// This container's environment and files with another argv, as an
    /// `exec` into it (a healthcheck) runs.
    pub(crate) fn with_argv(&self, argv: Vec<String>) -> Container {
        Container {
            argv,
            ..self.clone()
        }
    }
}

/// An absolute container path as a path relative to the jail.
fn jailed(path: &str) -> PathBuf {
    assert!(path.starts_with('/'), "{path}: not an absolute path");
    PathBuf::from(path.trim_start_matches('/'))
}

/// `path` made absolute against `workdir`, `.` and `..` resolved.
pub(crate) fn absolute(workdir: &str, path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(workdir).join(path).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The monitoring port a probe or a published port must reach: panics when
/// monitoring is off (0) or on a random port (-1).
pub(crate) fn monitoring_port(name: &str, config: &Config) -> u16 {
    u16::try_from(config.http_port)
        .ok()
        .filter(|p| *p > 0)
        .unwrap_or_else(|| {
            panic!(
                "{name}: monitoring port {} cannot be probed or published",
                config.http_port
            )
        })
}

/// Whether the monitoring server listens on every interface, as it must for
/// the kubelet's probes and Docker's published ports to reach it.
pub(crate) fn listens_everywhere(config: &Config) -> bool {
    matches!(config.http_host.as_str(), "" | "0.0.0.0" | "::" | "[::]")
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

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn container_mounts_files_layers_env_and_resolves_dir() {
    let c = Container {
        name: "test".into(),
        argv: strings(&["stanchion", "--stan_config=/etc/stan/stan.conf"]),
        env: vec![
            ("STANCHION_CLUSTER_ID".into(), "image".into()),
            ("MONITOR".into(), "9000".into()),
            ("STANCHION_CLUSTER_ID".into(), "container".into()),
        ],
        files: vec![(
            "/etc/stan/stan.conf".into(),
            "streaming {\n  id: from-file\n  dir: \"../store\"\n  http: $MONITOR\n}\n".into(),
        )],
        workdir: "/srv/app".into(),
    };
    let r = c.load();
    assert_eq!(r.config.cluster_id, "container", "the later env entry wins");
    assert_eq!(
        r.config.http_port, 9000,
        "the mounted file, its $VAR from the env"
    );
    assert_eq!(r.dir, Path::new("/srv/store"), "dir against the workdir");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let [file] = r.config_files.as_slice() else {
        panic!("expected the one named file: {:?}", r.config_files);
    };
    assert_eq!(file.path, "/etc/stan/stan.conf");
    assert_eq!(file.keys, ["cluster_id", "dir", "http_port"]);
    assert_eq!(file.config.cluster_id, "from-file", "the file alone");

    let unnamed = Container {
        argv: strings(&["stanchion"]),
        ..c.clone()
    };
    assert!(unnamed.load().config_files.is_empty(), "no file named");
}

#[test]
fn container_reports_what_stanchion_rejects() {
    let c = Container {
        name: "deploy/x.yaml: stan".into(),
        argv: strings(&["stanchion", "-sc", "/etc/stan.conf"]),
        env: vec![("STANCHION_HTTP_PORT".into(), "70000".into())],
        files: Vec::new(),
        workdir: "/".into(),
    };
    let e = c.try_load().expect_err("no such file");
    assert!(
        e.starts_with("deploy/x.yaml: stan: ") && e.contains("/etc/stan.conf"),
        "{e}"
    );
    let e = c
        .with_argv(strings(&["stanchion"]))
        .try_load()
        .expect_err("port out of range");
    assert!(e.contains("http_port"), "{e}");
}
