//! Every Kubernetes manifest under `deploy/kubernetes`: finding the
//! stanchion workload and container, the [`Container`] it runs (the image
//! under the pod's `command`, `args`, `env`, `workingDir` and ConfigMap
//! volumes), and the checks all manifests must pass (probes, ports, store
//! volume, config shadowing, warnings, pod user, Services).
//!
//! Checks of one manifest only are in `sidecar`, `dropin` and
//! `cluster_k8s`.

use std::collections::BTreeMap;
use std::path::Path;

use stanchion::config::StoreKind;
use yaml_rust2::Yaml;

use crate::dockerfile::{image_argv, image_env, image_user, image_workdir};
use crate::files::{
    all_manifests, manifest_paths, port_number, scalar, seq, strings, Manifest, CLUSTER, DROPIN,
    SIDECAR,
};
use crate::settings::{listens_everywhere, monitoring_port, Container, Resolved};

/// The name of the workload's pod number `ordinal`: what `metadata.name`
/// and `HOSTNAME` are in it. A StatefulSet's are `<name>-<ordinal>`, which
/// clustered nodes take as their node IDs.
pub(crate) fn pod_name(w: &Yaml, ordinal: usize) -> String {
    let name = w["metadata"]["name"].as_str().unwrap_or("pod");
    match w["kind"].as_str() {
        Some("StatefulSet") => format!("{name}-{ordinal}"),
        _ => format!("{name}-5d9c7b8f6-x2x7{ordinal}"),
    }
}

/// A container's environment in order, as Kubernetes sets it in the pod
/// named `pod`: literal `value`s, `fieldRef`s to the pod's name, namespace
/// and IP (a node ID, a config file's `$POD_NAME`), `configMapKeyRef`s to
/// a ConfigMap in the file; any other `valueFrom` (a Secret, another
/// field) is "".
pub(crate) fn container_env(m: &Manifest, c: &Yaml, pod: &str) -> Vec<(String, String)> {
    assert!(
        c["envFrom"].is_badvalue(),
        "{}: envFrom is not modelled by tests/deploy",
        m.path
    );
    seq(&c["env"])
        .iter()
        .map(|e| {
            let name = e["name"]
                .as_str()
                .expect("env entry without a name")
                .to_string();
            let from = &e["valueFrom"];
            let value = if let Some(field) = from["fieldRef"]["fieldPath"].as_str() {
                match field {
                    "metadata.name" => pod.to_string(),
                    "metadata.namespace" => "default".to_string(),
                    "status.podIP" => "10.1.2.3".to_string(),
                    _ => String::new(),
                }
            } else if let Some(cm) = from["configMapKeyRef"]["name"].as_str() {
                let key = from["configMapKeyRef"]["key"].as_str().unwrap_or("");
                m.config_map(cm)
                    .and_then(|d| scalar(&d["data"][key]))
                    .unwrap_or_else(|| panic!("{}: ConfigMap {cm} has no key {key}", m.path))
            } else {
                scalar(&e["value"]).unwrap_or_default()
            };
            (name, value)
        })
        .collect()
}

pub(crate) fn is_stanchion_image(image: &str) -> bool {
    let name = image.rsplit('/').next().unwrap_or(image);
    name.split([':', '@']).next() == Some("stanchion")
}

pub(crate) fn pod_containers(pod: &Yaml) -> Vec<&Yaml> {
    seq(&pod["containers"])
        .iter()
        .chain(seq(&pod["initContainers"]))
        .collect()
}

