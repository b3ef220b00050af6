//! Raft's RPCs as NATS requests, so nodes need nothing but their NATS
//! connection: node `N` of cluster `C` answers on `_STAN.raft.C.N.vote`,
//! `.append` and `.snapshot`; bodies are MessagePack.
//!
//! An AppendEntries larger than nats-server's max_payload is refused
//! before it is sent, with openraft's "payload too large" and a hint, and
//! openraft sends fewer entries. Snapshot chunks are sized by the Raft
//! config to fit.

use std::time::Duration;

use futures::StreamExt;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::task::AbortOnDropHandle;

use super::{decode, encode, ClusterNode, NodeId, Raft, TypeConfig};

/// The subject prefix of a cluster's Raft traffic.
pub fn prefix(cluster_id: &str) -> String {
    format!("_STAN.raft.{cluster_id}")
}

/// Makes connections to the other nodes, over one NATS client.
#[derive(Clone)]
pub struct NatsNetwork {
    nats: async_nats::Client,
    prefix: String,
}

impl NatsNetwork {
    /// The network of the cluster `cluster_id`.
    pub fn new(nats: async_nats::Client, cluster_id: &str) -> NatsNetwork {
        NatsNetwork {
            nats,
            prefix: prefix(cluster_id),
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NatsNetwork {
    type Network = NatsConnection;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> NatsConnection {
        NatsConnection {
            nats: self.nats.clone(),
            subject: format!("{}.{}", self.prefix, node.name),
            target,
            node: node.clone(),
        }
    }
}

/// RPCs to one node.
pub struct NatsConnection {
    nats: async_nats::Client,
    subject: String,
    target: NodeId,
    node: ClusterNode,
}

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, ClusterNode, RaftError<NodeId, E>>>;

impl NatsConnection {
    async fn call<Resp, E>(&self, rpc: &str, body: Vec<u8>, ttl: Duration) -> Rpc<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let subject = format!("{}.{rpc}", self.subject);
        let request = self.nats.request(subject, body.into());
        let reply = match tokio::time::timeout(ttl, request).await {
            Err(_) => {
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "raft request timed out");
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
            Ok(Err(e)) if e.kind() == async_nats::client::RequestErrorKind::NoResponders => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Ok(Err(e)) => return Err(RPCError::Network(NetworkError::new(&e))),
            Ok(Ok(reply)) => reply,
        };
        let answer: Result<Resp, RaftError<NodeId, E>> =
            decode(&reply.payload).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        answer.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }

    fn body<Req: Serialize, E: std::error::Error>(req: &Req) -> Rpc<Vec<u8>, E> {
        encode(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetwork<TypeConfig> for NatsConnection {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        let body = Self::body(&req)?;
        let max = self.nats.server_info().max_payload;
        if body.len() > max {
            let n = req.entries.len() as u64;
            if n <= 1 {
                let e = std::io::Error::other(format!(
                    "a raft entry of {} bytes exceeds nats-server's max_payload of {max}",
                    body.len()
                ));
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
            let hint = (n * max as u64 / body.len() as u64).clamp(1, n - 1);
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        self.call("append", body, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let body = Self::body(&req)?;
        self.call("snapshot", body, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        let body = Self::body(&req)?;
        self.call("vote", body, option.hard_ttl()).await
    }
}

/// Answers the RPCs addressed to node `name` until the handle is dropped.
///
/// # Errors
/// When the subscription cannot be made.
pub async fn serve(
    raft: Raft,
    nats: async_nats::Client,
    cluster_id: &str,
    name: &str,
) -> Result<AbortOnDropHandle<()>, async_nats::SubscribeError> {
    let mut requests = nats
        .subscribe(format!("{}.{name}.*", prefix(cluster_id)))
        .await?;
    Ok(AbortOnDropHandle::new(tokio::spawn(async move {
        let mut handlers = tokio::task::JoinSet::new();
        while let Some(m) = requests.next().await {
            // Reap finished handlers as we go.
            while handlers.try_join_next().is_some() {}
            let Some(reply) = m.reply.clone() else {
                continue;
            };
            let (raft, nats) = (raft.clone(), nats.clone());
            handlers.spawn(async move {
                let rpc = m.subject.rsplit('.').next().unwrap_or_default().to_string();
                let answer = match rpc.as_str() {
                    "append" => handle(&m.payload, |r| raft.append_entries(r)).await,
                    "vote" => handle(&m.payload, |r| raft.vote(r)).await,
                    "snapshot" => handle(&m.payload, |r| raft.install_snapshot(r)).await,
                    _ => None,
                };
                match answer {
                    Some(body) => {
                        if let Err(e) = nats.publish(reply, body.into()).await {
                            tracing::warn!(rpc, error = %e, "raft: reply not sent");
                        }
                    }
                    None => tracing::warn!(subject = %m.subject, "raft: undecodable or unknown request ignored"),
                }
            });
        }
    })))
}

/// Decodes a request, runs it, encodes its result; `None` when the request
/// or the answer does not (de)serialize.
async fn handle<Req, Resp, E, F, Fut>(payload: &[u8], run: F) -> Option<Vec<u8>>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    E: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = Result<Resp, E>>,
{
    let req: Req = decode(payload).ok()?;
    encode(&run(req).await).ok()
}
