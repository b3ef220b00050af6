//! `deploy/kubernetes/cluster.yaml`: a StatefulSet whose pods are the
//! cluster's nodes, each running nats-server and stanchion. What every
//! manifest must pass is in `kubernetes`; here, what makes the pods one
//! cluster: each pod's settings as stanchion loads them there (its node ID
//! is its pod name, from the downward API), the Raft log on its claim,
//! routes between the pods' nats-servers, and a disruption budget that
//! keeps a majority.

use yaml_rust2::Yaml;

use crate::cluster::{check_connected, check_nodes, Node};
use crate::files::{scalar, seq, strings, Manifest, CLUSTER};
use crate::kubernetes::{
    k8s_pod_container, pod_containers, pod_name, pod_port_owners, probe_path,
    resolve_container_port, stanchion_container, stanchion_workload,
};
use crate::nats_server::{client_port, routing};
use crate::settings::{absolute, monitoring_port};

/// The workload's replica count.
fn replicas(w: &Yaml) -> usize {
    let n = w["spec"]["replicas"].as_i64().expect("no replicas");
    usize::try_from(n).expect("negative replicas")
}

/// An integer field (`maxUnavailable: 1`); None when absent or a percentage.
fn count(y: &Yaml) -> Option<usize> {
    scalar(y)?.parse().ok()
}

/// The nats-server container of the pod and its argv.
fn nats_container(w: &Yaml) -> (&Yaml, Vec<String>) {
    let c = pod_containers(&w["spec"]["template"]["spec"])
        .into_iter()
        .find(|c| c["image"].as_str().is_some_and(|i| i.starts_with("nats:")))
        .expect("no nats container");
    (c, [strings(&c["command"]), strings(&c["args"])].concat())
}

#[test]
fn cluster_pods_are_the_nodes() {
    let m = Manifest::load(CLUSTER);
    let w = stanchion_workload(&m);
    let c = stanchion_container(&m, w);
    let n = replicas(w);
    // A node is ready only with a majority up: one pod at a time would
    // wait on the first forever.
    assert_eq!(
        w["spec"]["podManagementPolicy"].as_str(),
        Some("Parallel"),
        "{CLUSTER}: the nodes must start together"
    );
    let mut nodes = Vec::new();
    for ordinal in 0..n {
        let container = k8s_pod_container(&m, ordinal);
        let r = container.load();
        let pod = pod_name(w, ordinal);
        assert_eq!(
            r.config.cluster_node_id.as_deref(),
            Some(pod.as_str()),
            "{}: the node ID is the pod name",
            container.name
        );
        let (_, nats_args) = nats_container(w);
        assert_eq!(
            r.config.nats_server,
            format!("nats://127.0.0.1:{}", client_port(&nats_args)),
            "{}: its own pod's nats-server",
            container.name
        );
        // The store dir's claim is `kubernetes`' check; the Raft log must
        // be on it too, or a rescheduled pod comes back without its log.
        let raft = absolute(&container.workdir, &r.config.raft_dir());
        let on_claim = seq(&c["volumeMounts"]).iter().any(|vm| {
            let claim = seq(&w["spec"]["volumeClaimTemplates"])
                .iter()
                .any(|t| t["metadata"]["name"] == vm["name"]);
            claim
                && vm["mountPath"]
                    .as_str()
                    .is_some_and(|p| raft.starts_with(p))
        });
        assert!(
            on_claim,
            "{}: the Raft log {} is on no volume claim",
            container.name,
            raft.display()
        );
        nodes.push(Node {
            name: container.name,
            config: r.config,
        });
    }
    let ids = check_nodes(&nodes).unwrap_or_else(|e| panic!("{CLUSTER}: {e}"));
    assert_eq!(ids.len(), 3, "{CLUSTER}: the example is 3 nodes");
}

