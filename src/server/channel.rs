//! The channel actor: the one owner of a channel's log state and its
//! subscriptions. Publishes arrive in batches and leave as one store write,
//! one (shared) fsync, deliveries, then PubAcks. Everything else a channel
//! does (subscribe, ack, unsubscribe, client close, redelivery) runs here
//! too, in arrival order, so no lock guards a channel's state.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_nats::Subject;
use bytes::Bytes;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

use super::committer::Committer;
use super::subs::{durable_key, group_key, QueueGroup, Sub};
use crate::protocol::pb::{MsgProto, PubAck, PubMsg, SubscriptionRequest, UnsubscribeRequest};
use crate::store::{ChannelState, ChannelStore, RecoveredSub, SubUpdate};

/// Mailbox depth of a channel. When full, the dispatcher waits: a very slow
/// channel then slows intake, it never drops a request.
pub const MAILBOX: usize = 65_536;

/// Messages kept encoded in memory for live subscribers, so keeping up with
/// the head of a channel never reads the store (a channel without an online
/// subscription keeps none): at most this many...
const RECENT: usize = 2048;
/// ...and at most this many bytes, per channel.
const RECENT_BYTES: usize = 512 * 1024;

/// Commands a channel's batch buffer keeps room for between batches.
const KEPT_BATCH_CAPACITY: usize = 64;

/// A validated publish, cut down to what the channel stores and answers
/// with: every mailbox slot is as large as the largest command, and a
/// burst of queued commands costs slots × that size.
pub struct Publish {
    /// The publisher's ID of the message, echoed in its PubAck.
    pub guid: String,
    /// The channel, as the publisher named it (stored with the message).
    pub subject: String,
    /// The message's reply subject.
    pub reply: String,
    /// The payload.
    pub data: Bytes,
}

impl From<PubMsg> for Publish {
    fn from(m: PubMsg) -> Publish {
        Publish {
            guid: m.guid,
            subject: m.subject,
            reply: m.reply,
            data: m.data,
        }
    }
}

/// A request for a channel's owner. Rare, large requests are boxed to keep
/// the mailbox slots small.
pub enum ChannelCmd {
    /// A validated publish; `reply` gets the PubAck.
    Publish {
        /// The client's message.
        msg: Publish,
        /// Where the PubAck goes.
        reply: Option<Subject>,
    },
    /// A validated subscription request.
    Subscribe {
        /// The client's request.
        req: Box<SubscriptionRequest>,
        /// Where the SubscriptionResponse goes.
        reply: Option<Subject>,
    },
    /// An ack that arrived on `ack_inbox`.
    Ack {
        /// The subject the ack arrived on.
        ack_inbox: Subject,
        /// The acknowledged sequence.
        seq: u64,
    },
    /// Unsubscribe (`close` false) or subscription close (`close` true).
    Unsubscribe {
        /// The client's request.
        req: Box<UnsubscribeRequest>,
        /// Subscription close keeps durable state.
        close: bool,
        /// Where the SubscriptionResponse goes.
        reply: Option<Subject>,
    },
    /// A client answers again: retry deliveries held back for it.
    Wake,
    /// The monitor asks for the channel's state; answered between batches,
    /// without cutting the current publish batch short.
    Snapshot {
        /// Where the snapshot goes.
        reply: oneshot::Sender<super::view::ChannelSnapshot>,
    },
    /// The dispatcher deletes the channel if it is still idle
    /// (`max_inactivity`): answered true, and the owner stops.
    Retire {
        /// Whether the channel agreed.
        reply: oneshot::Sender<bool>,
    },
    /// A client is gone: its subscriptions close as if it had sent Close.
    ClientClosed {
        /// The departed client.
        client_id: String,
        /// Answered once the channel has processed the close.
        done: oneshot::Sender<()>,
    },
}

/// A handle to a channel's owner task.
#[derive(Clone)]
pub struct ChannelHandle {
    /// The owner's mailbox.
    pub tx: mpsc::Sender<ChannelCmd>,
}

