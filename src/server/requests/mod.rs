//! The request dispatcher: one task reads every STAN subject, decodes and
//! validates in the reference server's order, answers what it can at once
//! (connect, ping, errors) and routes the rest to the channel owners.
//!
//! Ordering: async-nats hands each subscription's messages over in socket
//! order, so before a close, unsubscribe or subscription close runs, the
//! publishes and acks already received are drained and routed first.
//!
//! Here: the loop, publishes, acks, the monitor's queries and channel
//! creation; `lifecycle` has connect, ping, close and heartbeat expiry,
//! `subscriptions` the subscription requests, `idle` the deletion of
//! channels idle for `max_inactivity`.

mod idle;
mod inputs;
mod lifecycle;
mod partitioned;
mod probe;
mod subscriptions;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_nats::{Message, Subject};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::channel::{self, ChannelCmd, ChannelCtx, ChannelHandle};
use super::client_log::ClientLog;
use super::clients::Clients;
use super::committer::Committer;
use super::liveness::{self, HeartbeatConfig, Liveness};
use super::view::{ClientSummary, Phase, Query, Registry, ServerView, Stats};
use super::ServerError;
use crate::config::Config;
use crate::protocol::pb::{Ack, PubAck, PubMsg};
use crate::protocol::{errors, is_valid_channel, Subjects};
use crate::store::{ChannelStore, RecoveredSub, Store};
use inputs::{foreign_ack_inboxes, Inputs};
use lifecycle::DupProbe;

/// Most queued publishes/acks routed ahead of a close-type request. Bounds
/// the barrier's work under a flood; everything received before is covered
/// unless more than this many are queued.
const BARRIER_DRAIN: usize = 1 << 20;

/// What NSS's file store counts per message beyond its encoding: an 8-byte
/// record header and a 32-byte index record (`msgRecordOverhead`).
const FILE_RECORD_OVERHEAD: u64 = 40;

/// Bytes a stored message counts beyond its encoding in sizes and limits:
/// NSS's file-store record overhead for the sled store, none in memory.
pub(crate) fn record_overhead(kind: crate::config::StoreKind) -> u64 {
    match kind {
        crate::config::StoreKind::Sled => FILE_RECORD_OVERHEAD,
        crate::config::StoreKind::Memory => 0,
    }
}

/// Depth of the liveness and probe report queues; reporters wait when full.
const REPORTS: usize = 1024;

/// What the dispatcher is built from.
pub struct Setup {
    /// Validated configuration.
    pub config: Config,
    /// The opened store, shared with the channel owners and the committer.
    pub store: Arc<dyn Store>,
    /// The connection every subscription and reply uses.
    pub nats: async_nats::Client,
    /// The subjects persisted at first start.
    pub subjects: Subjects,
    /// Prefix of handed-out ack inboxes, persisted so recovered subscriptions keep theirs.
    pub ack_prefix: String,
    /// Tracks every task so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// What the monitor sees; the dispatcher marks it ready.
    pub view: ServerView,
}

/// The dispatcher's state. Only its own task touches it.
struct Dispatcher {
    config: Config,
    store: Arc<dyn Store>,
    nats: async_nats::Client,
    subjects: Subjects,
    clients: Arc<Clients>,
    channels: HashMap<String, ChannelHandle>,
    /// Lower-cased channel name → actual name, to refuse case collisions.
    lower_names: HashMap<String, String>,
    ctx: ChannelCtx,
    tasks: TaskTracker,
    /// Writes client records in decision order.
    client_log: ClientLog,
    /// Client IDs whose duplicate-connect probe is in flight.
    probing: HashSet<String>,
    /// Where duplicate-connect probes report.
    probe_tx: mpsc::Sender<DupProbe>,
    /// Partitioning: publishes and subscriptions of clients whose connect
    /// waits on a probe here, though another server has already answered
    /// it; taken up once the probe settles.
    parked: HashMap<String, Vec<partitioned::Parked>>,
    /// Counters the monitor reads.
    stats: Arc<Stats>,
}

/// One thing for the dispatcher to handle, as its loop picked it.
enum Input {
    Query(Query),
    Liveness(Liveness),
    DupProbe(DupProbe),
    IdleChannel(String),
    Publish(Message),
    Ack(Message),
    Connect(Message),
    Ping(Message),
    Subscribe(Message),
    Unsubscribe(Message),
    SubClose(Message),
    Close(Message),
}

