//! A channel's `subs.dat`: typed records replayed in order, then NSS's
//! recovery rules for which subscriptions survive a restart.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use prost::Message as _;

use super::NssError;
use crate::store::SubState;

const NEW: u8 = 1;
const UPDATE: u8 = 2;
const DELETE: u8 = 3;
const ACK: u8 = 4;
const SENT: u8 = 5;

/// `SubStateDelete`.
#[derive(Clone, PartialEq, prost::Message)]
struct SubDelete {
    #[prost(uint64, tag = "1")]
    id: u64,
}

/// `SubStateUpdate`: a sequence sent to, or acknowledged by, a subscription.
#[derive(Clone, PartialEq, prost::Message)]
struct SubSeq {
    #[prost(uint64, tag = "1")]
    id: u64,
    #[prost(uint64, tag = "2")]
    seqno: u64,
}

/// A subscription as the file leaves it: its last state and unacked sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSub {
    /// The subscription record (NSS's SubState has stanchion's fields and tags).
    pub state: SubState,
    /// Sequences sent and not acknowledged.
    pub pending: BTreeSet<u64>,
}

/// Replays `subs.dat`; a missing file means no subscriptions.
///
/// # Errors
/// A corrupted or unknown record, naming the file and offset.
pub fn replay(path: &Path, notes: &mut Vec<String>) -> Result<BTreeMap<u64, StoredSub>, NssError> {
    let mut subs = BTreeMap::new();
    super::records::for_each_typed(path, notes, |rec| {
        let bad = |e: prost::DecodeError| {
            NssError::at(path, rec.offset, format!("undecodable record: {e}"))
        };
        match rec.kind {
            NEW | UPDATE => {
                let state = SubState::decode(&rec.payload[..]).map_err(bad)?;
                // An update replaces the state and keeps the pending set.
                match subs.entry(state.id) {
                    std::collections::btree_map::Entry::Occupied(mut e) => {
                        let s: &mut StoredSub = e.get_mut();
                        s.state = state;
                    }
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert(StoredSub {
                            state,
                            pending: BTreeSet::new(),
                        });
                    }
                }
            }
            DELETE => {
                let d = SubDelete::decode(&rec.payload[..]).map_err(bad)?;
                subs.remove(&d.id);
            }
            SENT => {
                let u = SubSeq::decode(&rec.payload[..]).map_err(bad)?;
                if let Some(s) = subs.get_mut(&u.id) {
                    s.state.last_sent = s.state.last_sent.max(u.seqno);
                    s.pending.insert(u.seqno);
                }
            }
            ACK => {
                let u = SubSeq::decode(&rec.payload[..]).map_err(bad)?;
                if let Some(s) = subs.get_mut(&u.id) {
                    s.pending.remove(&u.seqno);
                }
            }
            other => {
                return Err(NssError::at(
                    path,
                    rec.offset,
                    format!("unexpected record type {other}"),
                ))
            }
        }
        Ok(())
    })?;
    Ok(subs)
}

/// What a subscription is, by NSS's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A durable subscription (durable name, no queue group).
    Durable,
    /// A member of a durable queue group.
    QueueMember,
    /// The state a durable queue group keeps once its last member left.
    QueueShadow,
    /// A non-durable subscription (plain or queue).
    Plain,
}

/// Classifies a stored subscription.
pub fn kind(s: &SubState) -> Kind {
    if !s.q_group.is_empty() && s.is_durable {
        if s.client_id.is_empty() {
            Kind::QueueShadow
        } else {
            Kind::QueueMember
        }
    } else if s.q_group.is_empty() && (s.is_durable || !s.durable_name.is_empty()) {
        Kind::Durable
    } else {
        Kind::Plain
    }
}

/// Applies NSS's restart rules to a channel's subscriptions and turns them
/// into the records stanchion keeps:
/// - a durable of a client that is gone goes offline (its position kept);
/// - a durable queue group's shadow is kept offline;
/// - a durable queue member of a client that is gone is dropped (NSS calls
///   it a ghost);
/// - a non-durable subscription survives only if its client is registered.
///
/// Returns what is kept, and a note for each subscription dropped.
pub fn survivors(
    channel: &str,
    stored: BTreeMap<u64, StoredSub>,
    registered: &HashSet<String>,
    notes: &mut Vec<String>,
) -> Vec<StoredSub> {
    let mut kept = Vec::with_capacity(stored.len());
    for (_, mut sub) in stored {
        let s = &mut sub.state;
        let live = registered.contains(&s.client_id);
        match kind(s) {
            Kind::Durable => {
                s.is_durable = true;
                if !live {
                    s.is_closed = true;
                }
            }
            Kind::QueueShadow => s.is_closed = true,
            Kind::QueueMember if !live => {
                notes.push(format!(
                    "channel {channel:?}: durable queue member {:?} of group {:?} dropped: \
                     its client is no longer registered (NSS drops it too)",
                    s.client_id, s.q_group
                ));
                continue;
            }
            Kind::QueueMember => {}
            Kind::Plain if !live => {
                notes.push(format!(
                    "channel {channel:?}: subscription {} of client {:?} (inbox {}) dropped: \
                     not durable and its client is no longer registered",
                    s.id, s.client_id, s.inbox
                ));
                continue;
            }
            Kind::Plain => {}
        }
        // stanchion keeps a durable queue member's durable name too (NSS
        // leaves it empty and keeps it only in `durable:group`).
        if s.is_durable && s.durable_name.is_empty() {
            if let Some((durable, _)) = s.q_group.split_once(':') {
                s.durable_name = durable.to_string();
            }
        }
        kept.push(sub);
    }
    kept
}
