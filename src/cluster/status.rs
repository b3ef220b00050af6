//! What a node's Raft is doing, for `/metrics`: term, log, commit and
//! applied indexes, leader changes, and on the leader each peer's lag.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio_util::task::AbortOnDropHandle;

use super::{NodeId, Raft};

/// A sentinel for "nothing committed yet" in [`Committed`].
const NONE: u64 = u64::MAX;

/// The commit index, as the log store last saved it (openraft's metrics
/// do not carry it).
#[derive(Debug)]
pub struct Committed(AtomicU64);

impl Default for Committed {
    fn default() -> Committed {
        Committed(AtomicU64::new(NONE))
    }
}

impl Committed {
    /// Records the commit index.
    pub fn set(&self, index: Option<u64>) {
        self.0.store(index.unwrap_or(NONE), Ordering::Relaxed);
    }

    /// The commit index, if any entry is committed.
    pub fn get(&self) -> Option<u64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|i| *i != NONE)
    }
}

/// A node's Raft, as monitoring reads it.
pub struct RaftStatus {
    raft: Raft,
    committed: Arc<Committed>,
    leader_changes: Arc<AtomicU64>,
    held: Arc<AtomicUsize>,
    _counting: AbortOnDropHandle<()>,
}

/// One reading of [`RaftStatus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftSample {
    /// The current term.
    pub term: u64,
    /// The index of the last entry in this node's log.
    pub last_log_index: Option<u64>,
    /// The highest index known committed.
    pub commit_index: Option<u64>,
    /// The index of the last entry applied to the store.
    pub applied_index: Option<u64>,
    /// Times this node saw a new leader.
    pub leader_changes: u64,
    /// On the leader: sent and acked positions held back, not yet proposed.
    pub held_sub_changes: u64,
    /// On the leader: each other node's name and how many entries it is
    /// behind the leader's log.
    pub lag: Vec<(String, u64)>,
}

impl RaftStatus {
    /// Watches `raft`, counting leader changes from now on; `committed` is
    /// the log store's.
    pub fn watch(raft: Raft, committed: Arc<Committed>) -> RaftStatus {
        let leader_changes = Arc::new(AtomicU64::new(0));
        let mut metrics = raft.metrics();
        let counter = leader_changes.clone();
        let counting = tokio::spawn(async move {
            let mut leader: Option<NodeId> = None;
            loop {
                let now = metrics.borrow_and_update().current_leader;
                if now.is_some() && now != leader {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                if now.is_some() {
                    leader = now;
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        RaftStatus {
            raft,
            committed,
            leader_changes,
            held: Arc::default(),
            _counting: AbortOnDropHandle::new(counting),
        }
    }

    /// Where the leader counts the sent and acked positions it holds back.
    pub fn held(&self) -> Arc<AtomicUsize> {
        self.held.clone()
    }

    /// The current reading.
    pub fn sample(&self) -> RaftSample {
        let m = self.raft.metrics().borrow().clone();
        let last = m.last_log_index.unwrap_or(0);
        let nodes = m.membership_config.membership();
        let lag = m
            .replication
            .iter()
            .flat_map(|r| r.iter())
            .filter(|(id, _)| **id != m.id)
            .map(|(id, matched)| {
                let name = nodes
                    .get_node(id)
                    .map_or_else(|| id.to_string(), |n| n.name.clone());
                (name, last.saturating_sub(matched.map_or(0, |l| l.index)))
            })
            .collect();
        RaftSample {
            term: m.current_term,
            last_log_index: m.last_log_index,
            commit_index: self.committed.get(),
            applied_index: m.last_applied.map(|l| l.index),
            leader_changes: self.leader_changes.load(Ordering::Relaxed),
            held_sub_changes: self.held.load(Ordering::Relaxed) as u64,
            lag,
        }
    }
}
