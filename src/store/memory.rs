//! In-memory store: every record in locked std maps, nothing survives the
//! process. Used by tests, ephemeral servers, and as the model that the sled
//! store is checked against, so its behaviour is the reference semantics of
//! the `Store` traits (including the edge cases documented there).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use super::codec::{counted_size, stored_form};
use super::{
    ChannelState, ChannelStore, ClientInfo, RecoveredSub, Result, ServerInfo, Store, StoreError,
    SubState, SubUpdate,
};
use crate::protocol::pb::MsgProto;

/// A store kept entirely in memory; `flush` has nothing to do.
///
/// Opening the same channel name twice hands out the same channel data, so
/// every handle sees every write, as with the durable store.
#[derive(Default)]
pub struct MemoryStore {
    /// Server-wide records. A std mutex: held only for map operations,
    /// never across I/O or `.await`.
    inner: Mutex<Inner>,
}

/// The server-wide records of a [`MemoryStore`].
#[derive(Default)]
struct Inner {
    /// The saved server info, if any.
    server_info: Option<ServerInfo>,
    /// Clients by ID (ordered, like the sled tree).
    clients: BTreeMap<String, ClientInfo>,
    /// Channels by name; deleting removes the entry, so a new open starts empty.
    channels: HashMap<String, Arc<MemoryChannel>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the server-wide records; a poisoned lock still holds valid maps
    /// (every mutation is a single map call), so poisoning is ignored.
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn server_info(&self) -> Result<Option<ServerInfo>> {
        Ok(self.inner().server_info.clone())
    }

    fn set_server_info(&self, info: &ServerInfo) -> Result<()> {
        self.inner().server_info = Some(info.clone());
        Ok(())
    }

    fn clients(&self) -> Result<Vec<ClientInfo>> {
        Ok(self.inner().clients.values().cloned().collect())
    }

    fn put_client(&self, client: &ClientInfo) -> Result<()> {
        self.inner()
            .clients
            .insert(client.id.clone(), client.clone());
        Ok(())
    }

    fn delete_client(&self, id: &str) -> Result<()> {
        self.inner().clients.remove(id);
        Ok(())
    }

    fn channel_names(&self) -> Result<Vec<String>> {
        Ok(self.inner().channels.keys().cloned().collect())
    }

