//! The message record of the sled store: consecutive messages of one
//! `append` stored as one sled value, so that an append costs one sled
//! insert rather than one per message. Pure: no I/O.
//!
//! A record's key is the sequence of its first message (u64 BE). Its value
//! is a fixed header, then each message as `varint length ++ encoded
//! MsgProto` (the stored form, see [`super::codec::stored_form`]):
//!
//! ```text
//! cum u64 BE | count u32 BE | first_ts i64 BE | last_ts i64 BE | (len, msg)*
//! ```
//!
//! `cum` is the channel's cumulative byte total through the record's last
//! message, so the bytes of a whole log follow from its first and last
//! records alone; the timestamps let a time search skip whole records.

use prost::encoding::{decode_varint, encode_varint, encoded_len_varint};
use prost::Message;

use super::codec::{be_u64, corrupt, counted_size, decode, len_u64, stored_form};
use super::{Result, StoreError};
use crate::protocol::pb::MsgProto;

/// Length of the fixed header that starts every record value.
const HEADER_LEN: usize = 28;

/// Record kind named in corruption errors.
const WHAT: &str = "message record";

/// How `append` cuts a batch into records. Reading one message walks its
/// record's length prefixes, so records are kept small; and sled writes any
/// log entry over a quarter of its 512 KB segment (a record, or a leaf node
/// of up to 16 records when sled rewrites it) to a blob file of its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordLimits {
    /// Most messages in one record.
    pub(super) msgs: usize,
    /// Most encoded bytes in one record; a single bigger message still
    /// gets a record of its own.
    pub(super) bytes: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            msgs: 1024,
            bytes: 64 << 10,
        }
    }
}

/// A record ready to store: its key and value.
pub(super) type Encoded = ([u8; 8], Vec<u8>);

/// Encodes a sequence as a record key.
pub(super) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// One record under construction.
struct Builder {
    /// Sequence of the first message.
    first_seq: u64,
    /// Messages so far.
    count: u32,
    /// Timestamp of the first message.
    first_ts: i64,
    /// Header placeholder, then the length-prefixed messages.
    value: Vec<u8>,
}

impl Builder {
    /// Fills in the header and returns (key, value).
    fn finish(mut self, cum: u64, last_ts: i64) -> Encoded {
        let mut header = [0; HEADER_LEN];
        header[..8].copy_from_slice(&cum.to_be_bytes());
        header[8..12].copy_from_slice(&self.count.to_be_bytes());
        header[12..20].copy_from_slice(&self.first_ts.to_be_bytes());
        header[20..].copy_from_slice(&last_ts.to_be_bytes());
        self.value[..HEADER_LEN].copy_from_slice(&header);
        (seq_key(self.first_seq), self.value)
    }
}

/// Encodes messages (already checked to be consecutive) as records, cut by
/// `limits`. `cum` is the cumulative byte total before the first message;
/// returns the records and the total after the last message.
pub(super) fn encode(msgs: &[MsgProto], mut cum: u64, limits: RecordLimits) -> (Vec<Encoded>, u64) {
    let mut records = Vec::new();
    let mut current: Option<Builder> = None;
    let mut last_ts = 0;
    for msg in msgs {
        let stored = stored_form(msg);
        let len = stored.encoded_len();
        let entry_len = encoded_len_varint(len_u64(len)) + len;
        if let Some(b) = current.take() {
            let full = usize::try_from(b.count).unwrap_or(usize::MAX) >= limits.msgs
                || b.value.len() - HEADER_LEN + entry_len > limits.bytes;
            if full {
                records.push(b.finish(cum, last_ts));
            } else {
                current = Some(b);
            }
        }
        let b = current.get_or_insert_with(|| Builder {
            first_seq: stored.sequence,
            count: 0,
            first_ts: stored.timestamp,
            value: {
                let mut v = Vec::with_capacity(HEADER_LEN + entry_len);
                v.resize(HEADER_LEN, 0);
                v
            },
        });
        encode_varint(len_u64(len), &mut b.value);
        stored.encode_raw(&mut b.value);
        b.count += 1;
        cum = cum.saturating_add(counted_size(&stored));
        last_ts = stored.timestamp;
    }
    if let Some(b) = current {
        records.push(b.finish(cum, last_ts));
    }
    (records, cum)
}

