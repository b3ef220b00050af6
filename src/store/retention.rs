//! Which stored messages retention limits remove. These are decisions
//! over any [`ChannelStore`], taken and applied in one blocking call, so
//! the server's channel owners and the model test share them.
//!
//! Count and byte limits drop the oldest messages but always keep the
//! newest; age expiry removes the newest too, once it is old enough (as
//! NSS does: a channel can be empty while its sequence goes on).

use prost::Message;

use super::{ChannelState, ChannelStore, Result};

/// Messages read at once while measuring how many old ones exceed `max_bytes`.
const SCAN: usize = 256;

/// What a channel's count and byte limits allow; 0 means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SizeLimits {
    /// Messages kept.
    pub max_msgs: u64,
    /// Bytes kept, counting `overhead` per message beyond its encoding.
    pub max_bytes: u64,
    /// Bytes counted per message beyond its encoding (NSS's file store
    /// counts 40), so that limits fill where NSS's do.
    pub overhead: u64,
}

impl SizeLimits {
    /// The size of a channel in `st` as these limits count it.
    pub fn counted_bytes(&self, st: ChannelState) -> u64 {
        st.bytes
            .saturating_add(self.overhead.saturating_mul(st.msgs))
    }

    /// Whether a channel in `st` holds more than these limits allow; a
    /// lone message never does, as the newest is always kept.
    pub fn exceeded_by(&self, st: ChannelState) -> bool {
        st.msgs > 1
            && ((self.max_msgs > 0 && st.msgs > self.max_msgs)
                || (self.max_bytes > 0 && self.counted_bytes(st) > self.max_bytes))
    }
}

/// Removes the oldest messages past `limits`, never the newest; returns
/// the last sequence removed, if any.
///
/// # Errors
///
/// Whatever the store's reads or removal fail with.
pub fn enforce_size(ch: &dyn ChannelStore, limits: SizeLimits) -> Result<Option<u64>> {
    let through = over_size(ch, limits)?;
    if let Some(seq) = through {
        ch.remove_through(seq)?;
    }
    Ok(through)
}

/// The last sequence to remove so that the channel is within `limits`,
/// never the newest message; `None` when it already is.
///
/// # Errors
///
/// Whatever the store's reads fail with.
pub fn over_size(ch: &dyn ChannelStore, limits: SizeLimits) -> Result<Option<u64>> {
    let st = ch.state();
    if !limits.exceeded_by(st) {
        return Ok(None);
    }
    let mut through = 0;
    if limits.max_msgs > 0 && st.msgs > limits.max_msgs {
        through = st.last - limits.max_msgs;
    }
    let bytes = limits.counted_bytes(st);
    if limits.max_bytes > 0 && bytes > limits.max_bytes {
        let excess = bytes - limits.max_bytes;
        through = through.max(oldest_holding(ch, excess, limits.overhead)?);
    }
    Ok((through >= st.first).then_some(through))
}

/// The last sequence to drop so that at least `excess` bytes go, never
/// the newest message.
fn oldest_holding(ch: &dyn ChannelStore, mut excess: u64, overhead: u64) -> Result<u64> {
    let st = ch.state();
    let mut through = 0;
    let mut seq = st.first;
    while excess > 0 && seq < st.last {
        let chunk = ch.range(seq, SCAN)?;
        if chunk.is_empty() {
            break;
        }
        for m in chunk {
            if excess == 0 || m.sequence >= st.last {
                return Ok(through);
            }
            let size = u64::try_from(m.encoded_len())
                .unwrap_or(u64::MAX)
                .saturating_add(overhead);
            excess = excess.saturating_sub(size);
            through = m.sequence;
            seq = m.sequence + 1;
        }
    }
    Ok(through)
}

/// The outcome of one expiry pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// The last sequence removed, if any.
    pub removed_through: Option<u64>,
    /// The timestamp (ns) of the oldest message left, if any: the next
    /// pass is due when it reaches the age limit.
    pub oldest: Option<i64>,
}

/// Removes messages whose timestamp is at or before `cutoff` (ns), the
/// newest included, but at most `max` of them, oldest first, so that one
/// pass over a huge backlog stays short; call again while
/// [`Expiry::oldest`] is still at or before the cutoff.
///
/// # Errors
///
/// Whatever the store's reads or removal fail with.
pub fn expire(ch: &dyn ChannelStore, cutoff: i64, max: u64) -> Result<Expiry> {
    let st = ch.state();
    let mut removed_through = None;
    if st.msgs > 0 && max > 0 {
        // The first message still young enough, if any, bounds the removal.
        let young = ch.first_seq_at_or_after(cutoff.saturating_add(1))?;
        let expired_end = young.map_or(st.last, |s| s.saturating_sub(1));
        let end = expired_end.min(st.first.saturating_add(max - 1));
        if end >= st.first {
            ch.remove_through(end)?;
            removed_through = Some(end);
        }
    }
    Ok(Expiry {
        removed_through,
        oldest: oldest_timestamp(ch)?,
    })
}

/// The timestamp (ns) of the oldest stored message, if any.
///
/// # Errors
///
/// Whatever the store's read fails with.
pub fn oldest_timestamp(ch: &dyn ChannelStore) -> Result<Option<i64>> {
    let st = ch.state();
    if st.msgs == 0 {
        return Ok(None);
    }
    Ok(ch.get(st.first)?.map(|m| m.timestamp))
}
