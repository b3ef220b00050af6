//! What the monitor sees of the running server, without slowing it down.
//!
//! Counters ([`Stats`]) are relaxed atomics bumped on the hot path. The
//! lists (clients, channels, subscriptions) are snapshots: the dispatcher
//! copies its registry when asked through its query mailbox, and each
//! channel owner answers a snapshot command between two batches. The
//! monitor so never takes a lock that the publish path waits on: a busy
//! server answers a little later, and one whose channel mailbox is full
//! says it is unavailable rather than queue behind the publishes.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use futures::future::join_all;
use tokio::sync::{mpsc, oneshot};

use super::channel::{Channel, ChannelCmd, ChannelHandle};
pub use super::stats::{Buckets, Stats, BATCH_BUCKETS, FLUSH_BUCKETS};
use crate::config::{Config, StoreKind};

/// Depth of the dispatcher's query mailbox; monitor requests wait when full.
pub(super) const QUERIES: usize = 64;

/// How long a monitor request waits for the server to answer a snapshot,
/// its wait for a turn included.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(5);

/// Monitor requests served at once; more wait their turn (within
/// [`SNAPSHOT_WAIT`]), so scrapes cannot pile up inside the server.
const MONITOR_CONCURRENCY: usize = 4;

/// Where the server is in its life, for the readiness probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Opening the store, joining NATS, recovering.
    Starting = 0,
    /// Serving clients.
    Ready = 1,
    /// A signal was seen: no new requests.
    ShuttingDown = 2,
}

/// A client as the monitor lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSummary {
    /// The client ID.
    pub id: String,
    /// Where heartbeats go.
    pub hb_inbox: String,
}

/// A subscription as the monitor shows it (NSS's `Subscriptionz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubSnapshot {
    /// The owner; for an offline durable, its last owner.
    pub client_id: String,
    /// Where messages go.
    pub inbox: String,
    /// Where acks come from.
    pub ack_inbox: String,
    /// Durable name, empty if none.
    pub durable_name: String,
    /// Queue group (`durable:group` for durable groups), empty if none.
    pub queue_name: String,
    /// Durable (plain or queue).
    pub is_durable: bool,
    /// Offline durable or durable queue group shadow.
    pub is_offline: bool,
    /// MaxInFlight.
    pub max_inflight: i32,
    /// AckWait in seconds.
    pub ack_wait: i32,
    /// Last sequence sent.
    pub last_sent: u64,
    /// Messages sent and not acknowledged.
    pub pending_count: usize,
    /// Pending has reached MaxInFlight.
    pub is_stalled: bool,
}

/// A channel as the monitor shows it (NSS's `Channelz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// Channel name.
    pub name: String,
    /// Stored messages.
    pub msgs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Oldest stored sequence (0 when nothing was ever stored; `last + 1` once emptied).
    pub first_seq: u64,
    /// Newest sequence.
    pub last_seq: u64,
    /// Every subscription, offline durables and shadows included.
    pub subs: Vec<SubSnapshot>,
}

/// A request to the dispatcher from the monitor.
pub(super) enum Query {
    /// Copy the registry of channels, and of clients when `with_clients`.
    Registry {
        /// Whether the client list is wanted (else only its length).
        with_clients: bool,
        /// Where the copy goes.
        reply: oneshot::Sender<Registry>,
    },
}

/// The dispatcher's registry, copied.
pub(super) struct Registry {
    pub client_count: usize,
    /// Empty unless asked for.
    pub clients: Vec<ClientSummary>,
    pub channels: Vec<(String, ChannelHandle)>,
}

/// The server's state as of one registry copy.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Registered clients.
    pub client_count: usize,
    /// The clients, sorted by ID, when asked for.
    pub clients: Vec<ClientSummary>,
    /// The channels asked for, sorted by name, each as its owner saw it.
    pub channels: Vec<ChannelSnapshot>,
}

/// The server is not serving (starting, stopping) or did not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is not serving requests")]
pub struct Unavailable;

