//! How nodes find a cluster that others started, as NSS's nodes do.
//!
//! A node with no Raft state and no peers asks to be added on
//! `_STAN.raft.<cluster_id>.join` (NSS's `RaftJoinRequest`); the leader
//! adds it as a learner, which catches up from a snapshot and the log
//! (millions of messages may take minutes), and the node keeps asking
//! until the leader, seeing it caught up, makes it a voter. A node started with `cluster_bootstrap` asks every
//! second on `_STAN.raft.<cluster_id>.bootstrap` whether another node was
//! started as a seed too: two seeds make two clusters, so both stop.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::membership::{learner, Refused};
use super::network::prefix;
use super::{node_id, Raft};

/// `spb.RaftJoinRequest`, field for field.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftJoinRequest {
    /// The joining node's name.
    #[prost(string, tag = "1")]
    pub node_id: String,
    /// Its address: NSS's transport address, unused by stanchion's.
    #[prost(string, tag = "2")]
    pub node_addr: String,
}

/// `spb.RaftJoinResponse`: empty `error` when the node was added.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RaftJoinResponse {
    /// Why the node was not added.
    #[prost(string, tag = "1")]
    pub error: String,
}

/// How long one join request waits: adding a voter commits a membership
/// change, which takes a few Raft rounds.
const JOIN_WAIT: Duration = Duration::from_secs(5);
/// Attempts before a joining node gives up, as NSS's five, each waiting
/// longer here.
const JOIN_ATTEMPTS: u32 = 6;

/// Where join requests go: `_STAN.raft.<cluster_id>.join`.
fn join_subject(cluster_id: &str) -> String {
    format!("{}.join", prefix(cluster_id))
}

/// Answers join requests while this node leads, until the handle drops.
///
/// # Errors
/// When the subscription cannot be made.
pub async fn serve_joins(
    raft: Raft,
    nats: async_nats::Client,
    cluster_id: &str,
) -> Result<AbortOnDropHandle<()>, async_nats::SubscribeError> {
    let mut requests = nats.subscribe(join_subject(cluster_id)).await?;
    Ok(AbortOnDropHandle::new(tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            // Only the leader answers, as with NSS: a follower's change would
            // fail anyway, and its silence sends the joiner to try again.
            if !raft.metrics().borrow().state.is_leader() {
                continue;
            }
            let Some(reply) = m.reply.clone() else {
                continue;
            };
            let Ok(req) = RaftJoinRequest::decode(m.payload.clone()) else {
                tracing::error!(subject = %m.subject, "invalid join request ignored");
                continue;
            };
            // One at a time: openraft refuses a membership change while
            // another is under way.
            let error = match add_voter(&raft, &req.node_id).await {
                Ok(Joined::Voter) => {
                    tracing::info!(node = %req.node_id, "node joined the cluster");
                    String::new()
                }
                Ok(Joined::Learner) => {
                    tracing::info!(node = %req.node_id, "node added as a learner: catching up");
                    String::new()
                }
                Ok(Joined::Behind(n)) => format!("{LEARNING}: {n} entries behind"),
                Err(e) => {
                    tracing::warn!(node = %req.node_id, error = %e, "join refused");
                    e
                }
            };
            let body = RaftJoinResponse { error }.encode_to_vec();
            if let Err(e) = nats.publish(reply, body.into()).await {
                tracing::warn!(error = %e, "join reply not sent");
            }
        }
    })))
}

/// How far behind the leader's log a learner may be when it is made a
/// voter: about one round of replication.
const CAUGHT_UP: u64 = 64;

/// The start of the answer to a learner that is not caught up yet.
const LEARNING: &str = "catching up";

/// What a join request did.
enum Joined {
    /// The node was new: it is a learner now.
    Learner,
    /// A learner this many entries behind: asked again later.
    Behind(u64),
    /// The node is a voter.
    Voter,
}

/// Adds `name` as a learner; a learner that caught up is made a voter;
/// a voter stays one.
async fn add_voter(raft: &Raft, name: &str) -> Result<Joined, String> {
    let id = node_id(name);
    let m = raft.metrics().borrow().clone();
    let members = m.membership_config.membership();
    match learner(raft, members, name).await {
        Ok(true) => return Ok(Joined::Learner),
        Ok(false) => {}
        Err(Refused::Invalid) => return Err(format!("invalid node ID {name:?}")),
        Err(Refused::Collides(other)) => {
            return Err(format!("node ID {name:?} collides with {other:?}"));
        }
        Err(Refused::Raft(e)) => return Err(e),
    }
    let mut voters: BTreeSet<u64> = members.voter_ids().collect();
    if voters.contains(&id) {
        return Ok(Joined::Voter);
    }
    // Nothing matched yet: the learner is still installing its snapshot.
    let matched = m
        .replication
        .as_ref()
        .and_then(|r| r.get(&id).cloned().flatten());
    let last = m.last_log_index.unwrap_or(0);
    let behind = matched.map_or(last.max(1), |l| last.saturating_sub(l.index));
    if matched.is_none() || behind > CAUGHT_UP {
        return Ok(Joined::Behind(behind));
    }
    voters.insert(id);
    raft.change_membership(voters, false)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Joined::Voter)
}

