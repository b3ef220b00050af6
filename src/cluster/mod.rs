//! Clustering on openraft, carried over NATS: the building blocks.
//!
//! The plan (issue 10): every store write of the leader becomes a Raft
//! entry ([`Op`]), applied by each node's state machine to its own
//! stanchion store; the engine serves clients only on the leader, and a new
//! leader starts it on its replicated store as a restart would. The log
//! and vote live in segment files beside the store ([`LogStore`]); the RPCs travel
//! as NATS requests under `_STAN.raft.<cluster_id>.` ([`network`]).
//!
//! The server's clustered mode (`server::clustered`) puts these together;
//! each is also tested on its own (openraft's storage suite, and three
//! nodes electing and replicating over a real nats-server).

// openraft's StorageError is large and is what its traits return.
#![allow(clippy::result_large_err)]

pub mod join;
mod lazy_subs;
mod log_file;
mod log_store;
pub mod membership;
pub mod network;
mod op;
mod replicated;
mod snapshot;
mod state_machine;
mod status;

use std::io::Cursor;

pub use log_store::LogStore;
pub use op::{Op, SubOp};
pub use replicated::ReplicatedStore;
pub use state_machine::StateMachine;
pub use status::{Committed, RaftSample, RaftStatus};

/// A node's Raft ID: a stable hash of its name (NSS names nodes with
/// strings; openraft wants a number). Names that collide are refused with
/// duplicate names when the configuration is checked.
pub type NodeId = u64;

/// What the membership records of each node: its name, which makes the
/// NATS subjects it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterNode {
    /// The node's name (`cluster_node_id`).
    pub name: String,
}

impl std::fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// The result of applying one entry: the entry's log index.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    /// The index the entry was applied at.
    pub index: u64,
}

openraft::declare_raft_types!(
    /// stanchion's Raft types.
    pub TypeConfig:
        D = Op,
        R = Applied,
        NodeId = NodeId,
        Node = ClusterNode,
);

/// A Raft node of this configuration.
pub type Raft = openraft::Raft<TypeConfig>;

/// The Raft ID of the node named `name`: FNV-1a over its bytes.
pub fn node_id(name: &str) -> NodeId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Encodes a value of the Raft layer (entries, votes, RPCs) as MessagePack.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec(value)
}

/// Decodes what [`encode`] made.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_stable_and_distinct() {
        assert_eq!(node_id("a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a of \"a\"");
        assert_ne!(node_id("node-1"), node_id("node-2"));
    }
}
