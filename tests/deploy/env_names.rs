//! Every `STANCHION_*` name the deployment files use must be one stanchion
//! reads, and be listed in `stanchion --help`.

use std::collections::BTreeMap;
use std::process::Command;

use crate::compose::{compose, compose_env};
use crate::dockerfile::image_env;
use crate::files::{all_manifests, read, COMPOSE_FILES, DOCKER_RUN};
use crate::kubernetes::{container_env, pod_containers, pod_name};

/// The `STANCHION_*` names stanchion reads (the configuration contract).
/// `env_names_appear_in_stanchion_help` checks the used ones against the
/// binary's own `--help` as well.
const KNOWN_ENV: &str = "\
    STANCHION_NATS_SERVER STANCHION_CLUSTER_ID STANCHION_DISCOVER_PREFIX STANCHION_STORE \
    STANCHION_DIR STANCHION_FILE_SYNC STANCHION_CACHE_CAPACITY STANCHION_HTTP_PORT \
    STANCHION_HTTP_HOST STANCHION_LOG_FORMAT STANCHION_USER STANCHION_PASS STANCHION_AUTH \
    STANCHION_CREDENTIALS STANCHION_NKEY_SEED_FILE STANCHION_TLS_CLIENT_CERT \
    STANCHION_TLS_CLIENT_KEY STANCHION_TLS_CLIENT_CACERT STANCHION_HB_INTERVAL \
    STANCHION_HB_TIMEOUT STANCHION_HB_FAIL_COUNT STANCHION_MAX_CHANNELS STANCHION_MAX_SUBS \
    STANCHION_MAX_MSGS STANCHION_MAX_BYTES STANCHION_REPLACE_DURABLE STANCHION_IO_BATCH_SIZE \
    STANCHION_STAN_DEBUG STANCHION_STAN_TRACE STANCHION_CONFIG STANCHION_SECURE \
    STANCHION_TLS_SERVER_NAME STANCHION_TLS_INSECURE STANCHION_CONNECTION_NAME \
    STANCHION_FT_GROUP STANCHION_PARTITIONING STANCHION_CLUSTERED STANCHION_CLUSTER_NODE_ID \
    STANCHION_CLUSTER_PEERS STANCHION_CLUSTER_LOG_PATH STANCHION_CLUSTER_BOOTSTRAP \
    STANCHION_CLUSTER_SYNC STANCHION_CLUSTER_RAFT_LOGGING STANCHION_CLUSTER_TRAILING_LOGS \
    STANCHION_CLUSTER_RAFT_HEARTBEAT_TIMEOUT STANCHION_CLUSTER_RAFT_ELECTION_TIMEOUT";

/// Every `STANCHION_*` name the deployment files set, with where.
fn used_env_names() -> BTreeMap<String, String> {
    let mut used = BTreeMap::new();
    for m in all_manifests() {
        for w in m.workloads() {
            for c in pod_containers(&w["spec"]["template"]["spec"]) {
                for (name, _) in container_env(&m, c, &pod_name(w, 0)) {
                    used.insert(name, m.path.clone());
                }
            }
        }
    }
    for rel in COMPOSE_FILES {
        for (_, svc) in compose(rel)["services"].as_hash().unwrap() {
            for name in compose_env(svc).into_keys() {
                used.insert(name, rel.to_string());
            }
        }
    }
    for name in image_env().into_keys() {
        used.insert(name, "Dockerfile".to_string());
    }
    for rel in [DOCKER_RUN, "deploy/README.md"] {
        let text = read(rel);
        for (i, _) in text.match_indices("STANCHION_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.len() > "STANCHION_".len() {
                used.insert(name, rel.to_string());
            }
        }
    }
    used.retain(|name, _| name.starts_with("STANCHION_"));
    assert!(
        used.contains_key("STANCHION_DIR"),
        "found no STANCHION_* names at all: {used:?}"
    );
    used
}

#[test]
fn env_names_are_ones_stanchion_reads() {
    for (name, file) in used_env_names() {
        assert!(
            KNOWN_ENV.split_whitespace().any(|k| k == name),
            "{file}: {name} is not a stanchion setting"
        );
    }
}

/// Needs the help text to list each option's environment variable.
#[test]
fn env_names_appear_in_stanchion_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_stanchion"))
        .arg("--help")
        .env_remove("RUST_LOG")
        .output()
        .expect("running stanchion --help");
    assert!(
        out.status.success(),
        "stanchion --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<String> = used_env_names()
        .into_iter()
        .filter(|(name, _)| !help.contains(name.as_str()))
        .map(|(name, file)| format!("{name} ({file})"))
        .collect();
    assert!(missing.is_empty(), "not in `stanchion --help`: {missing:?}");
}
