//! One channel of the sled store: its message index, segment files and
//! subscription tree, plus the in-memory counts that make `state()` O(1).
//!
//! Messages are stored as records of consecutive messages (see
//! [`super::msg_record`]): one `append` makes one record, or a few when it
//! is large. The records' bytes go to the channel's append-only segment
//! files (see [`super::segments`]); the message tree keeps one small
//! [`IndexEntry`] per record, keyed by its first sequence, saying where the
//! record is and repeating its header. A lookup reads the entry with the
//! greatest key <= the sequence, then the record from its file. Beside the
//! entries, the key [`FLOOR_KEY`] (one zero byte, below every 8-byte key)
//! holds `first (u64 BE) ++ last (u64 BE)`: the oldest sequence still
//! stored, which may fall inside the first record after a partial removal,
//! and the newest sequence ever stored, so that `last` survives an emptied
//! log. A removal updates it in the same atomic batch as its deletions.
//!
//! Writes go data first: `append` writes its records, each after a frame
//! (length, CRC, first sequence), to the segment file, then inserts their
//! index entries in one batch. `ChannelStore::commit` fdatasyncs the
//! channel's segment files and is the commit point: the index becomes
//! durable later, when sled flushes (on its own, or at `Store::flush`). So after a crash the index
//! may be ahead of the file or behind it. Opening a channel checks the
//! newest entries against the file (length and CRC) and drops those that
//! fail, then walks the frames past the last entry (into the next segment
//! files too) and indexes every sound record that continues the log, then
//! cuts the file after the last sound record. It reads the floor, the
//! first and last entries, the first record and the tail it checks or
//! rebuilds, never the whole log. Only [`super::sled_store`] creates
//! these; subscriptions live in [`super::sub_log`].

use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use sled::{Batch, IVec, Tree};

use super::codec::{be_u64, corrupt};
use super::msg_index::{IndexEntry, FRAME_LEN};
use super::msg_record::{self, seq_key, Record, RecordLimits};
use super::segments::SegmentFiles;
use super::sub_log::{CompactLimits, SubLog};
use super::{ChannelState, ChannelStore, RecoveredSub, Result, StoreError, SubUpdate};
use crate::protocol::pb::MsgProto;

mod recover;

/// Key of the floor entry in the message tree; sorts before every record.
const FLOOR_KEY: &[u8] = &[0];

/// How many records one `remove_through` batch deletes at most, so that
/// trimming a huge backlog does not build one enormous batch in memory.
/// Each chunk removes the oldest records, so a crash between chunks keeps
/// the log contiguous; only the last chunk moves the floor.
const REMOVE_CHUNK: usize = 4096;

/// Size past which `append` starts a new segment file. One append never
/// spans two files, so a segment can exceed this by one append.
const SEGMENT_BYTES: u64 = 64 << 20;

/// Appends allocate their segment file's blocks this far ahead (capped at
/// the segment size), so that a commit's fdatasync rarely has a file size
/// to update as well.
const RESERVE_STEP: u64 = 1 << 20;

/// How many bytes of sound records, newest first, opening a channel checks
/// (CRC) after the newest sound one: the file's pages since the last fsync
/// may have reached the disk in any order.
const TAIL_CHECK_BYTES: u64 = 256 << 10;

/// Record kind named in corruption errors.
const WHAT: &str = "message record";

/// Tuning of a channel's on-disk records; any values read any store.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// How appends are cut into records.
    pub(super) records: RecordLimits,
    /// When the subscription log is compacted.
    pub(super) compact: CompactLimits,
    /// Size past which a new segment file is started.
    pub(super) segment_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            records: RecordLimits::default(),
            compact: CompactLimits::default(),
            segment_bytes: SEGMENT_BYTES,
        }
    }
}

/// The trees of one channel, named from its numeric ID.
pub(super) struct ChannelTrees {
    /// Message index entries and the floor entry.
    pub(super) msgs: Tree,
    /// Subscription snapshots and update log.
    pub(super) subs: Tree,
}

