//! The index entry of a message record: what sled keeps per record now
//! that the record's bytes live in a segment file (see [`super::segments`]).
//! Pure: no I/O.
//!
//! The key is the record's first sequence (u64 BE), as before. The value
//! says where the record is and repeats its header, so that counts and time
//! searches need no file read:
//!
//! ```text
//! segment u64 | offset u64 | len u32 | crc32 u32 | count u32 | cum u64 | first_ts i64 | last_ts i64
//! ```
//!
//! `segment` is the first sequence of the segment file; `crc32` covers the
//! record's bytes in the file, so that recovery can tell a record the
//! file lost (sled flushed the index in the background, the data was not
//! yet fsynced) from a sound one.
//!
//! In the file each record follows a [`Frame`] that repeats the entry's
//! key, length and CRC: the file is the commit point, so recovery rebuilds
//! the entries sled had not made durable by walking the frames past the
//! last entry it has.

use super::codec::{be_u64, corrupt};
use super::msg_record::Record;
use super::Result;

/// Length of a record's frame in its segment file.
pub(super) const FRAME_LEN: u64 = 16;

/// Length of an encoded index entry.
const ENTRY_LEN: usize = 52;

/// Record kind named in corruption errors.
const WHAT: &str = "message index entry";

/// Where a record is stored, and its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IndexEntry {
    /// Sequence of the record's first message (the key).
    pub(super) first_seq: u64,
    /// First sequence of the segment file holding the record.
    pub(super) segment: u64,
    /// Offset of the record in the segment file.
    pub(super) offset: u64,
    /// Length of the record in the segment file.
    pub(super) len: u32,
    /// CRC32 of the record's bytes.
    pub(super) crc: u32,
    /// Number of messages.
    pub(super) count: u32,
    /// Cumulative byte total through the record's last message.
    pub(super) cum: u64,
    /// Timestamp of the first message.
    pub(super) first_ts: i64,
    /// Timestamp of the last message.
    pub(super) last_ts: i64,
}

/// Reads 4 bytes at `at` (the caller checked the length).
fn arr4(buf: &[u8], at: usize) -> [u8; 4] {
    buf[at..at + 4].try_into().unwrap_or_default()
}

/// Reads 8 bytes at `at` (the caller checked the length).
fn arr8(buf: &[u8], at: usize) -> [u8; 8] {
    buf[at..at + 8].try_into().unwrap_or_default()
}

/// The header of a record in its segment file:
/// `len u32 BE | crc32 u32 BE | first_seq u64 BE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Frame {
    /// Length of the record that follows.
    pub(super) len: u32,
    /// CRC32 of the record's bytes.
    pub(super) crc: u32,
    /// Sequence of the record's first message.
    pub(super) first_seq: u64,
}

impl Frame {
    /// Encodes the frame.
    pub(super) fn encode(&self) -> [u8; 16] {
        let mut out = [0; 16];
        out[..4].copy_from_slice(&self.len.to_be_bytes());
        out[4..8].copy_from_slice(&self.crc.to_be_bytes());
        out[8..].copy_from_slice(&self.first_seq.to_be_bytes());
        out
    }

    /// Reads a frame.
    pub(super) fn parse(bytes: &[u8; 16]) -> Self {
        Self {
            len: u32::from_be_bytes(arr4(bytes, 0)),
            crc: u32::from_be_bytes(arr4(bytes, 4)),
            first_seq: u64::from_be_bytes(arr8(bytes, 8)),
        }
    }
}

impl IndexEntry {
    /// The entry of a record whose bytes `value` start at `offset` of
    /// `segment`.
    ///
    /// # Errors
    ///
    /// `Corrupt` if the record is 4 GiB or more, or holds 2^32 messages.
    pub(super) fn of_record(
        record: &Record<'_>,
        value: &[u8],
        segment: u64,
        offset: u64,
    ) -> Result<Self> {
        let too_big = || corrupt(WHAT, "record over 4 GiB");
        Ok(Self {
            first_seq: record.first_seq,
            segment,
            offset,
            len: u32::try_from(value.len()).map_err(|_| too_big())?,
            crc: crc32fast::hash(value),
            count: u32::try_from(record.count).map_err(|_| too_big())?,
            cum: record.cum,
            first_ts: record.first_ts,
            last_ts: record.last_ts,
        })
    }