/// The server's mode, as serverz's `state` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ServerState {
    /// Not in a fault-tolerance group.
    Standalone = 0,
    /// In an FT group, waiting for the store lock.
    FtStandby = 1,
    /// In an FT group, holding the store lock and serving.
    FtActive = 2,
    /// A node of a Raft cluster (serving only as its leader).
    Clustered = 3,
}

/// A clustered node's Raft role, as serverz's `role` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Not clustered.
    None = 0,
    /// The leader: it serves the clients.
    Leader = 1,
    /// A follower: it applies what the leader replicates.
    Follower = 2,
    /// Standing for election.
    Candidate = 3,
}

impl Role {
    /// NSS's name of the role; empty outside clustering.
    pub fn name(self) -> &'static str {
        match self {
            Role::None => "",
            Role::Leader => "Leader",
            Role::Follower => "Follower",
            Role::Candidate => "Candidate",
        }
    }
}

impl ServerState {
    /// NSS's name of the state.
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Standalone => "STANDALONE",
            ServerState::FtStandby => "FT_STANDBY",
            ServerState::FtActive => "FT_ACTIVE",
            ServerState::Clustered => "CLUSTERED",
        }
    }
}

/// Shared by the server and its monitor; cheap to clone.
#[derive(Clone)]
pub struct ServerView {
    inner: Arc<Inner>,
}

struct Inner {
    stats: Arc<Stats>,
    phase: AtomicU8,
    state: AtomicU8,
    role: AtomicU8,
    /// The node's name when clustered.
    node_id: String,
    /// A clustered node's own store, for what serverz reports while the
    /// engine (which answers snapshots) runs only on the leader.
    local_store: OnceLock<Arc<dyn crate::store::Store>>,
    /// A clustered node's Raft, for `/metrics`.
    raft: OnceLock<Arc<crate::cluster::RaftStatus>>,
    server_id: String,
    cluster_id: String,
    started: SystemTime,
    store: StoreKind,
    /// Built once from the configuration (validated before the server starts).
    limits: Arc<crate::config::limits::StoreLimits>,
    queries: mpsc::Sender<Query>,
    /// Set once connected, for the readiness probe.
    nats: OnceLock<async_nats::Client>,
    /// Turns for monitor requests, see [`MONITOR_CONCURRENCY`].
    turns: tokio::sync::Semaphore,
}

impl ServerView {
    /// A view of a server about to start with `config`; the receiver goes
    /// to the dispatcher.
    pub(super) fn new(
        config: &Config,
        limits: crate::config::limits::StoreLimits,
        stats: Arc<Stats>,
    ) -> (ServerView, mpsc::Receiver<Query>) {
        let (queries, rx) = mpsc::channel(QUERIES);
        let inner = Inner {
            stats,
            phase: AtomicU8::new(Phase::Starting as u8),
            state: AtomicU8::new(if config.clustered {
                ServerState::Clustered as u8
            } else if config.ft_group().is_some() {
                ServerState::FtStandby as u8
            } else {
                ServerState::Standalone as u8
            }),
            role: AtomicU8::new(if config.clustered {
                Role::Follower as u8
            } else {
                Role::None as u8
            }),
            node_id: if config.clustered {
                config.cluster_node_id.clone().unwrap_or_default()
            } else {
                String::new()
            },
            local_store: OnceLock::new(),
            raft: OnceLock::new(),
            server_id: nuid::next().to_string(),
            cluster_id: config.cluster_id.clone(),
            started: SystemTime::now(),
            store: config.store,
            limits: Arc::new(limits),
            queries,
            nats: OnceLock::new(),
            turns: tokio::sync::Semaphore::new(MONITOR_CONCURRENCY),
        };
        (
            ServerView {
                inner: Arc::new(inner),
            },
            rx,
        )
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// The counters, shared with the parts of the server that bump them.
    pub(super) fn stats_arc(&self) -> Arc<Stats> {
        self.inner.stats.clone()
    }

    /// This process's server ID (a NUID, new at every start, as NSS's).
    pub fn server_id(&self) -> &str {
        &self.inner.server_id
    }

    /// The cluster ID served.
    pub fn cluster_id(&self) -> &str {
        &self.inner.cluster_id
    }

    /// When the server started.
    pub fn started(&self) -> SystemTime {
        self.inner.started
    }

    /// The store type.
    pub fn store(&self) -> StoreKind {
        self.inner.store
    }

    /// The store limits, global and per channel, as built at start.
    pub fn limits(&self) -> Arc<crate::config::limits::StoreLimits> {
        self.inner.limits.clone()
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        if super::signalled() {
            return Phase::ShuttingDown;
        }
        match self.inner.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Ready,
            _ => Phase::ShuttingDown,
        }
    }