    fn open_channel(&self, name: &str) -> Result<Arc<dyn ChannelStore>> {
        let mut inner = self.inner();
        let channel = inner
            .channels
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(MemoryChannel::new(name)));
        Ok(channel.clone())
    }

    fn delete_channel(&self, name: &str) -> Result<()> {
        self.inner().channels.remove(name);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

/// One channel of a [`MemoryStore`]. Handles still held after the channel is
/// deleted keep working on detached data that no new open will see.
struct MemoryChannel {
    /// The channel's name.
    name: String,
    /// The message log; readers (range, get) share it, writers exclude.
    log: RwLock<Log>,
    /// Subscription records and pending sequences.
    subs: Mutex<Subs>,
}

/// A channel's messages and counts.
#[derive(Default)]
struct Log {
    /// Stored messages, contiguous and ascending by sequence.
    msgs: VecDeque<MsgProto>,
    /// The newest sequence ever stored; kept when the log empties.
    last: u64,
    /// Sum of the stored messages' encoded sizes.
    bytes: u64,
}

impl Log {
    /// Sequence of the oldest stored message, 0 when empty.
    fn first(&self) -> u64 {
        self.msgs.front().map_or(0, |m| m.sequence)
    }
}

/// A channel's subscriptions, laid out like the sled trees: pending keys are
/// independent of records, and `subs()` reports pending only for recorded subs.
#[derive(Default)]
struct Subs {
    /// Subscription records by ID.
    records: BTreeMap<u64, SubState>,
    /// (subscription ID, sequence) pairs awaiting acknowledgement.
    pending: BTreeSet<(u64, u64)>,
}

impl MemoryChannel {
    /// An empty channel.
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            log: RwLock::default(),
            subs: Mutex::default(),
        }
    }

    /// Reads the log; poisoning is ignored because each mutation leaves the
    /// log consistent before any call that could panic.
    fn read_log(&self) -> std::sync::RwLockReadGuard<'_, Log> {
        self.log.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the log (see [`Self::read_log`] on poisoning).
    fn write_log(&self) -> std::sync::RwLockWriteGuard<'_, Log> {
        self.log.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the subscriptions (see [`Self::read_log`] on poisoning).
    fn lock_subs(&self) -> MutexGuard<'_, Subs> {
        self.subs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ChannelStore for MemoryChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn state(&self) -> ChannelState {
        let log = self.read_log();
        ChannelState {
            first: log.first(),
            last: log.last,
            msgs: super::codec::len_u64(log.msgs.len()),
            bytes: log.bytes,
        }
    }

    fn commit(&self) -> Result<()> {
        Ok(())
    }

    fn append(&self, msgs: &[MsgProto]) -> Result<()> {
        let mut log = self.write_log();
        // Check the whole batch first so that a refused append stores nothing.
        for (expected, msg) in (log.last.saturating_add(1)..).zip(msgs) {
            if msg.sequence != expected {
                return Err(StoreError::OutOfOrder {
                    channel: self.name.clone(),
                    last: expected - 1,
                    got: msg.sequence,
                });
            }
        }
        for msg in msgs {
            let stored = stored_form(msg).into_owned();
            log.bytes += counted_size(&stored);
            log.last = stored.sequence;
            log.msgs.push_back(stored);
        }
        Ok(())
    }

    fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        let log = self.read_log();
        let first = log.first();
        if log.msgs.is_empty() || seq < first {
            return Ok(None);
        }
        let index = usize::try_from(seq - first).unwrap_or(usize::MAX);
        Ok(log.msgs.get(index).cloned())
    }

    fn range(&self, from: u64, max: usize) -> Result<Vec<MsgProto>> {
        let log = self.read_log();
        let skip = usize::try_from(from.saturating_sub(log.first())).unwrap_or(usize::MAX);
        if skip >= log.msgs.len() {
            return Ok(Vec::new());
        }
        Ok(log.msgs.range(skip..).take(max).cloned().collect())
    }

    fn first_seq_at_or_after(&self, timestamp: i64) -> Result<Option<u64>> {
        let log = self.read_log();
        let index = log.msgs.partition_point(|m| m.timestamp < timestamp);
        Ok(log.msgs.get(index).map(|m| m.sequence))
    }

    fn remove_through(&self, seq: u64) -> Result<()> {
        let mut log = self.write_log();
        while log.msgs.front().is_some_and(|m| m.sequence <= seq) {
            if let Some(removed) = log.msgs.pop_front() {
                log.bytes -= counted_size(&removed);
            }
        }
        Ok(())
    }

    fn start_after(&self, last: u64) -> Result<()> {
        let mut log = self.write_log();
        if !log.msgs.is_empty() || log.last > last {
            return Err(StoreError::OutOfOrder {
                channel: self.name.clone(),
                last: log.last,
                got: last.saturating_add(1),
            });
        }
        log.last = last;
        Ok(())
    }

    fn subs(&self) -> Result<Vec<RecoveredSub>> {
        let subs = self.lock_subs();
        Ok(subs
            .records
            .iter()
            .map(|(&id, state)| RecoveredSub {
                state: state.clone(),
                pending: subs
                    .pending
                    .range((id, 0)..=(id, u64::MAX))
                    .map(|&(_, seq)| seq)
                    .collect(),
            })
            .collect())
    }

    fn apply_subs(&self, updates: &[SubUpdate]) -> Result<()> {
        let mut subs = self.lock_subs();
        for update in updates {
            match update {
                SubUpdate::Put(state) => {
                    subs.records.insert(state.id, state.clone());
                }
                SubUpdate::Delete(id) => {
                    subs.records.remove(id);
                    let doomed: Vec<_> = subs
                        .pending
                        .range((*id, 0)..=(*id, u64::MAX))
                        .copied()
                        .collect();
                    for key in doomed {
                        subs.pending.remove(&key);
                    }
                }
                SubUpdate::AddPending { sub, seq } => {
                    subs.pending.insert((*sub, *seq));
                }
                SubUpdate::RemovePending { sub, seq } => {
                    subs.pending.remove(&(*sub, *seq));
                }
            }
        }
        Ok(())
    }
}
