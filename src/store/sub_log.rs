//! A channel's subscriptions in one sled tree: a snapshot record per
//! subscription plus a log of the update batches applied since, so that
//! `apply_subs` costs one sled insert however many updates it carries.
//!
//! Keys (see [`super::sub_record`] for the values):
//! - `S ++ sub ID (u64 BE)`: snapshot of one subscription (its record and
//!   pending sequences), absent when it has neither.
//! - `L ++ slot (u32 BE)`: `counter (u64 BE) ++ update batch`. Batches are
//!   numbered from 1 and batch `n` lives in slot `n % RING_SLOTS`, so slots
//!   are overwritten in turn rather than inserted and removed.
//! - `C`: the counter of the newest batch folded into the snapshots
//!   (u64 BE; 0 when absent). Slots holding batches up to it are stale.
//!
//! Compaction folds the live batches into the snapshots of the
//! subscriptions they touch and advances `C`, in one atomic sled batch. It
//! runs inside `apply_subs` once the live batches reach a count or byte
//! limit (at most [`RING_SLOTS`], so a slot is never overwritten while
//! live). Nothing is mirrored in memory beyond a few counters; a compaction
//! holds the touched subscriptions' pending sets while it runs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use sled::{Batch, IVec, Tree};

use super::codec::{be_u64, corrupt, len_u64};
use super::sub_record::{self, SubFold};
use super::{RecoveredSub, Result, SubUpdate};

/// Slots of the batch ring. Part of the on-disk format: a batch's slot is
/// derived from it.
const RING_SLOTS: u64 = 256;
/// First byte of snapshot keys.
const SNAPSHOT_PREFIX: u8 = b'S';
/// First byte of batch slot keys.
const LOG_PREFIX: u8 = b'L';
/// Key of the compacted-through counter.
const COMPACTED_KEY: &[u8] = b"C";

/// When to fold the log into the snapshots.
#[derive(Debug, Clone, Copy)]
pub(super) struct CompactLimits {
    /// Live batches that trigger a compaction (capped at [`RING_SLOTS`]).
    pub(super) batches: u64,
    /// Live batch bytes that trigger a compaction. Counted since the
    /// channel was opened, so after a restart the log can reach twice this
    /// (and never more than `batches` batches).
    pub(super) bytes: u64,
}

impl Default for CompactLimits {
    fn default() -> Self {
        Self {
            batches: RING_SLOTS,
            bytes: 1 << 20,
        }
    }
}