/// Recovers channels, subscribes the STAN subjects and serves until
/// `signal`, answering the monitor's `queries` meanwhile (kept by the
/// caller: a clustered node serves again each time it leads).
pub async fn serve(
    setup: Setup,
    queries: &mut mpsc::Receiver<Query>,
    signal: CancellationToken,
) -> Result<(), ServerError> {
    let Setup {
        config,
        store,
        nats,
        subjects,
        ack_prefix,
        tasks,
        view,
    } = setup;
    // Partitioned servers share the cluster ID by design; in an FT group
    // the store lock already makes this server the only one.
    let mut partitions = if config.partitioning {
        let owned = view
            .limits()
            .channels()
            .map(|(c, _)| c.to_string())
            .collect();
        Some(super::partitions::join(&nats, &subjects.cluster_id, view.server_id(), owned).await?)
    } else {
        if config.ft_group().is_none() && !config.clustered {
            probe::probe_for_other_server(&nats, &subjects).await?;
        }
        None
    };
    let stats = view.stats_arc();
    let committer = Committer::start(store.clone(), config.file_sync, stats.clone(), &tasks);
    let clients = Arc::new(Clients::default());
    let (idle_tx, mut idle_rx) = mpsc::channel(REPORTS);
    let ctx = ChannelCtx {
        clients: clients.clone(),
        nats: nats.clone(),
        committer: committer.clone(),
        ack_prefix: ack_prefix.clone().into(),
        replace_durable: config.replace_durable,
        limits: view.limits(),
        batch: config.io_batch_size.max(1),
        record_overhead: record_overhead(config.store),
        stats: stats.clone(),
        idle_tx,
    };
    let (probe_tx, mut probe_rx) = mpsc::channel(REPORTS);
    let client_log = ClientLog::start(store.clone(), committer, &tasks);
    let mut d = Dispatcher {
        config,
        store,
        nats: nats.clone(),
        subjects,
        clients,
        channels: HashMap::new(),
        lower_names: HashMap::new(),
        ctx,
        tasks,
        probing: HashSet::new(),
        probe_tx,
        parked: HashMap::new(),
        client_log,
        stats: stats.clone(),
    };
    // Subscribe first: recovered channels redeliver at once, and the acks
    // for those redeliveries must find the ack subscription in place.
    let recovered = d.load().await?;
    let foreign = foreign_ack_inboxes(&recovered.1, &ack_prefix);
    let mut inputs = d.subscribe_all(&ack_prefix, &foreign).await?;
    d.recover(recovered);
    nats.flush()
        .await
        .map_err(|e| ServerError::Nats(e.to_string()))?;
    tracing::info!(
        cluster_id = %d.subjects.cluster_id,
        discover = %d.subjects.discover,
        clients = d.clients.len(),
        channels = d.channels.len(),
        "stanchion is ready"
    );
    view.set_phase(Phase::Ready);
    let stop = CancellationToken::new();
    let (live_tx, mut live_rx) = mpsc::channel(REPORTS);
    let hb = HeartbeatConfig {
        interval: d.config.hb_interval,
        timeout: d.config.hb_timeout,
        fail_count: d.config.hb_fail_count,
    };
    d.tasks.spawn(liveness::run(
        nats.clone(),
        d.clients.clone(),
        hb,
        live_tx,
        stop.clone(),
        d.tasks.clone(),
        stats,
    ));
    let mut failed = None;
    loop {
        let input = tokio::select! {
            () = signal.cancelled() => break,
            Some(q) = queries.recv() => Input::Query(q),
            Some(report) = live_rx.recv() => Input::Liveness(report),
            Some(probe) = probe_rx.recv() => Input::DupProbe(probe),
            Some(name) = idle_rx.recv() => Input::IdleChannel(name),
            Some(m) = inputs.publish.next() => Input::Publish(m),
            Some(m) = inputs.more_publish.next() => Input::Publish(m),
            Some(m) = inputs.acks.next() => Input::Ack(m),
            Some(m) = inputs.discover.next() => Input::Connect(m),
            Some(m) = inputs.pings.next() => Input::Ping(m),
            Some(m) = inputs.subscribe.next() => Input::Subscribe(m),
            Some(m) = inputs.unsubscribe.next() => Input::Unsubscribe(m),
            Some(m) = inputs.sub_close.next() => Input::SubClose(m),
            Some(m) = inputs.close.next() => Input::Close(m),
            e = conflict(&mut partitions) => {
                tracing::error!(error = %e, "partitioning error: stopping");
                failed = Some(e);
                break;
            }
            else => break,
        };
        // The signal wins every race: a request picked in the same poll as
        // the signal, or queued behind it, is not taken.
        if signal.is_cancelled() || super::signalled() {
            break;
        }
        match input {
            Input::Query(q) => d.on_query(q),
            Input::Liveness(report) => d.on_liveness(report).await,
            Input::DupProbe(probe) => {
                if !d.closes_first(&mut inputs, &signal).await {
                    break;
                }
                d.settle_probe(probe).await
            }
            Input::IdleChannel(name) => d.on_idle_channel(name).await,
            Input::Publish(m) => {
                if !d.connects_first(&mut inputs, &signal).await {
                    break;
                }
                d.on_publish(m).await
            }
            Input::Ack(m) => d.on_ack(m).await,
            Input::Connect(m) => {
                if !d.closes_first(&mut inputs, &signal).await {
                    break;
                }
                d.on_connect(m).await
            }
            Input::Ping(m) => d.on_ping(m).await,
            Input::Subscribe(m) => {
                if !d.connects_first(&mut inputs, &signal).await {
                    break;
                }
                d.on_subscribe(m).await
            }
            // A signal seen during the barrier stops everything, the
            // close-type request included.
            Input::Unsubscribe(m) => {
                if !d.barrier(&mut inputs, &signal).await {
                    break;
                }
                d.on_unsubscribe(m, false).await;
            }
            Input::SubClose(m) => {
                if !d.barrier(&mut inputs, &signal).await {
                    break;
                }
                d.on_unsubscribe(m, true).await;
            }
            Input::Close(m) => {
                if !d.barrier(&mut inputs, &signal).await {
                    break;
                }
                d.on_close(m).await;
            }
        }
    }
    tracing::info!("shutting down: no new requests; finishing queued work");
    stop.cancel();
    drop(inputs);
    failed.map_or(Ok(()), Err)
}