/// Keeps asking the leader to make this node a voter, once a second,
/// until it is one (a learner catching up, or one whose leader changed
/// before it was promoted).
pub async fn until_voter(
    raft: Raft,
    nats: async_nats::Client,
    cluster_id: String,
    name: String,
    signal: CancellationToken,
) {
    let subject = join_subject(&cluster_id);
    let body = RaftJoinRequest {
        node_id: name.clone(),
        node_addr: String::new(),
    }
    .encode_to_vec();
    let me = node_id(&name);
    loop {
        if raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == me)
        {
            tracing::info!("this node is a voter of the cluster");
            return;
        }
        let request = nats.request(subject.clone(), body.clone().into());
        if let Ok(Ok(reply)) = tokio::time::timeout(JOIN_WAIT, request).await {
            if let Ok(r) = RaftJoinResponse::decode(reply.payload) {
                tracing::debug!(answer = %r.error, "asked to become a voter");
            }
        }
        tokio::select! {
            () = signal.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Asks the cluster's leader to add this node, a few times, as NSS does;
/// it is added as a learner ([`until_voter`] does the rest).
///
/// # Errors
/// NSS's "failed to join Raft group" when no leader added it.
pub async fn join(
    nats: &async_nats::Client,
    cluster_id: &str,
    name: &str,
    signal: &CancellationToken,
) -> Result<(), String> {
    let subject = join_subject(cluster_id);
    let body = RaftJoinRequest {
        node_id: name.to_string(),
        node_addr: format!("{cluster_id}.{name}.{cluster_id}"),
    }
    .encode_to_vec();
    for attempt in 1..=JOIN_ATTEMPTS {
        let request = nats.request(subject.clone(), body.clone().into());
        let outcome = tokio::select! {
            () = signal.cancelled() => return Ok(()),
            r = tokio::time::timeout(JOIN_WAIT, request) => r,
        };
        let why = match outcome {
            Ok(Ok(reply)) => match RaftJoinResponse::decode(reply.payload) {
                Ok(r) if r.error.is_empty() || r.error.starts_with(LEARNING) => return Ok(()),
                Ok(r) => r.error,
                Err(e) => format!("undecodable reply: {e}"),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer".to_string(),
        };
        tracing::info!(attempt, why = %why, "joining the cluster: trying again");
        tokio::select! {
            () = signal.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    Err(format!("failed to join Raft group {cluster_id}"))
}

/// Watches for another node started with `cluster_bootstrap`; cancels
/// `found` with the other's ID when one answers or asks.
///
/// # Errors
/// When the subscriptions cannot be made.
pub async fn detect_other_seeds(
    nats: async_nats::Client,
    cluster_id: &str,
    server_id: &str,
) -> Result<
    (
        AbortOnDropHandle<()>,
        tokio::sync::oneshot::Receiver<String>,
    ),
    async_nats::SubscribeError,
> {
    let subject = format!("{}.bootstrap", prefix(cluster_id));
    let mut asks = nats.subscribe(subject.clone()).await?;
    let inbox = nats.new_inbox();
    let mut answers = nats.subscribe(inbox.clone()).await?;
    let me = bytes::Bytes::from(server_id.to_string());
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let other = loop {
            tokio::select! {
                Some(m) = asks.next() => {
                    if m.payload == me {
                        continue;
                    }
                    if let Some(reply) = m.reply {
                        let _ = nats.publish(reply, me.clone()).await;
                        let _ = nats.flush().await;
                    }
                    break m.payload;
                }
                Some(m) = answers.next() => break m.payload,
                _ = tick.tick() => {
                    let _ = nats.publish_with_reply(subject.clone(), inbox.clone(), me.clone()).await;
                }
            }
        };
        let _ = tx.send(String::from_utf8_lossy(&other).into_owned());
    });
    Ok((AbortOnDropHandle::new(task), rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_messages_have_nss_field_numbers() {
        let req = RaftJoinRequest {
            node_id: "b".into(),
            node_addr: "x".into(),
        };
        assert_eq!(req.encode_to_vec(), b"\x0a\x01b\x12\x01x");
        let resp = RaftJoinResponse { error: "no".into() };
        assert_eq!(resp.encode_to_vec(), b"\x0a\x02no");
    }
}
