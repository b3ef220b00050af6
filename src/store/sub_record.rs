//! Encodings of the sled store's subscription records, and the fold that
//! replays updates onto subscriptions. Pure: no I/O.
//!
//! An update batch (one `apply_subs` call) is a sequence of tagged entries,
//! numbers as varints:
//!
//! ```text
//! 1 len SubState   (Put)        2 id        (Delete)
//! 3 sub seq        (AddPending) 4 sub seq   (RemovePending)
//! ```
//!
//! A snapshot of one subscription is `varint (state length + 1, or 0 for no
//! record) ++ SubState ++ varint pending count ++ pending sequences`
//! (ascending; the first as is, the rest as differences to the previous).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};

use prost::bytes::Buf;
use prost::encoding::{decode_varint, encode_varint};
use prost::Message;

use super::codec::{corrupt, decode, len_u64};
use super::{RecoveredSub, Result, StoreError, SubState, SubUpdate};

/// Record kind named in corruption errors of update batches.
const BATCH: &str = "subscription log record";
/// Record kind named in corruption errors of snapshots.
const SNAPSHOT: &str = "subscription record";

/// Tag of [`SubUpdate::Put`].
const PUT: u8 = 1;
/// Tag of [`SubUpdate::Delete`].
const DELETE: u8 = 2;
/// Tag of [`SubUpdate::AddPending`].
const ADD: u8 = 3;
/// Tag of [`SubUpdate::RemovePending`].
const REMOVE: u8 = 4;

/// Appends an update batch's encoding to `out`.
pub(super) fn encode_batch(updates: &[SubUpdate], out: &mut Vec<u8>) {
    for update in updates {
        match update {
            SubUpdate::Put(state) => {
                out.push(PUT);
                encode_varint(len_u64(state.encoded_len()), out);
                state.encode_raw(out);
            }
            SubUpdate::Delete(id) => {
                out.push(DELETE);
                encode_varint(*id, out);
            }
            SubUpdate::AddPending { sub, seq } | SubUpdate::RemovePending { sub, seq } => {
                let tag = if matches!(update, SubUpdate::AddPending { .. }) {
                    ADD
                } else {
                    REMOVE
                };
                out.push(tag);
                encode_varint(*sub, out);
                encode_varint(*seq, out);
            }
        }
    }
}

/// Reads a varint of a record of kind `what`.
fn varint(what: &'static str, buf: &mut &[u8]) -> Result<u64> {
    decode_varint(buf).map_err(|source| StoreError::Corrupt { what, source })
}

/// Takes a varint-length-prefixed slice off `buf`.
fn prefixed<'a>(what: &'static str, buf: &mut &'a [u8]) -> Result<&'a [u8]> {
    let len = varint(what, buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= buf.len())
        .ok_or_else(|| corrupt(what, "length runs past the record"))?;
    let (bytes, rest) = buf.split_at(len);
    *buf = rest;
    Ok(bytes)
}

/// Decodes an update batch.
///
/// # Errors
///
/// `Corrupt` on an unknown tag, a truncated entry or a bad SubState.
pub(super) fn decode_batch(mut buf: &[u8]) -> Result<Vec<SubUpdate>> {
    let mut updates = Vec::new();
    while let Some(&tag) = buf.first() {
        buf.advance(1);
        updates.push(match tag {
            PUT => SubUpdate::Put(decode(BATCH, prefixed(BATCH, &mut buf)?)?),
            DELETE => SubUpdate::Delete(varint(BATCH, &mut buf)?),
            ADD => SubUpdate::AddPending {
                sub: varint(BATCH, &mut buf)?,
                seq: varint(BATCH, &mut buf)?,
            },
            REMOVE => SubUpdate::RemovePending {
                sub: varint(BATCH, &mut buf)?,
                seq: varint(BATCH, &mut buf)?,
            },
            other => return Err(corrupt(BATCH, format!("unknown update tag {other}"))),
        });
    }
    Ok(updates)
}

/// One subscription as far as the store knows it. Pending sequences are
/// kept without a record (the memory store's semantics): a later `Put`
/// makes them visible, a `Delete` drops them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SubFold {
    /// The subscription record, if one was put and not deleted since.
    pub(super) state: Option<SubState>,
    /// Sequences sent and not acknowledged.
    pub(super) pending: BTreeSet<u64>,
}

impl SubFold {
    /// Whether nothing is left to store.
    pub(super) fn is_empty(&self) -> bool {
        self.state.is_none() && self.pending.is_empty()
    }

