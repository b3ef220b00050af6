//! The clustered-mode settings: the node list and where the Raft log goes.

use std::path::PathBuf;

use super::Config;

/// How a node that has no Raft state yet enters its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterStart {
    /// Every node is listed (`cluster_peers`): each starts the cluster
    /// from the same list, and the first election settles it.
    Peers,
    /// `cluster_bootstrap` without peers: this node starts a cluster of
    /// one, which others join.
    Seed,
    /// Neither: ask the cluster's leader to be added.
    Join,
}

impl Config {
    /// The names in `cluster_peers`, trimmed, empty entries skipped.
    fn listed_peers(&self) -> Vec<&str> {
        self.cluster_peers
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// Every node of the cluster: `cluster_peers` plus this node, in the
    /// order given, each once (duplicates are refused by validation).
    pub fn cluster_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .listed_peers()
            .into_iter()
            .map(str::to_string)
            .collect();
        if let Some(me) = self.cluster_node_id.as_deref().filter(|m| !m.is_empty()) {
            if !nodes.iter().any(|n| n == me) {
                nodes.push(me.to_string());
            }
        }
        nodes
    }

    /// How this node becomes part of a cluster the first time it starts.
    pub fn cluster_start(&self) -> ClusterStart {
        if self
            .listed_peers()
            .iter()
            .any(|p| Some(*p) != self.cluster_node_id.as_deref())
        {
            ClusterStart::Peers
        } else if self.cluster_bootstrap {
            ClusterStart::Seed
        } else {
            ClusterStart::Join
        }
    }

    /// The shortest silence after which a node stands for election:
    /// openraft has one timer for NSS's heartbeat and election timeouts.
    pub fn raft_election_timer(&self) -> std::time::Duration {
        self.cluster_raft_heartbeat_timeout
            .min(self.cluster_raft_election_timeout)
    }

    /// The Raft log's directory: `cluster_log_path`, else `<dir>/raft`.
    pub fn raft_dir(&self) -> PathBuf {
        self.cluster_log_path
            .clone()
            .unwrap_or_else(|| self.dir.join("raft"))
    }

    /// A clustered node needs its name and the others': names that can be
    /// subject tokens, none twice, none hashing to another's Raft ID.
    pub(super) fn check_cluster_nodes(&self) -> Result<(), String> {
        let me = self.cluster_node_id.as_deref().unwrap_or_default();
        if me.is_empty() {
            return Err("cluster_node_id is required in clustered mode".into());
        }
        let listed = self.listed_peers();
        let timer = self.raft_election_timer();
        if timer < std::time::Duration::from_millis(10) {
            return Err(format!(
                "raft heartbeat and election timeouts must be at least 10ms (got {timer:?})"
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for name in listed.iter().copied().chain(std::iter::once(me)) {
            if name.contains(['.', '*', '>', ' ']) {
                return Err(format!(
                    "node ID {name:?} must be one subject token (no '.', '*', '>', spaces)"
                ));
            }
            if listed.iter().filter(|p| **p == name).count() > 1 {
                return Err(format!("duplicate node ID {name:?} in cluster_peers"));
            }
            if let Some(other) = seen.insert(crate::cluster::node_id(name), name) {
                if other != name {
                    return Err(format!(
                        "node IDs {other:?} and {name:?} collide; rename one"
                    ));
                }
            }
        }
        Ok(())
    }
}