/// What every channel shares with the rest of the server.
#[derive(Clone)]
pub struct ChannelCtx {
    /// Registered clients, to hold back deliveries to clients failing heartbeats.
    pub clients: Arc<super::clients::Clients>,
    /// Connection used for deliveries and replies.
    pub nats: async_nats::Client,
    /// Group commit of store writes.
    pub committer: Committer,
    /// Prefix of the ack inboxes handed out (`_INBOX.<server nuid>`).
    pub ack_prefix: Arc<str>,
    /// Replace a duplicate durable instead of rejecting it.
    pub replace_durable: bool,
    /// The global and per-channel limits; each channel takes its own at start.
    pub limits: Arc<crate::config::limits::StoreLimits>,
    /// Maximum publishes handled in one batch.
    pub batch: usize,
    /// Bytes NSS's store of this kind counts per message beyond its
    /// encoding: 40 for the file store (record header and index entry), 0
    /// for memory. Reported sizes and `max_bytes` use it, so that limits
    /// fill where NSS's do.
    pub record_overhead: u64,
    /// Counters the monitor reads.
    pub stats: Arc<super::view::Stats>,
    /// Where channels idle for `max_inactivity` report their name.
    pub idle_tx: mpsc::Sender<String>,
}

/// A message ready to send: its sequence and canonical encoding.
#[derive(Clone)]
pub(super) struct Entry {
    pub seq: u64,
    pub encoded: Bytes,
}

impl Entry {
    fn from_msg(m: &MsgProto) -> Entry {
        Entry {
            seq: m.sequence,
            encoded: Bytes::from(m.encode_to_vec()),
        }
    }
}

/// The channel owner's state. Only its own task touches it.
pub(super) struct Channel {
    pub name: String,
    pub store: Arc<dyn ChannelStore>,
    pub ctx: ChannelCtx,
    pub state: ChannelState,
    pub last_timestamp: i64,
    /// The newest messages, encoded, for live delivery.
    pub recent: VecDeque<Entry>,
    /// Encoded size of `recent`.
    pub recent_bytes: usize,
    /// This channel's limits: its most specific pattern's, else the global ones.
    pub limit: crate::config::limits::Limit,
    /// Whether the "reached limits" warning was logged (once per channel).
    pub limits_warned: bool,
    pub subs: HashMap<u64, Sub>,
    pub by_ack_inbox: HashMap<String, u64>,
    pub durables: HashMap<String, u64>,
    pub groups: HashMap<String, QueueGroup>,
    pub next_sub_id: u64,
    /// Subscription changes not yet written to the store.
    pub updates: Vec<SubUpdate>,
    /// Subscriptions whose record changed (e.g. `last_sent`) since the last write.
    pub dirty: HashSet<u64>,
    /// The earliest redelivery deadline, if anything is pending.
    pub next_deadline: Option<Instant>,
    /// When the next `max_age` expiry pass is due, if messages are stored.
    pub next_expiry: Option<Instant>,
    /// When to flush so that segments emptied by a removal are deleted
    /// (a publish's commit syncs only the segment files).
    pub release_due: Option<Instant>,
    /// Since when no subscription has been online (with `max_inactivity`).
    pub idle_since: Option<Instant>,
    /// When to look whether the channel has been idle long enough.
    pub idle_check: Option<Instant>,
}

/// Starts the owner task of a channel recovered from (or just created in) the store.
/// `live_clients` tells which recovered subscriptions still have their client.
pub fn spawn(
    store: Arc<dyn ChannelStore>,
    recovered: Vec<RecoveredSub>,
    live_clients: &HashSet<String>,
    ctx: ChannelCtx,
    tasks: &tokio_util::task::TaskTracker,
) -> ChannelHandle {
    let (tx, rx) = mpsc::channel(MAILBOX);
    let mut channel = Channel::new(store, ctx);
    channel.recover(recovered, live_clients);
    tasks.spawn(channel.run(rx));
    ChannelHandle { tx }
}

