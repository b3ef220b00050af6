//! `deploy/docker-compose.yml`: the stanchion service, its environment,
//! its link to the nats service, its volume, port and healthcheck.

use std::collections::BTreeMap;

use yaml_rust2::Yaml;

use crate::dockerfile::image_env;
use crate::files::{load_yaml, scalar, strings, COMPOSE};
use crate::kubernetes::is_stanchion_image;
use crate::settings::{parse_flags, resolve, url_host_port};

pub(crate) fn compose() -> Yaml {
    load_yaml(COMPOSE)
        .into_iter()
        .next()
        .expect("empty compose file")
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
