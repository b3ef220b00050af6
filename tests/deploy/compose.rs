//! The compose files (`deploy/docker-compose*.yml`): each stanchion service
//! as the [`Container`] it runs, its link to its nats service, its volume,
//! port and healthcheck. What only the cluster file has is in
//! `cluster_compose`.

use std::collections::BTreeMap;
use std::path::Path;

use yaml_rust2::Yaml;

use crate::dockerfile::{healthcheck_port, image_argv, image_env, image_workdir};
use crate::files::{announced_cluster_id, load_yaml, read, scalar, strings, COMPOSE_FILES};
use crate::kubernetes::is_stanchion_image;
use crate::nats_server::client_port;
use crate::settings::{listens_everywhere, monitoring_port, url_host_port, Container};

/// The compose file `rel`, parsed.
pub(crate) fn compose(rel: &str) -> Yaml {
    load_yaml(rel)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{rel}: empty compose file"))
}

pub(crate) fn compose_env(svc: &Yaml) -> BTreeMap<String, String> {
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

/// A service's `command`/`entrypoint`: a list, or a string split on
/// whitespace; None when absent or empty (the image's stays).
fn compose_words(y: &Yaml) -> Option<Vec<String>> {
    let words = match y {
        Yaml::String(s) => s.split_whitespace().map(String::from).collect(),
        other => strings(other),
    };
    Some(words).filter(|w: &Vec<String>| !w.is_empty())
}

/// The stanchion service as it runs: the image's `ENV` then its
/// `environment`, `entrypoint`/`command` over the image's, `working_dir`.
pub(crate) fn compose_container(rel: &str, name: &str, svc: &Yaml) -> Container {
    assert!(
        svc["env_file"].is_badvalue() && svc["configs"].is_badvalue(),
        "{rel}: {name}: env_file and configs are not modelled by tests/deploy"
    );
    let mut env: Vec<(String, String)> = image_env().into_iter().collect();
    env.extend(compose_env(svc));
    Container {
        name: format!("{rel}: {name}"),
        argv: image_argv(
            compose_words(&svc["entrypoint"]),
            compose_words(&svc["command"]),
        ),
        env,
        files: Vec::new(),
        workdir: svc["working_dir"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(image_workdir),
    }
}

/// The services that run stanchion (its image, or a build), by name.
pub(crate) fn compose_stanchions(doc: &Yaml) -> Vec<(String, &Yaml)> {
    let services = doc["services"]
        .as_hash()
        .expect("compose file without services");
    services
        .iter()
        .filter(|(_, s)| {
            s["image"].as_str().is_some_and(is_stanchion_image) || !s["build"].is_badvalue()
        })
        .map(|(k, s)| (k.as_str().unwrap().to_string(), s))
        .collect()
}

/// Every stanchion service of every compose file: (file, document, name).
fn every_stanchion() -> Vec<(&'static str, Yaml, String)> {
    let mut out = Vec::new();
    for rel in COMPOSE_FILES {
        let doc = compose(rel);
        let names: Vec<String> = compose_stanchions(&doc)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(!names.is_empty(), "{rel}: no stanchion service");
        out.extend(names.into_iter().map(|n| (rel, doc.clone(), n)));
    }
    out
}

#[test]
fn compose_runs_one_stanchion_per_cluster_id_unless_clustered() {
    for rel in COMPOSE_FILES {
        let doc = compose(rel);
        let mut unclustered = BTreeMap::new();
        for (name, svc) in compose_stanchions(&doc) {
            let config = compose_container(rel, &name, svc).load().config;
            if config.clustered {
                continue;
            }
            if let Some(other) = unclustered.insert(config.cluster_id.clone(), name.clone()) {
                panic!("{rel}: {other} and {name} both serve {}", config.cluster_id);
            }
        }
    }
}

#[test]
fn compose_stanchion_reaches_the_nats_service() {
    for (rel, doc, service) in every_stanchion() {
        let svc = &doc["services"][service.as_str()];
        reaches_the_nats_service(rel, &doc, &service, svc);
    }
}

fn reaches_the_nats_service(rel: &str, doc: &Yaml, service: &str, svc: &Yaml) {
    let container = compose_container(rel, service, svc);
    let name = &container.name;
    let config = container.load().config;
    assert_eq!(
        Some(config.cluster_id.as_str()),
        announced_cluster_id(&read(rel)).as_deref(),
        "{name}: the cluster ID the header tells clients to use"
    );
    for url in config.nats_server.split(',') {
        let (host, port) = url_host_port(url.trim());
        let nats = &doc["services"][host.as_str()];
        assert!(
            !nats.is_badvalue(),
            "{name}: {url} names no compose service"
        );
        let nats_port = client_port(&strings(&nats["command"]));
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
    for (rel, doc, service) in every_stanchion() {
        let svc = &doc["services"][service.as_str()];
        volume_port_and_healthcheck(rel, &doc, &service, svc);
    }
}

fn volume_port_and_healthcheck(rel: &str, doc: &Yaml, service: &str, svc: &Yaml) {
    let container = compose_container(rel, service, svc);
    let name = &container.name;
    let r = container.load();
    assert!(r.warnings.is_empty(), "{name}: {:?}", r.warnings);
    let volumes = strings(&svc["volumes"]);
    let mount = volumes
        .iter()
        .find(|v| v.split(':').nth(1).is_some_and(|t| Path::new(t) == r.dir))
        .unwrap_or_else(|| {
            panic!(
                "{name}: no volume on the store dir {}: {volumes:?}",
                r.dir.display()
            )
        });
    let source = mount.split(':').next().unwrap();
    assert!(
        !doc["volumes"][source].is_badvalue(),
        "{name}: volume {source} is not declared under top-level volumes"
    );
    let port = monitoring_port(name, &r.config);
    assert!(
        listens_everywhere(&r.config),
        "{name}: monitoring on {}: the published port cannot reach it",
        r.config.http_host
    );
    let published = strings(&svc["ports"]).iter().any(|p| {
        p.rsplit(':').next().map(|c| c.trim_end_matches("/tcp")) == Some(&port.to_string())
    });
    assert!(
        published,
        "{name}: the monitoring port {port} is not published"
    );
    let test = strings(&svc["healthcheck"]["test"]);
    let exec = match test.first().map(String::as_str) {
        Some("CMD") => &test[1..],
        _ => panic!("{name}: healthcheck {test:?} is not [\"CMD\", ...]"),
    };
    assert_eq!(
        healthcheck_port(&container, exec),
        port,
        "{name}: the healthcheck asks another port than the monitoring port"
    );
    assert!(
        !svc["stop_grace_period"].is_badvalue(),
        "{name}: no stop_grace_period"
    );
}