pub(crate) fn stanchion_container<'a>(m: &Manifest, workload: &'a Yaml) -> &'a Yaml {
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
pub(crate) fn stanchion_workload(m: &Manifest) -> &Yaml {
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

/// The files the container's ConfigMap volumes put in it, by absolute path
/// (each key under the mount, or only the `items`, or one `subPath`).
fn config_map_files(m: &Manifest, pod: &Yaml, c: &Yaml) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for mount in seq(&c["volumeMounts"]) {
        let mount_path = mount["mountPath"].as_str().expect("mountPath");
        let volume_name = mount["name"].as_str().expect("volumeMount name");
        let volume = seq(&pod["volumes"])
            .iter()
            .find(|v| v["name"].as_str() == Some(volume_name));
        let Some(volume) = volume else {
            // A volumeClaimTemplate's; checked with the store dir.
            continue;
        };
        let Some(cm_name) = volume["configMap"]["name"].as_str() else {
            continue;
        };
        let cm = m
            .config_map(cm_name)
            .unwrap_or_else(|| panic!("{}: ConfigMap {cm_name} is not in the file", m.path));
        let data = cm["data"].as_hash().cloned().unwrap_or_default();
        let text = |key: &str| {
            scalar(&data[&Yaml::String(key.to_string())])
                .unwrap_or_else(|| panic!("{}: ConfigMap {cm_name} has no key {key}", m.path))
        };
        let items: Vec<(String, String)> = match volume["configMap"]["items"].as_vec() {
            Some(items) => items
                .iter()
                .map(|i| {
                    let key = i["key"].as_str().expect("item key");
                    (
                        key.to_string(),
                        i["path"].as_str().unwrap_or(key).to_string(),
                    )
                })
                .collect(),
            None => data
                .keys()
                .filter_map(|k| k.as_str())
                .map(|k| (k.to_string(), k.to_string()))
                .collect(),
        };
        if let Some(sub) = mount["subPath"].as_str() {
            let (key, _) = items
                .iter()
                .find(|(_, path)| path == sub)
                .unwrap_or_else(|| panic!("{}: subPath {sub} is not in {cm_name}", m.path));
            files.push((mount_path.to_string(), text(key)));
            continue;
        }
        for (key, path) in items {
            let file = Path::new(mount_path).join(path);
            files.push((file.to_string_lossy().into_owned(), text(&key)));
        }
    }
    files
}

/// A non-empty list, or None: an empty or absent `command`/`args` leaves
/// the image's.
fn overrides(y: &Yaml) -> Option<Vec<String>> {
    Some(strings(y)).filter(|v| !v.is_empty())
}

/// The stanchion container of a manifest's first pod as it runs.
pub(crate) fn k8s_container(m: &Manifest) -> Container {
    k8s_pod_container(m, 0)
}

