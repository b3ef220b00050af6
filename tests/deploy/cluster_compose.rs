//! `deploy/docker-compose.cluster.yml`: three stanchion nodes on three
//! routed nats-servers. What every compose file must pass is in `compose`;
//! here, what makes the nodes one cluster that survives losing one of them:
//! their settings, one nats-server and one volume each, the Raft log on
//! that volume, and routes joining the nats-servers.

use std::collections::BTreeSet;
use std::path::Path;

use yaml_rust2::Yaml;

use crate::cluster::{check_connected, check_nodes, Node};
use crate::compose::{compose, compose_container, compose_stanchions};
use crate::files::{strings, COMPOSE_CLUSTER};
use crate::nats_server::routing;
use crate::settings::{absolute, url_host_port};

/// The nats-server services of the file (image `nats:...`), by name.
fn nats_services(doc: &Yaml) -> Vec<(String, &Yaml)> {
    doc["services"]
        .as_hash()
        .expect("compose file without services")
        .iter()
        .filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("nats:")))
        .map(|(k, s)| (k.as_str().unwrap().to_string(), s))
        .collect()
}

/// Inserts `value` into `seen`, panicking when a node already has it.
fn own(seen: &mut BTreeSet<String>, what: &str, value: String, name: &str) {
    assert!(
        seen.insert(value.clone()),
        "{name}: {what} {value} is another node's too"
    );
}

#[test]
fn compose_cluster_nodes_each_have_their_own_nats_volume_and_port() {
    let doc = compose(COMPOSE_CLUSTER);
    let stanchions = compose_stanchions(&doc);
    let nats: Vec<String> = nats_services(&doc).into_iter().map(|(n, _)| n).collect();
    let mut nodes = Vec::new();
    let mut servers = BTreeSet::new();
    let mut volumes = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for (service, svc) in stanchions {
        let container = compose_container(COMPOSE_CLUSTER, &service, svc);
        let name = container.name.clone();
        let r = container.load();

        // Losing one nats-server then loses one node, not the majority.
        let urls: Vec<&str> = r.config.nats_server.split(',').map(str::trim).collect();
        let (host, _) = url_host_port(urls[0]);
        assert_eq!(urls.len(), 1, "{name}: one nats-server, its own");
        assert!(nats.contains(&host), "{name}: {host} is no nats service");
        own(&mut servers, "nats-server", host, &name);

        // The store and the Raft log on a volume no other node mounts.
        let raft = absolute(&container.workdir, &r.config.raft_dir());
        let volume = strings(&svc["volumes"])
            .into_iter()
            .find(|v| v.split(':').nth(1).is_some_and(|t| r.dir.starts_with(t)))
            .unwrap_or_else(|| panic!("{name}: no volume on {}", r.dir.display()));
        let target = volume.split(':').nth(1).unwrap();
        assert!(
            raft.starts_with(Path::new(target)),
            "{name}: the Raft log {} is not on the volume {volume}",
            raft.display()
        );
        own(
            &mut volumes,
            "volume",
            volume.split(':').next().unwrap().into(),
            &name,
        );

        for p in strings(&svc["ports"]) {
            let host_port = p.rsplit(':').nth(1).unwrap_or(&p).to_string();
            own(&mut ports, "host port", host_port, &name);
        }
        nodes.push(Node {
            name,
            config: r.config,
        });
    }
    let ids = check_nodes(&nodes).unwrap_or_else(|e| panic!("{COMPOSE_CLUSTER}: {e}"));
    assert_eq!(ids.len(), 3, "{COMPOSE_CLUSTER}: the example is 3 nodes");
}

#[test]
fn compose_cluster_nats_servers_are_routed() {
    let doc = compose(COMPOSE_CLUSTER);
    let services = nats_services(&doc);
    let names: Vec<String> = services.iter().map(|(n, _)| n.clone()).collect();
    let routings: Vec<_> = services
        .iter()
        .map(|(name, svc)| {
            let r = routing(&strings(&svc["command"]))
                .unwrap_or_else(|| panic!("{COMPOSE_CLUSTER}: {name} has no --cluster listener"));
            (name, r)
        })
        .collect();
    let mut edges = Vec::new();
    for (name, r) in &routings {
        assert!(r.name.is_some(), "{name}: no --cluster_name");
        assert_eq!(r.name, routings[0].1.name, "{name}: another NATS cluster");
        for (host, port) in &r.routes {
            let target = routings.iter().find(|(n, _)| *n == host);
            if let Some((_, t)) = target {
                assert_eq!(*port, t.listen_port, "{name}: route to {host}:{port}");
            }
            edges.push((name.to_string(), host.clone()));
        }
    }
    check_connected(&names, &edges).unwrap_or_else(|e| panic!("{COMPOSE_CLUSTER}: {e}"));
}
