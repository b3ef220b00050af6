//! Delivery, acks and redelivery for a channel's subscriptions: new
//! messages within each MaxInFlight window, acks that open the window
//! again, and AckWait expiry that redelivers with the `redelivered` flag.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};

use super::channel::{Channel, Entry};
use super::subs::Pending;
use crate::store::SubUpdate;

/// Largest number of messages sent to one subscription per pass; bounds a pass's memory.
const PASS: usize = 1024;

/// When held-back redeliveries (client failing heartbeats, NATS down) are looked at again.
const HELD_BACK_RETRY: Duration = Duration::from_secs(1);

/// The encoding of `entry` with `redelivered` (6) and `redeliveryCount` (7)
/// appended: fields 1-5 come first in a stored message, so this is still the
/// canonical field order clients see from the reference server.
fn redelivery_payload(entry: &Entry, count: u32) -> Bytes {
    let mut buf = BytesMut::with_capacity(entry.encoded.len() + 8);
    buf.put_slice(&entry.encoded);
    buf.put_slice(&[0x30, 0x01, 0x38]);
    prost::encoding::encode_varint(u64::from(count), &mut buf);
    buf.freeze()
}

impl Channel {
    /// Sends available messages to every online subscription with room.
    pub(super) async fn deliver(&mut self) {
        let mut ids: Vec<u64> = self
            .subs
            .values()
            .filter(|s| s.group.is_none() && s.has_room() && s.state.last_sent < self.state.last)
            .map(|s| s.state.id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.deliver_to(id).await;
        }
        let groups: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| !g.members.is_empty() && g.last_sent < self.state.last)
            .map(|(k, _)| k.clone())
            .collect();
        for g in groups {
            self.deliver_to_group(&g).await;
        }
    }

    async fn deliver_to(&mut self, id: u64) {
        loop {
            let Some(sub) = self.subs.get(&id) else {
                return;
            };
            let room = usize::try_from(sub.state.max_in_flight)
                .unwrap_or(0)
                .saturating_sub(sub.pending.len())
                .min(PASS);
            if room == 0 || sub.is_offline() || sub.state.last_sent >= self.state.last {
                return;
            }
            let Ok(entries) = self.fetch(sub.state.last_sent + 1, room).await else {
                // The store failed (logged): try again later, skip nothing.
                self.arm(Instant::now() + HELD_BACK_RETRY);
                return;
            };
            if entries.is_empty() {
                // Nothing stored past last_sent (removed by limits): skip the gap.
                if let Some(sub) = self.subs.get_mut(&id) {
                    sub.state.last_sent = self.state.last;
                    self.dirty.insert(id);
                }
                return;
            }
            for e in entries {
                self.send_new(id, &e).await;
                if let Some(sub) = self.subs.get_mut(&id) {
                    sub.state.last_sent = e.seq;
                }
            }
            self.dirty.insert(id);
        }
    }

    async fn deliver_to_group(&mut self, key: &str) {
        self.send_to_group(key).await;
        // Every member records the group's position, so any one of them
        // restores it after a restart; once per pass, not per message.
        let Some(group) = self.groups.get(key) else {
            return;
        };
        for m in &group.members {
            if let Some(sub) = self.subs.get_mut(m) {
                if sub.state.last_sent != group.last_sent {
                    sub.state.last_sent = group.last_sent;
                    self.dirty.insert(*m);
                }
            }
        }
    }

    /// Hands the group's next messages to its members, as many as they take.
    async fn send_to_group(&mut self, key: &str) {
        loop {
            let Some(group) = self.groups.get(key) else {
                return;
            };
            if group.last_sent >= self.state.last {
                return;
            }
            // Read no more than the live members can take now.
            let clients = &self.ctx.clients;
            let room: usize = group
                .members
                .iter()
                .filter_map(|m| self.subs.get(m))
                .filter(|s| s.has_room() && !clients.is_failing(&s.state.client_id))
                .map(|s| {
                    usize::try_from(s.state.max_in_flight)
                        .unwrap_or(0)
                        .saturating_sub(s.pending.len())
                })
                .sum();
            if room == 0 {
                return;
            }
            let Ok(entries) = self.fetch(group.last_sent + 1, room.min(PASS)).await else {
                self.arm(Instant::now() + HELD_BACK_RETRY);
                return;
            };
            if entries.is_empty() {
                if let Some(group) = self.groups.get_mut(key) {
                    group.last_sent = self.state.last;
                }
                return;
            }
            for e in entries {
                let Some(group) = self.groups.get_mut(key) else {
                    return;
                };
                let clients = &self.ctx.clients;
                let Some(member) = group.pick(&self.subs, |c| clients.is_failing(c)) else {
                    return;
                };
                group.last_sent = e.seq;
                self.send_new(member, &e).await;
            }
        }
    }

    /// Sends a message for the first time and records it as pending.
    async fn send_new(&mut self, id: u64, entry: &Entry) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        let deadline = Instant::now() + sub.ack_wait;
        sub.pending.insert(
            entry.seq,
            Pending {
                deadline,
                redeliveries: 0,
            },
        );
        let inbox = sub.inbox.clone();
        self.updates.push(SubUpdate::AddPending {
            sub: id,
            seq: entry.seq,
        });
        self.arm(deadline);
        self.count_out(entry.encoded.len(), false);
        self.send(inbox, entry.encoded.clone()).await;
    }

    /// Counts a delivery for the monitor, as NSS counts `out_msgs` / `out_bytes`.
    fn count_out(&self, bytes: usize, redelivery: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let stats = &self.ctx.stats;
        stats.out_msgs.fetch_add(1, Relaxed);
        stats
            .out_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Relaxed);
        if redelivery {
            stats.redeliveries.fetch_add(1, Relaxed);
        }
    }

    /// Makes sure the redelivery timer fires by `deadline`.
    pub(super) fn arm(&mut self, deadline: Instant) {
        if self.next_deadline.is_none_or(|d| deadline < d) {
            self.next_deadline = Some(deadline);
        }
    }

    /// Applies an ack. An ack for a sequence pending on another member of
    /// the same queue group is applied there (it was redelivered elsewhere).
    pub(super) fn ack(&mut self, ack_inbox: &str, seq: u64) {
        let Some(&id) = self.by_ack_inbox.get(ack_inbox) else {
            tracing::trace!(channel = %self.name, ack_inbox, seq, "ack for unknown subscription ignored");
            return;
        };
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        if sub.pending.remove(&seq).is_some() {
            self.updates.push(SubUpdate::RemovePending { sub: id, seq });
            return;
        }
        let Some(group) = sub.group.clone() else {
            return;
        };
        let members = self
            .groups
            .get(&group)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        for m in members {
            if let Some(other) = self.subs.get_mut(&m) {
                if other.pending.remove(&seq).is_some() {
                    self.updates.push(SubUpdate::RemovePending { sub: m, seq });
                    return;
                }
            }
        }
    }

    /// Redelivers every pending message whose AckWait expired, ignoring
    /// MaxInFlight, and re-arms the timer for the next expiry. Plain
    /// subscriptions of a client failing heartbeats wait; a queue member's
    /// expired messages go to a live member instead. While stanchion is cut
    /// off from NATS nothing is redelivered (it would only pile up).
    pub(super) async fn redeliver_expired(&mut self, now: Instant) {
        if !super::liveness::nats_connected(&self.ctx.nats) {
            self.next_deadline = Some(now + HELD_BACK_RETRY);
            return;
        }
        self.next_deadline = None;
        let mut ids: Vec<u64> = self.subs.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(sub) = self.subs.get(&id) else {
                continue;
            };
            if sub.is_offline() {
                continue;
            }
            let expired: Vec<u64> = sub
                .pending
                .iter()
                .filter(|(_, p)| p.deadline <= now)
                .map(|(s, _)| *s)
                .collect();
            let mut target = Some(id);
            if !expired.is_empty() && self.ctx.clients.is_failing(&sub.state.client_id) {
                target = match sub.group.clone() {
                    // Held back until the client answers again (or is closed).
                    None => None,
                    Some(group) => self.move_to_live_member(id, &group, &expired),
                };
                if target.is_none() {
                    // Its deadlines have passed: look again later, not at once.
                    self.arm(now + HELD_BACK_RETRY);
                    continue;
                }
            }
            if let (Some(to), false) = (target, expired.is_empty()) {
                self.redeliver(to, &expired).await;
            }
            if let Some(next) = self
                .subs
                .get(&id)
                .and_then(|s| s.pending.values().map(|p| p.deadline).min())
            {
                self.arm(next);
            }
        }
    }

    /// Moves pending `seqs` of member `from` to a live member of `group`; returns it.
    fn move_to_live_member(&mut self, from: u64, group: &str, seqs: &[u64]) -> Option<u64> {
        let clients = &self.ctx.clients;
        let to = self
            .groups
            .get(group)?
            .live_member(&self.subs, from, |c| clients.is_failing(c))?;
        let moved: Vec<(u64, Pending)> = {
            let sub = self.subs.get_mut(&from)?;
            seqs.iter()
                .filter_map(|s| sub.pending.remove(s).map(|p| (*s, p)))
                .collect()
        };
        let target = self.subs.get_mut(&to)?;
        for (seq, p) in moved {
            target.pending.insert(seq, p);
            self.updates
                .push(SubUpdate::RemovePending { sub: from, seq });
            self.updates.push(SubUpdate::AddPending { sub: to, seq });
        }
        Some(to)
    }

    /// Redelivers `seqs` (pending on `id`) now; messages no longer stored are implicitly acked.
    pub(super) async fn redeliver(&mut self, id: u64, seqs: &[u64]) {
        for chunk in seqs.chunks(PASS) {
            let Ok(entries) = self.fetch_seqs(chunk).await else {
                // The store failed (logged): keep them pending, look again later.
                self.arm(Instant::now() + HELD_BACK_RETRY);
                return;
            };
            for (seq, entry) in chunk.iter().zip(entries) {
                let Some(sub) = self.subs.get_mut(&id) else {
                    return;
                };
                let Some(entry) = entry else {
                    sub.pending.remove(seq);
                    self.updates
                        .push(SubUpdate::RemovePending { sub: id, seq: *seq });
                    continue;
                };
                let Some(p) = sub.pending.get_mut(seq) else {
                    continue;
                };
                p.redeliveries = p.redeliveries.saturating_add(1);
                p.deadline = Instant::now() + sub.ack_wait;
                let (count, deadline, inbox) = (p.redeliveries, p.deadline, sub.inbox.clone());
                self.arm(deadline);
                let payload = redelivery_payload(&entry, count);
                self.count_out(payload.len(), true);
                self.send(inbox, payload).await;
            }
        }
    }

    /// The messages with these (ascending) sequences, `None` where not stored.
    async fn fetch_seqs(&self, seqs: &[u64]) -> Result<Vec<Option<Entry>>, String> {
        let (Some(&lo), Some(&hi)) = (seqs.first(), seqs.last()) else {
            return Ok(Vec::new());
        };
        let span = usize::try_from(hi - lo + 1).unwrap_or(usize::MAX);
        if span <= PASS * 4 {
            let entries = self.fetch(lo, span).await?;
            return Ok(seqs
                .iter()
                .map(|s| {
                    entries
                        .binary_search_by_key(s, |e| e.seq)
                        .ok()
                        .map(|i| entries[i].clone())
                })
                .collect());
        }
        let mut out = Vec::with_capacity(seqs.len());
        for s in seqs {
            out.push(self.fetch(*s, 1).await?.into_iter().find(|e| e.seq == *s));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::pb::MsgProto;
    use prost::Message;

    #[test]
    fn redelivery_payload_is_the_canonical_encoding() {
        let msg = MsgProto {
            sequence: 2,
            subject: "foo".into(),
            data: Bytes::from_static(b"msg-2"),
            timestamp: 1_700_000_000_000_000_000,
            ..Default::default()
        };
        let entry = Entry {
            seq: 2,
            encoded: Bytes::from(msg.encode_to_vec()),
        };
        let expected = MsgProto {
            redelivered: true,
            redelivery_count: 300,
            ..msg
        };
        assert_eq!(
            redelivery_payload(&entry, 300),
            Bytes::from(expected.encode_to_vec())
        );
    }
}
