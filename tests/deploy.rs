//! Deployment wiring: parses the Kubernetes manifests under
//! `deploy/kubernetes`, the compose files `deploy/docker-compose*.yml`,
//! `deploy/docker-run.md` and the `Dockerfile`, and checks that they agree
//! with each other and with what stanchion reads: probe ports are declared
//! container ports and the monitoring port, probe paths, every
//! `STANCHION_*` name is one stanchion reads, the store directory is on the
//! persistent volume, compose reaches the nats service. The clustered
//! examples also: node IDs distinct, peers naming exactly the nodes, the
//! Raft log on each node's own volume, NATS routes joining the
//! nats-servers (`cluster`). No nats-server needed; schema validation is
//! `scripts/lint-deploy.sh`'s job.
//!
//! Settings are what stanchion's own loader (`Config::load_reporting`)
//! makes of each container, run in a `figment::Jail` holding its
//! environment (the image's `ENV`, then the container's), its ConfigMap
//! files and its argv (the image's `ENTRYPOINT` and `CMD` under the
//! deployment's overrides): see `settings`. In a StatefulSet, each pod's
//! downward-API fields (a node ID from `metadata.name`) are its own.

#[path = "deploy/cluster.rs"]
mod cluster;
#[path = "deploy/cluster_compose.rs"]
mod cluster_compose;
#[path = "deploy/cluster_k8s.rs"]
mod cluster_k8s;
#[path = "deploy/compose.rs"]
mod compose;
#[path = "deploy/docker_run.rs"]
mod docker_run;
#[path = "deploy/dockerfile.rs"]
mod dockerfile;
#[path = "deploy/dropin.rs"]
mod dropin;
#[path = "deploy/env_names.rs"]
mod env_names;
#[path = "deploy/files.rs"]
mod files;
#[path = "deploy/kubernetes.rs"]
mod kubernetes;
#[path = "deploy/nats_server.rs"]
mod nats_server;
#[path = "deploy/settings.rs"]
mod settings;
#[path = "deploy/sidecar.rs"]
mod sidecar;
