//! The store a clustered leader's engine writes to: reads come from the
//! node's own store; each write is proposed to the Raft group and returns
//! once a majority has it and it is applied here, so the engine, unchanged,
//! acknowledges only replicated writes.
//!
//! Store calls run on the blocking pool, which is where this waits for
//! the commit. Sent and acknowledged positions are the exception: they are
//! held back and replicated in batches ([`super::lazy_subs`]).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio_util::task::AbortOnDropHandle;

use bytes::Bytes;
use prost::Message as _;

use super::lazy_subs::{ChannelHeld, LazySubs, INTERVAL, MAX_HELD};
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

/// Proposes a channel's subscription changes as one entry.
fn propose_subs(raft: &Raft, channel: &str, updates: &[SubUpdate]) -> Result<()> {
    propose(
        raft,
        Op::Subs {
            channel: channel.to_string(),
            updates: updates.iter().map(SubOp::from).collect(),
        },
    )
}

/// Proposes every channel's held changes; a failure is logged (the changes
/// are lost: their messages are redelivered).
fn write_held(raft: &Raft, lazy: &LazySubs) {
    for (channel, held) in lazy.all() {
        if let Err(e) = held.write_through(&[], |u| propose_subs(raft, &channel, &u)) {
            tracing::warn!(%channel, error = %e, "replicating sent and acked positions failed");
        }
    }
}

/// A node's store, written through Raft.
pub struct ReplicatedStore {
    local: Arc<dyn Store>,
    raft: Raft,
    sync: bool,
    lazy: Arc<LazySubs>,
    _writing_held: AbortOnDropHandle<()>,
}

impl ReplicatedStore {
    /// Writes to `local` through `raft` (whose state machine applies to
    /// `local`); `sync` as the state machine's (`cluster_sync`); `held`
    /// counts the positions held back ([`super::RaftStatus::held`]). Starts the
    /// task that writes held positions every [`INTERVAL`]: call it within
    /// the runtime.
    pub fn new(
        local: Arc<dyn Store>,
        raft: Raft,
        sync: bool,
        held: Arc<AtomicUsize>,
    ) -> ReplicatedStore {
        let lazy = Arc::new(LazySubs::counting(held));
        let writing_held = {
            let (raft, lazy) = (raft.clone(), lazy.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let (raft, lazy) = (raft.clone(), lazy.clone());
                    let _ = tokio::task::spawn_blocking(move || write_held(&raft, &lazy)).await;
                }
            })
        };
        ReplicatedStore {
            local,
            raft,
            sync,
            lazy,
            _writing_held: AbortOnDropHandle::new(writing_held),
        }
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
            held: self.lazy.channel(name),
        }))
    }

    fn delete_channel(&self, name: &str) -> Result<()> {
        self.lazy.remove(name, || {
            propose(&self.raft, Op::DeleteChannel(name.to_string()))
        })
    }

    fn flush(&self) -> Result<()> {
        // Every write is durable in the Raft log once it returns, held
        // positions once written here; the store is flushed by the state
        // machine, and here only with cluster_sync.
        write_held(&self.raft, &self.lazy);
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
    held: Arc<ChannelHeld>,
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
        self.held
            .write_through(updates, |u| propose_subs(&self.raft, self.name(), &u))
    }

    fn apply_subs_lazily(&self, updates: &[SubUpdate]) -> Result<()> {
        match self.held.hold(updates) {
            Some(held) if held < MAX_HELD => Ok(()),
            Some(_) => self.apply_subs(&[]),
            None => self.apply_subs(updates),
        }
    }
}
