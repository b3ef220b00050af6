//! One channel of the sled store: its message tree and subscription tree,
//! plus the in-memory counts that make `state()` O(1).
//!
//! The message tree holds records of consecutive messages keyed by their
//! first sequence (see [`super::msg_record`]): one `append` writes one
//! record, or a few when it is large. A lookup reads the record with the
//! greatest key <= the sequence. Beside the records, the key [`FLOOR_KEY`]
//! (one zero byte, below every 8-byte record key) holds `first (u64 BE) ++
//! last (u64 BE)`: the oldest sequence still stored, which may fall inside
//! the first record after a partial removal, and the newest sequence ever
//! stored, so that `last` survives an emptied log. A removal updates it in
//! the same atomic batch as its record deletions.
//!
//! Opening a channel reads the floor, the first and the last record, never
//! the whole log: records carry cumulative byte totals. Subscriptions live
//! in [`super::sub_log`]. Only [`super::sled_store`] creates these.

use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use sled::{Batch, IVec, Tree};

use super::codec::{be_u64, corrupt};
use super::msg_record::{self, seq_key, Record, RecordLimits};
use super::sub_log::{CompactLimits, SubLog};
use super::{ChannelState, ChannelStore, RecoveredSub, Result, StoreError, SubUpdate};
use crate::protocol::pb::MsgProto;

/// Key of the floor entry in the message tree; sorts before every record.
const FLOOR_KEY: &[u8] = &[0];

/// How many records one `remove_through` batch deletes at most, so that
/// trimming a huge backlog does not build one enormous batch in memory.
/// Each chunk removes the oldest records, so a crash between chunks keeps
/// the log contiguous; only the last chunk moves the floor.
const REMOVE_CHUNK: usize = 4096;

/// Tuning of a channel's on-disk records; any values read any store.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Limits {
    /// How appends are cut into records.
    pub(super) records: RecordLimits,
    /// When the subscription log is compacted.
    pub(super) compact: CompactLimits,
}

/// The trees of one channel, named from its numeric ID.
pub(super) struct ChannelTrees {
    /// Message records and the floor entry.
    pub(super) msgs: Tree,
    /// Subscription snapshots and update log.
    pub(super) subs: Tree,
}

/// A channel stored in sled. One instance per open channel name (the store
/// caches it), so the counts in `log` are the single truth for all handles.
pub(super) struct SledChannel {
    /// The channel's name.
    name: String,
    /// The numeric ID its trees are named after.
    id: u64,
    /// Message records and the floor entry.
    msgs: Tree,
    /// How appends are cut into records.
    record_limits: RecordLimits,
    /// Counts of the log; the mutex also serializes appends and removals.
    /// Held across sled writes (in-memory work), never across a flush.
    log: Mutex<LogState>,
    /// The subscriptions (with their own writer lock).
    subs: SubLog,
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
    /// Cumulative total recorded in the newest stored record (0 for a log
    /// recovered empty; kept when `remove_through` empties the log).
    last_cum: u64,
}

/// Encodes the floor entry.
fn floor_value(first: u64, last: u64) -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&first.to_be_bytes());
    out[8..].copy_from_slice(&last.to_be_bytes());
    out
}

/// Reads the floor entry: (first, last).
fn parse_floor(value: &[u8]) -> Result<(u64, u64)> {
    if value.len() != 16 {
        return Err(corrupt(
            "message floor",
            format!("expected 16 bytes, found {}", value.len()),
        ));
    }
    Ok((
        be_u64("message floor", &value[..8])?,
        be_u64("message floor", &value[8..])?,
    ))
}