/// Wall clock in Unix nanoseconds.
pub(super) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Channel {
    fn new(store: Arc<dyn ChannelStore>, ctx: ChannelCtx) -> Channel {
        let state = store.state();
        let limit = ctx.limits.for_channel(store.name());
        Channel {
            limit,
            name: store.name().to_string(),
            store,
            ctx,
            state,
            last_timestamp: 0,
            recent: VecDeque::new(),
            recent_bytes: 0,
            limits_warned: false,
            subs: HashMap::new(),
            by_ack_inbox: HashMap::new(),
            durables: HashMap::new(),
            groups: HashMap::new(),
            next_sub_id: 1,
            updates: Vec::new(),
            dirty: HashSet::new(),
            next_deadline: None,
            next_expiry: None,
            release_due: None,
            idle_since: None,
            idle_check: None,
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<ChannelCmd>) {
        let last_seq = self.state.last;
        if let Ok(Some(last)) = self
            .on_store("reading the newest message", move |s| s.get(last_seq))
            .await
        {
            self.last_timestamp = last.timestamp;
        }
        // Limits lowered since the last run apply before anything is served.
        self.enforce_limits().await;
        self.expire_all().await;
        self.refresh_idle();
        // Recovered pending messages go out before anything new.
        self.redeliver_expired(Instant::now()).await;
        self.deliver().await;
        self.write_sub_updates().await;

        let mut cmds = Vec::new();
        loop {
            let (deadline, expiry, idle) = (self.next_deadline, self.next_expiry, self.idle_check);
            let release = self.release_due;
            tokio::select! {
                n = rx.recv_many(&mut cmds, self.ctx.batch) => {
                    if n == 0 || !self.handle(&mut cmds).await {
                        break;
                    }
                    // A burst's batch buffer is not kept for the channel's life.
                    cmds.shrink_to(KEPT_BATCH_CAPACITY);
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.redeliver_expired(Instant::now()).await;
                }
                () = sleep_until(expiry), if expiry.is_some() => self.expire().await,
                () = sleep_until(idle), if idle.is_some() => self.check_idle(),
                () = sleep_until(release), if release.is_some() => self.release_space().await,
            }
            self.deliver().await;
            self.write_sub_updates_lazily().await;
        }
        tracing::debug!(channel = %self.name, "channel owner stopped");
    }

    /// Handles a batch of commands; false once the channel has retired.
    async fn handle(&mut self, cmds: &mut Vec<ChannelCmd>) -> bool {
        let mut pubs = Vec::new();
        for cmd in cmds.drain(..) {
            match cmd {
                ChannelCmd::Publish { msg, reply } => pubs.push((msg, reply)),
                ChannelCmd::Ack { ack_inbox, seq } => self.ack(&ack_inbox, seq),
                ChannelCmd::Snapshot { reply } => {
                    let _ = reply.send(self.snapshot());
                }
                other => {
                    // Publishes received before a control request take effect before it.
                    self.commit(&mut pubs).await;
                    match other {
                        ChannelCmd::Subscribe { req, reply } => {
                            self.subscribe(*req, reply).await;
                            self.refresh_idle();
                        }
                        ChannelCmd::Unsubscribe { req, close, reply } => {
                            self.unsubscribe(*req, close, reply).await;
                            self.refresh_idle();
                        }
                        ChannelCmd::ClientClosed { client_id, done } => {
                            self.client_closed(&client_id);
                            self.refresh_idle();
                            self.write_sub_updates().await;
                            let _ = done.send(());
                        }
                        ChannelCmd::Wake => self.redeliver_expired(Instant::now()).await,
                        ChannelCmd::Retire { reply } => {
                            let retire = self.agrees_to_retire();
                            let _ = reply.send(retire);
                            if retire {
                                // Nothing follows a retire but monitor
                                // questions, which then go unanswered.
                                return false;
                            }
                        }
                        ChannelCmd::Publish { .. }
                        | ChannelCmd::Ack { .. }
                        | ChannelCmd::Snapshot { .. } => unreachable!(),
                    }
                }
            }
        }
        self.commit(&mut pubs).await;
        true
    }

    /// Stores a batch of publishes with one write and one commit,
    /// delivers them, then acknowledges them to their publishers.
    async fn commit(&mut self, pubs: &mut Vec<(Publish, Option<Subject>)>) {
        if pubs.is_empty() {
            return;
        }
        // Batches hold at most `io_batch_size` messages: exact in an f64.
        let size = u32::try_from(pubs.len()).unwrap_or(u32::MAX);
        self.ctx
            .stats
            .batch_sizes
            .observe(&super::view::BATCH_BUCKETS, f64::from(size));
        let ts = self.last_timestamp.max(now_ns());
        let mut seq = self.state.last;
        let msgs: Vec<MsgProto> = pubs
            .iter_mut()
            .map(|(p, _)| {
                seq += 1;
                MsgProto {
                    sequence: seq,
                    subject: std::mem::take(&mut p.subject),
                    reply: std::mem::take(&mut p.reply),
                    data: std::mem::take(&mut p.data),
                    timestamp: ts,
                    ..Default::default()
                }
            })
            .collect();
        // Encoded copies are kept only for live subscribers to read; a
        // channel without one keeps none (a later subscriber reads the store).
        let live = self.subs.values().any(|s| !s.is_offline());
        let entries: Vec<Entry> = if live {
            msgs.iter().map(Entry::from_msg).collect()
        } else {
            Vec::new()
        };
        // Written and committed in one blocking call: no hop to a committer.
        let committer = self.ctx.committer.clone();
        let written = self
            .on_store("storing publishes", move |s| {
                s.append(&msgs)?;
                Ok(committer.commit_now(s))
            })
            .await;
        if written.is_ok() {
            // The log moved on even if the flush below fails: keep in step
            // with it, or every later append would be out of order.
            self.last_timestamp = ts;
            self.state = self.store.state();
            self.note_publish();
            self.arm_expiry(Some(ts));
            if !live && !self.recent.is_empty() {
                self.recent = VecDeque::new();
                self.recent_bytes = 0;
            }
            for e in entries {
                self.recent_bytes += e.encoded.len();
                self.recent.push_back(e);
            }
            while self.recent.len() > RECENT || self.recent_bytes > RECENT_BYTES {
                let Some(old) = self.recent.pop_front() else {
                    break;
                };
                self.recent_bytes -= old.encoded.len();
            }
        }
        let result = written.and_then(|committed| committed);
        // Errors were logged where they happened (store write or commit).
        // A message whose commit failed is not acknowledged, though it may
        // survive: at-least-once, never an ack for what might be lost.
        let error = match result {
            Ok(()) => {
                self.enforce_limits().await;
                self.deliver().await;
                String::new()
            }
            Err(e) => e,
        };
        for (p, reply) in pubs.drain(..) {
            if let Some(reply) = reply {
                let ack = PubAck {
                    guid: p.guid,
                    error: error.clone(),
                };
                self.send(reply, Bytes::from(ack.encode_to_vec())).await;
            }
        }
    }

    /// Publishes to NATS; a failure is logged, never fatal.
    pub(super) async fn send(&self, subject: Subject, payload: Bytes) {
        if let Err(e) = self.ctx.nats.publish(subject.clone(), payload).await {
            tracing::warn!(channel = %self.name, %subject, error = %e, "publish to NATS failed");
        }
    }

    /// Messages with sequence >= `from`, at most `max`, from memory when recent enough.
    /// A store failure is an error, never an empty answer: callers must not
    /// mistake it for messages removed by limits.
    pub(super) async fn fetch(&self, from: u64, max: usize) -> Result<Vec<Entry>, String> {
        let from = from.max(self.state.first);
        if let Some(front) = self.recent.front() {
            if from >= front.seq {
                let skip = usize::try_from(from - front.seq).unwrap_or(usize::MAX);
                return Ok(self.recent.iter().skip(skip).take(max).cloned().collect());
            }
        }
        self.on_store("reading messages", move |s| s.range(from, max))
            .await
            .map(|msgs| msgs.iter().map(Entry::from_msg).collect())
    }

    /// Runs `op` on the channel's store on the blocking pool, never on an
    /// async worker; a failure is logged as "`what` failed" and returned as text.
    pub(super) async fn on_store<T: Send + 'static>(
        &self,
        what: &'static str,
        op: impl FnOnce(&dyn ChannelStore) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.store.clone();
        let result = super::blocking(move || op(&*store)).await;
        if let Err(e) = &result {
            tracing::error!(channel = %self.name, error = %e, "{what} failed");
        }
        result
    }

    /// Writes queued subscription changes (not flushed: acks and sends are
    /// made durable lazily; after a crash a message may be redelivered, never lost).
    pub(super) async fn write_sub_updates(&mut self) {
        self.write_subs(false).await;
    }

    /// As [`Self::write_sub_updates`], for what follows deliveries and
    /// acks: the store may batch it ([`ChannelStore::apply_subs_lazily`]).
    async fn write_sub_updates_lazily(&mut self) {
        self.write_subs(true).await;
    }

    async fn write_subs(&mut self, lazily: bool) {
        for id in self.dirty.drain() {
            if let Some(sub) = self.subs.get(&id) {
                self.updates.push(SubUpdate::Put(sub.state.clone()));
            }
        }
        if self.updates.is_empty() {
            return;
        }
        let updates = std::mem::take(&mut self.updates);
        let _ = self
            .on_store("writing subscriptions", move |s| {
                if lazily {
                    s.apply_subs_lazily(&updates)
                } else {
                    s.apply_subs(&updates)
                }
            })
            .await;
    }

    /// Rebuilds subscriptions from the store; those whose client is gone close.
    fn recover(&mut self, recovered: Vec<RecoveredSub>, live_clients: &HashSet<String>) {
        let now = Instant::now();
        let mut orphans = Vec::new();
        for RecoveredSub { state, pending } in recovered {
            let id = state.id;
            self.next_sub_id = self.next_sub_id.max(id + 1);
            let group = (!state.q_group.is_empty()).then(|| state.q_group.clone());
            let mut sub = Sub::new(state, group.clone());
            for seq in pending {
                sub.pending.insert(
                    seq,
                    super::subs::Pending {
                        deadline: now,
                        redeliveries: 0,
                    },
                );
            }
            if !sub.pending.is_empty() {
                self.next_deadline = Some(now);
            }
            if let Some(g) = &group {
                let entry = self.groups.entry(g.clone()).or_default();
                entry.last_sent = entry.last_sent.max(sub.state.last_sent);
                if sub.is_offline() {
                    entry.shadow = Some(id);
                } else {
                    entry.members.push(id);
                }
            } else if sub.state.is_durable {
                let key = durable_key(&sub.state.client_id, &self.name, &sub.state.durable_name);
                self.durables.insert(key, id);
            }
            if !sub.is_offline() {
                self.by_ack_inbox.insert(sub.state.ack_inbox.clone(), id);
                if !live_clients.contains(&sub.state.client_id) {
                    orphans.push(id);
                }
            }
            self.subs.insert(id, sub);
        }
        for g in self.groups.values_mut() {
            g.members.sort_unstable();
        }
        for id in orphans {
            self.leave(id, false);
        }
    }

    /// Registers a new subscription's indexes; returns its ID.
    pub(super) fn insert_sub(&mut self, sub: Sub) -> u64 {
        let id = sub.state.id;
        self.by_ack_inbox.insert(sub.state.ack_inbox.clone(), id);
        self.updates.push(SubUpdate::Put(sub.state.clone()));
        self.subs.insert(id, sub);
        id
    }

    /// A fresh ack inbox under this server's prefix.
    pub(super) fn new_ack_inbox(&self) -> String {
        format!("{}.{}", self.ctx.ack_prefix, nuid::next())
    }

    /// The durable map key of a plain durable sub.
    pub(super) fn durable_key_of(&self, sub: &Sub) -> String {
        durable_key(&sub.state.client_id, &self.name, &sub.state.durable_name)
    }

    /// The group key a subscription request names.
    pub(super) fn request_group(req: &SubscriptionRequest) -> Option<String> {
        (!req.q_group.is_empty()).then(|| group_key(&req.durable_name, &req.q_group))
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::ChannelCmd;

    #[test]
    fn mailbox_slots_stay_small() {
        // A burst of acks after a restart queues up to MAILBOX commands per
        // channel: 144 bytes a slot is 9 MB for a full mailbox.
        assert!(std::mem::size_of::<ChannelCmd>() <= 144);
    }
}