/// A conflict found by partitioning's later checks; never without it.
async fn conflict(partitions: &mut Option<super::partitions::Partitions>) -> ServerError {
    match partitions {
        Some(p) => p.conflict().await,
        None => std::future::pending().await,
    }
}

/// What recovery reads from the store: clients, and channels with their subscriptions.
type Recovered = (
    Vec<crate::store::ClientInfo>,
    Vec<(Arc<dyn ChannelStore>, Vec<RecoveredSub>)>,
);

/// Encodes a reply payload.
fn encode(m: &impl prost::Message) -> Bytes {
    Bytes::from(m.encode_to_vec())
}

impl Dispatcher {
    /// Reads clients and channels (with their subscriptions) from the store.
    async fn load(&self) -> Result<Recovered, ServerError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || -> Result<_, ServerError> {
            let clients = store.clients()?;
            let mut channels = Vec::new();
            for name in store.channel_names()? {
                let ch = store.open_channel(&name)?;
                let subs = ch.subs()?;
                channels.push((ch, subs));
            }
            Ok((clients, channels))
        })
        .await
        .map_err(|e| ServerError::Internal(e.to_string()))?
    }

    /// Restores what [`Dispatcher::load`] read: registers the clients and
    /// starts each channel with its subscriptions.
    fn recover(&mut self, (clients, channels): Recovered) {
        for c in clients {
            self.clients.register(c);
        }
        let live: HashSet<String> = self.clients.ids();
        for (ch, subs) in channels {
            let name = ch.name().to_string();
            let state = ch.state();
            tracing::info!(channel = %name, msgs = state.msgs, first = state.first, last = state.last, subs = subs.len(), "recovered channel");
            let handle = channel::spawn(ch, subs, &live, self.ctx.clone(), &self.tasks);
            self.lower_names.insert(name.to_lowercase(), name.clone());
            self.channels.insert(name, handle);
        }
    }

    /// Handles the Close requests already received before a connect (or a
    /// duplicate-ID decision) is settled: a client that closes and at once
    /// reconnects under the same ID must have its close applied to the old
    /// instance, not to the new one. `false` when a stop signal arrived.
    async fn closes_first(&mut self, inputs: &mut Inputs, signal: &CancellationToken) -> bool {
        while let Some(Some(m)) = inputs.close.next().now_or_never() {
            if !self.barrier(inputs, signal).await {
                return false;
            }
            self.on_close(m).await;
        }
        true
    }

    /// Routes every publish and ack already received, so a close-type
    /// request takes effect after what the client sent before it. `false`
    /// when a stop signal arrived meanwhile: nothing more is taken.
    async fn barrier(&mut self, inputs: &mut Inputs, signal: &CancellationToken) -> bool {
        let stopping = || signal.is_cancelled() || super::signalled();
        for _ in 0..BARRIER_DRAIN {
            if stopping() {
                return false;
            }
            let Some(Some(m)) = inputs.publish.next().now_or_never() else {
                break;
            };
            self.on_publish(m).await;
        }
        for _ in 0..BARRIER_DRAIN {
            if stopping() {
                return false;
            }
            let Some(Some(m)) = inputs.acks.next().now_or_never() else {
                break;
            };
            self.on_ack(m).await;
        }
        !stopping()
    }

    async fn reply(&self, reply: Option<Subject>, payload: Bytes) {
        if let Some(reply) = reply {
            if let Err(e) = self.nats.publish(reply.clone(), payload).await {
                tracing::warn!(%reply, error = %e, "sending reply failed");
            }
        }
    }

    async fn on_publish(&mut self, m: Message) {
        let msg = match PubMsg::decode(m.payload.clone()) {
            Ok(msg) => {
                use std::sync::atomic::Ordering::Relaxed;
                self.stats.in_msgs.fetch_add(1, Relaxed);
                let bytes = u64::try_from(m.payload.len()).unwrap_or(u64::MAX);
                self.stats.in_bytes.fetch_add(bytes, Relaxed);
                msg
            }
            Err(e) => {
                tracing::warn!(subject = %m.subject, error = %e, "undecodable publish");
                let ack = PubAck {
                    guid: String::new(),
                    error: errors::INVALID_PUB_REQ.into(),
                };
                return self.reply(m.reply, encode(&ack)).await;
            }
        };
        let valid = !msg.guid.is_empty()
            && is_valid_channel(&msg.subject)
            && self
                .clients
                .is_valid_publisher(&msg.client_id, &msg.conn_id);
        if !valid && self.waits_on_probe(&msg.client_id) {
            return self.park(&msg.client_id, partitioned::Parked::Publish(m));
        }
        if !valid {
            tracing::debug!(client = %msg.client_id, channel = %msg.subject, "invalid publish request");
            let ack = PubAck {
                guid: msg.guid,
                error: errors::INVALID_PUB_REQ.into(),
            };
            return self.reply(m.reply, encode(&ack)).await;
        }
        let handle = match self.channel(&msg.subject).await {
            Ok(h) => h,
            Err(error) => {
                let ack = PubAck {
                    guid: msg.guid,
                    error,
                };
                return self.reply(m.reply, encode(&ack)).await;
            }
        };
        let _ = handle
            .tx
            .send(ChannelCmd::Publish {
                msg: msg.into(),
                reply: m.reply,
            })
            .await;
    }

    async fn on_ack(&mut self, m: Message) {
        let ack = match Ack::decode(m.payload.clone()) {
            Ok(ack) => ack,
            Err(e) => {
                tracing::debug!(subject = %m.subject, error = %e, "undecodable ack ignored");
                return;
            }
        };
        if let Some(handle) = self.channels.get(&ack.subject) {
            let cmd = ChannelCmd::Ack {
                ack_inbox: m.subject,
                seq: ack.sequence,
            };
            let _ = handle.tx.send(cmd).await;
        }
    }

    /// Answers the monitor with a copy of the registry.
    fn on_query(&self, query: Query) {
        match query {
            Query::Registry {
                with_clients,
                reply,
            } => {
                let clients: Vec<ClientSummary> = if with_clients {
                    self.clients
                        .summaries()
                        .into_iter()
                        .map(|(id, hb_inbox)| ClientSummary { id, hb_inbox })
                        .collect()
                } else {
                    Vec::new()
                };
                let client_count = if with_clients {
                    clients.len()
                } else {
                    self.clients.len()
                };
                let channels = self
                    .channels
                    .iter()
                    .map(|(name, handle)| (name.clone(), handle.clone()))
                    .collect();
                let _ = reply.send(Registry {
                    client_count,
                    clients,
                    channels,
                });
            }
        }
    }

    /// Lets every channel retry deliveries it held back for failing clients.
    async fn wake_channels(&self) {
        for handle in self.channels.values() {
            let _ = handle.tx.send(ChannelCmd::Wake).await;
        }
    }

    /// The owner of a channel, creating the channel on first use.
    async fn channel(&mut self, name: &str) -> Result<ChannelHandle, String> {
        if let Some(h) = self.channels.get(name) {
            return Ok(h.clone());
        }
        let max = usize::try_from(self.config.max_channels).unwrap_or(usize::MAX);
        if max > 0 && self.channels.len() >= max {
            tracing::warn!(channel = name, max, "channel refused: too many channels");
            return Err(errors::TOO_MANY_CHANNELS.into());
        }
        let lower = name.to_lowercase();
        if let Some(existing) = self.lower_names.get(&lower) {
            return Err(errors::channel_case_collision(name, existing));
        }
        let store = self.store.clone();
        let owned = name.to_string();
        let opened = super::blocking(move || store.open_channel(&owned)).await;
        let ch = opened.inspect_err(
            |e| tracing::error!(channel = name, error = %e, "creating channel failed"),
        )?;
        let handle = channel::spawn(
            ch,
            Vec::new(),
            &HashSet::new(),
            self.ctx.clone(),
            &self.tasks,
        );
        tracing::info!(channel = name, "channel created");
        self.lower_names.insert(lower, name.to_string());
        self.channels.insert(name.to_string(), handle.clone());
        Ok(handle)
    }
}
