//! The deployment files: where they are, reading them, the Kubernetes
//! manifests as [`Manifest`]s, small YAML accessors, and the cluster ID
//! their prose announces.
//!
//! A leaf: parses YAML and that one phrase, checks nothing.

use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

pub(crate) const SIDECAR: &str = "deploy/kubernetes/sidecar.yaml";
pub(crate) const DROPIN: &str = "deploy/kubernetes/stan-helm-dropin.yaml";
pub(crate) const CLUSTER: &str = "deploy/kubernetes/cluster.yaml";
pub(crate) const COMPOSE: &str = "deploy/docker-compose.yml";
pub(crate) const COMPOSE_CLUSTER: &str = "deploy/docker-compose.cluster.yml";
/// Every compose file; each is checked as [`COMPOSE`] is.
pub(crate) const COMPOSE_FILES: [&str; 2] = [COMPOSE, COMPOSE_CLUSTER];
pub(crate) const DOCKER_RUN: &str = "deploy/docker-run.md";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub(crate) fn load_yaml(rel: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: invalid YAML: {e}"))
}

/// Every `.yaml`/`.yml` under `deploy/kubernetes`, as paths relative to the
/// repository root, sorted.
pub(crate) fn manifest_paths() -> Vec<String> {
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
pub(crate) struct Manifest {
    pub(crate) path: String,
    pub(crate) docs: Vec<Yaml>,
}

impl Manifest {
    pub(crate) fn load(path: &str) -> Manifest {
        let docs = load_yaml(path)
            .into_iter()
            .filter(|d| !matches!(d, Yaml::Null))
            .collect();
        Manifest {
            path: path.to_string(),
            docs,
        }
    }

    pub(crate) fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Yaml> + 'a {
        self.docs
            .iter()
            .filter(move |d| d["kind"].as_str() == Some(kind))
    }

    pub(crate) fn workloads(&self) -> Vec<&Yaml> {
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

    pub(crate) fn config_map(&self, name: &str) -> Option<&Yaml> {
        self.of_kind("ConfigMap")
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
    }
}

pub(crate) fn all_manifests() -> Vec<Manifest> {
    manifest_paths().iter().map(|p| Manifest::load(p)).collect()
}

// ------------------------------------------------------------ YAML helpers

/// A scalar as text: YAML gives `8222` as an integer and `"8222"` as a string.
pub(crate) fn scalar(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(crate) fn seq(y: &Yaml) -> &[Yaml] {
    y.as_vec().map(Vec::as_slice).unwrap_or(&[])
}

pub(crate) fn strings(y: &Yaml) -> Vec<String> {
    seq(y).iter().filter_map(scalar).collect()
}

pub(crate) fn port_number(y: &Yaml) -> Option<u16> {
    scalar(y)?.parse().ok()
}

/// The cluster ID a file's prose tells clients to use: the first
/// ``cluster ID "X"`` or ``cluster ID `X` ``.
pub(crate) fn announced_cluster_id(text: &str) -> Option<String> {
    let text = text.replace(['\n', '#'], " ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.match_indices("cluster ID ").find_map(|(i, m)| {
        let rest = &text[i + m.len()..];
        let quote = rest.chars().next().filter(|q| matches!(q, '"' | '`'))?;
        let rest = &rest[1..];
        rest.find(quote).map(|end| rest[..end].to_string())
    })
}
