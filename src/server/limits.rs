//! Retention limits of a channel: the oldest messages go once the channel
//! holds more than `max_msgs` messages or `max_bytes` bytes; the newest
//! message is always kept. Subscriptions with a removed message pending
//! treat it as acknowledged when its redelivery finds it gone.

use prost::Message;

use super::channel::Channel;

/// Messages read at once while measuring how many old ones exceed `max_bytes`.
const SCAN: usize = 256;

impl Channel {
    /// Drops the oldest messages past the channel's limits.
    pub(super) async fn enforce_limits(&mut self) {
        let st = self.state;
        if st.msgs <= 1 {
            return;
        }
        let mut through = 0;
        if self.limit.max_msgs > 0 && st.msgs > self.limit.max_msgs {
            through = st.last - self.limit.max_msgs;
        }
        let bytes = self.counted_bytes();
        if self.limit.max_bytes > 0 && bytes > self.limit.max_bytes {
            through = through.max(self.oldest_over_bytes(bytes - self.limit.max_bytes).await);
        }
        if through < st.first {
            return;
        }
        let removed = self
            .on_store("removing old messages", move |s| s.remove_through(through))
            .await;
        if removed.is_ok() {
            self.state = self.store.state();
            if !self.limits_warned {
                self.limits_warned = true;
                tracing::warn!(
                    channel = %self.name,
                    max_msgs = self.limit.max_msgs,
                    max_bytes = self.limit.max_bytes,
                    "reached limits for channel; dropping old messages"
                );
            }
        }
    }

    /// The channel's size as NSS's store of the same kind counts it.
    pub(super) fn counted_bytes(&self) -> u64 {
        let overhead = self.ctx.record_overhead.saturating_mul(self.state.msgs);
        self.state.bytes.saturating_add(overhead)
    }

    /// The last sequence to drop so that at least `excess` bytes go, never
    /// the newest message.
    async fn oldest_over_bytes(&self, mut excess: u64) -> u64 {
        let mut through = 0;
        let mut seq = self.state.first;
        while excess > 0 && seq < self.state.last {
            let chunk = match self
                .on_store("reading old messages", move |s| s.range(seq, SCAN))
                .await
            {
                Ok(chunk) if !chunk.is_empty() => chunk,
                _ => break,
            };
            for m in chunk {
                if excess == 0 || m.sequence >= self.state.last {
                    return through;
                }
                let size = u64::try_from(m.encoded_len())
                    .unwrap_or(u64::MAX)
                    .saturating_add(self.ctx.record_overhead);
                excess = excess.saturating_sub(size);
                through = m.sequence;
                seq = m.sequence + 1;
            }
        }
        through
    }
}
