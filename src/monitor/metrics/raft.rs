//! A clustered node's Raft families of `/metrics`.

use super::{gauge, Families};
use crate::cluster::RaftSample;

/// A clustered node's Raft: indexes are -1 while there is none.
pub(super) fn families(reg: &Families, s: &RaftSample) -> prometheus::Result<()> {
    let index = |i: Option<u64>| i.map_or(-1, gauge);
    reg.gauge("stanchion_raft_term", "Current Raft term", gauge(s.term))?;
    reg.gauge(
        "stanchion_raft_last_log_index",
        "Index of the last entry in this node's Raft log",
        index(s.last_log_index),
    )?;
    reg.gauge(
        "stanchion_raft_commit_index",
        "Highest Raft log index known committed",
        index(s.commit_index),
    )?;
    reg.gauge(
        "stanchion_raft_applied_index",
        "Index of the last Raft entry applied to this node's store",
        index(s.applied_index),
    )?;
    reg.counter(
        "stanchion_raft_leader_changes_total",
        "Times this node saw a new Raft leader",
        s.leader_changes,
    )?;
    reg.gauge(
        "stanchion_raft_held_sub_changes",
        "On the leader: sent and acked positions held back, replicated every second",
        gauge(s.held_sub_changes),
    )?;
    let lag = reg.gauge_vec(
        "stanchion_raft_replication_lag_entries",
        "On the leader: entries each other node is behind the leader's log",
        &["peer"],
    )?;
    for (peer, behind) in &s.lag {
        lag.get_metric_with_label_values(&[peer])?
            .set(gauge(*behind));
    }
    Ok(())
}