    /// Moves to `phase`; shutting down is final.
    pub(super) fn set_phase(&self, phase: Phase) {
        let _ = self
            .inner
            .phase
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (now != Phase::ShuttingDown as u8).then_some(phase as u8)
            });
    }

    /// Standalone, FT standby or FT active.
    pub fn state(&self) -> ServerState {
        match self.inner.state.load(Ordering::Acquire) {
            1 => ServerState::FtStandby,
            2 => ServerState::FtActive,
            3 => ServerState::Clustered,
            _ => ServerState::Standalone,
        }
    }

    /// The Raft role of a clustered node.
    pub fn role(&self) -> Role {
        match self.inner.role.load(Ordering::Acquire) {
            1 => Role::Leader,
            2 => Role::Follower,
            3 => Role::Candidate,
            _ => Role::None,
        }
    }

    /// Records the Raft role.
    pub(crate) fn set_role(&self, role: Role) {
        self.inner.role.store(role as u8, Ordering::Release);
    }

    /// The node's name when clustered, else empty.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// A clustered node's own store (set once it is open).
    pub fn local_store(&self) -> Option<&Arc<dyn crate::store::Store>> {
        self.inner.local_store.get()
    }

    /// A clustered node's Raft (set once it runs).
    pub fn raft_status(&self) -> Option<&Arc<crate::cluster::RaftStatus>> {
        self.inner.raft.get()
    }

    /// Records a clustered node's Raft.
    pub(crate) fn set_raft_status(&self, status: Arc<crate::cluster::RaftStatus>) {
        let _ = self.inner.raft.set(status);
    }

    /// Records a clustered node's own store.
    pub(crate) fn set_local_store(&self, store: Arc<dyn crate::store::Store>) {
        let _ = self.inner.local_store.set(store);
    }

    /// Moves to `state` (a standby that took the store lock is active).
    pub(super) fn set_state(&self, state: ServerState) {
        self.inner.state.store(state as u8, Ordering::Release);
    }

    /// Records the NATS connection, for [`ServerView::nats_connected`].
    pub(super) fn set_nats(&self, nats: async_nats::Client) {
        let _ = self.inner.nats.set(nats);
    }

    /// Whether the NATS connection is up.
    pub fn nats_connected(&self) -> bool {
        self.inner
            .nats
            .get()
            .is_some_and(super::liveness::nats_connected)
    }

    /// Ready to serve: recovered, connected to NATS, not shutting down.
    pub fn is_ready(&self) -> bool {
        self.phase() == Phase::Ready && self.nats_connected()
    }

    async fn registry(&self, with_clients: bool) -> Result<Registry, Unavailable> {
        if self.phase() != Phase::Ready {
            return Err(Unavailable);
        }
        let (reply, rx) = oneshot::channel();
        let query = Query::Registry {
            with_clients,
            reply,
        };
        self.inner
            .queries
            .send(query)
            .await
            .map_err(|_| Unavailable)?;
        rx.await.map_err(|_| Unavailable)
    }

    /// Every channel name, sorted.
    ///
    /// # Errors
    /// [`Unavailable`] when the server is not serving or does not answer in time.
    pub async fn channel_names(&self) -> Result<Vec<String>, Unavailable> {
        self.bounded(async {
            let mut names: Vec<String> = self
                .registry(false)
                .await?
                .channels
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            names.sort();
            Ok(names)
        })
        .await
    }

    /// The clients (when `with_clients`) and the channels `wanted` picks
    /// (by name), each channel snapshot taken by its owner; the owners are
    /// asked all at once. An owner whose mailbox is full is not waited for:
    /// the server is then too busy to be looked at, and says so.
    ///
    /// # Errors
    /// [`Unavailable`] when the server is not serving, is too busy, or does
    /// not answer within 5 s.
    pub async fn snapshot(
        &self,
        with_clients: bool,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<Snapshot, Unavailable> {
        self.bounded(async {
            let registry = self.registry(with_clients).await?;
            let asks = registry
                .channels
                .into_iter()
                .filter(|(name, _)| wanted(name))
                .map(|(_, handle)| async move {
                    let (tx, rx) = oneshot::channel();
                    // A channel deleted since the registry was read is left out.
                    match handle.tx.try_send(ChannelCmd::Snapshot { reply: tx }) {
                        Ok(()) => Ok(rx.await.ok()),
                        Err(mpsc::error::TrySendError::Closed(_)) => Ok(None),
                        Err(mpsc::error::TrySendError::Full(_)) => Err(Unavailable),
                    }
                });
            let mut channels: Vec<ChannelSnapshot> = join_all(asks)
                .await
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect();
            channels.sort_by(|a, b| a.name.cmp(&b.name));
            let mut clients = registry.clients;
            clients.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(Snapshot {
                client_count: registry.client_count,
                clients,
                channels,
            })
        })
        .await
    }

    /// Runs a monitor request in its turn, within [`SNAPSHOT_WAIT`] overall.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, Unavailable>>,
    ) -> Result<T, Unavailable> {
        tokio::time::timeout(SNAPSHOT_WAIT, async {
            let _turn = self.inner.turns.acquire().await.map_err(|_| Unavailable)?;
            work.await
        })
        .await
        .map_err(|_| Unavailable)?
    }
}