/// Builds the channels-tree value: the channel ID.
pub(super) fn channel_entry(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Reads a channels-tree value: the channel ID.
pub(super) fn parse_channel_entry(value: &[u8]) -> Result<u64> {
    be_u64("channel entry", value)
}

impl SledChannel {
    /// Opens a channel over existing (possibly empty) trees, recovering its
    /// counts from the floor entry and the first and last records.
    ///
    /// # Errors
    ///
    /// `Corrupt` if keys or values are malformed; `Sled` on I/O failure.
    pub(super) fn open(name: &str, id: u64, trees: ChannelTrees, limits: Limits) -> Result<Self> {
        let (floor_first, floor_last) = match trees.msgs.get(FLOOR_KEY)? {
            Some(v) => parse_floor(&v)?,
            None => (0, 0),
        };
        let mut log = LogState {
            last: floor_last,
            ..LogState::default()
        };
        let first_entry = trees.msgs.range(seq_key(0)..).next().transpose()?;
        let last_entry = trees.msgs.last()?.filter(|(k, _)| k.len() == 8);
        if let (Some((fk, fv)), Some((lk, lv))) = (first_entry, last_entry) {
            let front = Record::parse(&fk, &fv)?;
            let back = Record::parse(&lk, &lv)?;
            let first = front.first_seq.max(floor_first);
            if !front.contains(first) || back.last_seq() < first {
                return Err(corrupt("message floor", "floor past the first record"));
            }
            let (cum_before, below) = front.cum_before_and_bytes_below(first)?;
            let bytes = back
                .cum
                .checked_sub(cum_before)
                .and_then(|b| b.checked_sub(below))
                .ok_or_else(|| corrupt("message record", "cumulative totals decrease"))?;
            log = LogState {
                first,
                last: back.last_seq().max(floor_last),
                msgs: back.last_seq() - first + 1,
                bytes,
                last_cum: back.cum,
            };
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            msgs: trees.msgs,
            record_limits: limits.records,
            log: Mutex::new(log),
            subs: SubLog::new(trees.subs, limits.compact),
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

    /// The record holding `seq`, as (key, value), if any.
    fn record_at(&self, seq: u64) -> Result<Option<(IVec, IVec)>> {
        match self.msgs.range(..=seq_key(seq)).next_back().transpose()? {
            Some((key, value)) if key.len() == 8 => Ok(Some((key, value))),
            _ => Ok(None),
        }
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
        for (expected, msg) in (log.last.saturating_add(1)..).zip(msgs) {
            if msg.sequence != expected {
                return Err(StoreError::OutOfOrder {
                    channel: self.name.clone(),
                    last: expected - 1,
                    got: msg.sequence,
                });
            }
        }
        let (Some(head), Some(tail)) = (msgs.first(), msgs.last()) else {
            return Ok(());
        };
        let (mut records, cum) = msg_record::encode(msgs, log.last_cum, self.record_limits);
        if records.len() == 1 {
            let (key, value) = records.swap_remove(0);
            self.msgs.insert(key, value)?;
        } else {
            let mut batch = Batch::default();
            for (key, value) in records {
                batch.insert(&key[..], value);
            }
            self.msgs.apply_batch(batch)?;
        }
        if log.msgs == 0 {
            log.first = head.sequence;
        }
        log.last = tail.sequence;
        log.msgs = log.last - log.first + 1;
        log.bytes = log.bytes.saturating_add(cum - log.last_cum);
        log.last_cum = cum;
        Ok(())
    }

    fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        let _alive = self.alive()?;
        let log = *self.log();
        if log.msgs == 0 || seq < log.first || seq > log.last {
            return Ok(None);
        }
        match self.record_at(seq)? {
            Some((key, value)) => Record::parse(&key, &value)?.get(seq),
            None => Ok(None),
        }
    }

    fn range(&self, from: u64, max: usize) -> Result<Vec<MsgProto>> {
        let _alive = self.alive()?;
        let log = *self.log();
        let from = from.max(log.first);
        let mut out = Vec::new();
        if max == 0 || log.msgs == 0 || from > log.last {
            return Ok(out);
        }
        let start = match self.record_at(from)? {
            Some((key, _)) => key,
            None => IVec::from(&seq_key(from)),
        };
        for entry in self.msgs.range(start..) {
            let (key, value) = entry?;
            for entry in Record::parse(&key, &value)?.entries() {
                let (seq, bytes) = entry?;
                if seq >= from {
                    out.push(msg_record::decode_entry(bytes)?);
                    if out.len() == max {
                        return Ok(out);
                    }
                }
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
        // Timestamps are non-decreasing along the log. Invariant: stored
        // sequences below `lo` are too early, those from `hi` on are not.
        // Each probe reads one record and moves a bound past all of it; a
        // probe that finds no record (removed meanwhile) counts as early.
        let (mut lo, mut hi) = (first, last.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some((key, value)) = self.record_at(mid)? else {
                lo = mid + 1;
                continue;
            };
            let record = Record::parse(&key, &value)?;
            if !record.contains(mid) {
                lo = mid + 1;
            } else if record.last_ts < timestamp {
                lo = record.last_seq() + 1;
            } else if record.first_ts >= timestamp {
                hi = record.first_seq.max(lo);
            } else {
                // The record straddles the timestamp: the answer is in it.
                return Ok(record.first_at_or_after(timestamp)?.map(|s| s.max(lo)));
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
        let new_first = end.saturating_add(1);
        // The counts afterwards, and the first record that survives.
        let (next, kept_key) = if end == log.last {
            // `last_cum` carries on, so cumulative totals never go
            // backwards within a process even across an empty log.
            let emptied = LogState {
                last: log.last,
                last_cum: log.last_cum,
                ..LogState::default()
            };
            (emptied, None)
        } else {
            let missing = || corrupt("message record", format!("sequence {new_first} missing"));
            let (key, value) = self.record_at(new_first)?.ok_or_else(missing)?;
            let record = Record::parse(&key, &value)?;
            if !record.contains(new_first) {
                return Err(missing());
            }
            let (cum_before, below) = record.cum_before_and_bytes_below(new_first)?;
            let bytes = log
                .last_cum
                .checked_sub(cum_before)
                .and_then(|b| b.checked_sub(below))
                .ok_or_else(|| corrupt("message record", "cumulative totals decrease"))?;
            let trimmed = LogState {
                first: new_first,
                msgs: log.last - new_first + 1,
                bytes,
                ..*log
            };
            (trimmed, Some(key))
        };
        // Delete the records below the kept one, oldest first, a chunk per
        // batch; the last batch (possibly empty of deletions) moves the floor.
        let upper = kept_key.map_or(Bound::Unbounded, Bound::Excluded);
        loop {
            let bounds = (Bound::Included(IVec::from(&seq_key(0))), upper.clone());
            let chunk = self
                .msgs
                .range(bounds)
                .keys()
                .take(REMOVE_CHUNK)
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let done = chunk.len() < REMOVE_CHUNK;
            let mut batch = Batch::default();
            for key in chunk {
                batch.remove(key);
            }
            if done {
                batch.insert(FLOOR_KEY, &floor_value(new_first, log.last)[..]);
            }
            self.msgs.apply_batch(batch)?;
            if done {
                break;
            }
        }
        *log = next;
        Ok(())
    }

    fn subs(&self) -> Result<Vec<RecoveredSub>> {
        let _alive = self.alive()?;
        self.subs.subs()
    }

    fn apply_subs(&self, updates: &[SubUpdate]) -> Result<()> {
        let _alive = self.alive()?;
        self.subs.apply(updates)
    }
}
