//! Deployment wiring: parses the Kubernetes manifests under
//! `deploy/kubernetes`, `deploy/docker-compose.yml`, `deploy/docker-run.md`
//! and the `Dockerfile`, and checks that they agree with each other and with
//! what stanchion reads: probe ports are declared container ports and the
//! monitoring port, probe paths, every `STANCHION_*` name is one stanchion
//! reads, the store directory is on the persistent volume, compose reaches
//! the nats service. No nats-server needed; schema validation is
//! `scripts/lint-deploy.sh`'s job.
//!
//! Settings are what stanchion's own loader (`Config::load_reporting`)
//! makes of each container, run in a `figment::Jail` holding its
//! environment (the image's `ENV`, then the container's), its ConfigMap
//! files and its argv (the image's `ENTRYPOINT` and `CMD` under the
//! deployment's overrides): see `settings`.

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
#[path = "deploy/settings.rs"]
mod settings;
#[path = "deploy/sidecar.rs"]
mod sidecar;
