//! Subscription lifecycle inside a channel: create or resume (plain,
//! durable, queue, durable queue), unsubscribe vs close, and a client's
//! departure, with the semantics of PROTOCOL.md 2.4.

use std::time::Instant;

use async_nats::Subject;
use bytes::Bytes;
use prost::Message;

use super::channel::{now_ns, Channel};
use super::subs::{start_last_sent, Sub};
use crate::protocol::errors;
use crate::protocol::pb::{
    StartPosition, SubscriptionRequest, SubscriptionResponse, UnsubscribeRequest,
};
use crate::store::{SubState, SubUpdate};

impl Channel {
    /// Creates or resumes a subscription, replies, then delivers (resumed
    /// subscriptions get their unacked messages first).
    pub(super) async fn subscribe(&mut self, req: SubscriptionRequest, reply: Option<Subject>) {
        let result = self.open_sub(&req).await;
        let response = match &result {
            Ok(id) => SubscriptionResponse {
                ack_inbox: self.subs[id].state.ack_inbox.clone(),
                ..Default::default()
            },
            Err(e) => SubscriptionResponse {
                error: e.clone(),
                ..Default::default()
            },
        };
        if let Ok(id) = result {
            // The subscription must survive a crash once the client has its ack inbox.
            self.write_sub_updates().await;
            if let Err(e) = self.ctx.committer.flush().await {
                tracing::error!(channel = %self.name, client = %req.client_id, error = %e, "flushing a new subscription failed");
            }
            tracing::debug!(channel = %self.name, sub = id, client = %req.client_id, "subscription ready");
        }
        if let Some(reply) = reply {
            self.send(reply, Bytes::from(response.encode_to_vec()))
                .await;
        }
        if let Ok(id) = result {
            let pending: Vec<u64> = self.subs[&id].pending.keys().copied().collect();
            if !pending.is_empty() {
                self.redeliver(id, &pending).await;
            }
            self.deliver().await;
        }
    }

    async fn open_sub(&mut self, req: &SubscriptionRequest) -> Result<u64, String> {
        let group = Self::request_group(req);
        if group.is_some() && req.durable_name.contains(':') {
            return Err(errors::INVALID_DURABLE_NAME.into());
        }
        if let Some(key) = &group {
            if let Some(g) = self.groups.get(key) {
                if let Some(shadow) = g.shadow {
                    return Ok(self.resume(shadow, req));
                }
                if !g.members.is_empty() {
                    let last_sent = g.last_sent;
                    self.check_room()?;
                    let id = self.add_sub(req, group.clone(), last_sent);
                    if let Some(g) = self.groups.get_mut(key) {
                        g.members.push(id);
                    }
                    return Ok(id);
                }
            }
            self.check_room()?;
            let last_sent = self.start_of(req).await;
            let id = self.add_sub(req, group.clone(), last_sent);
            let g = self.groups.entry(key.clone()).or_default();
            g.last_sent = last_sent;
            g.members.push(id);
            return Ok(id);
        }
        if !req.durable_name.is_empty() {
            let key = super::subs::durable_key(&req.client_id, &self.name, &req.durable_name);
            if let Some(&existing) = self.durables.get(&key) {
                if self.subs.get(&existing).is_some_and(|s| s.is_offline()) {
                    return Ok(self.resume(existing, req));
                }
                if !self.ctx.replace_durable {
                    return Err(errors::DUP_DURABLE.into());
                }
                self.leave(existing, false);
                return Ok(self.resume(existing, req));
            }
            self.check_room()?;
            let last_sent = self.start_of(req).await;
            let id = self.add_sub(req, None, last_sent);
            self.durables.insert(key, id);
            return Ok(id);
        }
        self.check_room()?;
        let last_sent = self.start_of(req).await;
        Ok(self.add_sub(req, None, last_sent))
    }

    fn check_room(&self) -> Result<(), String> {
        let max = usize::try_from(self.limit.max_subs).unwrap_or(usize::MAX);
        if max > 0 && self.subs.len() >= max {
            return Err(errors::TOO_MANY_SUBS.into());
        }
        Ok(())
    }

    /// Where a new subscription starts (its `last_sent`).
    async fn start_of(&self, req: &SubscriptionRequest) -> u64 {
        let position =
            StartPosition::try_from(req.start_position).unwrap_or(StartPosition::NewOnly);
        let now = now_ns();
        let start = now.saturating_sub(req.start_time_delta);
        let found = if position == StartPosition::TimeDeltaStart && self.state.msgs > 0 {
            self.on_store("time lookup", move |s| s.first_seq_at_or_after(start))
                .await
                .ok()
                .flatten()
        } else {
            None
        };
        start_last_sent(
            position,
            req.start_sequence,
            req.start_time_delta,
            now,
            self.state,
            |_| found,
        )
    }

    fn add_sub(&mut self, req: &SubscriptionRequest, group: Option<String>, last_sent: u64) -> u64 {
        let id = self.next_sub_id;
        self.next_sub_id += 1;
        let state = SubState {
            id,
            client_id: req.client_id.clone(),
            q_group: group.clone().unwrap_or_default(),
            inbox: req.inbox.clone(),
            ack_inbox: self.new_ack_inbox(),
            max_in_flight: req.max_in_flight,
            ack_wait_in_secs: req.ack_wait_in_secs,
            durable_name: req.durable_name.clone(),
            last_sent,
            is_durable: !req.durable_name.is_empty(),
            is_closed: false,
        };
        self.insert_sub(Sub::new(state, group))
    }

