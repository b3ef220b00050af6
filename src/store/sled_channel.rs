//! One channel of the sled store: its message tree, subscription tree and
//! pending tree, plus the in-memory counts that make `state()` O(1).
//!
//! Message values are `cumulative byte total (u64 BE, including this
//! message) ++ encoded MsgProto`, so the byte count of the whole log follows
//! from its first and last entries alone and opening a channel reads two
//! messages, never the whole log. Only [`super::sled_store`] creates these.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use prost::Message;
use sled::transaction::{TransactionError, Transactional};
use sled::{Batch, IVec, Tree};

use super::codec::{be_u64, corrupt, counted_size, decode, len_u64, stored_form};
use super::{ChannelState, ChannelStore, RecoveredSub, Result, StoreError, SubUpdate};
use crate::protocol::pb::MsgProto;

/// How many message keys one `remove_through` batch deletes at most, so that
/// trimming a huge backlog does not build one enormous batch in memory. Each
/// chunk removes the oldest keys, so a crash between chunks keeps the log
/// contiguous.
const REMOVE_CHUNK: u64 = 4096;

/// The trees of one channel, named from its numeric ID.
pub(super) struct ChannelTrees {
    /// Messages: sequence (u64 BE) → cumulative total ++ encoded MsgProto.
    pub(super) msgs: Tree,
    /// Subscriptions: sub ID (u64 BE) → encoded SubState.
    pub(super) subs: Tree,
    /// Pending: sub ID (u64 BE) ++ sequence (u64 BE) → empty.
    pub(super) pending: Tree,
}

/// A channel stored in sled. One instance per open channel name (the store
/// caches it), so the counts in `log` are the single truth for all handles.
pub(super) struct SledChannel {
    /// The channel's name.
    name: String,
    /// The numeric ID its trees are named after.
    id: u64,
    /// The store's `channels` tree, where the "last" floor is persisted.
    channels: Tree,
    /// This channel's trees.
    trees: ChannelTrees,
    /// Counts of the log; the mutex also serializes appends and removals.
    /// Held across sled writes (in-memory work), never across a flush.
    log: Mutex<LogState>,
    /// Serializes `apply_subs`, whose deletes read the pending tree first.
    subs_writer: Mutex<()>,
    /// False once the channel is deleted. Every tree access holds the read
    /// side, so `delete_channel` (write side) never drops trees mid-use;
    /// sled misbehaves when a dropped tree's handle is used.
    alive: RwLock<bool>,
}

/// In-memory counts of a channel's log, kept in step with every write.
#[derive(Debug, Clone, Copy, Default)]
struct LogState {
    /// Oldest stored sequence (0 when empty).
    first: u64,
    /// Newest sequence ever stored.
    last: u64,
    /// Stored message count.
    msgs: u64,
    /// Stored encoded bytes.
    bytes: u64,
    /// Cumulative total recorded in the newest stored message (0 for a log
    /// recovered empty; kept when `remove_through` empties the log).
    last_cum: u64,
}

/// Encodes a sequence as a message key.
fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Two big-endian `u64`s back to back.
fn two_be(a: u64, b: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&a.to_be_bytes());
    out[8..].copy_from_slice(&b.to_be_bytes());
    out
}

/// Encodes a pending key: sub ID then sequence, so a sub's pending
/// sequences are adjacent and ascending.
fn pending_key(sub: u64, seq: u64) -> [u8; 16] {
    two_be(sub, seq)
}

/// Splits a message value into its cumulative total and encoded message.
fn split_value(value: &[u8]) -> Result<(u64, &[u8])> {
    if value.len() < 8 {
        return Err(corrupt("message", "value shorter than its 8-byte header"));
    }
    let (cum, body) = value.split_at(8);
    Ok((be_u64("message", cum)?, body))
}

/// Decodes a stored message value.
fn decode_msg(value: &[u8]) -> Result<MsgProto> {
    decode("message", split_value(value)?.1)
}