    /// The frame that precedes the record in its file.
    pub(super) fn frame(&self) -> Frame {
        Frame {
            len: self.len,
            crc: self.crc,
            first_seq: self.first_seq,
        }
    }

    /// Encodes the value (the key is `first_seq`, BE).
    pub(super) fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0; ENTRY_LEN];
        out[..8].copy_from_slice(&self.segment.to_be_bytes());
        out[8..16].copy_from_slice(&self.offset.to_be_bytes());
        out[16..20].copy_from_slice(&self.len.to_be_bytes());
        out[20..24].copy_from_slice(&self.crc.to_be_bytes());
        out[24..28].copy_from_slice(&self.count.to_be_bytes());
        out[28..36].copy_from_slice(&self.cum.to_be_bytes());
        out[36..44].copy_from_slice(&self.first_ts.to_be_bytes());
        out[44..].copy_from_slice(&self.last_ts.to_be_bytes());
        out
    }

    /// Reads an entry from its key and value.
    ///
    /// # Errors
    ///
    /// `Corrupt` if the key is not 8 bytes, the value not [`ENTRY_LEN`], or
    /// the entry claims no messages, sequence 0 or a segment after it.
    pub(super) fn parse(key: &[u8], value: &[u8]) -> Result<Self> {
        let first_seq = be_u64("message key", key)?;
        if value.len() != ENTRY_LEN {
            return Err(corrupt(
                WHAT,
                format!("expected {ENTRY_LEN} bytes, found {}", value.len()),
            ));
        }
        let entry = Self {
            first_seq,
            segment: u64::from_be_bytes(arr8(value, 0)),
            offset: u64::from_be_bytes(arr8(value, 8)),
            len: u32::from_be_bytes(arr4(value, 16)),
            crc: u32::from_be_bytes(arr4(value, 20)),
            count: u32::from_be_bytes(arr4(value, 24)),
            cum: u64::from_be_bytes(arr8(value, 28)),
            first_ts: i64::from_be_bytes(arr8(value, 36)),
            last_ts: i64::from_be_bytes(arr8(value, 44)),
        };
        if entry.count == 0 || first_seq == 0 || entry.segment > first_seq {
            return Err(corrupt(
                WHAT,
                "empty record, sequence 0 or segment after it",
            ));
        }
        Ok(entry)
    }

    /// Sequence of the last message.
    pub(super) fn last_seq(&self) -> u64 {
        self.first_seq.saturating_add(u64::from(self.count) - 1)
    }

    /// Whether the record holds `seq`.
    pub(super) fn contains(&self, seq: u64) -> bool {
        (self.first_seq..=self.last_seq()).contains(&seq)
    }

    /// Offset just past the record in its segment file.
    pub(super) fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let e = IndexEntry {
            first_seq: 9,
            segment: 4,
            offset: 1 << 40,
            len: 70_000,
            crc: 0xdead_beef,
            count: 3,
            cum: 123_456,
            first_ts: -5,
            last_ts: 77,
        };
        let v = e.encode();
        assert_eq!(IndexEntry::parse(&9u64.to_be_bytes(), &v).unwrap(), e);
        assert_eq!((e.last_seq(), e.end()), (11, (1 << 40) + 70_000));
        assert!(IndexEntry::parse(&9u64.to_be_bytes(), &v[1..]).is_err());
        assert!(IndexEntry::parse(&3u64.to_be_bytes(), &v).is_err());
        assert!(IndexEntry::parse(&[9], &v).is_err());
        assert_eq!(Frame::parse(&e.frame().encode()), e.frame());
    }
}
