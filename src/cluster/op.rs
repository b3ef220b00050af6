//! The replicated operations: each is one store write of the leader, and
//! each node applies it to its own store.
//!
//! Applying is idempotent (an append skips sequences the channel already
//! has, puts replace, deletes of what is gone do nothing), so a node that
//! crashed between applying entries and recording how far it got can apply
//! them again.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;

use crate::protocol::pb::MsgProto;
use crate::store::{ChannelStore, ClientInfo, ServerInfo, Store, StoreError, SubState, SubUpdate};

/// One store write, as the Raft log carries it. Records travel in their
/// store encoding (protobuf).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// [`Store::set_server_info`].
    ServerInfo(Bytes),
    /// [`Store::put_client`].
    PutClient(Bytes),
    /// [`Store::delete_client`].
    DeleteClient(String),
    /// [`ChannelStore::append`]: one entry per channel batch.
    Append {
        /// The channel.
        channel: String,
        /// The messages, sequences assigned by the leader.
        msgs: Vec<Bytes>,
    },
    /// [`ChannelStore::remove_through`] (limits, expiry).
    RemoveThrough {
        /// The channel.
        channel: String,
        /// The last sequence removed.
        seq: u64,
    },
    /// [`ChannelStore::start_after`].
    StartAfter {
        /// The channel.
        channel: String,
        /// The sequence the channel continues after.
        last: u64,
    },
    /// [`ChannelStore::apply_subs`]: subscription records, sent and acked
    /// sequences.
    Subs {
        /// The channel.
        channel: String,
        /// The updates, in order.
        updates: Vec<SubOp>,
    },
    /// [`Store::delete_channel`].
    DeleteChannel(String),
}

/// A [`SubUpdate`] in the log.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum SubOp {
    /// Create or replace a subscription record (`SubState`, encoded).
    Put(Bytes),
    /// Remove a subscription.
    Delete(u64),
    /// A message sent, awaiting its ack.
    AddPending(u64, u64),
    /// A pending message acknowledged.
    RemovePending(u64, u64),
}

impl From<&SubUpdate> for SubOp {
    fn from(u: &SubUpdate) -> SubOp {
        match u {
            SubUpdate::Put(state) => SubOp::Put(state.encode_to_vec().into()),
            SubUpdate::Delete(id) => SubOp::Delete(*id),
            SubUpdate::AddPending { sub, seq } => SubOp::AddPending(*sub, *seq),
            SubUpdate::RemovePending { sub, seq } => SubOp::RemovePending(*sub, *seq),
        }
    }
}

fn corrupt(what: &'static str) -> impl FnOnce(prost::DecodeError) -> StoreError {
    move |source| StoreError::Corrupt { what, source }
}

/// Applies ops to one store, keeping its channels open between ops.
pub struct Applier {
    store: Arc<dyn Store>,
    channels: HashMap<String, Arc<dyn ChannelStore>>,
}

impl Applier {
    /// An applier writing to `store`.
    pub fn new(store: Arc<dyn Store>) -> Applier {
        Applier {
            store,
            channels: HashMap::new(),
        }
    }

    /// The store written to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn channel(&mut self, name: &str) -> crate::store::Result<Arc<dyn ChannelStore>> {
        if let Some(c) = self.channels.get(name) {
            return Ok(c.clone());
        }
        let c = self.store.open_channel(name)?;
        self.channels.insert(name.to_string(), c.clone());
        Ok(c)
    }

    /// Applies one op. Blocking: call it off the async workers.
    ///
    /// # Errors
    /// A record that does not decode, or the store's failure.
    pub fn apply(&mut self, op: &Op) -> crate::store::Result<()> {
        match op {
            Op::ServerInfo(b) => {
                let info = ServerInfo::decode(b.clone()).map_err(corrupt("server info"))?;
                self.store.set_server_info(&info)
            }
            Op::PutClient(b) => {
                let client = ClientInfo::decode(b.clone()).map_err(corrupt("client"))?;
                self.store.put_client(&client)
            }
            Op::DeleteClient(id) => self.store.delete_client(id),
            Op::Append { channel, msgs } => {
                let c = self.channel(channel)?;
                let last = c.state().last;
                let mut fresh = Vec::with_capacity(msgs.len());
                for m in msgs {
                    let m = MsgProto::decode(m.clone()).map_err(corrupt("message"))?;
                    if m.sequence > last {
                        fresh.push(m);
                    }
                }
                if fresh.is_empty() {
                    return Ok(());
                }
                // Made durable by the state machine's flush.
                c.append(&fresh)
            }
            Op::RemoveThrough { channel, seq } => self.channel(channel)?.remove_through(*seq),
            Op::StartAfter { channel, last } => {
                let c = self.channel(channel)?;
                if c.state().last >= *last {
                    return Ok(());
                }
                c.start_after(*last)
            }
            Op::Subs { channel, updates } => {
                let mut out = Vec::with_capacity(updates.len());
                for u in updates {
                    out.push(match u {
                        SubOp::Put(b) => SubUpdate::Put(
                            SubState::decode(b.clone()).map_err(corrupt("subscription"))?,
                        ),
                        SubOp::Delete(id) => SubUpdate::Delete(*id),
                        SubOp::AddPending(sub, seq) => SubUpdate::AddPending {
                            sub: *sub,
                            seq: *seq,
                        },
                        SubOp::RemovePending(sub, seq) => SubUpdate::RemovePending {
                            sub: *sub,
                            seq: *seq,
                        },
                    });
                }
                self.channel(channel)?.apply_subs(&out)
            }
            Op::DeleteChannel(name) => {
                self.channels.remove(name);
                if self.store.channel_names()?.iter().any(|n| n == name) {
                    self.store.delete_channel(name)
                } else {
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn msg(seq: u64) -> Bytes {
        MsgProto {
            sequence: seq,
            subject: "orders".into(),
            data: Bytes::from(format!("m{seq}")),
            timestamp: 1,
            ..Default::default()
        }
        .encode_to_vec()
        .into()
    }

    #[test]
    fn ops_reach_the_store_and_applying_twice_changes_nothing() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut a = Applier::new(store.clone());
        let client = ClientInfo {
            id: "c1".into(),
            hb_inbox: "_INBOX.hb".into(),
            ..Default::default()
        };
        let ops = [
            Op::PutClient(client.encode_to_vec().into()),
            Op::Append {
                channel: "orders".into(),
                msgs: vec![msg(1), msg(2), msg(3)],
            },
            Op::RemoveThrough {
                channel: "orders".into(),
                seq: 1,
            },
        ];
        for _ in 0..2 {
            for op in &ops {
                a.apply(op).unwrap();
            }
        }
        assert_eq!(store.clients().unwrap(), vec![client]);
        let orders = store.open_channel("orders").unwrap();
        let st = orders.state();
        assert_eq!((st.first, st.last, st.msgs), (2, 3, 2));
        a.apply(&Op::DeleteClient("c1".into())).unwrap();
        a.apply(&Op::DeleteChannel("orders".into())).unwrap();
        a.apply(&Op::DeleteChannel("orders".into())).unwrap();
        assert!(store.clients().unwrap().is_empty());
        assert!(store.channel_names().unwrap().is_empty());
    }

    #[test]
    fn a_damaged_record_is_an_error_not_a_panic() {
        let mut a = Applier::new(Arc::new(MemoryStore::new()));
        let err = a
            .apply(&Op::PutClient(Bytes::from_static(b"\xff\xff")))
            .unwrap_err();
        assert!(err.to_string().contains("client"), "{err}");
    }
}