/// The stanchion container of pod number `ordinal` as it runs: the
/// image's `ENV`, then `HOSTNAME` and the container's `env`; `command` and
/// `args` over the image's `ENTRYPOINT` and `CMD`; its ConfigMap files;
/// its `workingDir`.
pub(crate) fn k8s_pod_container(m: &Manifest, ordinal: usize) -> Container {
    let w = stanchion_workload(m);
    let pod = &w["spec"]["template"]["spec"];
    let c = stanchion_container(m, w);
    let pod_name = pod_name(w, ordinal);
    let mut env: Vec<(String, String)> = image_env().into_iter().collect();
    env.push(("HOSTNAME".to_string(), pod_name.clone()));
    env.extend(container_env(m, c, &pod_name));
    Container {
        name: format!(
            "{}: {pod_name}: {}",
            m.path,
            c["name"].as_str().unwrap_or("?")
        ),
        argv: image_argv(overrides(&c["command"]), overrides(&c["args"])),
        env,
        files: config_map_files(m, pod, c),
        workdir: c["workingDir"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(image_workdir),
    }
}

/// What a manifest's stanchion container starts with.
pub(crate) fn k8s_load(m: &Manifest) -> Resolved {
    k8s_container(m).load()
}

/// Resolves a probe's or Service's port (a number or a port name) against a
/// container's declared ports.
pub(crate) fn resolve_container_port(c: &Yaml, port: &Yaml) -> Option<u16> {
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

pub(crate) fn probe_path(c: &Yaml, probe: &str) -> Option<String> {
    scalar(&c[probe]["httpGet"]["path"])
}

/// The container that declares each port of a workload's pod, panicking
/// when two do: they share the pod's network namespace.
pub(crate) fn pod_port_owners(m: &Manifest, w: &Yaml) -> BTreeMap<u16, String> {
    let mut seen = BTreeMap::new();
    for c in pod_containers(&w["spec"]["template"]["spec"]) {
        for p in seq(&c["ports"]) {
            let n = port_number(&p["containerPort"]).unwrap();
            let name = c["name"].as_str().unwrap().to_string();
            if let Some(other) = seen.insert(n, name.clone()) {
                panic!(
                    "{}: port {n} is declared by both {other} and {name}",
                    m.path
                );
            }
        }
    }
    seen
}

#[test]
fn k8s_container_gets_config_map_items_pod_fields_and_args() {
    let text = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  conf: "streaming {\n  id: $POD_NAME\n  dir: $POD_NAME\n}\n"
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: x}
spec:
  template:
    spec:
      volumes:
        - name: cfg
          configMap: {name: cfg, items: [{key: conf, path: nss/stan.conf}]}
      containers:
        - name: s
          image: registry.example/stanchion:1
          workingDir: /data
          args: ["--stan_config=/etc/cfg/nss/stan.conf"]
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          volumeMounts:
            - {name: cfg, mountPath: /etc/cfg}
"#;
    let m = Manifest {
        path: "test.yaml".to_string(),
        docs: yaml_rust2::YamlLoader::load_from_str(text).unwrap(),
    };
    let c = k8s_container(&m);
    assert_eq!(c.files.len(), 1, "{:?}", c.files);
    assert_eq!(c.files[0].0, "/etc/cfg/nss/stan.conf");
    let r = c.load();
    assert_eq!(
        r.config.cluster_id, "x-0",
        "$POD_NAME of the StatefulSet's pod"
    );
    assert_eq!(r.dir, Path::new("/data/x-0"), "relative to workingDir");
    assert_eq!(
        r.config.http_port, 0,
        "args replace the image's CMD (-m 8222)"
    );
}

#[test]
fn k8s_manifests_parse_and_run_stanchion() {
    let paths = manifest_paths();
    for expected in [SIDECAR, DROPIN, CLUSTER] {
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
        // A clustered one's count is `cluster_k8s`'s to check.
        if !k8s_load(&m).config.clustered {
            assert_eq!(
                w["spec"]["replicas"].as_i64(),
                Some(1),
                "{}: one stanchion per cluster ID unless clustered",
                m.path
            );
        }
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
        let config = k8s_load(&m).config;
        let http_port = monitoring_port(&m.path, &config);
        assert!(
            listens_everywhere(&config),
            "{}: monitoring on {}: the kubelet's probes come to the pod IP",
            m.path,
            config.http_host
        );
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
fn k8s_store_dir_is_on_the_volume_claim() {
    for m in all_manifests() {
        let w = stanchion_workload(&m);
        let c = stanchion_container(&m, w);
        let r = k8s_load(&m);
        assert_eq!(
            r.config.store,
            StoreKind::Sled,
            "{}: the memory store: nothing persists",
            m.path
        );
        let dir = &r.dir;
        let claims: Vec<&str> = seq(&w["spec"]["volumeClaimTemplates"])
            .iter()
            .filter_map(|t| t["metadata"]["name"].as_str())
            .collect();
        let mount = seq(&c["volumeMounts"])
            .iter()
            .filter(|vm| vm["mountPath"].as_str().is_some_and(|p| dir.starts_with(p)))
            .max_by_key(|vm| vm["mountPath"].as_str().unwrap().len())
            .unwrap_or_else(|| {
                panic!(
                    "{}: store dir {} is on no volume mount",
                    m.path,
                    dir.display()
                )
            });
        let name = mount["name"].as_str().unwrap();
        assert!(
            claims.contains(&name),
            "{}: store dir {} is on volume {name}, not a volumeClaimTemplate ({claims:?})",
            m.path,
            dir.display()
        );
    }
}

#[test]
fn k8s_config_file_is_not_shadowed() {
    // The environment (the image's and the container's) and flags beat a
    // config file: whatever stan.conf sets must be what stanchion runs with.
    for m in all_manifests() {
        let r = k8s_load(&m);
        let running = serde_json::to_value(&r.config).unwrap();
        for file in &r.config_files {
            let alone = serde_json::to_value(&file.config).unwrap();
            for key in &file.keys {
                let Some(want) = alone.get(key) else {
                    continue;
                };
                assert_eq!(
                    running.get(key),
                    Some(want),
                    "{}: {} sets {key} but the environment or a flag overrides it",
                    m.path,
                    file.path
                );
            }
        }
    }
}

#[test]
fn k8s_stanchion_starts_without_warnings() {
    // A warning is a flag or config key that stanchion accepts and ignores.
    for m in all_manifests() {
        let r = k8s_load(&m);
        assert!(r.warnings.is_empty(), "{}: {:?}", m.path, r.warnings);
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