/// A stored record, borrowed from its sled key and value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Record<'a> {
    /// Sequence of the first message.
    pub(super) first_seq: u64,
    /// Number of messages.
    pub(super) count: u64,
    /// Cumulative byte total through the last message.
    pub(super) cum: u64,
    /// Timestamp of the first message.
    pub(super) first_ts: i64,
    /// Timestamp of the last message.
    pub(super) last_ts: i64,
    /// The length-prefixed messages.
    body: &'a [u8],
}

impl<'a> Record<'a> {
    /// Reads a record's key and header; the body is checked as it is read.
    ///
    /// # Errors
    ///
    /// `Corrupt` if the key is not 8 bytes, the value is shorter than its
    /// header, or the record claims no messages.
    pub(super) fn parse(key: &[u8], value: &'a [u8]) -> Result<Self> {
        let first_seq = be_u64("message key", key)?;
        if value.len() < HEADER_LEN {
            return Err(corrupt(WHAT, "value shorter than its header"));
        }
        let (header, body) = value.split_at(HEADER_LEN);
        let count = u32::from_be_bytes(header[8..12].try_into().unwrap_or_default());
        if count == 0 || first_seq == 0 {
            return Err(corrupt(WHAT, "empty record or sequence 0"));
        }
        Ok(Self {
            first_seq,
            count: u64::from(count),
            cum: be_u64(WHAT, &header[..8])?,
            first_ts: i64::from_be_bytes(header[12..20].try_into().unwrap_or_default()),
            last_ts: i64::from_be_bytes(header[20..].try_into().unwrap_or_default()),
            body,
        })
    }

    /// Sequence of the last message.
    pub(super) fn last_seq(&self) -> u64 {
        self.first_seq.saturating_add(self.count - 1)
    }

    /// Whether the record holds `seq`.
    pub(super) fn contains(&self, seq: u64) -> bool {
        (self.first_seq..=self.last_seq()).contains(&seq)
    }

    /// The encoded messages with their sequences, in order.
    pub(super) fn entries(&self) -> Entries<'a> {
        Entries {
            seq: self.first_seq,
            left: self.count,
            rest: self.body,
        }
    }

    /// The cumulative total before this record's first message, and the
    /// counted bytes of its messages below `seq`. Reads every length prefix
    /// (never a message), checking that they fill the body exactly.
    ///
    /// # Errors
    ///
    /// `Corrupt` if the body does not hold `count` well-formed entries or
    /// the totals do not add up.
    pub(super) fn cum_before_and_bytes_below(&self, seq: u64) -> Result<(u64, u64)> {
        let (mut total, mut below) = (0u64, 0u64);
        let mut entries = self.entries();
        for entry in &mut entries {
            let (s, bytes) = entry?;
            let size = len_u64(bytes.len());
            total = total.saturating_add(size);
            if s < seq {
                below = below.saturating_add(size);
            }
        }
        if !entries.rest.is_empty() {
            return Err(corrupt(WHAT, "bytes after the last message"));
        }
        let before = self
            .cum
            .checked_sub(total)
            .ok_or_else(|| corrupt(WHAT, "cumulative total below the record's size"))?;
        Ok((before, below))
    }

    /// The message with sequence `seq`, if the record holds it.
    ///
    /// # Errors
    ///
    /// `Corrupt` if the entries up to it or the message itself are malformed.
    pub(super) fn get(&self, seq: u64) -> Result<Option<MsgProto>> {
        if !self.contains(seq) {
            return Ok(None);
        }
        for entry in self.entries() {
            let (s, bytes) = entry?;
            if s == seq {
                return Ok(Some(decode_entry(bytes)?));
            }
        }
        Ok(None)
    }

    /// The first sequence in the record whose timestamp is >= `timestamp`,
    /// by binary search over its messages.
    ///
    /// # Errors
    ///
    /// `Corrupt` if an entry or a probed message is malformed.
    pub(super) fn first_at_or_after(&self, timestamp: i64) -> Result<Option<u64>> {
        let entries = self.entries().collect::<Result<Vec<_>>>()?;
        let (mut lo, mut hi) = (0, entries.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if decode_entry(entries[mid].1)?.timestamp < timestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(entries.get(lo).map(|(seq, _)| *seq))
    }
}

/// Decodes one stored message.
pub(super) fn decode_entry(bytes: &[u8]) -> Result<MsgProto> {
    decode(WHAT, bytes)
}

