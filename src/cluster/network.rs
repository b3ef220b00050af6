//! Raft's RPCs as NATS requests, so nodes need nothing but their NATS
//! connection: node `N` of cluster `C` answers on `_STAN.raft.C.N.vote`,
//! `.append` and `.snapshot`, and on `.msgs` with messages of its store
//! for a node installing a snapshot ([`Fetcher`]); bodies are MessagePack.
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
use prost::Message as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_util::task::AbortOnDropHandle;

use super::snapshot::MessageSource;
use super::{decode, encode, ClusterNode, NodeId, Raft, TypeConfig};
use crate::protocol::pb::MsgProto;
use crate::store::Store;

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

/// Answers the RPCs addressed to node `name`, and requests for messages of
/// `store`, until the handle is dropped.
///
/// # Errors
/// When the subscription cannot be made.
pub async fn serve(
    raft: Raft,
    store: std::sync::Arc<dyn Store>,
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
            let (raft, nats, store) = (raft.clone(), nats.clone(), store.clone());
            handlers.spawn(async move {
                let rpc = m.subject.rsplit('.').next().unwrap_or_default().to_string();
                let answer = match rpc.as_str() {
                    "append" => handle(&m.payload, |r| raft.append_entries(r)).await,
                    "vote" => handle(&m.payload, |r| raft.vote(r)).await,
                    "snapshot" => handle(&m.payload, |r| raft.install_snapshot(r)).await,
                    "msgs" => {
                        let payload = m.payload.clone();
                        let max = nats.server_info().max_payload;
                        tokio::task::spawn_blocking(move || messages(&*store, &payload, max))
                            .await
                            .ok()
                            .flatten()
                    }
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

/// What a reply to a `.msgs` request holds at most, well under any
/// nats-server's max_payload.
const MSGS_REPLY_BYTES: usize = 256 * 1024;

/// Answers a `.msgs` request `(channel, from, to)`: the stored messages of
/// `from..=to` that fit a reply, or why not. Blocking.
fn messages(store: &dyn Store, payload: &[u8], max_payload: usize) -> Option<Vec<u8>> {
    let (channel, from, to): (String, u64, u64) = decode(payload).ok()?;
    let answer = (|| -> Result<Vec<bytes::Bytes>, String> {
        if !store
            .channel_names()
            .map_err(|e| e.to_string())?
            .contains(&channel)
        {
            return Err(format!("no channel {channel}"));
        }
        let c = store.open_channel(&channel).map_err(|e| e.to_string())?;
        if c.state().last < to {
            return Err(format!("behind: has {channel} up to {}", c.state().last));
        }
        let budget = MSGS_REPLY_BYTES.min(max_payload / 2);
        let mut out = Vec::new();
        let mut size = 0;
        let mut next = from;
        'pages: while next <= to {
            let page = c.range(next, 256).map_err(|e| e.to_string())?;
            if page.is_empty() {
                break;
            }
            for m in page {
                if m.sequence > to || (size > 0 && size + m.encoded_len() > budget) {
                    break 'pages;
                }
                next = m.sequence + 1;
                let raw = bytes::Bytes::from(prost::Message::encode_to_vec(&m));
                size += raw.len();
                out.push(raw);
            }
        }
        Ok(out)
    })();
    encode(&answer).ok()
}

/// Makes the [`MessageSource`] a snapshot install reads from: the other
/// nodes of the snapshot's membership over NATS, the one that led at the
/// snapshot's index first.
#[derive(Clone)]
pub struct Fetcher {
    nats: async_nats::Client,
    prefix: String,
    me: NodeId,
}

impl Fetcher {
    /// Fetches for node `me` of cluster `cluster_id`.
    pub fn new(nats: async_nats::Client, cluster_id: &str, me: NodeId) -> Fetcher {
        Fetcher {
            nats,
            prefix: prefix(cluster_id),
            me,
        }
    }

    /// The source for installing the snapshot of `meta`.
    pub fn source(&self, meta: &openraft::SnapshotMeta<NodeId, ClusterNode>) -> NatsSource {
        let members = meta.last_membership.membership();
        let leader = meta.last_log_id.map(|l| l.leader_id.node_id);
        let mut nodes: Vec<(NodeId, String)> = members
            .nodes()
            .filter(|(id, _)| **id != self.me)
            .map(|(id, n)| (*id, n.name.clone()))
            .collect();
        nodes.sort_by_key(|(id, _)| Some(*id) != leader);
        NatsSource {
            nats: self.nats.clone(),
            subjects: nodes
                .into_iter()
                .map(|(_, name)| format!("{}.{name}.msgs", self.prefix))
                .collect(),
        }
    }
}

/// Messages from other nodes, asked in turn until one gives them.
pub struct NatsSource {
    nats: async_nats::Client,
    subjects: Vec<String>,
}

impl MessageSource for NatsSource {
    fn fetch(&self, channel: &str, from: u64, to: u64) -> Result<Vec<MsgProto>, String> {
        let body = encode(&(channel, from, to)).map_err(|e| e.to_string())?;
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        let mut why = "no other node".to_string();
        for subject in &self.subjects {
            let request = self.nats.request(subject.clone(), body.clone().into());
            let reply = handle.block_on(tokio::time::timeout(Duration::from_secs(10), request));
            let answer: Result<Vec<bytes::Bytes>, String> = match reply {
                Ok(Ok(reply)) => decode(&reply.payload).unwrap_or_else(|e| Err(e.to_string())),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out".into()),
            };
            match answer {
                Ok(raw) => {
                    return raw
                        .into_iter()
                        .map(|b| MsgProto::decode(b).map_err(|e| e.to_string()))
                        .collect();
                }
                Err(e) => why = format!("{subject}: {e}"),
            }
        }
        Err(why)
    }
}
