//! Deployment wiring: parses the Kubernetes manifests under
//! `deploy/kubernetes`, `deploy/docker-compose.yml`, `deploy/docker-run.md`
//! and the `Dockerfile`, and checks that they agree with each other and with
//! what stanchion reads: probe ports are declared container ports and the
//! monitoring port, probe paths, every `STANCHION_*` name is one stanchion
//! reads, the store directory is on the persistent volume, compose reaches
//! the nats service. No nats-server needed; schema validation is
//! `scripts/lint-deploy.sh`'s job.
//!
//! Settings are resolved as stanchion layers them: defaults < config file
//! (`-sc`, from a ConfigMap) < environment (the image's `ENV`, then the
//! container's) < flags.

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