/// Iterator over a record's `(sequence, encoded message)` entries.
pub(super) struct Entries<'a> {
    /// Sequence of the next entry.
    seq: u64,
    /// Entries still to read.
    left: u64,
    /// The unread body.
    rest: &'a [u8],
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<(u64, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let seq = self.seq;
        self.seq = self.seq.saturating_add(1);
        let entry = decode_varint(&mut self.rest)
            .map_err(|source| StoreError::Corrupt { what: WHAT, source })
            .and_then(|len| {
                usize::try_from(len)
                    .ok()
                    .filter(|&len| len <= self.rest.len())
                    .ok_or_else(|| corrupt(WHAT, "message runs past the record"))
            })
            .map(|len| {
                let (bytes, rest) = self.rest.split_at(len);
                self.rest = rest;
                (seq, bytes)
            });
        if entry.is_err() {
            self.left = 0;
        }
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::msg;

    /// Messages `from..=to`, timestamps 10 * sequence, payloads of `len`.
    fn batch(from: u64, to: u64, len: usize) -> Vec<MsgProto> {
        (from..=to)
            .map(|s| msg(s, i64::try_from(s).unwrap() * 10, &"x".repeat(len)))
            .collect()
    }

    /// Every message of encoded records, decoded.
    fn decode_all(records: &[Encoded]) -> Vec<MsgProto> {
        let mut out = Vec::new();
        for (key, value) in records {
            let rec = Record::parse(key, value).unwrap();
            for entry in rec.entries() {
                out.push(decode_entry(entry.unwrap().1).unwrap());
            }
        }
        out
    }

    #[test]
    fn round_trip_and_split_by_count() {
        let msgs = batch(5, 14, 3);
        let limits = RecordLimits {
            msgs: 4,
            bytes: 1 << 20,
        };
        let (records, cum) = encode(&msgs, 100, limits);
        let firsts: Vec<_> = records
            .iter()
            .map(|(k, _)| u64::from_be_bytes(*k))
            .collect();
        assert_eq!(firsts, [5, 9, 13]);
        assert_eq!(decode_all(&records), msgs);
        let sizes: u64 = msgs.iter().map(|m| len_u64(m.encoded_len())).sum();
        assert_eq!(cum, 100 + sizes);
        let last = Record::parse(&records[2].0, &records[2].1).unwrap();
        assert_eq!((last.cum, last.count, last.last_seq()), (cum, 2, 14));
        assert_eq!((last.first_ts, last.last_ts), (130, 140));
        let (before, below) = last.cum_before_and_bytes_below(14).unwrap();
        assert_eq!(
            before,
            cum - len_u64(msgs[8].encoded_len() + msgs[9].encoded_len())
        );
        assert_eq!(below, len_u64(msgs[8].encoded_len()));
        assert_eq!(last.get(14).unwrap().as_ref(), Some(&msgs[9]));
        assert_eq!(last.get(12).unwrap(), None);
        assert_eq!(last.first_at_or_after(131).unwrap(), Some(14));
        assert_eq!(last.first_at_or_after(141).unwrap(), None);
    }

    #[test]
    fn split_by_bytes_keeps_big_messages_whole() {
        let mut msgs = batch(1, 3, 10);
        msgs.extend(batch(4, 4, 500));
        msgs.extend(batch(5, 6, 10));
        let limits = RecordLimits {
            msgs: 100,
            bytes: 100,
        };
        let (records, _) = encode(&msgs, 0, limits);
        let firsts: Vec<_> = records
            .iter()
            .map(|(k, _)| u64::from_be_bytes(*k))
            .collect();
        assert_eq!(firsts, [1, 4, 5]);
        assert_eq!(decode_all(&records), msgs);
    }

    #[test]
    fn malformed_records_are_corrupt() {
        let (records, _) = encode(&batch(1, 2, 3), 0, RecordLimits::default());
        let (key, value) = &records[0];
        assert!(Record::parse(&key[..4], value).is_err());
        assert!(Record::parse(key, &value[..HEADER_LEN - 1]).is_err());
        let truncated = Record::parse(key, &value[..value.len() - 1]).unwrap();
        assert!(truncated.get(2).is_err());
        assert!(truncated.cum_before_and_bytes_below(1).is_err());
        let mut longer = value.clone();
        longer.push(0);
        let longer = Record::parse(key, &longer).unwrap();
        assert!(longer.cum_before_and_bytes_below(1).is_err());
        let mut zero = value.clone();
        zero[8..12].copy_from_slice(&0u32.to_be_bytes());
        assert!(Record::parse(key, &zero).is_err());
    }
}