    /// Brings an offline durable (or a durable group's shadow) back for a new
    /// owner: new inbox and ack inbox, the request's window and AckWait; its
    /// position and pending messages are kept.
    fn resume(&mut self, id: u64, req: &SubscriptionRequest) -> u64 {
        let ack_inbox = self.new_ack_inbox();
        let Some(mut sub) = self.subs.remove(&id) else {
            return id;
        };
        self.by_ack_inbox.remove(&sub.state.ack_inbox);
        sub.state.client_id = req.client_id.clone();
        sub.state.inbox = req.inbox.clone();
        sub.state.ack_inbox = ack_inbox;
        sub.state.max_in_flight = req.max_in_flight;
        sub.state.ack_wait_in_secs = req.ack_wait_in_secs;
        sub.state.is_closed = false;
        let mut resumed = Sub::new(sub.state, sub.group);
        let now = Instant::now();
        resumed.pending = sub.pending;
        for p in resumed.pending.values_mut() {
            p.deadline = now;
        }
        if let Some(key) = resumed.group.clone() {
            if let Some(g) = self.groups.get_mut(&key) {
                if g.shadow == Some(id) {
                    g.shadow = None;
                }
                if !g.members.contains(&id) {
                    g.members.push(id);
                }
                resumed.state.last_sent = g.last_sent;
            }
        }
        self.insert_sub(resumed)
    }

    /// Handles unsubscribe (`close` false) and subscription close requests.
    pub(super) async fn unsubscribe(
        &mut self,
        req: UnsubscribeRequest,
        close: bool,
        reply: Option<Subject>,
    ) {
        let found = self.by_ack_inbox.get(&req.inbox).copied().or_else(|| {
            self.subs
                .values()
                .find(|s| !s.is_offline() && s.state.inbox == req.inbox)
                .map(|s| s.state.id)
        });
        let error = match found {
            None => errors::INVALID_SUB,
            Some(id) if self.subs[&id].state.client_id != req.client_id => errors::UNKNOWN_CLIENT,
            Some(id) => {
                self.leave(id, !close);
                self.write_sub_updates().await;
                ""
            }
        };
        if let Some(reply) = reply {
            let resp = SubscriptionResponse {
                error: error.into(),
                ..Default::default()
            };
            self.send(reply, Bytes::from(resp.encode_to_vec())).await;
        }
    }

    /// Closes every subscription of a departed client.
    pub(super) fn client_closed(&mut self, client_id: &str) {
        let mut ids: Vec<u64> = self
            .subs
            .values()
            .filter(|s| !s.is_offline() && s.state.client_id == client_id)
            .map(|s| s.state.id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            self.leave(id, false);
        }
    }

    /// A subscription leaves: by unsubscribe (state removed) or by close
    /// (durable state kept offline). A leaving queue member's unacked
    /// messages go to the remaining members.
    pub(super) fn leave(&mut self, id: u64, unsubscribe: bool) {
        let Some(sub) = self.subs.get(&id) else {
            return;
        };
        let (group, durable) = (sub.group.clone(), sub.state.is_durable);
        match group {
            None if durable && !unsubscribe => self.take_offline(id),
            None => {
                if durable {
                    let key = self.durable_key_of(sub);
                    self.durables.remove(&key);
                }
                self.delete_sub(id);
            }
            Some(key) => {
                let Some(g) = self.groups.get_mut(&key) else {
                    return self.delete_sub(id);
                };
                g.members.retain(|m| *m != id);
                if !g.members.is_empty() {
                    self.hand_over_pending(id, &key);
                    self.delete_sub(id);
                } else if durable && !unsubscribe {
                    g.shadow = Some(id);
                    self.take_offline(id);
                } else {
                    self.groups.remove(&key);
                    self.delete_sub(id);
                }
            }
        }
    }

    fn take_offline(&mut self, id: u64) {
        let Some(sub) = self.subs.get_mut(&id) else {
            return;
        };
        sub.state.is_closed = true;
        self.by_ack_inbox.remove(&sub.state.ack_inbox);
        self.dirty.insert(id);
    }

    fn delete_sub(&mut self, id: u64) {
        if let Some(sub) = self.subs.remove(&id) {
            self.by_ack_inbox.remove(&sub.state.ack_inbox);
            self.dirty.remove(&id);
            self.updates.push(SubUpdate::Delete(id));
        }
    }

    /// Gives a leaving member's pending messages, round-robin, to the
    /// remaining members, due for redelivery now.
    fn hand_over_pending(&mut self, from: u64, key: &str) {
        let Some(members) = self.groups.get(key).map(|g| g.members.clone()) else {
            return;
        };
        let Some(leaving) = self.subs.get_mut(&from) else {
            return;
        };
        let pending = std::mem::take(&mut leaving.pending);
        let now = Instant::now();
        for (i, (seq, mut p)) in pending.into_iter().enumerate() {
            let to = members[i % members.len()];
            if let Some(sub) = self.subs.get_mut(&to) {
                p.deadline = now;
                sub.pending.insert(seq, p);
                self.updates.push(SubUpdate::AddPending { sub: to, seq });
            }
        }
        self.arm(now);
    }
}
