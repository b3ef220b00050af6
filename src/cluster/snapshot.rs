//! A node's whole store as one value: what a Raft snapshot carries, so a
//! node that joins empty, or fell behind a compacted log, gets the state.
//!
//! Taken and restored while no entry is applied (the state machine holds
//! its lock), so the dump is exactly the state at the snapshot's index.

use bytes::Bytes;
use prost::Message as _;

use crate::store::{Store, StoreError, SubState, SubUpdate};

/// Everything in a store, records in their store encoding.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Dump {
    server_info: Option<Bytes>,
    clients: Vec<Bytes>,
    channels: Vec<ChannelDump>,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct ChannelDump {
    name: String,
    /// The last sequence the channel ever had (messages may all be gone).
    last: u64,
    msgs: Vec<Bytes>,
    /// Each subscription record with its pending sequences.
    subs: Vec<(Bytes, Vec<u64>)>,
}

/// Reads the whole store. Blocking.
///
/// # Errors
/// The store's.
pub fn dump(store: &dyn Store) -> crate::store::Result<Dump> {
    let mut out = Dump {
        server_info: store.server_info()?.map(|i| i.encode_to_vec().into()),
        clients: store
            .clients()?
            .iter()
            .map(|c| c.encode_to_vec().into())
            .collect(),
        channels: Vec::new(),
    };
    let mut names = store.channel_names()?;
    names.sort();
    for name in names {
        let c = store.open_channel(&name)?;
        let state = c.state();
        let mut msgs = Vec::new();
        let mut from = state.first.max(1);
        while state.msgs > 0 && from <= state.last {
            let page = c.range(from, 1024)?;
            let Some(last) = page.last().map(|m| m.sequence) else {
                break;
            };
            msgs.extend(page.iter().map(|m| Bytes::from(m.encode_to_vec())));
            from = last + 1;
        }
        let subs = c
            .subs()?
            .into_iter()
            .map(|s| (Bytes::from(s.state.encode_to_vec()), s.pending))
            .collect();
        out.channels.push(ChannelDump {
            name,
            last: state.last,
            msgs,
            subs,
        });
    }
    Ok(out)
}

/// Replaces everything in `store` with `dump`. Blocking.
///
/// # Errors
/// A record that does not decode, or the store's failure.
pub fn restore(store: &dyn Store, dump: &Dump) -> crate::store::Result<()> {
    let corrupt = |what| move |source| StoreError::Corrupt { what, source };
    for name in store.channel_names()? {
        store.delete_channel(&name)?;
    }
    for client in store.clients()? {
        store.delete_client(&client.id)?;
    }
    if let Some(info) = &dump.server_info {
        let info =
            crate::store::ServerInfo::decode(info.clone()).map_err(corrupt("server info"))?;
        store.set_server_info(&info)?;
    }
    for client in &dump.clients {
        let client = crate::store::ClientInfo::decode(client.clone()).map_err(corrupt("client"))?;
        store.put_client(&client)?;
    }
    for ch in &dump.channels {
        let c = store.open_channel(&ch.name)?;
        let mut msgs = Vec::with_capacity(ch.msgs.len());
        for m in &ch.msgs {
            msgs.push(
                crate::protocol::pb::MsgProto::decode(m.clone()).map_err(corrupt("message"))?,
            );
        }
        let first = msgs.first().map_or(ch.last + 1, |m| m.sequence);
        if first > 1 {
            c.start_after(first - 1)?;
        }
        if !msgs.is_empty() {
            c.append(&msgs)?;
            c.commit()?;
        }
        let mut updates = Vec::new();
        for (state, pending) in &ch.subs {
            let state = SubState::decode(state.clone()).map_err(corrupt("subscription"))?;
            let sub = state.id;
            updates.push(SubUpdate::Put(state));
            updates.extend(
                pending
                    .iter()
                    .map(|&seq| SubUpdate::AddPending { sub, seq }),
            );
        }
        c.apply_subs(&updates)?;
    }
    store.flush()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::op::Applier;
    use crate::cluster::Op;
    use crate::store::MemoryStore;

    #[test]
    fn a_restored_dump_is_the_same_store() {
        let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut a = Applier::new(source.clone());
        let msg = |seq: u64| -> Bytes {
            crate::protocol::pb::MsgProto {
                sequence: seq,
                subject: "orders".into(),
                data: Bytes::from(format!("m{seq}")),
                ..Default::default()
            }
            .encode_to_vec()
            .into()
        };
        a.apply(&Op::Append {
            channel: "orders".into(),
            msgs: (1..=5).map(msg).collect(),
        })
        .unwrap();
        a.apply(&Op::RemoveThrough {
            channel: "orders".into(),
            seq: 2,
        })
        .unwrap();
        let sub = SubState {
            id: 7,
            client_id: "c".into(),
            ..Default::default()
        };
        a.apply(&Op::Subs {
            channel: "orders".into(),
            updates: vec![
                crate::cluster::SubOp::Put(sub.encode_to_vec().into()),
                crate::cluster::SubOp::AddPending(7, 4),
            ],
        })
        .unwrap();
        a.apply(&Op::StartAfter {
            channel: "empty".into(),
            last: 9,
        })
        .unwrap();
        let taken = dump(source.as_ref()).unwrap();

        let target: Arc<dyn Store> = Arc::new(MemoryStore::new());
        target.open_channel("stale").unwrap();
        restore(target.as_ref(), &taken).unwrap();
        assert_eq!(dump(target.as_ref()).unwrap(), taken);
        let orders = target.open_channel("orders").unwrap();
        let st = orders.state();
        assert_eq!((st.first, st.last), (3, 5));
        assert_eq!(target.open_channel("empty").unwrap().state().last, 9);
    }
}