/// A channel stored in sled. One instance per open channel name (the store
/// caches it), so the counts in `log` are the single truth for all handles.
pub(super) struct SledChannel {
    /// The channel's name.
    name: String,
    /// The numeric ID its trees and segment directory are named after.
    id: u64,
    /// Message index entries and the floor entry.
    msgs: Tree,
    /// The store's segment files (shared by all channels).
    files: Arc<SegmentFiles>,
    /// How appends are cut into records and segments.
    limits: Limits,
    /// Whether appends write index entries (false only in crash tests).
    index_appends: bool,
    /// Counts of the log; the mutex also serializes appends and removals.
    /// Held across sled writes and segment writes, never across a flush.
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
    /// The segment appends go to and its length; `None` when the log is
    /// empty (the next append starts a segment).
    active: Option<(u64, u64)>,
    /// How far the active segment's blocks are allocated (0 after a
    /// restart: the next append allocates again).
    reserved: u64,
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

/// Parses an (index entry key, value) pair, skipping the floor entry.
fn parse_entry((key, value): (IVec, IVec)) -> Result<Option<IndexEntry>> {
    if key.len() == 8 {
        IndexEntry::parse(&key, &value).map(Some)
    } else {
        Ok(None)
    }
}

/// The bounds of every index entry (the floor excluded).
fn all_entries() -> (Bound<IVec>, Bound<IVec>) {
    (Bound::Included(IVec::from(&seq_key(0))), Bound::Unbounded)
}

impl SledChannel {
    /// Opens a channel over existing (possibly empty) trees and segment
    /// files: checks the tail of the log against its files (dropping index
    /// entries whose bytes were lost, cutting bytes no entry names), then
    /// recovers the counts from the floor, the first and the last records.
    ///
    /// # Errors
    ///
    /// `Corrupt` if keys or values are malformed; `Sled` on I/O failure.
    pub(super) fn open(
        name: &str,
        id: u64,
        trees: ChannelTrees,
        files: Arc<SegmentFiles>,
        limits: Limits,
        index_appends: bool,
    ) -> Result<Self> {
        let channel = Self {
            name: name.to_owned(),
            id,
            msgs: trees.msgs,
            files,
            limits,
            index_appends,
            log: Mutex::new(LogState::default()),
            subs: SubLog::new(trees.subs, limits.compact),
            alive: RwLock::new(true),
        };
        channel.check_tail()?;
        let log = channel.recover_counts()?;
        *channel.log() = log;
        Ok(channel)
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
    /// after the writes they describe succeeded.
    fn log(&self) -> MutexGuard<'_, LogState> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The index entry of the record holding `seq` (or the last one
    /// before it), if any.
    fn entry_at(&self, seq: u64) -> Result<Option<IndexEntry>> {
        match self.msgs.range(..=seq_key(seq)).next_back().transpose()? {
            Some(kv) => parse_entry(kv),
            None => Ok(None),
        }
    }

    /// A record's bytes from its segment file, CRC-checked; `None` if the
    /// file is gone (the record was removed meanwhile).
    fn read_record(&self, entry: &IndexEntry) -> Result<Option<Vec<u8>>> {
        let seg = (self.id, entry.segment);
        let Some(bytes) = self.files.read_at(seg, entry.offset, record_len(entry))? else {
            return Ok(None);
        };
        if crc32fast::hash(&bytes) != entry.crc {
            return Err(corrupt(
                WHAT,
                format!("CRC mismatch at {}", entry.first_seq),
            ));
        }
        Ok(Some(bytes))
    }

    /// Removes the index entries within `bounds`, oldest first, a chunk per
    /// batch; the last batch (possibly empty of deletions) writes `floor`.
    /// Returns the segments of the removed entries, ascending, deduplicated.
    fn remove_entries(
        &self,
        bounds: (Bound<IVec>, Bound<IVec>),
        floor: Option<[u8; 16]>,
    ) -> Result<Vec<u64>> {
        let mut segments: Vec<u64> = Vec::new();
        loop {
            let mut chunk = Vec::new();
            for item in self.msgs.range(bounds.clone()).take(REMOVE_CHUNK) {
                let (key, value) = item?;
                if let Ok(entry) = IndexEntry::parse(&key, &value) {
                    if segments.last() != Some(&entry.segment) {
                        segments.push(entry.segment);
                    }
                }
                chunk.push(key);
            }
            let done = chunk.len() < REMOVE_CHUNK;
            let mut batch = Batch::default();
            for key in chunk {
                batch.remove(key);
            }
            if let (true, Some(floor)) = (done, floor) {
                batch.insert(FLOOR_KEY, &floor[..]);
            }
            self.msgs.apply_batch(batch)?;
            if done {
                return Ok(segments);
            }
        }
    }
}

/// A record's length as a buffer size.
fn record_len(entry: &IndexEntry) -> usize {
    usize::try_from(entry.len).unwrap_or(usize::MAX)
}

/// The error for a record that should be stored and is not.
fn missing(seq: u64) -> StoreError {
    corrupt(WHAT, format!("sequence {seq} missing"))
}

/// The index entries of encoded records written back to back, each after
/// its frame, at `offset` of `segment`, and the bytes to write.
fn index_records(
    records: &[msg_record::Encoded],
    segment: u64,
    offset: u64,
) -> Result<(Vec<IndexEntry>, Vec<u8>)> {
    let frames = records.len() * FRAME_LEN as usize;
    let total = records.iter().map(|(_, v)| v.len()).sum::<usize>() + frames;
    let mut buf = Vec::with_capacity(total);
    let mut entries = Vec::with_capacity(records.len());
    for (key, value) in records {
        let record = Record::parse(key, value)?;
        let at = offset
            .saturating_add(super::codec::len_u64(buf.len()))
            .saturating_add(FRAME_LEN);
        let entry = IndexEntry::of_record(&record, value, segment, at)?;
        buf.extend_from_slice(&entry.frame().encode());
        buf.extend_from_slice(value);
        entries.push(entry);
    }
    Ok((entries, buf))
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

    fn commit(&self) -> Result<()> {
        let _alive = self.alive()?;
        self.files.sync_channel(self.id)
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
        let (records, cum) = msg_record::encode(msgs, log.last_cum, self.limits.records);
        let (segment, offset) = match log.active {
            Some((seg, len)) if len < self.limits.segment_bytes => (seg, len),
            _ => (head.sequence, 0),
        };
        let (entries, buf) = index_records(&records, segment, offset)?;
        drop(records);
        // Data first, then the index that names it.
        let end = offset.saturating_add(super::codec::len_u64(buf.len()));
        if offset == 0 {
            log.reserved = 0;
        }
        self.files.write_at((self.id, segment), offset, &buf)?;
        if end > log.reserved {
            let ahead = end.div_ceil(RESERVE_STEP).saturating_mul(RESERVE_STEP);
            let target = ahead.min(self.limits.segment_bytes).max(end);
            if target > end {
                // Only a speed-up: a file system that refuses still works.
                if let Err(e) = self.files.reserve((self.id, segment), target) {
                    tracing::debug!(channel = %self.name, error = %e, "cannot allocate segment blocks");
                }
            }
            log.reserved = target;
        }
        if !self.index_appends {
            // A crash test's stand-in for entries sled lost.
        } else if let [entry] = &entries[..] {
            self.msgs
                .insert(seq_key(entry.first_seq), &entry.encode()[..])?;
        } else {
            let mut batch = Batch::default();
            for entry in &entries {
                batch.insert(&seq_key(entry.first_seq)[..], &entry.encode()[..]);
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
        log.active = Some((segment, end));
        Ok(())
    }

    fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        let _alive = self.alive()?;
        let log = *self.log();
        if log.msgs == 0 || seq < log.first || seq > log.last {
            return Ok(None);
        }
        let Some(entry) = self.entry_at(seq)?.filter(|e| e.contains(seq)) else {
            return Ok(None);
        };
        match self.read_record(&entry)? {
            Some(bytes) => Record::parse(&seq_key(entry.first_seq), &bytes)?.get(seq),
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
        let start = self.entry_at(from)?.map_or(from, |e| e.first_seq);
        for item in self.msgs.range(seq_key(start)..) {
            let Some(entry) = parse_entry(item?)? else {
                continue;
            };
            let Some(bytes) = self.read_record(&entry)? else {
                continue;
            };
            for item in Record::parse(&seq_key(entry.first_seq), &bytes)?.entries() {
                let (seq, bytes) = item?;
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
        // Each probe reads one index entry and moves a bound past all of
        // its record; a probe that finds none (removed meanwhile) counts as
        // early. Only the record that straddles the timestamp is read.
        let (mut lo, mut hi) = (first, last.saturating_add(1));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let Some(entry) = self.entry_at(mid)? else {
                lo = mid + 1;
                continue;
            };
            if !entry.contains(mid) {
                lo = mid + 1;
            } else if entry.last_ts < timestamp {
                lo = entry.last_seq() + 1;
            } else if entry.first_ts >= timestamp {
                hi = entry.first_seq.max(lo);
            } else {
                // The record straddles the timestamp: the answer is in it.
                let Some(bytes) = self.read_record(&entry)? else {
                    lo = entry.last_seq() + 1;
                    continue;
                };
                let record = Record::parse(&seq_key(entry.first_seq), &bytes)?;
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
        let (next, kept) = if end == log.last {
            // `last_cum` carries on, so cumulative totals never go
            // backwards within a process even across an empty log.
            let emptied = LogState {
                last: log.last,
                last_cum: log.last_cum,
                ..LogState::default()
            };
            (emptied, None)
        } else {
            let entry = self
                .entry_at(new_first)?
                .filter(|e| e.contains(new_first))
                .ok_or_else(|| missing(new_first))?;
            let bytes = self
                .read_record(&entry)?
                .ok_or_else(|| missing(new_first))?;
            let record = Record::parse(&seq_key(entry.first_seq), &bytes)?;
            let (cum_before, below) = record.cum_before_and_bytes_below(new_first)?;
            let bytes = log
                .last_cum
                .checked_sub(cum_before)
                .and_then(|b| b.checked_sub(below))
                .ok_or_else(|| corrupt(WHAT, "cumulative totals decrease"))?;
            let trimmed = LogState {
                first: new_first,
                msgs: log.last - new_first + 1,
                bytes,
                ..*log
            };
            (trimmed, Some(entry))
        };
        let upper = kept.map_or(Bound::Unbounded, |e| {
            Bound::Excluded(IVec::from(&seq_key(e.first_seq)))
        });
        let bounds = (Bound::Included(IVec::from(&seq_key(0))), upper);
        let floor = floor_value(new_first, log.last);
        let segments = self.remove_entries(bounds, Some(floor))?;
        // Files no entry names any more go once the removal is durable.
        for seg in segments {
            if kept.is_none_or(|e| seg < e.segment) {
                self.files.doom((self.id, seg));
            }
        }
        *log = next;
        Ok(())
    }

    fn start_after(&self, last: u64) -> Result<()> {
        let _alive = self.alive()?;
        let mut log = self.log();
        if log.msgs > 0 || log.last > last {
            return Err(StoreError::OutOfOrder {
                channel: self.name.clone(),
                last: log.last,
                got: last.saturating_add(1),
            });
        }
        // The floor keeps `last` across restarts while no entry follows it.
        self.msgs
            .insert(FLOOR_KEY, &floor_value(last.saturating_add(1), last)[..])?;
        log.last = last;
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
