//! Recovery of a channel's log at open: the tail of the index checked
//! against the segment files, the records committed to the files but not
//! yet indexed put back in the index, and the counts from the floor, the
//! first and the last records. Part of [`super`]; reads a bounded tail,
//! never the whole log.

use std::collections::HashMap;
use std::ops::Bound;

use sled::{Batch, IVec};

use super::{
    all_entries, missing, parse_entry, parse_floor, record_len, LogState, SledChannel, FLOOR_KEY,
    TAIL_CHECK_BYTES, WHAT,
};
use crate::store::codec::corrupt;
use crate::store::msg_index::{Frame, IndexEntry, FRAME_LEN};
use crate::store::msg_record::{seq_key, Record};
use crate::store::Result;

/// How many bytes past the last record recovery reads to tell blocks
/// allocated ahead (zeros) from a torn write.
const TAIL_ZERO_SAMPLE: u64 = 64 << 10;

impl SledChannel {
    /// Drops the newest index entries whose record the segment file does
    /// not hold intact, then removes segment files no entry names and cuts
    /// the last one after its last record.
    pub(super) fn check_tail(&self) -> Result<()> {
        let mut lens = HashMap::new();
        let mut bad_from = None;
        let mut checked = None::<u64>;
        for item in self.msgs.range(all_entries()).rev() {
            let entry = match parse_entry(item?) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                // A malformed entry is sled's damage, not a torn write:
                // fail if it is the newest, else leave it to reads.
                Err(e) if checked.is_none() => return Err(e),
                Err(_) => break,
            };
            if self.is_sound(&entry, &mut lens)? {
                let sum = checked.unwrap_or(0).saturating_add(u64::from(entry.len));
                checked = Some(sum);
                if sum >= TAIL_CHECK_BYTES {
                    break;
                }
            } else {
                bad_from = Some(entry.first_seq);
            }
        }
        if let Some(from) = bad_from {
            tracing::warn!(
                channel = %self.name,
                from,
                "dropping message records lost from segment files"
            );
            let bounds = (
                Bound::Included(IVec::from(&seq_key(from))),
                Bound::Unbounded,
            );
            self.remove_entries(bounds, None)?;
        }
        self.rebuild_index()?;
        let first = self.msgs.range(all_entries()).next().transpose()?;
        let last = self.msgs.range(all_entries()).next_back().transpose()?;
        let (first, last) = match (first, last) {
            (Some(f), Some(l)) => (parse_entry(f)?, parse_entry(l)?),
            _ => (None, None),
        };
        // Segments named past this hold no record of the log: bytes no
        // commit covered (a torn append's new segment), or records after a
        // damaged one. Older unnamed ones were emptied by removals.
        let newest = match last {
            Some(l) => l.segment,
            None => self.floor()?.1,
        };
        for seg in self.files.list(self.id)? {
            let named = match (first, last) {
                (Some(f), Some(l)) => (f.segment..=l.segment).contains(&seg),
                _ => false,
            };
            if !named {
                if seg > newest && self.files.len((self.id, seg))?.is_some_and(|l| l > 0) {
                    tracing::warn!(
                        channel = %self.name,
                        segment = seg,
                        "deleting a segment file past the last sound record"
                    );
                }
                self.files.delete_now((self.id, seg))?;
            }
        }
        if let Some(last) = last {
            let seg = (self.id, last.segment);
            if let Some(len) = self.files.len(seg)?.filter(|len| *len > last.end()) {
                // Zeros are blocks allocated ahead of appends, kept for
                // the next ones; anything else is the torn tail of a write
                // no commit covered, cut so that it cannot pass for a record.
                let sample = (len - last.end()).min(TAIL_ZERO_SAMPLE);
                let tail = self.files.read_at(seg, last.end(), sample as usize)?;
                if tail.is_some_and(|t| t.iter().any(|b| *b != 0)) {
                    tracing::warn!(
                        channel = %self.name,
                        segment = last.segment,
                        offset = last.end(),
                        bytes = len - last.end(),
                        "cutting bytes past the last sound record (a write no commit covered, or damage)"
                    );
                    self.files.truncate(seg, last.end())?;
                }
            }
        }
        Ok(())
    }

    /// Indexes the records the segment files hold past the last index
    /// entry: they were committed (fdatasync) while sled had not yet made
    /// their entries durable. Walks frames from the end of the last entry,
    /// then into the segment file named after the next sequence, as long
    /// as each record is sound (its CRC) and continues the log; the first
    /// one that does not ends the walk (the rest was never committed, and
    /// is cut by [`Self::check_tail`]).
    fn rebuild_index(&self) -> Result<()> {
        let last = match self.msgs.range(all_entries()).next_back().transpose()? {
            Some(kv) => parse_entry(kv)?,
            None => None,
        };
        let (mut segment, mut offset, mut expected) = match last {
            Some(e) => (e.segment, e.end(), e.last_seq().saturating_add(1)),
            None => {
                let next = self.floor()?.1.saturating_add(1);
                (next, 0, next)
            }
        };
        let segments = self.files.list(self.id)?;
        let mut rebuilt = Vec::new();
        loop {
            let seg = (self.id, segment);
            let len = self.files.len(seg)?.unwrap_or(0);
            while let Some(entry) = self.framed_record(seg, offset, len, expected)? {
                offset = entry.end();
                expected = entry.last_seq().saturating_add(1);
                rebuilt.push(entry);
            }
            // An append that found its segment full started the next one,
            // named after its first sequence.
            if segment != expected && segments.binary_search(&expected).is_ok() {
                (segment, offset) = (expected, 0);
            } else {
                break;
            }
        }
        if rebuilt.is_empty() {
            return Ok(());
        }
        tracing::info!(
            channel = %self.name,
            records = rebuilt.len(),
            through = expected - 1,
            "indexing committed message records the index had not stored yet"
        );
        let mut batch = Batch::default();
        for entry in &rebuilt {
            batch.insert(&seq_key(entry.first_seq)[..], &entry.encode()[..]);
        }
        self.msgs.apply_batch(batch)?;
        Ok(())
    }

    /// The record framed at `offset` of a segment file `len` bytes long, if
    /// it is whole, sound and starts at sequence `expected`.
    fn framed_record(
        &self,
        seg: (u64, u64),
        offset: u64,
        len: u64,
        expected: u64,
    ) -> Result<Option<IndexEntry>> {
        let at = offset.saturating_add(FRAME_LEN);
        if at > len {
            return Ok(None);
        }
        let Some(head) = self.files.read_at(seg, offset, FRAME_LEN as usize)? else {
            return Ok(None);
        };
        let Ok(head) = <[u8; 16]>::try_from(head.as_slice()) else {
            return Ok(None);
        };
        let frame = Frame::parse(&head);
        if frame.first_seq != expected || at.saturating_add(u64::from(frame.len)) > len {
            return Ok(None);
        }
        let Some(value) = self.files.read_at(seg, at, frame.len as usize)? else {
            return Ok(None);
        };
        if crc32fast::hash(&value) != frame.crc {
            return Ok(None);
        }
        let key = seq_key(frame.first_seq);
        match Record::parse(&key, &value) {
            Ok(record) if record.count > 0 => {
                IndexEntry::of_record(&record, &value, seg.1, at).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The floor entry, (first, last); (0, 0) if none was written.
    fn floor(&self) -> Result<(u64, u64)> {
        match self.msgs.get(FLOOR_KEY)? {
            Some(v) => parse_floor(&v),
            None => Ok((0, 0)),
        }
    }

    /// Whether the segment file holds `entry`'s record intact.
    fn is_sound(&self, entry: &IndexEntry, lens: &mut HashMap<u64, Option<u64>>) -> Result<bool> {
        let seg = (self.id, entry.segment);
        let len = match lens.get(&entry.segment) {
            Some(len) => *len,
            None => *lens.entry(entry.segment).or_insert(self.files.len(seg)?),
        };
        if len.is_none_or(|len| len < entry.end()) {
            return Ok(false);
        }
        let bytes = self.files.read_at(seg, entry.offset, record_len(entry))?;
        Ok(bytes.is_some_and(|b| crc32fast::hash(&b) == entry.crc))
    }

    /// The counts of the log, from the floor, the first and last entries
    /// and the first record.
    pub(super) fn recover_counts(&self) -> Result<LogState> {
        let (floor_first, floor_last) = self.floor()?;
        let first_entry = self.msgs.range(all_entries()).next().transpose()?;
        let last_entry = self.msgs.range(all_entries()).next_back().transpose()?;
        let (Some(fkv), Some(lkv)) = (first_entry, last_entry) else {
            return Ok(LogState {
                last: floor_last,
                ..LogState::default()
            });
        };
        let (Some(front), Some(back)) = (parse_entry(fkv)?, parse_entry(lkv)?) else {
            return Err(corrupt(WHAT, "index key of the wrong length"));
        };
        let first = front.first_seq.max(floor_first);
        if !front.contains(first) || back.last_seq() < first {
            return Err(corrupt("message floor", "floor past the first record"));
        }
        let bytes = self
            .read_record(&front)?
            .ok_or_else(|| missing(front.first_seq))?;
        let record = Record::parse(&seq_key(front.first_seq), &bytes)?;
        let (cum_before, below) = record.cum_before_and_bytes_below(first)?;
        let bytes = back
            .cum
            .checked_sub(cum_before)
            .and_then(|b| b.checked_sub(below))
            .ok_or_else(|| corrupt(WHAT, "cumulative totals decrease"))?;
        // A floor past the last record was written by a removal while
        // newer messages were stored but not committed, and a crash lost
        // them: nobody saw them, so their sequences are free again (a gap
        // would break the log's contiguity).
        if floor_last > back.last_seq() {
            tracing::info!(
                channel = %self.name,
                lost_from = back.last_seq() + 1,
                lost_through = floor_last,
                "uncommitted messages were lost in a crash; their sequences are reused"
            );
        }
        Ok(LogState {
            first,
            last: back.last_seq(),
            msgs: back.last_seq() - first + 1,
            bytes,
            last_cum: back.cum,
            active: Some((back.segment, back.end())),
            reserved: 0,
        })
    }
}
