//! The store a clustered leader's engine writes to: reads come from the
//! node's own store; each write is proposed to the Raft group and returns
//! once a majority has it and it is applied here, so the engine, unchanged,
//! acknowledges only replicated writes.
//!
//! Store calls run on the blocking pool, which is where this waits for
//! the commit.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use super::{Op, Raft, SubOp};
use crate::protocol::pb::MsgProto;
use crate::store::{
    ChannelState, ChannelStore, ClientInfo, RecoveredSub, Result, ServerInfo, Store, StoreError,
    SubUpdate,
};

/// Proposes `op` and waits until it is applied on this node.
fn propose(raft: &Raft, op: Op) -> Result<()> {
    futures::executor::block_on(raft.client_write(op))
        .map(drop)
        .map_err(|e| StoreError::Replication(e.to_string()))
}

/// A node's store, written through Raft.
pub struct ReplicatedStore {
    local: Arc<dyn Store>,
    raft: Raft,
    sync: bool,
}

impl ReplicatedStore {
    /// Writes to `local` through `raft` (whose state machine applies to
    /// `local`); `sync` as the state machine's (`cluster_sync`).
    pub fn new(local: Arc<dyn Store>, raft: Raft, sync: bool) -> ReplicatedStore {
        ReplicatedStore { local, raft, sync }
    }
}

impl Store for ReplicatedStore {
    fn server_info(&self) -> Result<Option<ServerInfo>> {
        self.local.server_info()
    }

    fn set_server_info(&self, info: &ServerInfo) -> Result<()> {
        propose(&self.raft, Op::ServerInfo(info.encode_to_vec().into()))
    }

    fn clients(&self) -> Result<Vec<ClientInfo>> {
        self.local.clients()
    }

    fn put_client(&self, client: &ClientInfo) -> Result<()> {
        propose(&self.raft, Op::PutClient(client.encode_to_vec().into()))
    }

    fn delete_client(&self, id: &str) -> Result<()> {
        propose(&self.raft, Op::DeleteClient(id.to_string()))
    }

    fn channel_names(&self) -> Result<Vec<String>> {
        self.local.channel_names()
    }

    fn open_channel(&self, name: &str) -> Result<Arc<dyn ChannelStore>> {
        Ok(Arc::new(ReplicatedChannel {
            local: self.local.open_channel(name)?,
            raft: self.raft.clone(),
        }))
    }

    fn delete_channel(&self, name: &str) -> Result<()> {
        propose(&self.raft, Op::DeleteChannel(name.to_string()))
    }

    fn flush(&self) -> Result<()> {
        // Every write is durable in the Raft log once it returns; the store
        // is flushed by the state machine, and here only with cluster_sync.
        if self.sync {
            self.local.flush()
        } else {
            Ok(())
        }
    }
}

/// A channel of a [`ReplicatedStore`].
struct ReplicatedChannel {
    local: Arc<dyn ChannelStore>,
    raft: Raft,
}

impl ReplicatedChannel {
    fn propose(&self, op: Op) -> Result<()> {
        propose(&self.raft, op)
    }
}

impl ChannelStore for ReplicatedChannel {
    fn name(&self) -> &str {
        self.local.name()
    }

    fn state(&self) -> ChannelState {
        self.local.state()
    }

    fn append(&self, msgs: &[MsgProto]) -> Result<()> {
        self.propose(Op::Append {
            channel: self.name().to_string(),
            msgs: msgs
                .iter()
                .map(|m| Bytes::from(m.encode_to_vec()))
                .collect(),
        })
    }

    fn commit(&self) -> Result<()> {
        // An append returns once applied, and applying commits.
        Ok(())
    }

    fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        self.local.get(seq)
    }

    fn range(&self, from: u64, max: usize) -> Result<Vec<MsgProto>> {
        self.local.range(from, max)
    }

    fn first_seq_at_or_after(&self, timestamp: i64) -> Result<Option<u64>> {
        self.local.first_seq_at_or_after(timestamp)
    }

    fn remove_through(&self, seq: u64) -> Result<()> {
        self.propose(Op::RemoveThrough {
            channel: self.name().to_string(),
            seq,
        })
    }

    fn start_after(&self, last: u64) -> Result<()> {
        self.propose(Op::StartAfter {
            channel: self.name().to_string(),
            last,
        })
    }

    fn subs(&self) -> Result<Vec<RecoveredSub>> {
        self.local.subs()
    }

    fn apply_subs(&self, updates: &[SubUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        self.propose(Op::Subs {
            channel: self.name().to_string(),
            updates: updates.iter().map(SubOp::from).collect(),
        })
    }
}