/// A snapshot key.
fn snapshot_key(id: u64) -> [u8; 9] {
    let mut key = [SNAPSHOT_PREFIX; 9];
    key[1..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The slot key of batch `counter`.
fn slot_key(counter: u64) -> [u8; 5] {
    let slot = u32::try_from(counter % RING_SLOTS).unwrap_or_default();
    let mut key = [LOG_PREFIX; 5];
    key[1..].copy_from_slice(&slot.to_be_bytes());
    key
}

/// Splits a slot value into its batch counter and encoded batch.
fn split_slot(value: &[u8]) -> Result<(u64, &[u8])> {
    if value.len() < 8 {
        return Err(corrupt(
            "subscription log record",
            "shorter than its counter",
        ));
    }
    let (counter, batch) = value.split_at(8);
    Ok((be_u64("subscription log record", counter)?, batch))
}

/// Where the log stands; read from the tree at first use.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Counter of the newest batch folded into the snapshots.
    compacted: u64,
    /// Counter the next batch gets.
    next: u64,
    /// Bytes of live batches written since the channel was opened.
    bytes: u64,
}

impl Cursor {
    /// Live batches in the ring.
    fn live(&self) -> u64 {
        self.next - self.compacted - 1
    }
}

/// The subscriptions of one channel.
pub(super) struct SubLog {
    /// The channel's subscription tree.
    tree: Tree,
    /// When to compact.
    limits: CompactLimits,
    /// The log position, `None` until first used. The mutex also
    /// serializes writers and keeps `subs()` from reading mid-compaction.
    cursor: Mutex<Option<Cursor>>,
}

impl SubLog {
    /// Wraps a channel's subscription tree; reads nothing yet.
    pub(super) fn new(tree: Tree, limits: CompactLimits) -> Self {
        Self {
            tree,
            limits: CompactLimits {
                batches: limits.batches.clamp(1, RING_SLOTS),
                ..limits
            },
            cursor: Mutex::new(None),
        }
    }

    /// Locks the cursor. Poisoning is ignored: the cursor is updated only
    /// after the sled write it describes succeeded.
    fn lock(&self) -> MutexGuard<'_, Option<Cursor>> {
        self.cursor.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cursor, reading it from the tree on first use.
    fn cursor(&self, slot: &mut Option<Cursor>) -> Result<Cursor> {
        if let Some(cursor) = *slot {
            return Ok(cursor);
        }
        let compacted = self.compacted()?;
        let mut newest = compacted;
        for entry in self.tree.scan_prefix([LOG_PREFIX]) {
            let (_, value) = entry?;
            newest = newest.max(split_slot(&value)?.0);
        }
        let cursor = Cursor {
            compacted,
            next: newest + 1,
            bytes: 0,
        };
        *slot = Some(cursor);
        Ok(cursor)
    }

    /// The persisted compacted-through counter.
    fn compacted(&self) -> Result<u64> {
        match self.tree.get(COMPACTED_KEY)? {
            Some(v) => be_u64("subscription log counter", &v),
            None => Ok(0),
        }
    }

    /// The live batches (counter above `compacted`), oldest first.
    fn live_batches(&self, compacted: u64) -> Result<Vec<(u64, IVec)>> {
        let mut live = Vec::new();
        for entry in self.tree.scan_prefix([LOG_PREFIX]) {
            let (_, value) = entry?;
            let counter = split_slot(&value)?.0;
            if counter > compacted {
                live.push((counter, value));
            }
        }
        live.sort_unstable_by_key(|(counter, _)| *counter);
        Ok(live)
    }

    /// Reads one snapshot (empty if absent).
    fn load(&self, id: u64) -> Result<SubFold> {
        match self.tree.get(snapshot_key(id))? {
            Some(v) => SubFold::decode(&v),
            None => Ok(SubFold::default()),
        }
    }

    /// Every subscription with a record, with its pending sequences.
    ///
    /// # Errors
    ///
    /// `Corrupt` on a malformed record or a key this layout does not know.
    pub(super) fn subs(&self) -> Result<Vec<RecoveredSub>> {
        let mut slot = self.lock();
        let cursor = self.cursor(&mut slot)?;
        let mut folds = BTreeMap::new();
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            match (key.first(), key.len()) {
                (Some(&SNAPSHOT_PREFIX), 9) => {
                    let id = be_u64("subscription key", &key[1..])?;
                    folds.insert(id, SubFold::decode(&value)?);
                }
                (Some(&LOG_PREFIX), 5) => {}
                _ if key == COMPACTED_KEY => {}
                _ => return Err(corrupt("subscription key", format!("unknown key {key:?}"))),
            }
        }
        for (_, value) in self.live_batches(cursor.compacted)? {
            for update in sub_record::decode_batch(split_slot(&value)?.1)? {
                // Every snapshot is loaded: a missing one is empty.
                sub_record::apply(&mut folds, update, |_| Ok(SubFold::default()))?;
            }
        }
        Ok(sub_record::recovered(folds))
    }

    /// Records a batch of updates with one insert, compacting first when
    /// the log is full.
    ///
    /// # Errors
    ///
    /// `Sled` on I/O failure; `Corrupt` if a compaction meets a malformed
    /// record.
    pub(super) fn apply(&self, updates: &[SubUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut slot = self.lock();
        let mut cursor = self.cursor(&mut slot)?;
        if cursor.live() >= self.limits.batches || cursor.bytes >= self.limits.bytes {
            cursor = self.compact(cursor)?;
            *slot = Some(cursor);
        }
        let mut value = Vec::with_capacity(8 + 8 * updates.len());
        value.extend_from_slice(&cursor.next.to_be_bytes());
        sub_record::encode_batch(updates, &mut value);
        let len = len_u64(value.len());
        self.tree.insert(slot_key(cursor.next), value)?;
        *slot = Some(Cursor {
            next: cursor.next + 1,
            bytes: cursor.bytes.saturating_add(len),
            ..cursor
        });
        Ok(())
    }

    /// Folds the live batches into the snapshots they touch and marks them
    /// compacted, in one atomic batch; returns the new cursor.
    fn compact(&self, cursor: Cursor) -> Result<Cursor> {
        let mut folds = BTreeMap::new();
        let mut newest = cursor.compacted;
        for (counter, value) in self.live_batches(cursor.compacted)? {
            for update in sub_record::decode_batch(split_slot(&value)?.1)? {
                sub_record::apply(&mut folds, update, |id| self.load(id))?;
            }
            newest = counter;
        }
        let mut batch = Batch::default();
        for (id, fold) in &folds {
            if fold.is_empty() {
                batch.remove(&snapshot_key(*id)[..]);
            } else {
                batch.insert(&snapshot_key(*id)[..], fold.encode());
            }
        }
        batch.insert(COMPACTED_KEY, &newest.to_be_bytes()[..]);
        self.tree.apply_batch(batch)?;
        Ok(Cursor {
            compacted: newest,
            next: cursor.next.max(newest + 1),
            bytes: 0,
        })
    }
}
