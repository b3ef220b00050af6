//! The sidecar manifest: stanchion next to nats-server in one pod,
//! reaching it on the loopback, with its own probes.

use crate::files::{announced_cluster_id, port_number, read, seq, Manifest, SIDECAR};
use crate::kubernetes::{
    k8s_load, pod_containers, pod_port_owners, probe_path, stanchion_container, stanchion_workload,
};
use crate::settings::monitoring_port;

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
    let config = k8s_load(&m).config;
    assert_eq!(config.nats_server, "nats://127.0.0.1:4222");
    assert_eq!(
        Some(config.cluster_id.as_str()),
        announced_cluster_id(&read(SIDECAR)).as_deref(),
        "the cluster ID the header tells clients to use"
    );
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
    assert_eq!(
        pod_port_owners(&m, w)
            .get(&monitoring_port(&m.path, &config))
            .map(String::as_str),
        Some("stanchion")
    );
}