#[test]
fn cluster_probes_and_ports() {
    let m = Manifest::load(CLUSTER);
    let w = stanchion_workload(&m);
    let c = stanchion_container(&m, w);
    // /readyz is 200 on the leader and on a follower: a rolling update
    // moves on once the restarted node follows again.
    assert_eq!(probe_path(c, "livenessProbe").as_deref(), Some("/healthz"));
    assert_eq!(probe_path(c, "readinessProbe").as_deref(), Some("/readyz"));
    let config = k8s_pod_container(&m, 0).load().config;
    let owners = pod_port_owners(&m, w);
    assert_eq!(
        owners
            .get(&monitoring_port(&m.path, &config))
            .map(String::as_str),
        Some("stanchion")
    );
    // Raft goes over NATS: nothing beyond nats-server's ports and the monitor.
    let ports: Vec<u16> = owners.into_keys().collect();
    assert_eq!(
        ports,
        [4222, 6222, 8222, 8223],
        "{CLUSTER}: the pod's ports"
    );
}

#[test]
fn cluster_nats_routes_reach_every_pod() {
    let m = Manifest::load(CLUSTER);
    let w = stanchion_workload(&m);
    let n = replicas(w);
    let (nats, args) = nats_container(w);
    let r = routing(&args).unwrap_or_else(|| panic!("{CLUSTER}: nats-server has no --cluster"));
    assert!(r.name.is_some(), "{CLUSTER}: no --cluster_name");
    assert!(
        resolve_container_port(nats, &Yaml::Integer(r.listen_port.into())).is_some(),
        "{CLUSTER}: the route port {} is not a nats container port",
        r.listen_port
    );
    // Routes dial pod DNS names, which exist only through the governing
    // headless Service, and must resolve before any pod is ready.
    let governing = w["spec"]["serviceName"].as_str().expect("serviceName");
    let headless = m
        .of_kind("Service")
        .find(|s| s["metadata"]["name"].as_str() == Some(governing))
        .expect("no governing Service");
    assert_eq!(
        headless["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true),
        "{CLUSTER}: {governing} must publish the pods before they are ready"
    );
    let pods: Vec<String> = (0..n).map(|i| pod_name(w, i)).collect();
    let mut edges = Vec::new();
    for (host, port) in &r.routes {
        let mut labels = host.split('.');
        let (target, service) = (labels.next().unwrap(), labels.next());
        assert_eq!(
            service,
            Some(governing),
            "{CLUSTER}: route to {host}: not a pod name of {governing}"
        );
        assert_eq!(*port, r.listen_port, "{CLUSTER}: route to {host}:{port}");
        // Every pod runs the same routes; nats-server skips its own.
        for pod in pods.iter().filter(|p| *p != target) {
            edges.push((pod.clone(), target.to_string()));
        }
    }
    check_connected(&pods, &edges).unwrap_or_else(|e| panic!("{CLUSTER}: {e}"));
}

#[test]
fn cluster_disruption_budget_keeps_a_majority() {
    let m = Manifest::load(CLUSTER);
    let w = stanchion_workload(&m);
    let n = replicas(w);
    let labels = &w["spec"]["template"]["metadata"]["labels"];
    let pdb = m
        .of_kind("PodDisruptionBudget")
        .find(|p| {
            let wanted = p["spec"]["selector"]["matchLabels"].as_hash();
            wanted.is_some_and(|h| h.iter().all(|(k, v)| labels[k.as_str().unwrap()] == *v))
        })
        .unwrap_or_else(|| panic!("{CLUSTER}: no PodDisruptionBudget selects the pods"));
    let spec = &pdb["spec"];
    let max_down = match (count(&spec["maxUnavailable"]), count(&spec["minAvailable"])) {
        (Some(max), None) => max,
        (None, Some(min)) => n.saturating_sub(min),
        _ => panic!("{CLUSTER}: the budget needs one integer maxUnavailable or minAvailable"),
    };
    // 0 would block every drain; more than a minority stops acknowledgements.
    assert!(
        max_down >= 1 && max_down <= (n - 1) / 2,
        "{CLUSTER}: the budget lets {max_down} of {n} nodes go; a majority must stay"
    );
}
