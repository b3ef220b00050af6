//! What a Raft snapshot carries: a node's store without its messages
//! (server info, clients, each channel's range and subscriptions), so a
//! snapshot costs what the state costs, not what the messages do, and
//! taking one every few thousand entries stays cheap with millions of
//! messages stored. As in NSS, a node that installs a snapshot fetches the
//! messages it lacks from another node ([`MessageSource`]), and keeps the
//! ones it has: a node that was down a while fetches only what came since.
//!
//! An image is taken while no entry is applied (the state machine holds its
//! lock), so it is exactly the state at the snapshot's index. Messages are
//! never rewritten, so a message of a channel's range is the same whenever
//! it is read; one removed since (limits) is removed by a later entry too.

use bytes::Bytes;
use prost::Message as _;

use crate::protocol::pb::MsgProto;
use crate::store::{ChannelStore, Store, StoreError, SubState, SubUpdate};

/// A store's state but its messages, records in their store encoding.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Image {
    server_info: Option<Bytes>,
    clients: Vec<Bytes>,
    channels: Vec<ChannelImage>,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct ChannelImage {
    name: String,
    /// The oldest stored sequence (`last + 1` when none is stored).
    first: u64,
    /// The last sequence the channel ever had.
    last: u64,
    /// Each subscription record with its pending sequences.
    subs: Vec<(Bytes, Vec<u64>)>,
}

/// Where an installing node gets the messages it lacks.
pub trait MessageSource {
    /// Messages of `channel` in `from..=to`, ascending: a first part of
    /// them (the rest comes from the next call), starting later than `from`
    /// when the source removed the first ones; empty when it has none.
    ///
    /// # Errors
    /// When no node could give them.
    fn fetch(&self, channel: &str, from: u64, to: u64) -> Result<Vec<MsgProto>, String>;
}

/// Why an image could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No node gave the messages.
    #[error("fetching the messages of {channel} from {from}: {why}")]
    Fetch {
        /// The channel.
        channel: String,
        /// The first sequence missing.
        from: u64,
        /// Why.
        why: String,
    },
}

/// Reads a store's image. Blocking; reads no message.
///
/// # Errors
/// The store's.
pub fn take(store: &dyn Store) -> crate::store::Result<Image> {
    let mut out = Image {
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
        let first = if state.msgs == 0 {
            state.last + 1
        } else {
            state.first
        };
        let subs = c
            .subs()?
            .into_iter()
            .map(|s| (Bytes::from(s.state.encode_to_vec()), s.pending))
            .collect();
        out.channels.push(ChannelImage {
            name,
            first,
            last: state.last,
            subs,
        });
    }
    Ok(out)
}

