//! Adding and removing nodes on request (`cluster_allow_add_remove_node`),
//! as NSS does: a request on `_STAN.raft.<cluster_id>.node.add` or
//! `.node.remove` whose payload is the node's ID, answered by the leader
//! with `+OK` or `-ERR adding node "ID": why`. A node added is a voter at
//! once (NSS's AddVoter); a leader that removes itself steps down and stops.

use std::collections::BTreeSet;

use futures::StreamExt;
use openraft::Membership;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::network::prefix;
use super::{node_id, ClusterNode, NodeId, Raft};

/// The subjects of add and remove requests.
fn subjects(cluster_id: &str) -> (String, String) {
    let p = prefix(cluster_id);
    (format!("{p}.node.add"), format!("{p}.node.remove"))
}

fn valid(name: &str) -> Result<(), String> {
    if !is_valid_name(name) {
        return Err("invalid node ID".into());
    }
    Ok(())
}

/// Whether `name` can be a node's (it makes NATS subject tokens).
fn is_valid_name(name: &str) -> bool {
    !(name.is_empty() || name.contains(['.', '*', '>', ' ']))
}

/// Why a name cannot be made a node, as [`learner`] refuses it.
pub(super) enum Refused {
    /// Not a valid node name.
    Invalid,
    /// Its ID is that of this other node's name.
    Collides(String),
    /// openraft refused to add it.
    Raft(String),
}

/// The cluster's current membership, as this node sees it.
pub(super) fn members(raft: &Raft) -> Membership<NodeId, ClusterNode> {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .clone()
}

/// Checks `name` against `members` and adds it as a learner when it is
/// not a node yet; whether it was added.
pub(super) async fn learner(
    raft: &Raft,
    members: &Membership<NodeId, ClusterNode>,
    name: &str,
) -> Result<bool, Refused> {
    if !is_valid_name(name) {
        return Err(Refused::Invalid);
    }
    let id = node_id(name);
    match members.get_node(&id) {
        Some(node) if node.name != name => Err(Refused::Collides(node.name.clone())),
        Some(_) => Ok(false),
        None => {
            let node = ClusterNode {
                name: name.to_string(),
            };
            raft.add_learner(id, node, false)
                .await
                .map_err(|e| Refused::Raft(e.to_string()))?;
            Ok(true)
        }
    }
}

/// Makes `name` a voter (added first as a learner when new).
async fn add(raft: &Raft, name: &str) -> Result<(), String> {
    let members = members(raft);
    learner(raft, &members, name).await.map_err(|r| match r {
        Refused::Invalid => "invalid node ID".to_string(),
        Refused::Collides(other) => format!("node ID collides with {other:?}"),
        Refused::Raft(e) => e,
    })?;
    let id = node_id(name);
    let mut voters: BTreeSet<u64> = members.voter_ids().collect();
    if voters.insert(id) {
        raft.change_membership(voters, false)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Takes `name` out of the cluster, as voter and as learner.
async fn remove(raft: &Raft, name: &str) -> Result<(), String> {
    valid(name)?;
    let id = node_id(name);
    let members = members(raft);
    if members.get_node(&id).is_none() {
        return Err("not a node of this cluster".into());
    }
    let voters: BTreeSet<u64> = members.voter_ids().filter(|v| *v != id).collect();
    if voters.is_empty() {
        return Err("the last node cannot be removed".into());
    }
    raft.change_membership(voters, false)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Answers add and remove requests while this node leads, until the
/// handle drops; `me` is this node's name, and `stop` is cancelled once
/// this node has removed itself.
///
/// # Errors
/// When the subscriptions cannot be made.
pub async fn serve(
    raft: Raft,
    nats: async_nats::Client,
    cluster_id: &str,
    me: String,
    stop: CancellationToken,
) -> Result<AbortOnDropHandle<()>, async_nats::SubscribeError> {
    let (add_subject, remove_subject) = subjects(cluster_id);
    let adds = nats.subscribe(add_subject).await?;
    let removes = nats.subscribe(remove_subject).await?;
    let mut requests =
        futures::stream::select(adds.map(|m| (true, m)), removes.map(|m| (false, m)));
    Ok(AbortOnDropHandle::new(tokio::spawn(async move {
        while let Some((adding, m)) = requests.next().await {
            // Only the leader answers, as with NSS.
            if !raft.metrics().borrow().state.is_leader() {
                continue;
            }
            let name = String::from_utf8_lossy(&m.payload).into_owned();
            let (verb, result) = if adding {
                ("adding", add(&raft, &name).await)
            } else {
                ("removing", remove(&raft, &name).await)
            };
            let answer = match &result {
                Ok(()) => {
                    tracing::info!(node = %name, "{} node", if adding { "added" } else { "removed" });
                    "+OK".to_string()
                }
                Err(e) => {
                    tracing::error!(node = %name, error = %e, "error {verb} node");
                    format!("-ERR {verb} node {name:?}: {e}")
                }
            };
            if let Some(reply) = m.reply {
                if let Err(e) = nats.publish(reply, answer.into()).await {
                    tracing::warn!(error = %e, "node request reply not sent");
                }
                let _ = nats.flush().await;
            }
            if !adding && result.is_ok() && name == me {
                tracing::info!("this node was removed from the cluster: stopping");
                stop.cancel();
                return;
            }
        }
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_go_to_nss_subjects() {
        assert_eq!(
            subjects("c1"),
            (
                "_STAN.raft.c1.node.add".to_string(),
                "_STAN.raft.c1.node.remove".to_string()
            )
        );
        assert!(valid("").is_err());
        assert!(valid("a.b").is_err());
        assert!(valid("node-1").is_ok());
    }
}