    /// The snapshot encoding.
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.state {
            Some(state) => {
                encode_varint(len_u64(state.encoded_len()).saturating_add(1), &mut out);
                state.encode_raw(&mut out);
            }
            None => out.push(0),
        }
        encode_varint(len_u64(self.pending.len()), &mut out);
        let mut prev = 0;
        for &seq in &self.pending {
            encode_varint(seq - prev, &mut out);
            prev = seq;
        }
        out
    }

    /// Decodes a snapshot.
    ///
    /// # Errors
    ///
    /// `Corrupt` if it is truncated, has trailing bytes or a bad SubState.
    pub(super) fn decode(mut buf: &[u8]) -> Result<Self> {
        let state = match varint(SNAPSHOT, &mut buf)? {
            0 => None,
            n => {
                let len = usize::try_from(n - 1)
                    .ok()
                    .filter(|&len| len <= buf.len())
                    .ok_or_else(|| corrupt(SNAPSHOT, "record runs past its value"))?;
                let (bytes, rest) = buf.split_at(len);
                buf = rest;
                Some(decode(SNAPSHOT, bytes)?)
            }
        };
        let count = varint(SNAPSHOT, &mut buf)?;
        let mut pending = BTreeSet::new();
        let mut prev = 0u64;
        for _ in 0..count {
            let delta = varint(SNAPSHOT, &mut buf)?;
            prev = prev
                .checked_add(delta)
                .filter(|_| delta > 0 || pending.is_empty())
                .ok_or_else(|| corrupt(SNAPSHOT, "pending sequences out of order"))?;
            pending.insert(prev);
        }
        if !buf.is_empty() {
            return Err(corrupt(SNAPSHOT, "bytes after the pending sequences"));
        }
        Ok(Self { state, pending })
    }
}

/// The fold of subscription `id`, loaded with `load` if not yet in `folds`.
fn entry<'a>(
    folds: &'a mut BTreeMap<u64, SubFold>,
    id: u64,
    load: &mut impl FnMut(u64) -> Result<SubFold>,
) -> Result<&'a mut SubFold> {
    Ok(match folds.entry(id) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => entry.insert(load(id)?),
    })
}

/// Applies one update to the subscriptions in `folds`, loading a
/// subscription with `load` the first time an update needs its past.
///
/// # Errors
///
/// Whatever `load` fails with.
pub(super) fn apply(
    folds: &mut BTreeMap<u64, SubFold>,
    update: SubUpdate,
    mut load: impl FnMut(u64) -> Result<SubFold>,
) -> Result<()> {
    match update {
        SubUpdate::Put(state) => {
            let id = state.id;
            entry(folds, id, &mut load)?.state = Some(state);
        }
        // Nothing of the past survives a delete: no need to load it.
        SubUpdate::Delete(id) => {
            folds.insert(id, SubFold::default());
        }
        SubUpdate::AddPending { sub, seq } => {
            entry(folds, sub, &mut load)?.pending.insert(seq);
        }
        SubUpdate::RemovePending { sub, seq } => {
            entry(folds, sub, &mut load)?.pending.remove(&seq);
        }
    }
    Ok(())
}

/// The subscriptions `subs()` reports: those with a record, in ID order.
pub(super) fn recovered(folds: BTreeMap<u64, SubFold>) -> Vec<RecoveredSub> {
    folds
        .into_values()
        .filter_map(|fold| {
            Some(RecoveredSub {
                state: fold.state?,
                pending: fold.pending.into_iter().collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sub;

    #[test]
    fn batch_round_trip() {
        let updates = vec![
            SubUpdate::Put(sub(7, 3)),
            SubUpdate::AddPending {
                sub: 7,
                seq: u64::MAX,
            },
            SubUpdate::RemovePending { sub: 0, seq: 1 },
            SubUpdate::Delete(1 << 40),
            SubUpdate::Put(SubState::default()),
        ];
        let mut buf = vec![];
        encode_batch(&updates, &mut buf);
        assert_eq!(decode_batch(&buf).unwrap(), updates);
        assert!(decode_batch(&[]).unwrap().is_empty());
        assert!(decode_batch(&buf[..buf.len() - 1]).is_err());
        assert!(decode_batch(&[9]).is_err());
        assert!(decode_batch(&[ADD, 1]).is_err());
        assert!(decode_batch(&[PUT, 200, 1]).is_err());
    }

    #[test]
    fn snapshot_round_trip() {
        for fold in [
            SubFold::default(),
            SubFold {
                state: Some(sub(1, 2)),
                pending: [0, 1, 2, 1000, u64::MAX].into(),
            },
            SubFold {
                state: None,
                pending: [5].into(),
            },
            SubFold {
                state: Some(SubState::default()),
                pending: BTreeSet::new(),
            },
        ] {
            let buf = fold.encode();
            assert_eq!(SubFold::decode(&buf).unwrap(), fold);
            assert!(SubFold::decode(&buf[..buf.len() - 1]).is_err());
            let mut longer = buf.clone();
            longer.push(0);
            assert!(SubFold::decode(&longer).is_err());
        }
        // Repeated pending sequences (a zero difference) are corrupt.
        assert!(SubFold::decode(&[0, 2, 4, 0]).is_err());
    }

    #[test]
    fn fold_loads_only_what_it_needs() {
        let mut folds = BTreeMap::new();
        let mut loaded = Vec::new();
        let stored = SubFold {
            state: Some(sub(1, 1)),
            pending: [4].into(),
        };
        let updates = [
            SubUpdate::AddPending { sub: 1, seq: 5 },
            SubUpdate::Delete(2),
            SubUpdate::AddPending { sub: 2, seq: 6 },
            SubUpdate::RemovePending { sub: 1, seq: 4 },
        ];
        for update in updates {
            apply(&mut folds, update, |id| {
                loaded.push(id);
                Ok(stored.clone())
            })
            .unwrap();
        }
        assert_eq!(loaded, [1]);
        assert_eq!(folds[&1].pending, [5].into());
        assert_eq!(folds[&2].pending, [6].into());
        assert_eq!(folds[&2].state, None);
        let subs = recovered(folds);
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].pending, [5]);
    }
}