/// Makes `store` hold `image`: what it has of each channel's range is
/// kept, the rest fetched from `source`; everything else is replaced.
/// Blocking.
///
/// # Errors
/// A record that does not decode, the store's failure, or messages that
/// no node could give.
pub fn install(
    store: &dyn Store,
    image: &Image,
    source: &dyn MessageSource,
) -> Result<(), InstallError> {
    let corrupt = |what| move |source| StoreError::Corrupt { what, source };
    for name in store.channel_names()? {
        if !image.channels.iter().any(|c| c.name == name) {
            store.delete_channel(&name)?;
        }
    }
    for client in store.clients()? {
        store.delete_client(&client.id)?;
    }
    if let Some(info) = &image.server_info {
        let info =
            crate::store::ServerInfo::decode(info.clone()).map_err(corrupt("server info"))?;
        store.set_server_info(&info)?;
    }
    for client in &image.clients {
        let client = crate::store::ClientInfo::decode(client.clone()).map_err(corrupt("client"))?;
        store.put_client(&client)?;
    }
    for ch in &image.channels {
        let mut c = store.open_channel(&ch.name)?;
        if c.state().last > ch.last {
            // Ahead of the image: not this history. Start the channel over.
            store.delete_channel(&ch.name)?;
            c = store.open_channel(&ch.name)?;
        }
        messages(&*c, ch, source)?;
        let mut updates: Vec<SubUpdate> = c
            .subs()?
            .into_iter()
            .map(|s| SubUpdate::Delete(s.state.id))
            .collect();
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
    store.flush()?;
    Ok(())
}

/// Gives channel `c` the image's range: drops what is older, fetches what
/// it lacks.
fn messages(
    c: &dyn ChannelStore,
    ch: &ChannelImage,
    source: &dyn MessageSource,
) -> Result<(), InstallError> {
    let state = c.state();
    if state.msgs > 0 && state.first < ch.first {
        c.remove_through((ch.first - 1).min(state.last))?;
    }
    let mut from = ch.first.max(c.state().last + 1);
    while from <= ch.last {
        let fetched = source
            .fetch(&ch.name, from, ch.last)
            .map_err(|why| InstallError::Fetch {
                channel: ch.name.clone(),
                from,
                why,
            })?;
        let Some(head) = fetched.first().map(|m| m.sequence) else {
            // The source has none left of the range: they were removed.
            break;
        };
        if head != c.state().last + 1 {
            // A gap (removed at the source): the log continues after it.
            let st = c.state();
            if st.msgs > 0 {
                c.remove_through(st.last)?;
            }
            c.start_after(head - 1)?;
        }
        let tail = fetched.last().map_or(head, |m| m.sequence);
        c.append(&fetched)?;
        from = tail + 1;
    }
    // Nothing stored reaches the image's last: the channel still goes on
    // from it.
    if c.state().last < ch.last {
        let st = c.state();
        if st.msgs > 0 {
            c.remove_through(st.last)?;
        }
        c.start_after(ch.last)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cluster::op::Applier;
    use crate::cluster::Op;
    use crate::store::MemoryStore;

    /// A [`MessageSource`] reading another store directly.
    pub struct StoreSource<'a>(pub &'a dyn Store);

    impl MessageSource for StoreSource<'_> {
        fn fetch(&self, channel: &str, from: u64, to: u64) -> Result<Vec<MsgProto>, String> {
            let c = self.0.open_channel(channel).map_err(|e| e.to_string())?;
            let mut page = c.range(from, 100).map_err(|e| e.to_string())?;
            page.retain(|m| m.sequence <= to);
            Ok(page)
        }
    }

    fn msg(seq: u64) -> Bytes {
        MsgProto {
            sequence: seq,
            subject: "orders".into(),
            data: Bytes::from(format!("m{seq}")),
            ..Default::default()
        }
        .encode_to_vec()
        .into()
    }

    fn append(a: &mut Applier, seqs: std::ops::RangeInclusive<u64>) {
        a.apply(&Op::Append {
            channel: "orders".into(),
            msgs: seqs.map(msg).collect(),
        })
        .unwrap();
    }

    fn data(store: &dyn Store, channel: &str) -> Vec<(u64, Bytes)> {
        let c = store.open_channel(channel).unwrap();
        c.range(1, 10_000)
            .unwrap()
            .into_iter()
            .map(|m| (m.sequence, m.data))
            .collect()
    }

    /// A source that counts what it was asked for.
    struct Counting<'a>(StoreSource<'a>, std::cell::Cell<u64>);

    impl MessageSource for Counting<'_> {
        fn fetch(&self, channel: &str, from: u64, to: u64) -> Result<Vec<MsgProto>, String> {
            let page = self.0.fetch(channel, from, to)?;
            self.1.set(self.1.get() + page.len() as u64);
            Ok(page)
        }
    }

    #[test]
    fn an_installed_image_is_the_same_store_and_fetches_only_what_is_missing() {
        let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut a = Applier::new(source.clone());
        append(&mut a, 1..=300);
        // A node that had the first 120 messages.
        let target: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut t = Applier::new(target.clone());
        append(&mut t, 1..=120);
        target.open_channel("stale").unwrap();

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
        let taken = take(source.as_ref()).unwrap();

        let counting = Counting(StoreSource(source.as_ref()), Default::default());
        install(target.as_ref(), &taken, &counting).unwrap();
        assert_eq!(counting.1.get(), 180, "only 121..=300 are fetched");
        assert_eq!(take(target.as_ref()).unwrap(), taken);
        assert_eq!(
            data(target.as_ref(), "orders"),
            data(source.as_ref(), "orders")
        );
        let st = target.open_channel("orders").unwrap().state();
        assert_eq!((st.first, st.last, st.msgs), (3, 300, 298));
        assert_eq!(target.open_channel("empty").unwrap().state().last, 9);
        assert!(!target.channel_names().unwrap().contains(&"stale".into()));
    }

    #[test]
    fn messages_the_source_removed_meanwhile_leave_a_consistent_range() {
        let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let mut a = Applier::new(source.clone());
        append(&mut a, 1..=50);
        let taken = take(source.as_ref()).unwrap();
        // Limits remove messages at the source before the install reads them.
        a.apply(&Op::RemoveThrough {
            channel: "orders".into(),
            seq: 30,
        })
        .unwrap();
        let target: Arc<dyn Store> = Arc::new(MemoryStore::new());
        install(target.as_ref(), &taken, &StoreSource(source.as_ref())).unwrap();
        let st = target.open_channel("orders").unwrap().state();
        assert_eq!((st.first, st.last, st.msgs), (31, 50, 20));
        // And all of them gone: the channel still goes on after 50.
        a.apply(&Op::RemoveThrough {
            channel: "orders".into(),
            seq: 50,
        })
        .unwrap();
        let empty: Arc<dyn Store> = Arc::new(MemoryStore::new());
        install(empty.as_ref(), &taken, &StoreSource(source.as_ref())).unwrap();
        let st = empty.open_channel("orders").unwrap().state();
        assert_eq!((st.last, st.msgs), (50, 0));
    }

    #[test]
    fn a_source_that_fails_names_the_channel() {
        struct Down;
        impl MessageSource for Down {
            fn fetch(&self, _: &str, _: u64, _: u64) -> Result<Vec<MsgProto>, String> {
                Err("no node answered".into())
            }
        }
        let source: Arc<dyn Store> = Arc::new(MemoryStore::new());
        append(&mut Applier::new(source.clone()), 1..=5);
        let taken = take(source.as_ref()).unwrap();
        let err = install(&MemoryStore::new(), &taken, &Down).unwrap_err();
        assert_eq!(
            err.to_string(),
            "fetching the messages of orders from 1: no node answered"
        );
    }
}
