//! Every Kubernetes manifest under `deploy/kubernetes`: finding the
//! stanchion workload and container, resolving its settings (the `-sc`
//! file from its ConfigMap), and the checks all manifests must pass
//! (probes, ports, store volume, config shadowing, pod user, Services).
//!
//! Checks of one manifest only are in `sidecar` and `dropin`.

use std::collections::BTreeMap;
use std::path::Path;

use yaml_rust2::Yaml;

use crate::dockerfile::{image_env, image_user};
use crate::files::{
    all_manifests, manifest_paths, port_number, scalar, seq, strings, Manifest, DROPIN, SIDECAR,
};
use crate::settings::{parse_flags, resolve, Settings, CONFIG_ENV, CONFIG_FLAGS};

/// A container's environment: literal `value`s (valueFrom entries map to "").
pub(crate) fn container_env(c: &Yaml) -> BTreeMap<String, String> {
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
pub(crate) fn k8s_settings(m: &Manifest) -> (Settings, Option<String>) {
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

fn is_within(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}