impl Channel {
    /// This channel as the monitor shows it.
    pub(super) fn snapshot(&self) -> ChannelSnapshot {
        let mut subs: Vec<(u64, SubSnapshot)> = self
            .subs
            .iter()
            .map(|(id, sub)| {
                let s = &sub.state;
                let snapshot = SubSnapshot {
                    client_id: s.client_id.clone(),
                    inbox: s.inbox.clone(),
                    ack_inbox: s.ack_inbox.clone(),
                    // NSS shows a durable queue group by its queue name
                    // (`durable:group`) alone.
                    durable_name: if s.q_group.is_empty() {
                        s.durable_name.clone()
                    } else {
                        String::new()
                    },
                    queue_name: s.q_group.clone(),
                    is_durable: s.is_durable,
                    is_offline: sub.is_offline(),
                    max_inflight: s.max_in_flight,
                    ack_wait: s.ack_wait_in_secs,
                    last_sent: s.last_sent,
                    pending_count: sub.pending.len(),
                    // As NSS keeps it: MaxInFlight reached, online or not.
                    is_stalled: sub.pending.len()
                        >= usize::try_from(s.max_in_flight).unwrap_or(usize::MAX),
                };
                (*id, snapshot)
            })
            .collect();
        // Subscription IDs grow with creation: list them in that order.
        subs.sort_by_key(|(id, _)| *id);
        let subs = subs.into_iter().map(|(_, s)| s).collect();
        ChannelSnapshot {
            name: self.name.clone(),
            msgs: self.state.msgs,
            bytes: self.counted_bytes(),
            // As NSS counts it: an emptied log's first is the next sequence.
            first_seq: match (self.state.msgs, self.state.last) {
                (_, 0) => 0,
                (0, last) => last + 1,
                _ => self.state.first,
            },
            last_seq: self.state.last,
            subs,
        }
    }
}