/// Builds the channels-tree value: channel ID, then the "last" floor.
pub(super) fn channel_entry(id: u64, floor: u64) -> [u8; 16] {
    two_be(id, floor)
}

/// Reads a channels-tree value: (channel ID, "last" floor).
pub(super) fn parse_channel_entry(value: &[u8]) -> Result<(u64, u64)> {
    match value.len() {
        16 => Ok((
            be_u64("channel entry", &value[..8])?,
            be_u64("channel entry", &value[8..])?,
        )),
        n => Err(corrupt(
            "channel entry",
            format!("expected 16 bytes, found {n}"),
        )),
    }
}

/// Maps a transaction outcome (which never aborts) to a store result.
fn tx_result(res: std::result::Result<(), TransactionError<Infallible>>) -> Result<()> {
    match res {
        Ok(()) => Ok(()),
        Err(TransactionError::Storage(e)) => Err(e.into()),
        Err(TransactionError::Abort(never)) => match never {},
    }
}

impl SledChannel {
    /// Opens a channel over existing (possibly empty) trees, recovering its
    /// counts from the first and last message and the persisted floor.
    ///
    /// # Errors
    ///
    /// `Corrupt` if keys or values are malformed; `Sled` on I/O failure.
    pub(super) fn open(
        name: &str,
        id: u64,
        floor: u64,
        channels: Tree,
        trees: ChannelTrees,
    ) -> Result<Self> {
        let mut log = LogState {
            last: floor,
            ..LogState::default()
        };
        if let (Some((fk, fv)), Some((lk, lv))) = (trees.msgs.first()?, trees.msgs.last()?) {
            let first = be_u64("message key", &fk)?;
            let last = be_u64("message key", &lk)?;
            let (first_cum, first_body) = split_value(&fv)?;
            let (last_cum, _) = split_value(&lv)?;
            let bytes = last_cum
                .checked_sub(first_cum)
                .and_then(|b| b.checked_add(len_u64(first_body.len())))
                .ok_or_else(|| corrupt("message", "cumulative totals decrease"))?;
            if last < first || first == 0 {
                return Err(corrupt("message key", "sequences out of order"));
            }
            log = LogState {
                first,
                last: last.max(floor),
                msgs: last - first + 1,
                bytes,
                last_cum,
            };
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            channels,
            trees,
            log: Mutex::new(log),
            subs_writer: Mutex::new(()),
            alive: RwLock::new(true),
        })
    }

    /// Marks the channel deleted before its trees are dropped; taking the
    /// write lock waits for in-flight operations to finish, and later calls
    /// on stale handles fail with `Sled(CollectionNotFound)`.
    pub(super) fn retire(&self) {
        *self.alive.write().unwrap_or_else(PoisonError::into_inner) = false;
    }

    /// The numeric ID the trees are named after.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Holds the channel alive for one operation, or fails if deleted.
    fn alive(&self) -> Result<RwLockReadGuard<'_, bool>> {
        let guard = self.alive.read().unwrap_or_else(PoisonError::into_inner);
        if *guard {
            Ok(guard)
        } else {
            Err(sled::Error::CollectionNotFound(IVec::from(self.name.as_bytes())).into())
        }
    }

    /// Locks the counts. Poisoning is ignored: counts are updated only
    /// after the sled write they describe succeeded.
    fn log(&self) -> MutexGuard<'_, LogState> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Recomputes the counts after the log's front moved to `first`.
    fn refresh_front(&self, log: &mut LogState, first: u64) -> Result<()> {
        let value = self
            .trees
            .msgs
            .get(seq_key(first))?
            .ok_or_else(|| corrupt("message", format!("sequence {first} missing from log")))?;
        let (cum, body) = split_value(&value)?;
        log.bytes = log
            .last_cum
            .checked_sub(cum)
            .and_then(|b| b.checked_add(len_u64(body.len())))
            .ok_or_else(|| corrupt("message", "cumulative totals decrease"))?;
        log.first = first;
        log.msgs = log.last - first + 1;
        Ok(())
    }
}

impl ChannelStore for SledChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn state(&self) -> ChannelState {
        let log = self.log();
        ChannelState {
            first: log.first,
            last: log.last,
            msgs: log.msgs,
            bytes: log.bytes,
        }
    }

    fn append(&self, msgs: &[MsgProto]) -> Result<()> {
        let _alive = self.alive()?;
        let mut log = self.log();
        let mut next = *log;
        let mut batch = Batch::default();
        for msg in msgs {
            let expected = next.last.saturating_add(1);
            if msg.sequence != expected {
                return Err(StoreError::OutOfOrder {
                    channel: self.name.clone(),
                    last: next.last,
                    got: msg.sequence,
                });
            }
            let stored = stored_form(msg);
            let size = counted_size(&stored);
            next.last_cum = next.last_cum.saturating_add(size);
            let mut value = Vec::with_capacity(8 + stored.encoded_len());
            value.extend_from_slice(&next.last_cum.to_be_bytes());
            stored.encode_raw(&mut value);
            batch.insert(&seq_key(expected)[..], value);
            if next.msgs == 0 {
                next.first = expected;
            }
            next.last = expected;
            next.msgs += 1;
            next.bytes = next.bytes.saturating_add(size);
        }
        if msgs.is_empty() {
            return Ok(());
        }
        self.trees.msgs.apply_batch(batch)?;
        *log = next;
        Ok(())
    }

    fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        let _alive = self.alive()?;
        match self.trees.msgs.get(seq_key(seq))? {
            Some(value) => Ok(Some(decode_msg(&value)?)),
            None => Ok(None),
        }
    }

    fn range(&self, from: u64, max: usize) -> Result<Vec<MsgProto>> {
        let _alive = self.alive()?;
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        for entry in self.trees.msgs.range(seq_key(from)..) {
            let (_, value) = entry?;
            out.push(decode_msg(&value)?);
            if out.len() == max {
                break;
            }
        }
        Ok(out)
    }

    fn first_seq_at_or_after(&self, timestamp: i64) -> Result<Option<u64>> {
        let _alive = self.alive()?;
        let LogState {
            first, last, msgs, ..
        } = *self.log();
        if msgs == 0 {
            return Ok(None);
        }
        // Smallest sequence in [first, last] whose timestamp is >= the target;
        // timestamps are non-decreasing along the log. A probe that finds no
        // message (removed meanwhile) counts as "too early".
        let (mut lo, mut hi) = (first, last.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let early = match self.trees.msgs.get(seq_key(mid))? {
                Some(value) => decode_msg(&value)?.timestamp < timestamp,
                None => true,
            };
            if early {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok((lo <= last).then_some(lo))
    }

    fn remove_through(&self, seq: u64) -> Result<()> {
        let _alive = self.alive()?;
        let mut log = self.log();
        if log.msgs == 0 || seq < log.first {
            return Ok(());
        }
        let end = seq.min(log.last);
        let emptying = end == log.last;
        if emptying {
            // Persist `last` before the log empties so that a restart never
            // reuses sequences (the newest key is about to disappear).
            self.channels
                .insert(self.name.as_bytes(), &channel_entry(self.id, log.last)[..])?;
        }
        let mut start = log.first;
        while start <= end {
            let chunk_end = end.min(start.saturating_add(REMOVE_CHUNK - 1));
            let mut batch = Batch::default();
            for s in start..=chunk_end {
                batch.remove(&seq_key(s)[..]);
            }
            self.trees.msgs.apply_batch(batch)?;
            if chunk_end == u64::MAX {
                break;
            }
            start = chunk_end + 1;
        }
        if emptying {
            // `last_cum` carries on, so cumulative totals never go backwards
            // within a process even across an empty log.
            *log = LogState {
                last: log.last,
                last_cum: log.last_cum,
                ..LogState::default()
            };
            Ok(())
        } else {
            self.refresh_front(&mut log, end + 1)
        }
    }

    fn subs(&self) -> Result<Vec<RecoveredSub>> {
        let _alive = self.alive()?;
        let mut subs = BTreeMap::new();
        for entry in self.trees.subs.iter() {
            let (key, value) = entry?;
            let id = be_u64("subscription key", &key)?;
            let state = decode("subscription", &value)?;
            subs.insert(
                id,
                RecoveredSub {
                    state,
                    pending: Vec::new(),
                },
            );
        }
        for key in self.trees.pending.iter().keys() {
            let key = key?;
            if key.len() != 16 {
                return Err(corrupt(
                    "pending key",
                    format!("expected 16 bytes, found {}", key.len()),
                ));
            }
            let sub = be_u64("pending key", &key[..8])?;
            let seq = be_u64("pending key", &key[8..])?;
            // Pending entries of an unrecorded sub are not reported (as in
            // the memory store); `Delete` removes them.
            if let Some(recovered) = subs.get_mut(&sub) {
                recovered.pending.push(seq);
            }
        }
        Ok(subs.into_values().collect())
    }

    fn apply_subs(&self, updates: &[SubUpdate]) -> Result<()> {
        let _alive = self.alive()?;
        let _writer = self
            .subs_writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Fold the updates, in order, into the final write per key.
        let mut sub_writes: BTreeMap<u64, Option<Vec<u8>>> = BTreeMap::new();
        let mut pending_writes: BTreeMap<[u8; 16], bool> = BTreeMap::new();
        for update in updates {
            match update {
                SubUpdate::Put(state) => {
                    sub_writes.insert(state.id, Some(state.encode_to_vec()));
                }
                SubUpdate::Delete(id) => {
                    sub_writes.insert(*id, None);
                    for key in self.trees.pending.scan_prefix(id.to_be_bytes()).keys() {
                        let key = key?;
                        let key: [u8; 16] = key.as_ref().try_into().map_err(|_| {
                            corrupt(
                                "pending key",
                                format!("expected 16 bytes, found {}", key.len()),
                            )
                        })?;
                        pending_writes.insert(key, false);
                    }
                    for (_, add) in
                        pending_writes.range_mut(pending_key(*id, 0)..=pending_key(*id, u64::MAX))
                    {
                        *add = false;
                    }
                }
                SubUpdate::AddPending { sub, seq } => {
                    pending_writes.insert(pending_key(*sub, *seq), true);
                }
                SubUpdate::RemovePending { sub, seq } => {
                    pending_writes.insert(pending_key(*sub, *seq), false);
                }
            }
        }
        let mut sub_batch = Batch::default();
        for (id, value) in &sub_writes {
            match value {
                Some(value) => sub_batch.insert(&id.to_be_bytes()[..], value.as_slice()),
                None => sub_batch.remove(&id.to_be_bytes()[..]),
            }
        }
        let mut pending_batch = Batch::default();
        for (key, add) in &pending_writes {
            if *add {
                pending_batch.insert(&key[..], &[][..]);
            } else {
                pending_batch.remove(&key[..]);
            }
        }
        match (sub_writes.is_empty(), pending_writes.is_empty()) {
            (true, true) => Ok(()),
            (false, true) => Ok(self.trees.subs.apply_batch(sub_batch)?),
            (true, false) => Ok(self.trees.pending.apply_batch(pending_batch)?),
            // Both trees change: one transaction, so a crash never leaves a
            // record without its pending set (a lost redelivery) or the reverse.
            (false, false) => tx_result((&self.trees.subs, &self.trees.pending).transaction(
                |(subs, pending)| {
                    subs.apply_batch(&sub_batch)?;
                    pending.apply_batch(&pending_batch)?;
                    Ok(())
                },
            )),
        }
    }
}
